//! The handlers of `/api/v1`. Each one is a thin translation between JSON
//! and a [`Node`](pigeon_node::Node) call; the node does the work and its
//! errors become [`ApiError`]s.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use pigeon_node::pigeon_host::rpc::parse_link;
use pigeon_node::pigeon_store::{ActorAddr, Delivery, Envelope, MessageKind, TypeLimits, WasiGrant, now_ms};
use pigeon_node::{Invoke, NodeError};
use serde::Deserialize;
use serde_json::Value;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Path, Query};
use crate::model::*;

/// State entries and dead letters shown by `inspect` (all state: `/state`).
const INSPECT_STATE: usize = 1000;
const INSPECT_DEAD: usize = 100;
/// Bytes of each value and payload `inspect` shows by default.
const INSPECT_VALUE_BYTES: usize = 4096;

/// Default wait for `wait: replied`.
const DEFAULT_TIMEOUT_MS: u64 = 30_000;

/// A JSON body as `T`. The body must be an object (serde would take an
/// array for a struct), and whole numbers written with a fraction (`3.0`)
/// count as integers, as JSON Schema — and so the OpenAPI document — says.
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(
    body: Result<Json<Value>, JsonRejection>,
) -> Result<T, ApiError> {
    let Json(mut value) = body.map_err(|e| match e {
        JsonRejection::BytesRejection(b) => bytes_rejection(b),
        other => ApiError::bad_request("bad_request", format!("invalid JSON body: {}", other.body_text())),
    })?;
    if !value.is_object() {
        return Err(ApiError::bad_request("bad_request", "invalid JSON body: it must be an object (`{...}`)"));
    }
    whole_numbers(&mut value);
    serde_json::from_value(value).map_err(|e| ApiError::bad_request("bad_request", format!("invalid JSON body: {e}")))
}

/// Rewrites `3.0` as `3`, throughout (serde_json bounds the depth at 128).
fn whole_numbers(value: &mut Value) {
    match value {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            let whole = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15);
            if let Some(whole) = whole {
                *value = Value::from(whole as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_numbers),
        Value::Object(fields) => fields.values_mut().for_each(whole_numbers),
        _ => {}
    }
}

fn bytes_rejection(e: BytesRejection) -> ApiError {
    let text = e.body_text();
    if text.contains("length limit") {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "request_too_large", format!("request body too large: {text}"))
    } else {
        ApiError::bad_request("bad_request", format!("cannot read the request body: {text}"))
    }
}

/// An envelope (with no recipient yet) carrying `message`.
fn envelope_of(message: Outgoing) -> Result<Envelope, ApiError> {
    let mut envelope = Envelope::new("", payload_bytes(message.payload, message.payload_base64)?);
    if let Some(priority) = message.priority {
        envelope.priority = priority;
    }
    envelope.headers = message.headers.into_iter().collect();
    Ok(envelope)
}

/// A message for display, with a typed RPC call shown in WAVE and at most
/// `value_limit` bytes of its payload.
fn view_of(s: &AppState, envelope: &Envelope, value_limit: usize) -> MessageView {
    MessageView { call: s.node.describe_call(envelope), ..MessageView::capped(envelope, value_limit) }
}

/// A dead letter for display, like [`view_of`].
fn dead_view_of(s: &AppState, dead: &pigeon_node::pigeon_store::DeadLetter, value_limit: usize) -> DeadLetterView {
    let mut view = DeadLetterView::capped(dead, value_limit);
    view.message.call = s.node.describe_call(&dead.envelope);
    view
}

/// The payload of a request, given as text or as base64.
fn payload_bytes(text: Option<String>, base64: Option<String>) -> Result<Vec<u8>, ApiError> {
    match (text, base64) {
        (Some(text), None) => Ok(text.into_bytes()),
        (None, Some(b64)) => BASE64
            .decode(b64.trim())
            .map_err(|e| ApiError::bad_request("bad_request", format!("`payload_base64` is not valid base64: {e}"))),
        (None, None) => Ok(Vec::new()),
        (Some(_), Some(_)) => Err(ApiError::bad_request("bad_request", "give `payload` or `payload_base64`, not both")),
    }
}

