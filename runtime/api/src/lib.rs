//! Pigeon's HTTP API: the one interface of a node to the outside world.
//!
//! The CLI and the dashboard both speak it. JSON under `/api/v1`:
//!
//! | method | path | what |
//! | --- | --- | --- |
//! | GET | `/health` | node status |
//! | GET | `/types` | deployed types |
//! | PUT | `/types/{name}` | deploy the body (`.wasm`), limits as query parameters |
//! | DELETE | `/types/{name}` | undeploy |
//! | GET, PUT | `/types/{name}/placement` | a type's nodes and moves; change them (see [`placement`]) |
//! | POST | `/messages` | send; `wait: replied` waits for the reply |
//! | GET | `/actors` | actors with mailbox depths and counters |
//! | GET | `/actors/{type}/{key}` | one actor: mailbox, state, errors |
//! | GET | `/state/{type}/{key}?prefix=` | all of an actor's state entries |
//! | GET | `/dead-letters` | dead letters |
//! | POST | `/dead-letters/replay`, `/dead-letters/purge` | by id or all |
//! | GET | `/topics` | subscriptions |
//! | POST | `/topics/{topic}/subscriptions` | subscribe an actor, with a filter |
//! | DELETE | `/topics/{topic}/subscriptions/{type}/{key}` | unsubscribe |
//! | POST | `/topics/{topic}/messages` | publish to every matching subscriber |
//! | GET | `/nodes` | the lattice's nodes: up, down, refused, outbox depths |
//! | POST | `/nodes/{id}/forget` | admit a node again under a new incarnation |
//! | POST | `/nodes/{id}/drain` | move every actor off a node |
//! | GET | `/events` | live feed: server-sent `tick` events (see [`live`]) |
//! | GET | `/openapi.json` | this API, described |
//!
//! Beside it: `GET /metrics` (OpenMetrics text for Prometheus, same token
//! rules as reads) and the dashboard at `/` (see [`ui`]).
//!
//! Requests are size-limited (the component upload more generously), need
//! the node's token (see [`auth`]) and fail with JSON errors (see [`error`]).

pub mod auth;
mod contract;
pub mod error;
mod extract;
pub mod forward;
pub mod guard;
pub mod live;
pub mod model;
pub mod nodes;
pub mod placement;
mod prometheus_text;
mod routes;
mod ui;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use pigeon_node::Node;
use utoipa::OpenApi;

use contract::Contract;

/// Largest component upload.
pub const MAX_COMPONENT_BYTES: usize = 256 << 20;
/// Largest body of any other request (a 1 MiB payload in base64 fits).
pub const MAX_REQUEST_BYTES: usize = 4 << 20;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub node: Node,
    pub token: Arc<str>,
    /// Reads are open when the node listens on loopback only.
    pub loopback: bool,
    /// Turns true when the server shuts down: long-lived responses (the
    /// live feed) end, so a graceful shutdown does not wait on them forever.
    pub closing: tokio::sync::watch::Receiver<bool>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Pigeon node API", description = "Deploy, drive and inspect the actors of a Pigeon node."),
    paths(
        routes::health,
        routes::list_types,
        routes::deploy,
        routes::undeploy,
        routes::send,
        routes::list_actors,
        routes::inspect,
        routes::state,
        routes::cancel_delayed,
        routes::purge_mailbox,
        routes::delete_state,
        routes::list_dead_letters,
        routes::replay,
        routes::purge,
        routes::list_subscriptions,
        routes::subscribe,
        routes::unsubscribe,
        routes::publish,
        nodes::list_nodes,
        nodes::forget_node,
        placement::show,
        placement::change,
        placement::drain,
        live::events,
    ),
    modifiers(&Contract)
)]
struct ApiDoc;

/// The OpenAPI document of this API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// Refuses a request whose announced `Content-Length` is over its limit at
/// once, before reading any of the body (the body-limit layer alone would
/// read up to the limit first).
async fn refuse_oversized(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Result<axum::response::Response, error::ApiError> {
    let deploying = request.method() == axum::http::Method::PUT;
    let limit = if deploying { MAX_COMPONENT_BYTES } else { MAX_REQUEST_BYTES };
    let announced = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match announced {
        Some(length) if length > limit as u64 => Err(error::ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            format!("request body of {length} bytes is over the limit of {limit} bytes"),
        )),
        _ => Ok(next.run(request).await),
    }
}

/// The router of `/api/v1`, `/metrics` and the dashboard, for a node, its
/// token and its listen address. Send `true` on `closing` when the server
/// starts its graceful shutdown.
pub fn router(node: Node, token: String, listen: SocketAddr, closing: tokio::sync::watch::Receiver<bool>) -> Router {
    let state = AppState { node, token: token.into(), loopback: listen.ip().is_loopback(), closing };
    let api = Router::new()
        .route("/health", get(routes::health))
        .route("/types", get(routes::list_types))
        .route(
            "/types/{name}",
            put(routes::deploy).delete(routes::undeploy).layer(DefaultBodyLimit::max(MAX_COMPONENT_BYTES)),
        )
        .route("/types/{name}/placement", get(placement::show).put(placement::change))
        .route("/messages", post(routes::send))
        .route("/actors", get(routes::list_actors))
        .route("/actors/{*address}", get(routes::inspect))
        .route("/state/{*address}", get(routes::state).delete(routes::delete_state))
        .route("/mailboxes/{*address}", axum::routing::delete(routes::purge_mailbox))
        .route("/delayed/{id}", axum::routing::delete(routes::cancel_delayed))
        .route("/dead-letters", get(routes::list_dead_letters))
        .route("/dead-letters/replay", post(routes::replay))
        .route("/dead-letters/purge", post(routes::purge))
        .route("/topics", get(routes::list_subscriptions))
        .route("/topics/{topic}/subscriptions", post(routes::subscribe))
        .route("/topics/{topic}/subscriptions/{*subscriber}", axum::routing::delete(routes::unsubscribe))
        .route("/topics/{topic}/messages", post(routes::publish))
        .route("/nodes", get(nodes::list_nodes))
        .route("/nodes/{id}/forget", post(nodes::forget_node))
        .route("/nodes/{id}/drain", post(placement::drain))
        .route("/events", get(live::events))
        .layer(axum::middleware::from_fn_with_state(state.clone(), forward::to_owner))
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_token))
        .route("/openapi.json", get(|| async { axum::Json(openapi()) }))
        .fallback(error::no_such_path)
        .method_not_allowed_fallback(error::wrong_method)
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .layer(axum::middleware::from_fn(refuse_oversized))
        .with_state(state.clone());
    let state_for_guard = state.clone();
    let metrics = Router::new()
        .route("/metrics", get(routes::metrics))
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_token))
        .with_state(state);
    Router::new()
        .nest("/api/v1", api)
        .merge(metrics)
        .route("/", get(ui::index))
        .route("/ui/{*file}", get(ui::file))
        .fallback(error::no_such_path)
        .method_not_allowed_fallback(error::wrong_method)
        .layer(axum::middleware::from_fn_with_state(state_for_guard, guard::check_host))
        .layer(axum::middleware::from_fn(guard::security_headers))
}
