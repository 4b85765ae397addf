//! Location transparency for the API: any node answers for any actor.
//!
//! - A request about one actor (`/actors/{address}`, `/state/{address}`,
//!   `/mailboxes/{address}`) whose owner is another node runs on that node.
//! - `?node=ID` runs any request on node `ID` (how the CLI lists every
//!   node's actors and dead letters, and replays them where they are).
//!
//! The request crosses the lattice as bytes (see the node's `peer_api`)
//! and runs on the owner's router like a client's, with the owner's own
//! token; the answer comes back as the owner gave it, with the header
//! `Pigeon-Node` naming the node that answered. A forwarded request is
//! never forwarded again, so nodes that disagree about a placement answer
//! rather than loop.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use pigeon_node::{Node, PeerApi, PeerRequest, PeerResponse};
use tower::ServiceExt as _;

use crate::AppState;
use crate::error::ApiError;

/// Marks a request a peer forwarded (its value: the forwarding node).
pub const FORWARDED_BY: &str = "pigeon-forwarded-by";
/// Names the node that answered a request.
pub const ANSWERED_BY: &str = "pigeon-node";
/// How long a forwarded request may take, the owner's work included.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Room for the frame around a forwarded request or answer.
const FRAMING: usize = 64 << 10;

/// The routes about one actor, whose `address` parameter names it.
const ACTOR_ROUTES: [&str; 3] = ["/actors/{*address}", "/state/{*address}", "/mailboxes/{*address}"];

/// Runs the request where it belongs: here, or on the node it names or
/// whose actor it is about.
pub async fn to_owner(State(s): State<AppState>, request: Request, next: Next) -> Result<Response, ApiError> {
    let (asked, request) = take_node_param(request)?;
    if request.headers().contains_key(FORWARDED_BY) {
        return Ok(next.run(request).await);
    }
    let me = s.node.store().identity().node_id.clone();
    if asked.is_some() && request.uri().path().ends_with("/events") {
        return Err(ApiError::bad_request(
            "invalid_query",
            "the live feed is per node: open /api/v1/events on that node's own API (`pigeon nodes` lists them)",
        ));
    }
    let target = match asked {
        Some(id) if !s.node.knows_node(&id) => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_node",
                format!("no node `{id}` in this lattice: `pigeon nodes` lists them"),
            ));
        }
        Some(id) => (id != me).then_some(id),
        None => actor_of(&request).and_then(|actor| s.node.owner_elsewhere(&actor)),
    };
    match target {
        None => Ok(next.run(request).await),
        Some(peer) => forward(&s.node, &me, &peer, request).await,
    }
}

/// The actor a request is about, for the routes about one actor.
fn actor_of(request: &Request) -> Option<String> {
    let matched = request.extensions().get::<MatchedPath>()?.as_str();
    let route = ACTOR_ROUTES.iter().find(|r| matched.ends_with(*r))?;
    let prefix = route.trim_end_matches("{*address}");
    let path = request.uri().path();
    let raw = path.strip_prefix("/api/v1").unwrap_or(path).strip_prefix(prefix)?;
    Some(percent_decode(raw))
}

/// `%XX` escapes decoded, as the router decodes path parameters.
fn percent_decode(raw: &str) -> String {
    percent_encoding::percent_decode_str(raw).decode_utf8_lossy().into_owned()
}

/// The `node` query parameter, and the request without it.
fn take_node_param(mut request: Request) -> Result<(Option<String>, Request), ApiError> {
    let Some(query) = request.uri().query() else { return Ok((None, request)) };
    let mut node = None;
    let mut rest = Vec::new();
    for pair in query.split('&') {
        match pair.strip_prefix("node=") {
            Some(id) => node = Some(percent_decode(id)),
            None => rest.push(pair),
        }
    }
    if node.is_none() {
        return Ok((None, request));
    }
    let path = request.uri().path();
    let uri = if rest.is_empty() { path.to_string() } else { format!("{path}?{}", rest.join("&")) };
    *request.uri_mut() = uri.parse().map_err(|_| ApiError::bad_request("invalid_query", "malformed query string"))?;
    Ok((node, request))
}

/// Runs `request` on `peer` and answers what it answered.
async fn forward(node: &Node, me: &str, peer: &str, request: Request) -> Result<Response, ApiError> {
    let limit = node.lattice_max_payload().unwrap_or(usize::MAX).saturating_sub(FRAMING);
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large_for_lattice",
            format!("this request is for node `{peer}`, and its body is over the {limit} bytes the lattice carries: send it to that node's API"),
        )
    })?;
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let request = PeerRequest {
        method: parts.method.to_string(),
        uri: format!("/api/v1{path}"),
        content_type: parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string),
        body: body.to_vec(),
    };
    tracing::debug!(peer, from = me, uri = request.uri, "forwarding an API request");
    let answer = node.ask_peer_api(peer, request, TIMEOUT).await?;
    Ok(response_of(answer, peer))
}

fn response_of(answer: PeerResponse, answered_by: &str) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = (status, answer.body).into_response();
    let headers = response.headers_mut();
    if let Some(kind) = answer.content_type.and_then(|v| HeaderValue::from_str(&v).ok()) {
        headers.insert(header::CONTENT_TYPE, kind);
    }
    if let Ok(node) = HeaderValue::from_str(answered_by) {
        headers.insert(ANSWERED_BY, node);
    }
    response
}

/// This node's router, run for its peers.
struct RouterForPeers {
    router: Router,
    node: Node,
    token: Arc<str>,
}

impl PeerApi for RouterForPeers {
    fn handle(&self, request: PeerRequest) -> Pin<Box<dyn Future<Output = PeerResponse> + Send>> {
        let (router, token) = (self.router.clone(), self.token.clone());
        let me = self.node.store().identity().node_id.clone();
        let limit = self.node.lattice_max_payload().unwrap_or(usize::MAX).saturating_sub(FRAMING);
        Box::pin(async move {
            let mut builder = axum::http::Request::builder()
                .method(request.method.as_str())
                .uri(request.uri.as_str())
                .header(header::HOST, "localhost")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(FORWARDED_BY, "peer");
            if let Some(kind) = &request.content_type {
                builder = builder.header(header::CONTENT_TYPE, kind.as_str());
            }
            let Ok(http) = builder.body(Body::from(request.body)) else {
                return refusal(StatusCode::BAD_REQUEST, "invalid_request", "a peer forwarded a malformed request");
            };
            let Ok(response) = router.oneshot(http).await;
            let status = response.status().as_u16();
            let content_type =
                response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
            match axum::body::to_bytes(response.into_body(), limit).await {
                Ok(body) => PeerResponse { status, content_type, body: body.to_vec() },
                Err(_) => refusal(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large_for_lattice",
                    &format!(
                        "node `{me}`'s answer is over the {limit} bytes the lattice carries: ask for a smaller page \
                         (limit, value_limit), or ask that node's API directly"
                    ),
                ),
            }
        })
    }
}

fn refusal(status: StatusCode, code: &str, message: &str) -> PeerResponse {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    PeerResponse {
        status: status.as_u16(),
        content_type: Some("application/json".to_string()),
        body: serde_json::to_vec(&body).unwrap_or_default(),
    }
}

/// Serves `app` (this node's router) to the lattice's peers while the
/// returned handle is kept.
pub fn serve_peers(node: &Node, app: &Router, token: &str) -> Arc<dyn PeerApi> {
    let api: Arc<dyn PeerApi> =
        Arc::new(RouterForPeers { router: app.clone(), node: node.clone(), token: token.into() });
    node.serve_peer_api(&api);
    api
}