#[utoipa::path(get, path = "/api/v1/health", responses((status = 200, body = Health)))]
pub async fn health(State(s): State<AppState>) -> Json<Health> {
    let storage = s.node.store().storage_status();
    Json(Health {
        status: if storage.healthy() { "ok" } else { "degraded" }.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_ms: s.node.uptime().as_millis() as u64,
        types: s.node.type_names().len(),
        active_actors: s.node.active_actors(),
        host: host_name(),
        lattice: s.node.lattice_status().map(crate::nodes::LatticeInfo::from),
        data_dir: s.node.data_dir().display().to_string(),
        reads_open: s.loopback,
        storage: storage.into(),
    })
}

/// The machine's name, as the kernel knows it.
fn host_name() -> String {
    let name =
        std::fs::read_to_string("/proc/sys/kernel/hostname").or_else(|_| std::fs::read_to_string("/etc/hostname"));
    name.map(|n| n.trim().to_string()).ok().filter(|n| !n.is_empty()).unwrap_or_else(|| "localhost".into())
}

#[utoipa::path(get, path = "/api/v1/types", responses((status = 200, body = Vec<TypeInfo>)))]
pub async fn list_types(State(s): State<AppState>) -> Json<Vec<TypeInfo>> {
    Json(s.node.types().iter().map(|t| TypeInfo::of(t, s.node.operations(&t.name))).collect())
}

/// Deploys the request body (a `.wasm` component) as type `name`.
#[utoipa::path(put, path = "/api/v1/types/{name}", params(("name" = String, Path), DeployParams),
    request_body(content(
        (ComponentBytes = "application/wasm"),
        (ComponentBytes = "application/octet-stream"),
    ), description = "The component (any content type is read as its bytes)"),
    responses((status = 200, body = TypeInfo), (status = 422, body = ErrorBody)))]
pub async fn deploy(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(params): Query<DeployParams>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<TypeInfo>, ApiError> {
    let bytes = body.map_err(bytes_rejection)?;
    let defaults = TypeLimits::default();
    let limits = TypeLimits {
        max_attempts: params.max_attempts.unwrap_or(defaults.max_attempts),
        memory_bytes: params.memory_bytes.unwrap_or(defaults.memory_bytes),
        deadline_ms: params.deadline_ms.unwrap_or(defaults.deadline_ms),
        mailbox_bound: params.mailbox_bound.unwrap_or(defaults.mailbox_bound),
        wasi: WasiGrant { env: env_of(params.env.as_deref())? },
        ..defaults
    };
    let links = params.links.as_deref().unwrap_or_default().split(',').map(str::trim).filter(|l| !l.is_empty());
    let links = links.map(parse_link).collect::<Result<Vec<_>, _>>().map_err(NodeError::from)?;
    let nodes = params
        .nodes
        .as_deref()
        .map(|n| n.split(',').map(str::trim).filter(|n| !n.is_empty()).map(str::to_string).collect::<Vec<_>>());
    // `nodes=` names none: the default placement.
    let nodes = nodes.filter(|n| !n.is_empty());
    let ty = s.node.deploy_on(&name, bytes.to_vec(), limits, links, nodes).await?;
    Ok(Json(TypeInfo::of(&ty, s.node.operations(&name))))
}

/// The `env` parameter of a deploy: a JSON object of strings.
fn env_of(param: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    let Some(text) = param else { return Ok(Vec::new()) };
    let env: std::collections::BTreeMap<String, String> = serde_json::from_str(text).map_err(|e| {
        ApiError::bad_request(
            "invalid_limits",
            format!("`env` must be a JSON object of strings, like {{\"NAME\":\"value\"}}: {e}"),
        )
    })?;
    Ok(env.into_iter().collect())
}

#[utoipa::path(delete, path = "/api/v1/types/{name}", params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody),
        (status = 422, description = "Another type links to this one: undeploy that first", body = ErrorBody)))]
