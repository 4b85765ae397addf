//! The JSON shapes of the API, shared by the server and (through the same
//! field names) the CLI. Payloads travel as text when they are UTF-8 and as
//! base64 otherwise.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use pigeon_node::pigeon_store::{ActorSummary, ActorType, DeadLetter, DeadReason, Delivery, Envelope, MessageKind};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A body: `text` when it is UTF-8, `base64` otherwise.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct Body {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
    /// Size in bytes (of the whole body, also when `truncated`).
    pub size: usize,
    /// Only the first bytes are shown (`value_limit`); `size` says how many
    /// there are in all.
    #[serde(default)]
    pub truncated: bool,
}

impl Body {
    pub fn of(bytes: &[u8]) -> Self {
        Self::capped(bytes, usize::MAX)
    }

    /// The body, showing at most its first `limit` bytes (text is cut at a
    /// character boundary).
    pub fn capped(bytes: &[u8], limit: usize) -> Self {
        let (head, truncated) = if bytes.len() > limit { (&bytes[..limit], true) } else { (bytes, false) };
        let text = match std::str::from_utf8(head) {
            Ok(text) => Some(text),
            // Text cut inside a character: show it up to that character.
            Err(e) if truncated && e.error_len().is_none() => std::str::from_utf8(&head[..e.valid_up_to()]).ok(),
            Err(_) => None,
        };
        match text {
            Some(text) => Self { text: Some(text.to_string()), base64: None, size: bytes.len(), truncated },
            None => Self { text: None, base64: Some(BASE64.encode(head)), size: bytes.len(), truncated },
        }
    }
}

/// Node health.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` while the store refuses persistent work (see
    /// `storage`).
    pub status: String,
    pub version: String,
    pub uptime_ms: u64,
    pub types: usize,
    pub active_actors: usize,
    /// The machine the node runs on.
    #[serde(default)]
    pub host: String,
    /// Where its store lives.
    #[serde(default)]
    pub data_dir: String,
    /// Reads work without the token (the node listens on loopback only).
    #[serde(default)]
    pub reads_open: bool,
    /// The disk under the store.
    #[serde(default)]
    pub storage: StorageHealth,
    /// The lattice the node is in; absent when it is on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lattice: Option<crate::nodes::LatticeInfo>,
}

/// The disk under the store: `alarm` while free space is below the limit,
/// `failure` while the store cannot write after an I/O error.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct StorageHealth {
    pub free_bytes: u64,
    pub free_limit_bytes: u64,
    pub alarm: bool,
    pub failure: Option<String>,
    pub io_errors: u64,
    /// What is wrong and what to do, when something is.
    pub problem: Option<String>,
}

impl From<pigeon_node::pigeon_store::StorageStatus> for StorageHealth {
    fn from(s: pigeon_node::pigeon_store::StorageStatus) -> Self {
        let problem = if let Some(failure) = &s.failure {
            Some(format!("the store cannot write ({failure}); it is reopening and retrying"))
        } else if s.alarm {
            Some(format!(
                "the disk holding {} has {} bytes free, below the limit of {}: persistent messages are refused \
                 until space is freed",
                s.dir, s.free_bytes, s.free_limit_bytes
            ))
        } else {
            None
        };
        Self {
            free_bytes: s.free_bytes,
            free_limit_bytes: s.free_limit_bytes,
            alarm: s.alarm,
            failure: s.failure,
            io_errors: s.io_errors,
            problem,
        }
    }
}

/// A deployed actor type.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TypeInfo {
    pub name: String,
    /// SHA-256 of the component (hex).
    pub version: String,
    pub size: u64,
    pub max_attempts: u32,
    pub memory_bytes: u64,
    pub deadline_ms: u64,
    pub mailbox_bound: u64,
    /// The names of the environment variables granted (not their values,
    /// which may be secrets).
    #[serde(default)]
    pub env: Vec<String>,
    pub deployed_at_ms: u64,
    /// Functions it exports for typed RPC.
    #[serde(default)]
    pub operations: Vec<OperationInfo>,
    /// Where its imported interfaces lead: `acme:bank/account=account/main`.
    #[serde(default)]
    pub links: Vec<String>,
}

/// An exported function, callable by typed RPC.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OperationInfo {
    /// `acme:bank/account@0.1.0`.
    pub interface: String,
    /// `deposit`.
    pub function: String,
    /// `func(amount: u64) -> u64`.
    pub signature: String,
}

impl TypeInfo {
    /// The type with its operations (when it is loaded on this node).
    pub fn of(t: &ActorType, operations: Option<Vec<pigeon_node::pigeon_host::Operation>>) -> Self {
        let operations = operations
            .unwrap_or_default()
            .into_iter()
            .map(|o| OperationInfo { interface: o.interface, function: o.function, signature: o.signature })
            .collect();
        Self { operations, ..Self::from(t) }
    }
}

