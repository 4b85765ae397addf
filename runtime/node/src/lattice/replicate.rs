//! Deploy once, run everywhere: a type deployed on any node reaches every
//! node of the lattice, with the same record (limits, links, deploy time)
//! and the same placement, so that every node routes its actors alike.
//!
//! Replication is *pull*: the deploying node tells each peer that is up
//! ("`counter` changed"), and the peer fetches the record and the component
//! bytes from it in pieces that fit a NATS message, then installs them
//! with the same checks as a local deploy. A node that joins later, or
//! that was down, compares every peer's heartbeat (types with their hash
//! and deploy time) with its own registry when that peer comes up, and
//! pulls whatever is newer. The newest deploy time wins.
//!
//! An undeploy reaches the nodes that are up at once. Every node keeps the
//! time of each undeploy (a tombstone, until the type is deployed again)
//! and announces it: a node that was down removes the type when it hears
//! of a later undeploy, and no node pulls a type back from a peer whose
//! deploy is older than its own tombstone. So the latest of deploys and
//! undeploys wins everywhere.

use std::sync::Arc;
use std::time::Duration;

use pigeon_lattice::{Member, Op};
use pigeon_store::{ActorType, Placement, decode_record, encode_record};
use serde::{Deserialize, Serialize};

use super::{decode, encode};
use crate::{NodeError, NodeInner};

