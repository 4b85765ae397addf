//! The node in a lattice: what it announces, whom it admits, and how it
//! answers its peers (the transport itself is `pigeon-lattice`).
//!
//! - `forward`: one forwarder per peer drains this node's outbox towards
//!   it (store and forward, see `pigeon-store`'s `remote` module);
//! - `replicate`: deploy once, run everywhere — a deploy reaches every
//!   node, and a node that joins or returns fetches what it lacks;
//! - `proxy`: calls made by turns and client operations that wait on an
//!   actor another node owns;
//! - `peer_api`: a node's HTTP API reached through another node;
//! - `handoff`: actors moving with their state when a placement changes.
//!
//! A peer that returns under a known id with a new incarnation lost its
//! store: it is refused (its actors' messages keep waiting in outboxes)
//! until an operator says otherwise.

mod forward;
mod handoff;
mod peer_api;
mod placement;
mod proxy;
mod replicate;

use std::sync::{Arc, Weak};
use std::time::Duration;

use pigeon_lattice::{Answer, Handler, Lattice, LatticeConfig, Member, Op, Peer, PeerState};
use serde::{Deserialize, Serialize};

use crate::{NodeError, NodeInner};

pub(crate) use forward::Forwarders;
pub use handoff::{MoveProgress, PlacementStatus};
pub(crate) use handoff::{Moves, Runs};
pub(crate) use peer_api::PeerApiSlot;
pub use peer_api::{PeerApi, PeerRequest, PeerResponse};

/// How a node joins a lattice.
#[derive(Clone, Debug)]
pub struct LatticeSettings {
    pub config: LatticeConfig,
    /// The node's API address, as peers and users should reach it.
    pub api: String,
}

/// The lattice as the API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct LatticeStatus {
    pub name: String,
    pub connected: bool,
    pub node_id: String,
    pub incarnation: String,
}

/// A node of the lattice as the API shows it (this one included).
#[derive(Clone, Debug, Serialize)]
pub struct NodeView {
    pub id: String,
    pub incarnation: String,
    /// `up`, `down` or `refused`; this node is `up` while it runs.
    pub state: PeerState,
    pub refusal: Option<String>,
    pub this_node: bool,
    pub api: String,
    pub version: String,
    pub types: Vec<String>,
    pub active_actors: u64,
    /// Messages waiting in this node's outbox towards it.
    pub outbox_to: u64,
    /// Messages it has forwarded per second, lately.
    pub forwarded_per_sec: f64,
    /// Milliseconds since its last heartbeat (0 for this node).
    pub silent_ms: u64,
}

/// The node's answers to its peers.
struct NodeHandler(Weak<NodeInner>);

impl Handler for NodeHandler {
    fn handle(&self, from: &str, incarnation: &str, op: Op, body: Vec<u8>) -> Answer {
        let node = self.0.upgrade();
        let (from, incarnation) = (from.to_string(), incarnation.to_string());
        Box::pin(async move {
            let Some(node) = node else { return Err("the node is stopping".to_string()) };
            match op {
                Op::Deliver => forward::receive(&node, from, incarnation, &body).await,
                Op::Call => proxy::answer_call(&node, &body).await,
                Op::Proxy => proxy::answer_proxy(&node, &body).await,
                Op::Deploy => replicate::answer_deploy(&node, from, &body).await,
                Op::Component => replicate::answer_component(&node, &body),
                Op::Api => peer_api::answer_api(&node, &body).await,
                Op::Handoff => handoff::answer_handoff(&node, &body).await,
            }
        })
    }

    fn admit(&self, member: &Member) -> Result<(), String> {
        let Some(node) = self.0.upgrade() else { return Ok(()) };
        let store = &node.store;
        match store.peer_incarnation(&member.id) {
            Ok(None) => store.remember_peer(&member.id, &member.incarnation).map_err(|e| e.to_string()),
            Ok(Some(known)) if known == member.incarnation => Ok(()),
            Ok(Some(known)) => Err(format!(
                "node `{}` came back with incarnation {} but this lattice knew it as incarnation {known}: its store \
                 was wiped or replaced, so the messages and state it had are not there. Restart it on its old data \
                 directory; if the loss is accepted, `pigeon nodes forget {}` on each node admits the new one",
                member.id, member.incarnation, member.id
            )),
            Err(e) => Err(format!("cannot check node `{}` against the store: {e}", member.id)),
        }
    }

