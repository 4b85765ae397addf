//! Where a type's actors live, and moving them (see `docs/lattice.md`):
//! `GET /api/v1/types/{name}/placement` shows a type's node set and how
//! far the moves of its last change are; `PUT` of the same path changes
//! the node set (the actors whose owner changes move, with their state
//! and mailboxes); `POST /api/v1/nodes/{id}/drain` moves every actor off a
//! node so it can be stopped for good. The change answers at once; the
//! moves go on in the background, and `GET` follows them.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use pigeon_node::pigeon_store::Placement;
use pigeon_node::{MoveProgress, PlacementStatus};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::Path;
use crate::model::ErrorBody;

/// A type's nodes, and the moves of its last change.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PlacementInfo {
    /// The actor type.
    pub r#type: String,
    /// The nodes its actors live on (empty: a node on its own).
    pub nodes: Vec<String>,
    /// Placement changes so far.
    pub epoch: u64,
    /// The nodes before the last change, while actors still move from them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Vec<String>>,
    /// Per node actors move from: how far it is.
    pub moves: Vec<MoveInfo>,
    /// Every actor of the last change has moved.
    pub complete: bool,
}

/// How far one node's moves are.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MoveInfo {
    /// The node actors move from.
    pub from: String,
    /// Actors it still has to hand off.
    pub remaining: u64,
    /// Actors it handed off.
    pub moved: u64,
    /// Bytes of those actors.
    pub bytes: u64,
    /// It has handed off every actor it had to.
    pub done: bool,
    /// Why its last attempt failed, or why it did not answer (it is retried).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The body of `PUT /api/v1/types/{name}/placement`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlacementRequest {
    /// The node ids the type's actors are to live on.
    #[schema(min_items = 1)]
    pub nodes: Vec<String>,
}

/// What a drain changed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Drained {
    /// The node drained.
    pub node: String,
    /// Every type that was placed on it, with its new placement.
    pub changed: Vec<PlacementInfo>,
}

impl PlacementInfo {
    fn of(status: PlacementStatus) -> Self {
        let moves = status.moves.into_iter().map(|(from, progress)| MoveInfo::of(from, progress)).collect();
        let Placement { nodes, epoch, previous } = status.placement;
        Self { r#type: status.name, nodes, epoch, previous, moves, complete: status.complete }
    }

    /// A change just made: nothing has moved yet.
    fn changed(name: String, placement: Placement) -> Self {
        let complete = placement.previous.is_none();
        let Placement { nodes, epoch, previous } = placement;
        Self { r#type: name, nodes, epoch, previous, moves: Vec::new(), complete }
    }
}

impl MoveInfo {
    fn of(from: String, progress: Result<MoveProgress, String>) -> Self {
        match progress {
            Ok(p) => {
                Self { from, remaining: p.remaining, moved: p.moved, bytes: p.bytes, done: p.done, error: p.error }
            }
            Err(e) => Self { from, remaining: 0, moved: 0, bytes: 0, done: false, error: Some(e) },
        }
    }
}

#[utoipa::path(get, path = "/api/v1/types/{name}/placement", params(("name" = String, Path)),
    responses((status = 200, body = PlacementInfo), (status = 404, body = ErrorBody)))]
pub async fn show(State(s): State<AppState>, Path(name): Path<String>) -> Result<Json<PlacementInfo>, ApiError> {
    Ok(Json(PlacementInfo::of(s.node.placement_status(&name).await?)))
}

#[utoipa::path(put, path = "/api/v1/types/{name}/placement", params(("name" = String, Path)),
    request_body = PlacementRequest,
    responses((status = 200, description = "Changed (the moves go on; GET follows them)", body = PlacementInfo),
        (status = 404, body = ErrorBody),
        (status = 409, description = "An earlier change of the type is still moving actors, or the node is not in a lattice", body = ErrorBody)))]
pub async fn change(
    State(s): State<AppState>,
    Path(name): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<PlacementInfo>, ApiError> {
    let request: PlacementRequest = crate::routes::json_body(body)?;
    if request.nodes.is_empty() {
        return Err(ApiError::bad_request("invalid_nodes", "`nodes` names no node: give at least one node id"));
    }
    let placement = s.node.set_placement(&name, request.nodes).await?;
    Ok(Json(PlacementInfo::changed(name, placement)))
}

#[utoipa::path(post, path = "/api/v1/nodes/{id}/drain", params(("id" = String, Path)),
    responses((status = 200, body = Drained), (status = 404, body = ErrorBody),
        (status = 409, description = "A type runs on that node only, or is still moving actors", body = ErrorBody)))]
pub async fn drain(State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<Drained>, ApiError> {
    if !s.node.knows_node(&id) {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "unknown_node",
            format!("no node `{id}` is known here (`pigeon nodes` lists them)"),
        ));
    }
    let changed = s.node.drain(&id).await?;
    let changed = changed.into_iter().map(|(name, placement)| PlacementInfo::changed(name, placement)).collect();
    Ok(Json(Drained { node: id, changed }))
}
