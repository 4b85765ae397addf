//! One node's HTTP API, reached through another: what makes the reads and
//! actions on an actor (inspect, state, purge) and a node's own lists
//! (actors, dead letters) work from any node of the lattice.
//!
//! The node knows nothing of HTTP. The API layer hands it a [`PeerApi`]
//! that runs a request as if a client had sent it to this node, and asks a
//! peer's with [`Node::ask_peer_api`]; the request and the answer cross
//! NATS as bytes. Peers are trusted as the lattice trusts them for
//! messages: whoever can publish on its NATS subjects can drive its nodes,
//! so a lattice that spans untrusted networks needs NATS secured (TLS,
//! accounts).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::Duration;

use pigeon_lattice::Op;
use serde::{Deserialize, Serialize};

use super::proxy::{Unanswered, ask};
use super::{decode, encode};
use crate::{Node, NodeError, NodeInner};

/// An HTTP request for a peer's API.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PeerRequest {
    pub method: String,
    /// Path and query, e.g. `/api/v1/actors/counter/a?value_limit=100`.
    pub uri: String,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// A peer API's answer, as its HTTP response would be.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PeerResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// Runs an API request on this node, for a peer.
pub trait PeerApi: Send + Sync {
    fn handle(&self, request: PeerRequest) -> Pin<Box<dyn Future<Output = PeerResponse> + Send>>;
}

/// The API a node serves to its peers, while its server runs.
#[derive(Default)]
pub(crate) struct PeerApiSlot(std::sync::RwLock<Option<Weak<dyn PeerApi>>>);

impl PeerApiSlot {
    fn get(&self) -> Option<Arc<dyn PeerApi>> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).as_ref()?.upgrade()
    }
}

impl Node {
    /// Serves `api` to the lattice's peers for as long as the caller keeps
    /// it (the node holds it weakly, so that the API, which holds the node,
    /// does not keep it alive).
    pub fn serve_peer_api(&self, api: &Arc<dyn PeerApi>) {
        *self.inner.peer_api.0.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::downgrade(api));
    }

    /// Runs `request` on `peer`'s API; waits up to `timeout` for its answer.
    pub async fn ask_peer_api(
        &self,
        peer: &str,
        request: PeerRequest,
        timeout: Duration,
    ) -> Result<PeerResponse, NodeError> {
        let deadline = tokio::time::Instant::now() + timeout;
        match ask(&self.inner, peer, Op::Api, encode(&request), deadline).await {
            Ok(answer) => decode::<PeerResponse>(&answer).map_err(NodeError::Lattice),
            Err(Unanswered::OwnerDown(owner)) => {
                Err(NodeError::OwnerDown { to: request.uri.clone(), owner, waited: timeout })
            }
            Err(Unanswered::Failed(e)) => Err(NodeError::Lattice(e)),
        }
    }

    /// Whether `id` names a node of this lattice (this one included).
    pub fn knows_node(&self, id: &str) -> bool {
        id == self.inner.store.identity().node_id || self.inner.lattice().is_some_and(|l| l.peer(id).is_some())
    }

    /// The largest message the lattice carries, in bytes (none outside one).
    pub fn lattice_max_payload(&self) -> Option<usize> {
        self.inner.lattice().map(|l| l.max_payload())
    }
}

/// Answers a peer's API request.
pub(super) async fn answer_api(node: &Arc<NodeInner>, body: &[u8]) -> Result<Vec<u8>, String> {
    let request: PeerRequest = decode(body)?;
    let Some(api) = node.peer_api.get() else { return Err("this node's API is not serving".to_string()) };
    Ok(encode(&api.handle(request).await))
}