pub async fn undeploy(State(s): State<AppState>, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    s.node.undeploy(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sends a message; with `wait: replied`, waits for the handler's reply.
#[utoipa::path(post, path = "/api/v1/messages", request_body = SendRequest,
    responses((status = 200, body = SendResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 502, description = "`wait: replied`: the handler failed and the message was dead-lettered", body = ErrorBody),
        (status = 504, body = ErrorBody)))]
pub async fn send(
    State(s): State<AppState>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<SendResponse>, ApiError> {
    let request: SendRequest = json_body(body)?;
    let mut invoke = None;
    let mut envelope = match &request.invoke {
        None => envelope_of(request.message)?,
        Some(_) if request.message.payload.is_some() || request.message.payload_base64.is_some() => {
            return Err(ApiError::bad_request("bad_request", "give `invoke` or a payload, not both"));
        }
        Some(call) => {
            let Invoke { mut envelope, operation } = s.node.invocation(&request.to, call)?;
            envelope.priority = request.message.priority.unwrap_or(envelope.priority);
            envelope.headers = request.message.headers.into_iter().collect();
            invoke = Some(operation);
            envelope
        }
    };
    envelope.to = request.to;
    if request.transient {
        envelope.delivery = Delivery::Transient;
    }
    envelope.not_before_ms = request.delay_ms.map(|d| now_ms().saturating_add(d));
    envelope.expires_at_ms = request.ttl_ms.map(|t| now_ms().saturating_add(t));
    envelope.dedup_key = request.dedup_key;
    let id = envelope.id.to_string();
    let timeout = std::time::Duration::from_millis(request.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS));
    match request.wait {
        Wait::Accepted => {
            let sent = s.node.send(envelope).await?;
            Ok(Json(SendResponse { id, duplicate: sent.duplicate, reply: None, result: None }))
        }
        Wait::Delivered => {
            let sent = s.node.send_delivered(envelope, timeout).await?;
            Ok(Json(SendResponse { id, duplicate: sent.duplicate, reply: None, result: None }))
        }
        Wait::Replied => {
            let reply = s.node.request(envelope.with_kind(MessageKind::Call), timeout).await?;
            let result = match &invoke {
                Some(op) => Some(op.results_to_wave(reply.as_deref().unwrap_or_default()).map_err(NodeError::from)?),
                None => None,
            };
            let reply = if invoke.is_some() { None } else { reply.as_deref().map(Body::of) };
            Ok(Json(SendResponse { id, duplicate: false, reply, result }))
        }
    }
}

/// Paging of list endpoints.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Start after this address (or id).
    pub after: Option<String>,
    /// At most this many (default 1000).
    #[param(minimum = 1, maximum = 10_000)]
    pub limit: Option<usize>,
}

impl Page {
    /// The page size asked for, 1 to 10,000 (default 1000).
    fn limit(&self) -> Result<usize, ApiError> {
        page_limit(self.limit)
    }
}

/// A page size: 1 to 10,000, 1000 when not given.
fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit.unwrap_or(1000) {
        limit @ 1..=10_000 => Ok(limit),
        limit => Err(ApiError::bad_request("invalid_query", format!("limit {limit} is not between 1 and 10000"))),
    }
}

#[utoipa::path(get, path = "/api/v1/actors", params(Page), responses((status = 200, body = Vec<ActorInfo>)))]
pub async fn list_actors(
    State(s): State<AppState>,
    Query(page): Query<Page>,
) -> Result<Json<Vec<ActorInfo>>, ApiError> {
    let actors = s.node.store().list_actors(page.after.as_deref(), page.limit()?)?;
    Ok(Json(actors.iter().map(|a| ActorInfo::of(&s.node, a)).collect()))
}

/// What `inspect` shows of an actor's state and bodies.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InspectQuery {
    /// The state page starts after this key.
    pub state_after: Option<String>,
    /// State entries on the page (default 1000; 0 shows none).
    #[param(maximum = 10_000)]
    pub state_limit: Option<usize>,
    /// Show at most this many bytes of each state value and payload
    /// (default 4096; `truncated` marks a cut one).
    #[param(maximum = 2147483647)]
    pub value_limit: Option<u32>,
}