impl From<&ActorType> for TypeInfo {
    fn from(t: &ActorType) -> Self {
        Self {
            operations: Vec::new(),
            links: pigeon_node::link_texts(&t.links),
            name: t.name.clone(),
            version: t.component_hash.clone(),
            size: t.component_size,
            max_attempts: t.limits.max_attempts,
            memory_bytes: t.limits.memory_bytes,
            deadline_ms: t.limits.deadline_ms,
            mailbox_bound: t.limits.mailbox_bound,
            env: t.limits.wasi.env.iter().map(|(name, _)| name.clone()).collect(),
            deployed_at_ms: t.deployed_at_ms,
        }
    }
}

/// A component's bytes, as a deploy uploads them.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct ComponentBytes(pub Vec<u8>);

/// Limits given at deploy time (query parameters); unset ones keep the defaults.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeployParams {
    #[param(minimum = 1)]
    pub max_attempts: Option<u32>,
    /// At most the node's `--max-memory` (256 MiB unless started otherwise).
    #[param(minimum = 1)]
    pub memory_bytes: Option<u64>,
    #[param(minimum = 1)]
    pub deadline_ms: Option<u64>,
    #[param(minimum = 1)]
    pub mailbox_bound: Option<u64>,
    /// Links for the interfaces the component imports from other actors,
    /// comma-separated: `acme:bank/account=account,acme:shop/stock=stock/main`.
    pub links: Option<String>,
    /// Environment variables the guest sees (WASI), as a JSON object of
    /// strings: `{"GREETING":"hello"}`. None by default.
    pub env: Option<String>,
    /// In a lattice: the ids of the nodes its actors live on,
    /// comma-separated (default: this node and every peer that is up).
    pub nodes: Option<String>,
}

/// Where a send unblocks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Wait {
    /// Once stored (persistent) or queued (transient).
    #[default]
    Accepted,
    /// Once the receiver's turn for it has started.
    Delivered,
    /// Once the handler's reply is committed.
    Replied,
}

/// The content of a message: what a send and a publish share.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct Outgoing {
    /// The payload as text...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// ...or as base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_base64: Option<String>,
    /// 0 (lowest) to 9 (highest); default 4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(maximum = 9)]
    pub priority: Option<u8>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

/// A message to send.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct SendRequest {
    /// `type/key`.
    pub to: String,
    #[serde(flatten)]
    pub message: Outgoing,
    /// A typed RPC call in WAVE instead of a payload:
    /// `acme:bank/account.deposit(100)` (the interface may be shortened to
    /// `account`, or left out when the function name is unique).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoke: Option<String>,
    /// In memory only.
    #[serde(default)]
    pub transient: bool,
    /// Deliver no earlier than this many milliseconds from now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Dead-letter it (reason `expired`) if not handled within this many
    /// milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
    /// A second message with this key to the same actor within the
    /// retention window is acknowledged but not delivered again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup_key: Option<String>,
    #[serde(default)]
    pub wait: Wait,
    /// With `wait: delivered` or `replied`: how long to wait (default 30 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// What a send produced.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SendResponse {
    pub id: String,
    /// The dedup key was already seen: acknowledged, not delivered again.
    #[serde(default)]
    pub duplicate: bool,
    /// With `wait: replied`: the handler's reply, if it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<Body>,
    /// With `invoke` and `wait: replied`: the function's results in WAVE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
}

/// A message as shown by inspect and the dead-letter list.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MessageView {
    pub id: String,
    pub from: Option<String>,
    pub to: String,
    pub kind: String,
    pub priority: u8,
    pub delivery: String,
    pub headers: BTreeMap<String, String>,
    pub payload: Body,
    pub failures: u32,
    pub last_error: Option<String>,
    /// For a typed RPC call: the call in WAVE (`acme:bank/account.deposit(100)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,
}

impl From<&Envelope> for MessageView {
    fn from(e: &Envelope) -> Self {
        Self::capped(e, usize::MAX)
    }
}

impl MessageView {
    /// The message, showing at most `value_limit` bytes of its payload.
    pub fn capped(e: &Envelope, value_limit: usize) -> Self {
        Self {
            id: e.id.to_string(),
            from: e.from.clone(),
            to: e.to.clone(),
            kind: match e.kind {
                MessageKind::Send => "send",
                MessageKind::Call => "call",
                MessageKind::Reply => "reply",
                MessageKind::Publish | MessageKind::Relay => "publish",
            }
            .into(),
            priority: e.priority,
            delivery: match e.delivery {
                Delivery::Persistent => "persistent",
                Delivery::Transient => "transient",
            }
            .into(),
            headers: e.headers.iter().cloned().collect(),
            payload: Body::capped(&e.payload, value_limit),
            failures: e.failures,
            last_error: e.last_error.clone(),
            call: None,
        }
    }
}

/// One actor in the list.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ActorInfo {
    pub address: String,
    /// Pending messages by priority (index = priority).
    pub depths: Vec<u64>,
    pub pending: u64,
    pub processed: u64,
    pub failed: u64,
    pub dead_lettered: u64,
    pub last_error: Option<String>,
    pub last_activity_ms: u64,
    /// The message whose turn is running now (it stays in the mailbox
    /// until the turn commits).
    #[serde(default)]
    pub in_flight: Option<String>,
}