/// Bytes of a component per request.
const CHUNK: usize = 256 << 10;
/// How long one piece may take.
const PIECE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a peer may take to fetch and install a type (a Python or JS
/// guest compiles for tens of seconds on a small machine).
const INSTALL_TIMEOUT: Duration = Duration::from_secs(300);

/// What a deploying node tells its peers.
#[derive(Serialize, Deserialize)]
enum DeployNotice {
    Deployed { name: String },
    Undeployed { name: String, at_ms: u64 },
}

/// What a node asks a peer that has a type.
#[derive(Serialize, Deserialize)]
enum ComponentRequest {
    /// The record and placement of a type.
    Type { name: String },
    /// Bytes of a component from `offset` on.
    Piece { hash: String, offset: u64 },
}

#[derive(Serialize, Deserialize)]
struct TypeOffer {
    /// The type's record, as the store encodes it.
    record: Vec<u8>,
    placement: Placement,
}

impl NodeInner {
    /// Tells every peer that is up about `notice`; returns, per peer, what
    /// came of it.
    async fn notify_peers(&self, notice: DeployNotice) -> Vec<(String, Result<(), String>)> {
        let Some(lattice) = self.lattice().cloned() else { return Vec::new() };
        let body = encode(&notice);
        let peers: Vec<String> =
            lattice.peers().into_iter().filter(|p| lattice.is_up(&p.member.id)).map(|p| p.member.id).collect();
        let mut tasks = Vec::new();
        for peer in peers {
            let (lattice, body) = (lattice.clone(), body.clone());
            tasks.push(tokio::spawn(async move {
                let result = lattice.request(&peer, Op::Deploy, body, INSTALL_TIMEOUT).await.map(drop);
                (peer, result.map_err(|e| e.to_string()))
            }));
        }
        let mut results = Vec::new();
        for task in tasks {
            if let Ok(result) = task.await {
                results.push(result);
            }
        }
        results
    }

    /// Replicates the deploy of `name` to every peer that is up.
    pub(crate) async fn replicate_deploy(&self, name: &str) -> Vec<(String, Result<(), String>)> {
        let results = self.notify_peers(DeployNotice::Deployed { name: name.to_string() }).await;
        for (peer, result) in &results {
            if let Err(e) = result {
                tracing::error!("node `{peer}` did not take the deploy of `{name}`: {e}");
            }
        }
        results
    }

    /// Replicates the undeploy of `name` at `at_ms` to every peer that is up.
    pub(crate) async fn replicate_undeploy(&self, name: &str, at_ms: u64) {
        let notice = DeployNotice::Undeployed { name: name.to_string(), at_ms };
        for (peer, result) in self.notify_peers(notice).await {
            if let Err(e) = result {
                tracing::warn!("node `{peer}` did not take the undeploy of `{name}`: {e}");
            }
        }
    }

    /// The placement a deploy of `name` gets: `nodes` if given (each must
    /// be this node or a peer); else the one it has, for a redeploy (a peer
    /// that is down at that moment keeps its actors); else this node and
    /// every peer that is up.
    pub(crate) fn placement_for(&self, name: &str, nodes: Option<&[String]>) -> Result<Placement, NodeError> {
        let me = self.store.identity().node_id.clone();
        let Some(lattice) = self.lattice() else {
            return match nodes {
                Some(nodes) => Err(NodeError::UnknownNodes { unknown: nodes.to_vec(), known: vec![me] }),
                None => Ok(Placement::default()),
            };
        };
        match nodes {
            Some(nodes) => {
                let unknown: Vec<&String> = nodes.iter().filter(|n| **n != me && lattice.peer(n).is_none()).collect();
                if !unknown.is_empty() {
                    let known: Vec<String> =
                        std::iter::once(me).chain(lattice.peers().into_iter().map(|p| p.member.id)).collect();
                    return Err(NodeError::UnknownNodes { unknown: unknown.into_iter().cloned().collect(), known });
                }
                if nodes.is_empty() {
                    return Err(NodeError::Lattice("--nodes names no node".into()));
                }
                let asked = Placement::new(nodes.iter().cloned());
                match self.registry.get(name) {
                    Some(loaded) if loaded.placement.nodes.is_empty() || loaded.placement.nodes == asked.nodes => {
                        Ok(Placement { nodes: asked.nodes, ..loaded.placement.clone() })
                    }
                    // Its actors have state on their nodes: they move, or
                    // it would be lost to them.
                    Some(loaded) => Err(NodeError::PlacementConflict(format!(
                        "`{name}` already runs on {}; a redeploy keeps its nodes. To move its actors to {}, run \
                         `pigeon placement {name} --nodes {}`",
                        loaded.placement.nodes.join(","),
                        asked.nodes.join(","),
                        asked.nodes.join(",")
                    ))),
                    None => Ok(asked),
                }
            }
            None => {
                if let Some(loaded) = self.registry.get(name)
                    && !loaded.placement.nodes.is_empty()
                {
                    return Ok(loaded.placement.clone());
                }
                let up = lattice.peers().into_iter().filter(|p| lattice.is_up(&p.member.id)).map(|p| p.member.id);
                Ok(Placement::new(std::iter::once(me).chain(up)))
            }
        }
    }
}

/// A peer says a type changed: fetch it, or remove it.
pub(super) async fn answer_deploy(node: &Arc<NodeInner>, from: String, body: &[u8]) -> Result<Vec<u8>, String> {
    match decode::<DeployNotice>(body)? {
        DeployNotice::Deployed { name } => pull(node, &from, &name).await.map_err(|e| e.to_string())?,
        DeployNotice::Undeployed { name, at_ms } => {
            let node = crate::Node { inner: node.clone() };
            match node.undeploy_here(&name, at_ms).await {
                Ok(()) | Err(NodeError::UnknownType(_)) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    }
    Ok(Vec::new())
}

/// Serves a type's record or a piece of its component to a peer.
pub(super) fn answer_component(node: &Arc<NodeInner>, body: &[u8]) -> Result<Vec<u8>, String> {
    match decode::<ComponentRequest>(body)? {
        ComponentRequest::Type { name } => {
            let loaded = node.registry.get(&name).ok_or_else(|| format!("unknown actor type `{name}`"))?;
            Ok(encode(&TypeOffer { record: encode_record(&loaded.record), placement: loaded.placement.clone() }))
        }
        ComponentRequest::Piece { hash, offset } => {
            let bytes = node.store.component(&hash).map_err(|e| e.to_string())?;
            let bytes = bytes.ok_or_else(|| format!("no component with hash {hash} here"))?;
            let start = usize::try_from(offset).unwrap_or(usize::MAX).min(bytes.len());
            let end = start.saturating_add(CHUNK).min(bytes.len());
            Ok(bytes[start..end].to_vec())
        }
    }
}

/// Fetches type `name` from `peer` and installs it, unless this node has
/// the same or a newer deploy of it.
async fn pull(node: &Arc<NodeInner>, peer: &str, name: &str) -> Result<(), NodeError> {
    let lattice = node.lattice().cloned().ok_or_else(|| NodeError::Lattice("not in a lattice".into()))?;
    let remote = |e: pigeon_lattice::LatticeError| NodeError::Lattice(e.to_string());
    let request = encode(&ComponentRequest::Type { name: name.to_string() });
    let offer = lattice.request(peer, Op::Component, request, PIECE_TIMEOUT).await.map_err(remote)?;
    let offer: TypeOffer = decode(&offer).map_err(NodeError::Lattice)?;
    let record: ActorType = decode_record(&offer.record, "types")?;
    if let Some(local) = node.registry.get(name)
        && !newer(&record, &local.record)
    {
        return Ok(());
    }
    if node.store.removed_at(name)?.is_some_and(|at| at >= record.deployed_at_ms) {
        return Ok(());
    }
    let bytes = match node.store.component(&record.component_hash)? {
        Some(bytes) => bytes,
        None => fetch_component(&lattice, peer, &record).await?,
    };
    let node = crate::Node { inner: node.clone() };
    node.install(record, bytes, offer.placement).await?;
    Ok(())
}

/// Whether deploy `a` supersedes deploy `b` of the same type (the later
/// one; equal times are ordered by hash so every node agrees).
fn newer(a: &ActorType, b: &ActorType) -> bool {
    (a.deployed_at_ms, &a.component_hash) > (b.deployed_at_ms, &b.component_hash)
}

async fn fetch_component(
    lattice: &pigeon_lattice::Lattice,
    peer: &str,
    record: &ActorType,
) -> Result<Vec<u8>, NodeError> {
    let size = usize::try_from(record.component_size).unwrap_or(usize::MAX);
    let mut bytes = Vec::with_capacity(size.min(256 << 20));
    while bytes.len() < size {
        let request =
            encode(&ComponentRequest::Piece { hash: record.component_hash.clone(), offset: bytes.len() as u64 });
        let piece = lattice
            .request(peer, Op::Component, request, PIECE_TIMEOUT)
            .await
            .map_err(|e| NodeError::Lattice(e.to_string()))?;
        if piece.is_empty() {
            return Err(NodeError::Lattice(format!(
                "node `{peer}` sent {} of the {size} bytes of `{}`'s component",
                bytes.len(),
                record.name
            )));
        }
        bytes.extend(piece);
    }
    Ok(bytes)
}

/// A peer came up (or a while passed): pull every type it has newer than
/// this node's, unless a pull of that type is already under way.
pub(super) fn catch_up(node: &Arc<NodeInner>, member: Member) {
    let node = node.clone();
    node.runtime.clone().spawn(async move {
        let me = crate::Node { inner: node.clone() };
        for removed in member.removed {
            let older =
                node.registry.get(&removed.name).is_some_and(|t| t.record.deployed_at_ms < removed.deployed_at_ms);
            if older && let Err(e) = me.undeploy_here(&removed.name, removed.deployed_at_ms).await {
                tracing::warn!("could not undeploy `{}` as node `{}` did: {e}", removed.name, member.id);
            }
        }
        for info in member.types {
            if !node.pulling().insert(info.name.clone()) {
                continue;
            }
            let stale = match node.registry.get(&info.name) {
                Some(local) => {
                    (info.deployed_at_ms, &info.hash) > (local.record.deployed_at_ms, &local.record.component_hash)
                }
                None => node.store.removed_at(&info.name).ok().flatten().is_none_or(|at| at < info.deployed_at_ms),
            };
            if stale && let Err(e) = pull(&node, &member.id, &info.name).await {
                tracing::warn!("could not fetch type `{}` from node `{}`: {e}", info.name, member.id);
            }
            let behind = node.registry.get(&info.name).is_some_and(|t| t.placement.epoch < info.placement_epoch);
            if behind && let Err(e) = node.fetch_placement(&member.id, &info.name).await {
                tracing::warn!("could not fetch the placement of `{}` from node `{}`: {e}", info.name, member.id);
            }
            node.pulling().remove(&info.name);
        }
    });
}