/// Everything about one actor: mailbox, a page of its state, counters,
/// dead letters.
#[utoipa::path(get, path = "/api/v1/actors/{type}/{key}", params(("type" = String, Path), ("key" = String, Path), InspectQuery),
    responses((status = 200, body = ActorDetail), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn inspect(
    State(s): State<AppState>,
    Path(address): Path<String>,
    Query(query): Query<InspectQuery>,
) -> Result<Json<ActorDetail>, ApiError> {
    let addr = ActorAddr::parse(&address).map_err(NodeError::from)?;
    let state_limit = match query.state_limit.unwrap_or(INSPECT_STATE) {
        limit @ 0..=10_000 => limit,
        limit => return Err(ApiError::bad_request("invalid_query", format!("state_limit {limit} is over 10000"))),
    };
    let value_limit = value_limit(query.value_limit, INSPECT_VALUE_BYTES)?;
    let store = s.node.store();
    let summary = store.actor_summary(addr.as_str())?;
    let known = s.node.type_names().iter().any(|t| t == addr.actor_type());
    // One entry more than the page says whether more follow.
    let mut state = store.state_page(addr.as_str(), "", query.state_after.as_deref(), state_limit + 1)?;
    let state_more = state.len() > state_limit;
    state.truncate(state_limit);
    let idle = summary.depths.iter().all(|d| *d == 0) && summary.stats.last_activity_ms == 0;
    if !known && state.is_empty() && !state_more && idle {
        return Err(NodeError::UnknownType(addr.actor_type().to_string()).into());
    }
    let mailbox = store.peek_mailbox(addr.as_str(), 50)?.iter().map(|e| view_of(&s, e, value_limit)).collect();
    let delayed = store.delayed_of(addr.as_str(), 50)?;
    let delayed =
        delayed.iter().map(|(due_ms, e)| DelayedView { due_ms: *due_ms, message: view_of(&s, e, value_limit) });
    let dead_letters = store.dead_letters_of(addr.as_str(), INSPECT_DEAD)?;
    let dead_letters = dead_letters.iter().map(|d| dead_view_of(&s, d, value_limit)).collect();
    Ok(Json(ActorDetail {
        info: ActorInfo::of(&s.node, &summary),
        dropped: s.node.dropped(&address),
        refused: s.node.refused(&address),
        mailbox,
        delayed: delayed.collect(),
        state: state_entries(&state, value_limit),
        state_more,
        dead_letters,
    }))
}

#[utoipa::path(get, path = "/api/v1/dead-letters", params(Page), responses((status = 200, body = Vec<DeadLetterView>)))]
pub async fn list_dead_letters(
    State(s): State<AppState>,
    Query(page): Query<Page>,
) -> Result<Json<Vec<DeadLetterView>>, ApiError> {
    let after: u64 = page.after.as_deref().and_then(|a| a.parse().ok()).unwrap_or(0);
    let dead = s.node.store().dead_letters_after(after, page.limit()?)?;
    Ok(Json(dead.iter().map(|d| dead_view_of(&s, d, usize::MAX)).collect()))
}

/// The node's metrics: OpenMetrics to those who ask for it (Prometheus
/// does), the Prometheus text format (0.0.4) to everyone else.
pub async fn metrics(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let text = s.node.render_metrics()?;
    let accept = headers.get(axum::http::header::ACCEPT).and_then(|v| v.to_str().ok());
    let (content_type, text) = if crate::prometheus_text::wants_openmetrics(accept) {
        ("application/openmetrics-text; version=1.0.0; charset=utf-8", text)
    } else {
        ("text/plain; version=0.0.4; charset=utf-8", crate::prometheus_text::from_openmetrics(&text))
    };
    Ok(([(axum::http::header::CONTENT_TYPE, content_type)], text).into_response())
}

/// Empties an actor's mailbox: its pending messages, its delayed ones
/// (timers, retries in backoff) and transient ones queued in memory. Runs
/// between the actor's turns; answers how many went.
#[utoipa::path(delete, path = "/api/v1/mailboxes/{type}/{key}", params(("type" = String, Path), ("key" = String, Path)),
    responses((status = 200, body = Count), (status = 400, body = ErrorBody), (status = 504, body = ErrorBody)))]
