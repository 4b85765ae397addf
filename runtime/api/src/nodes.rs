//! The lattice as the API shows it: `GET /api/v1/nodes` lists this node
//! and every peer it has heard of (up, down, or refused), with what each
//! runs and how much waits in this node's outbox towards it; `POST
//! /api/v1/nodes/{id}/forget` admits a node again under a new incarnation
//! (after its store was lost, and the loss accepted).

use axum::Json;
use axum::extract::State;
use pigeon_node::{LatticeStatus, NodeView};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::Path;
use crate::model::ErrorBody;

/// The lattice a node is in.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LatticeInfo {
    pub name: String,
    /// Whether the node's NATS connection is up; while it is not, the node
    /// serves its own actors and keeps retrying.
    pub connected: bool,
    pub node_id: String,
    pub incarnation: String,
}

impl From<LatticeStatus> for LatticeInfo {
    fn from(s: LatticeStatus) -> Self {
        Self { name: s.name, connected: s.connected, node_id: s.node_id, incarnation: s.incarnation }
    }
}

/// One node of the lattice.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NodeInfo {
    pub id: String,
    pub incarnation: String,
    /// `up`, `down` or `refused`.
    pub state: String,
    /// Why it is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// The node that answered this request.
    pub this_node: bool,
    /// Its HTTP API.
    pub api: String,
    pub version: String,
    pub types: Vec<String>,
    pub active_actors: u64,
    /// Messages in the answering node's outbox towards it.
    pub outbox_to: u64,
    /// Messages it forwarded per second, lately.
    pub forwarded_per_sec: f64,
    /// Milliseconds since its last heartbeat.
    pub silent_ms: u64,
}

impl From<NodeView> for NodeInfo {
    fn from(v: NodeView) -> Self {
        let state = serde_json::to_value(v.state).ok().and_then(|s| s.as_str().map(str::to_string));
        Self {
            id: v.id,
            incarnation: v.incarnation,
            state: state.unwrap_or_default(),
            refusal: v.refusal,
            this_node: v.this_node,
            api: v.api,
            version: v.version,
            types: v.types,
            active_actors: v.active_actors,
            outbox_to: v.outbox_to,
            forwarded_per_sec: v.forwarded_per_sec,
            silent_ms: v.silent_ms,
        }
    }
}

/// The answer of `GET /api/v1/nodes`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NodeList {
    /// Absent when the node is on its own (started without `--nats`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lattice: Option<LatticeInfo>,
    /// This node first, then its peers by id.
    pub nodes: Vec<NodeInfo>,
}

/// What `forget` did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Forgotten {
    /// The node forgotten: its next heartbeat is judged anew.
    pub id: String,
}

impl NodeList {
    /// What `node` knows of its lattice.
    pub fn of(node: &pigeon_node::Node) -> Self {
        Self {
            lattice: node.lattice_status().map(LatticeInfo::from),
            nodes: node.nodes().into_iter().map(NodeInfo::from).collect(),
        }
    }
}

#[utoipa::path(get, path = "/api/v1/nodes", responses((status = 200, body = NodeList)))]
pub async fn list_nodes(State(s): State<AppState>) -> Json<NodeList> {
    Json(NodeList::of(&s.node))
}

#[utoipa::path(post, path = "/api/v1/nodes/{id}/forget", params(("id" = String, Path)),
    responses((status = 200, body = Forgotten), (status = 404, body = ErrorBody)))]
pub async fn forget_node(State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<Forgotten>, ApiError> {
    if pigeon_node::pigeon_store::validate_node_id(&id).is_err() || !s.node.forget_node(&id)? {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "unknown_node",
            format!("no node `{id}` is known here (`pigeon nodes` lists them)"),
        ));
    }
    Ok(Json(Forgotten { id }))
}