    fn peer_changed(&self, peer: &Peer) {
        let Some(node) = self.0.upgrade() else { return };
        if peer.state == PeerState::Up {
            node.forwarders.wake(&node, &peer.member.id);
            replicate::catch_up(&node, peer.member.clone());
        }
    }
}

/// Joins the lattice and starts forwarding what the outbox already holds.
pub(crate) async fn join(node: &Arc<NodeInner>, settings: LatticeSettings) -> Result<Lattice, NodeError> {
    let identity = node.store.identity().clone();
    let me = Member {
        id: identity.node_id,
        incarnation: identity.incarnation,
        api: settings.api,
        version: env!("CARGO_PKG_VERSION").to_string(),
        started_ms: pigeon_store::now_ms(),
        ..Member::default()
    };
    let handler = Arc::new(NodeHandler(Arc::downgrade(node)));
    let lattice = Lattice::join(settings.config, me, handler).await.map_err(|e| NodeError::Lattice(e.to_string()))?;
    Ok(lattice)
}

/// Starts what runs for the node's life in a lattice: a forwarder for
/// every peer with a non-empty outbox, and the heartbeat's figures.
pub(crate) fn start(node: &Arc<NodeInner>) {
    match node.store.outbox_depths() {
        Ok(depths) => {
            for (peer, _) in depths {
                node.forwarders.wake(node, &peer);
            }
        }
        Err(e) => tracing::error!("cannot read the outbox: {e}"),
    }
    tokio::spawn(refresh_announcement(Arc::downgrade(node)));
    tokio::spawn(handoff::run_moves(Arc::downgrade(node)));
}

/// Keeps what the heartbeat says current: the types, the load, the outbox.
async fn refresh_announcement(node: Weak<NodeInner>) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    for round in 0u64.. {
        tick.tick().await;
        let Some(node) = node.upgrade() else { return };
        let Some(lattice) = node.lattice.get() else { return };
        let types = node.type_infos();
        let removed = node.store.removed_types().unwrap_or_default();
        let removed = removed.into_iter().map(|(name, at)| pigeon_lattice::TypeInfo {
            name,
            hash: String::new(),
            deployed_at_ms: at,
            placement_epoch: 0,
        });
        let outbox = node.store.outbox_depths().unwrap_or_default();
        let (active, forwarded) = (node.scheduler.slot_count() as u64, node.forwarders.total());
        // A deploy notice can be lost (a peer busy or restarting): compare
        // with every peer every few seconds, not only when one comes up.
        if round % 10 == 9 {
            for peer in lattice.peers().into_iter().filter(|p| p.state == PeerState::Up) {
                replicate::catch_up(&node, peer.member);
            }
        }
        lattice.update(|me| {
            me.types = types;
            me.removed = removed.collect();
            me.outbox = outbox;
            me.active_actors = active;
            me.forwarded = forwarded;
        });
    }
}

impl NodeInner {
    pub(crate) fn lattice(&self) -> Option<&Lattice> {
        self.lattice.get()
    }

    /// Types being fetched from peers right now.
    pub(crate) fn pulling(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.pulling.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The types as heartbeats name them.
    fn type_infos(&self) -> Vec<pigeon_lattice::TypeInfo> {
        let names = self.registry.names();
        names
            .iter()
            .filter_map(|n| self.registry.get(n))
            .map(|t| pigeon_lattice::TypeInfo {
                name: t.record.name.clone(),
                hash: t.record.component_hash.clone(),
                deployed_at_ms: t.record.deployed_at_ms,
                placement_epoch: t.placement.epoch,
            })
            .collect()
    }

    /// The node that owns `actor`, when it is another one (the store
    /// routes by the same placement; this is its copy in the registry).
    pub(crate) fn remote_owner(&self, actor: &str) -> Option<String> {
        self.lattice.get()?;
        let loaded = self.registry.get(actor.split('/').next().unwrap_or_default())?;
        let owner = loaded.placement.owner(actor)?;
        (owner != self.store.identity().node_id).then(|| owner.to_string())
    }
}

impl crate::Node {
    /// The node that owns `actor`, when it is not this one.
    pub fn owner_elsewhere(&self, actor: &str) -> Option<String> {
        self.inner.remote_owner(actor)
    }