pub async fn purge_mailbox(State(s): State<AppState>, Path(address): Path<String>) -> Result<Json<Count>, ApiError> {
    let count = s.node.clear(&address, pigeon_node::pigeon_store::Clear::Mailbox).await?;
    Ok(Json(Count { count }))
}

/// Deletes every state entry of an actor, between its turns; answers how
/// many went. Its next turn starts from empty state.
#[utoipa::path(delete, path = "/api/v1/state/{type}/{key}", params(("type" = String, Path), ("key" = String, Path)),
    responses((status = 200, body = Count), (status = 400, body = ErrorBody), (status = 504, body = ErrorBody)))]
pub async fn delete_state(State(s): State<AppState>, Path(address): Path<String>) -> Result<Json<Count>, ApiError> {
    let count = s.node.clear(&address, pigeon_node::pigeon_store::Clear::State).await?;
    Ok(Json(Count { count }))
}

/// Cancels a delayed message (a timer, a send with a delay, a retry in
/// backoff): it is never delivered.
#[utoipa::path(delete, path = "/api/v1/delayed/{id}", params(("id" = String, Path, description = "The message id (a ULID)")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn cancel_delayed(State(s): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let ulid = id.parse::<pigeon_node::pigeon_store::ulid::Ulid>().map_err(|_| {
        ApiError::bad_request("invalid_id", format!("`{id}` is not a message id (a 26-character ULID)"))
    })?;
    if !s.node.store().cancel_delayed(ulid).await? {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_delayed",
            format!(
                "no delayed message {id}: it was delivered or cancelled already (`pigeon inspect ADDR` lists the pending ones)"
            ),
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Puts dead letters back into their mailboxes (`ids`, or all when
/// absent). Ids already gone are skipped and listed in `missing`.
#[utoipa::path(post, path = "/api/v1/dead-letters/replay", request_body = DeadLetterSelection,
    responses((status = 200, body = DeadLettersHandled), (status = 400, body = ErrorBody)))]
pub async fn replay(
    State(s): State<AppState>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<DeadLettersHandled>, ApiError> {
    let selection: DeadLetterSelection = json_body(body)?;
    let ids = selection.ids().map_err(|e| ApiError::bad_request("bad_request", e))?;
    Ok(Json(s.node.store().replay_dead_letters(ids).await?.into()))
}

/// Deletes dead letters (`ids`, or all when absent). Ids already gone are
/// skipped and listed in `missing`.
#[utoipa::path(post, path = "/api/v1/dead-letters/purge", request_body = DeadLetterSelection,
    responses((status = 200, body = DeadLettersHandled), (status = 400, body = ErrorBody)))]
pub async fn purge(
    State(s): State<AppState>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<DeadLettersHandled>, ApiError> {
    let selection: DeadLetterSelection = json_body(body)?;
    let ids = selection.ids().map_err(|e| ApiError::bad_request("bad_request", e))?;
    Ok(Json(s.node.store().purge_dead_letters(ids).await?.into()))
}

/// Which state entries.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StateQuery {
    /// Only keys starting with this.
    pub prefix: Option<String>,
    /// Start after this key (the last key of the previous page).
    pub after: Option<String>,
    /// At most this many entries (default 1000). A page this long may have
    /// more after it.
    #[param(minimum = 1, maximum = 10_000)]
    pub limit: Option<usize>,
    /// Show at most this many bytes of each value (`truncated` marks a cut one).
    #[param(maximum = 2147483647)]
    pub value_limit: Option<u32>,
}

/// A page of an actor's state entries, in key order (optionally those
/// under a prefix).
#[utoipa::path(get, path = "/api/v1/state/{type}/{key}", params(("type" = String, Path), ("key" = String, Path), StateQuery),
    responses((status = 200, body = Vec<StateEntry>), (status = 400, body = ErrorBody)))]