impl ActorInfo {
    /// An actor's row as the node sees it now: the store's counters and
    /// the turn it is running.
    pub fn of(node: &pigeon_node::Node, summary: &ActorSummary) -> Self {
        let in_flight = node.in_flight(&summary.address).map(|id| id.to_string());
        Self { in_flight, ..Self::from(summary) }
    }
}

impl From<&ActorSummary> for ActorInfo {
    fn from(a: &ActorSummary) -> Self {
        Self {
            address: a.address.clone(),
            depths: a.depths.to_vec(),
            pending: a.depths.iter().sum(),
            processed: a.stats.processed,
            failed: a.stats.failed,
            dead_lettered: a.stats.dead_lettered,
            last_error: a.stats.last_error.clone(),
            last_activity_ms: a.stats.last_activity_ms,
            in_flight: None,
        }
    }
}

/// One state entry.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StateEntry {
    pub key: String,
    pub value: Body,
}

/// Everything about one actor.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ActorDetail {
    #[serde(flatten)]
    pub info: ActorInfo,
    /// Transient messages dropped since the node started.
    pub dropped: u64,
    /// Persistent sends refused with `mailbox-full` since the node started.
    pub refused: u64,
    /// The next messages, in delivery order.
    pub mailbox: Vec<MessageView>,
    /// Messages held back until a time: timers, sends with a delay, retries
    /// in backoff; soonest first (the first 50). Cancel one with
    /// `DELETE /api/v1/delayed/{id}`.
    #[serde(default)]
    pub delayed: Vec<DelayedView>,
    /// A page of the state (`state_after`, `state_limit`).
    pub state: Vec<StateEntry>,
    /// More state keys follow this page: ask again with `state_after` set
    /// to the last key shown.
    #[serde(default)]
    pub state_more: bool,
    /// This actor's dead letters.
    pub dead_letters: Vec<DeadLetterView>,
}

/// A delayed message and when it is due.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DelayedView {
    /// When it goes into the mailbox, in ms since the Unix epoch.
    pub due_ms: u64,
    pub message: MessageView,
}

/// A dead letter.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeadLetterView {
    pub id: u64,
    /// `failed` (out of attempts), `expired` (its time to live ran out),
    /// `rejected` (it can never be handled) or `crashed` (the node died
    /// while handling it, more than once: quarantined).
    pub reason: String,
    pub error: String,
    pub at_ms: u64,
    pub message: MessageView,
}

impl From<&DeadLetter> for DeadLetterView {
    fn from(d: &DeadLetter) -> Self {
        Self::capped(d, usize::MAX)
    }
}

impl DeadLetterView {
    /// The dead letter, showing at most `value_limit` bytes of its payload.
    pub fn capped(d: &DeadLetter, value_limit: usize) -> Self {
        Self {
            id: d.id,
            reason: match d.reason {
                DeadReason::Failed => "failed",
                DeadReason::Expired => "expired",
                DeadReason::Rejected => "rejected",
                DeadReason::Crashed => "crashed",
            }
            .into(),
            error: d.error.clone(),
            at_ms: d.at_ms,
            message: MessageView::capped(&d.envelope, value_limit),
        }
    }
}

/// Which dead letters to replay or purge: the listed ids, or all.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct DeadLetterSelection {
    /// Dead-letter ids (whole numbers up to 2^63 - 1).
    #[serde(default)]
    pub ids: Option<Vec<u64>>,
}

impl DeadLetterSelection {
    /// The ids, each within what the document promises (a 64-bit signed
    /// integer, as JSON tools read `int64`).
    pub fn ids(self) -> Result<Option<Vec<u64>>, String> {
        match self.ids.iter().flatten().find(|id| **id > i64::MAX as u64) {
            Some(id) => Err(format!("dead-letter id {id} is out of range (ids are at most {})", i64::MAX)),
            None => Ok(self.ids),
        }
    }
}

/// How many messages an operation moved.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Count {
    pub count: usize,
}

/// The header that names the nodes a lattice-wide listing is missing.
pub const UNREACHABLE: &str = "pigeon-unreachable";

/// What a publication reached, once durable.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Published {
    /// Subscribers on the node that took the publication that received a copy.
    pub count: usize,
    /// In a lattice, the other nodes it was relayed to: each puts a copy
    /// into the mailbox of its own matching subscribers when it arrives.
    #[serde(default)]
    pub relayed_to: Vec<String>,
}

/// What a replay or purge did: how many dead letters it handled, and the
/// ids asked for that named none (already replayed or purged).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeadLettersHandled {
    pub count: usize,
    #[serde(default)]
    pub missing: Vec<u64>,
}

impl From<pigeon_node::pigeon_store::Selected> for DeadLettersHandled {
    fn from(selected: pigeon_node::pigeon_store::Selected) -> Self {
        Self { count: selected.done.len(), missing: selected.missing }
    }
}

/// Every error: a stable code and a message that names the fix.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

/// A subscription of an actor to a topic.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Subscription {
    pub topic: String,
    /// `type/key`.
    pub subscriber: String,
    /// Boolean expression over headers; empty: every message.
    #[serde(default)]
    pub filter: String,
}