    /// The lattice this node is in, if any.
    pub fn lattice_status(&self) -> Option<LatticeStatus> {
        let lattice = self.inner.lattice()?;
        let me = lattice.me();
        Some(LatticeStatus {
            name: lattice.name().to_string(),
            connected: lattice.connected(),
            node_id: me.id,
            incarnation: me.incarnation,
        })
    }

    /// Every node of the lattice (this one first), or just this one.
    pub fn nodes(&self) -> Vec<NodeView> {
        let inner = &self.inner;
        let outbox: std::collections::HashMap<String, u64> =
            inner.store.outbox_depths().unwrap_or_default().into_iter().collect();
        let identity = inner.store.identity();
        let mut me = NodeView {
            id: identity.node_id.clone(),
            incarnation: identity.incarnation.clone(),
            state: PeerState::Up,
            refusal: None,
            this_node: true,
            api: String::new(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            types: inner.registry.names(),
            active_actors: inner.scheduler.slot_count() as u64,
            outbox_to: 0,
            forwarded_per_sec: inner.forwarders.rate(),
            silent_ms: 0,
        };
        let Some(lattice) = inner.lattice() else { return vec![me] };
        me.api = lattice.me().api;
        let mut views = vec![me];
        for peer in lattice.peers() {
            views.push(NodeView {
                outbox_to: outbox.get(&peer.member.id).copied().unwrap_or(0),
                id: peer.member.id,
                incarnation: peer.member.incarnation,
                state: peer.state,
                refusal: peer.refusal,
                this_node: false,
                api: peer.member.api,
                version: peer.member.version,
                types: peer.member.types.into_iter().map(|t| t.name).collect(),
                active_actors: peer.member.active_actors,
                forwarded_per_sec: peer.forwarded_per_sec,
                silent_ms: peer.silent_for.as_millis() as u64,
            });
        }
        views.extend(unheard_peers(&views, &outbox));
        views
    }

    /// Admits `id` again under whatever incarnation it comes with (its
    /// store was replaced and the loss is accepted). Returns whether it
    /// was known.
    pub fn forget_node(&self, id: &str) -> Result<bool, NodeError> {
        let known = self.inner.store.forget_peer(id)?;
        if let Some(lattice) = self.inner.lattice() {
            lattice.forget(id);
        }
        Ok(known)
    }
}

/// Encodes a node-to-node body.
fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    pigeon_lattice::wire::encode(value)
}

/// Decodes a node-to-node body; a malformed one is refused, not a panic.
fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, String> {
    pigeon_lattice::wire::decode(bytes)
}

/// Peers this node holds outbox messages for but has not heard from since
/// it started (a node just restarted, a peer that left): listed as down,
/// so that what waits for them is never invisible.
fn unheard_peers(known: &[NodeView], outbox: &std::collections::HashMap<String, u64>) -> Vec<NodeView> {
    let mut unheard: Vec<NodeView> = outbox
        .iter()
        .filter(|(peer, depth)| **depth > 0 && known.iter().all(|v| &v.id != *peer))
        .map(|(peer, depth)| NodeView {
            id: peer.clone(),
            incarnation: String::new(),
            state: PeerState::Down,
            refusal: None,
            this_node: false,
            api: String::new(),
            version: String::new(),
            types: Vec::new(),
            active_actors: 0,
            outbox_to: *depth,
            forwarded_per_sec: 0.0,
            silent_ms: 0,
        })
        .collect();
    unheard.sort_by(|a, b| a.id.cmp(&b.id));
    unheard
}