pub async fn state(
    State(s): State<AppState>,
    Path(address): Path<String>,
    Query(query): Query<StateQuery>,
) -> Result<Json<Vec<StateEntry>>, ApiError> {
    let addr = ActorAddr::parse(&address).map_err(NodeError::from)?;
    let limit = page_limit(query.limit)?;
    let prefix = query.prefix.as_deref().unwrap_or("");
    let entries = s.node.store().state_page(addr.as_str(), prefix, query.after.as_deref(), limit)?;
    Ok(Json(state_entries(&entries, value_limit(query.value_limit, usize::MAX)?)))
}

/// State entries for display, each value cut at `value_limit` bytes.
fn state_entries(entries: &[(String, Vec<u8>)], value_limit: usize) -> Vec<StateEntry> {
    entries.iter().map(|(k, v)| StateEntry { key: k.clone(), value: Body::capped(v, value_limit) }).collect()
}

/// Every subscription, by topic; in a lattice, those of every node that
/// answers. The nodes that did not are named in the `Pigeon-Unreachable`
/// header (comma-separated), absent when all answered.
#[utoipa::path(get, path = "/api/v1/topics", responses((status = 200, body = Vec<Subscription>,
    headers(("Pigeon-Unreachable" = String, description = "nodes whose subscriptions are missing")))))]
pub async fn list_subscriptions(State(s): State<AppState>) -> Result<Response, ApiError> {
    let (subs, unreachable) = s.node.subscriptions().await?;
    let list: Vec<Subscription> =
        subs.into_iter().map(|(topic, subscriber, filter)| Subscription { topic, subscriber, filter }).collect();
    let mut response = Json(list).into_response();
    if let Ok(value) = axum::http::HeaderValue::from_str(&unreachable.join(","))
        && !unreachable.is_empty()
    {
        response.headers_mut().insert(UNREACHABLE, value);
    }
    Ok(response)
}

/// Subscribes an actor to a topic (the path's topic wins over the body's).
#[utoipa::path(post, path = "/api/v1/topics/{topic}/subscriptions", params(("topic" = String, Path)),
    request_body = Subscription, responses((status = 204), (status = 400, body = ErrorBody)))]
pub async fn subscribe(
    State(s): State<AppState>,
    Path(topic): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let sub: Subscription = json_body(body)?;
    s.node.subscribe(&topic, &sub.subscriber, &sub.filter).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends a subscription.
#[utoipa::path(delete, path = "/api/v1/topics/{topic}/subscriptions/{type}/{key}",
    params(("topic" = String, Path), ("type" = String, Path), ("key" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn unsubscribe(
    State(s): State<AppState>,
    Path((topic, subscriber)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    if s.node.unsubscribe(&topic, &subscriber).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_subscription",
            format!("`{subscriber}` is not subscribed to `{topic}`: list subscriptions with `pigeon topics`"),
        ))
    }
}

/// Publishes: a copy to every subscriber on this node whose filter
/// matches, and in a lattice a relay to every other node for its own
/// subscribers, in one transaction. Answers what it reached.
#[utoipa::path(post, path = "/api/v1/topics/{topic}/messages", params(("topic" = String, Path)),
    request_body = Outgoing, responses((status = 200, body = Published), (status = 400, body = ErrorBody),
    (status = 413, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn publish(
    State(s): State<AppState>,
    Path(topic): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Published>, ApiError> {
    let envelope = envelope_of(json_body::<Outgoing>(body)?)?;
    let published = s.node.publish(&topic, envelope).await?;
    Ok(Json(Published { count: published.copies, relayed_to: published.relayed_to }))
}

/// The `value_limit` query parameter (bytes shown of each value), as the
/// document bounds it.
fn value_limit(asked: Option<u32>, default: usize) -> Result<usize, ApiError> {
    match asked {
        None => Ok(default),
        Some(v) if v <= i32::MAX as u32 => Ok(v as usize),
        Some(v) => Err(ApiError::bad_request("invalid_query", format!("value_limit {v} is over 2147483647 bytes"))),
    }
}
