//! The redb tables and the records stored in them.
//!
//! Keys are chosen so that every hot operation is one range read or one point
//! lookup:
//! - `mailbox` is keyed `(actor, 9 - priority, seq)`: an actor's next message
//!   (highest priority, then oldest) is the first entry of its range;
//! - `pending` holds one entry per actor with messages in its mailbox (and
//!   their count per priority), so the scheduler and recovery never scan idle actors or
//!   individual messages;
//! - `delayed` is keyed `(due_ms, seq)`: due messages are a prefix of it. A
//!   delayed message keeps its `seq`, so when it becomes due it takes its
//!   original place in the mailbox;
//! - `state` is keyed `(actor, key)`: `list-keys(prefix)` is a range read.

use redb::TableDefinition;
use serde::{Deserialize, Serialize};

use crate::envelope::Envelope;

pub(crate) const MAILBOX: TableDefinition<(&str, u8, u64), &[u8]> = TableDefinition::new("mailbox");
/// Pending messages of an actor, by priority (index = priority).
pub type Depths = [u64; 10];

/// The priorities of messages that arrived in a mailbox, as a set (bit p:
/// priority p). A reader that holds an actor's next messages uses it to
/// tell whether the arrivals can come before them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Arrivals(u16);

impl Arrivals {
    /// Messages of unknown priorities: whatever is held must be read again.
    pub const ANY: Self = Self((1 << (crate::envelope::MAX_PRIORITY + 1)) - 1);

    /// One message of `priority` (clamped to the highest).
    pub fn of(priority: u8) -> Self {
        Self(1 << priority.min(crate::envelope::MAX_PRIORITY))
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Both sets together.
    #[must_use]
    pub fn with(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether every arrival has a priority of at most `priority`: then each
    /// sorts after a held message of `priority` (same priority: it came
    /// later), and what is held is still the mailbox's head.
    pub fn all_at_most(self, priority: u8) -> bool {
        u32::from(self.0) < 1u32 << (u32::from(priority) + 1)
    }

    /// The set as bits, to keep in an atomic.
    pub fn bits(self) -> u16 {
        self.0
    }

    /// The set from [`Arrivals::bits`] (bits beyond the priorities ignored).
    pub fn from_bits(bits: u16) -> Self {
        Self(bits & Self::ANY.0)
    }
}

pub(crate) const PENDING: TableDefinition<&str, Depths> = TableDefinition::new("pending");
pub(crate) const DELAYED: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("delayed");
pub(crate) const STATE: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("state");
pub(crate) const TYPES: TableDefinition<&str, &[u8]> = TableDefinition::new("types");
pub(crate) const COMPONENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("components");
pub(crate) const DEAD: TableDefinition<u64, &[u8]> = TableDefinition::new("dead_letters");
pub(crate) const REPLIES: TableDefinition<u128, &[u8]> = TableDefinition::new("replies");
pub(crate) const STATS: TableDefinition<&str, &[u8]> = TableDefinition::new("actor_stats");
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Message id → its `(due, seq)` key in `delayed`, for cancelling timers.
pub(crate) const TIMERS: TableDefinition<u128, (u64, u64)> = TableDefinition::new("timers");
/// `(actor, due, seq)` of every delayed message → its id: one actor's
/// timers and retries in backoff, soonest first, without a scan of all.
pub(crate) const DELAYED_BY_ACTOR: TableDefinition<(&str, u64, u64), u128> = TableDefinition::new("delayed_by_actor");
/// `(topic, subscriber)` → the subscription's filter (empty: everything).
pub(crate) const SUBSCRIPTIONS: TableDefinition<(&str, &str), &str> = TableDefinition::new("subscriptions");
/// The subscriptions whose topic is a pattern (`orders.*`), again: a
/// publish reads its topic's exact subscriptions from [`SUBSCRIPTIONS`] and
/// matches only these against it.
pub(crate) const SUBSCRIPTION_PATTERNS: TableDefinition<(&str, &str), &str> =
    TableDefinition::new("subscription_patterns");
/// Message id → `(crashes, last crash ms)`: how often the node died while
/// handling it (see `Store::record_crashes`).
pub(crate) const CRASHES: TableDefinition<u128, (u64, u64)> = TableDefinition::new("crashes");
/// `(actor, dedup key)` → until when a message with that key is a duplicate.
pub(crate) const DEDUP: TableDefinition<(&str, &str), u64> = TableDefinition::new("dedup");

/// The node's identity: [`NODE_ID`] and [`INCARNATION`] → text.
pub(crate) const IDENTITY: TableDefinition<&str, &str> = TableDefinition::new("identity");
/// Type name → its [`crate::Placement`] (absent: owned by this node).
pub(crate) const PLACEMENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("placements");
/// `(peer, seq)` → `[9 - priority][envelope]`: persistent messages for
/// actors another node owns, until that node has committed them.
pub(crate) const OUTBOX: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("outbox");
/// `(peer, 9 - priority, seq)`: the outbox in forwarding order.
pub(crate) const OUTBOX_ORDER: TableDefinition<(&str, u8, u64), ()> = TableDefinition::new("outbox_order");
/// Peer → messages in its outbox.
pub(crate) const OUTBOX_DEPTH: TableDefinition<&str, u64> = TableDefinition::new("outbox_depth");
/// `(source incarnation, seq)` of every message received from a peer and
/// not yet below that peer's watermark: the receiver's dedup, without a
/// time window (see `remote`).
pub(crate) const INBOUND: TableDefinition<(&str, u64), ()> = TableDefinition::new("inbound");
/// Peer node id → the incarnation it had when this node first met it.
pub(crate) const PEERS: TableDefinition<&str, &str> = TableDefinition::new("peers");
/// `(callee, call id)` of every stored reply, and the reverse: the replies
/// that move with an actor (see `handoff`). Replies stored before these
/// tables existed are not in them; they expire with the retention window.
pub(crate) const REPLIES_BY_ACTOR: TableDefinition<(&str, u128), ()> = TableDefinition::new("replies_by_actor");
pub(crate) const REPLY_OWNERS: TableDefinition<u128, &str> = TableDefinition::new("reply_owners");
/// `(actor, placement epoch)` of every handoff this node took in: a second
/// copy of one is acknowledged without being applied (see `handoff`).
pub(crate) const HANDOFFS: TableDefinition<(&str, u64), ()> = TableDefinition::new("handoffs");
/// `(type, placement epoch, node)`: that node of the type's previous node
/// set has handed off every actor it had to move in that epoch, so an
/// actor it did not send had nothing to send.
pub(crate) const HANDOFFS_DONE: TableDefinition<(&str, u64, &str), ()> = TableDefinition::new("handoffs_done");
/// Actor → the node it moved to and the placement epoch of the move.
pub(crate) const MOVED_ACTORS: TableDefinition<&str, (&str, u64)> = TableDefinition::new("moved_actors");
/// Type name → when it was undeployed (ms since the Unix epoch): what keeps
/// a lattice node that was down from bringing an undeployed type back.
pub(crate) const REMOVED_TYPES: TableDefinition<&str, u64> = TableDefinition::new("removed_types");

/// `identity` key of the node's id.
pub(crate) const NODE_ID: &str = "node_id";
/// `identity` key of the incarnation made with the store.
pub(crate) const INCARNATION: &str = "incarnation";

/// `meta` key of the next sequence number to hand out.
pub(crate) const NEXT_SEQ: &str = "next_seq";
/// `meta` key of the commit log's generation: the frames of this
/// generation are what redb's last durable commit does not have (see
/// the store's `log` module). Written by checkpoints only, never logged.
pub(crate) const LOG_GENERATION: &str = "log_generation";

/// The mailbox slot of a priority: higher priorities sort first.
pub(crate) fn slot(priority: u8) -> u8 {
    crate::envelope::MAX_PRIORITY.saturating_sub(priority)
}

/// Where a persistent message sits in its actor's mailbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageKey {
    /// `9 - priority`.
    pub slot: u8,
    /// Arrival order, unique across the store.
    pub seq: u64,
}

impl MessageKey {
    /// The message's priority.
    pub fn priority(self) -> u8 {
        crate::envelope::MAX_PRIORITY.saturating_sub(self.slot)
    }
}

/// Store-wide settings.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// How long a dedup key is remembered, in milliseconds.
    pub dedup_retention_ms: u64,
    /// Below this many free bytes on the data directory's file system,
    /// new persistent work is refused (see `storage`); 0 turns it off.
    pub disk_free_limit: u64,
    /// The node id to use: a new store takes it (default: a generated
    /// one); an existing store must already have it.
    pub node_id: Option<String>,
    /// Messages one peer's outbox holds before sends to that peer are
    /// refused with `outbox-full`.
    pub outbox_bound: u64,
    /// The largest encoded message that may go to another node (the
    /// lattice's NATS `max_payload`, less framing).
    pub remote_message_bytes: usize,
    /// Longest time between checkpoints of the commit log while writes
    /// come: what a restart after a crash replays, at most (see the
    /// store's `log` module).
    pub checkpoint_interval: std::time::Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            dedup_retention_ms: 24 * 60 * 60 * 1000,
            disk_free_limit: 64 << 20,
            node_id: None,
            outbox_bound: 1_000_000,
            remote_message_bytes: usize::MAX,
            checkpoint_interval: crate::log::CHECKPOINT_EVERY,
        }
    }
}

/// What became of an enqueued message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enqueued {
    /// Stored: it will be delivered.
    Stored,
    /// Its dedup key was seen within the retention window: acknowledged,
    /// not stored again.
    Duplicate,
}

/// Limits and policies of an actor type, fixed at deploy time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeLimits {
    /// Failed turns before a message is dead-lettered.
    pub max_attempts: u32,
    /// Linear memory an instance may use, in bytes.
    pub memory_bytes: u64,
    /// Wall-clock budget of one turn, in milliseconds.
    pub deadline_ms: u64,
    /// Pending persistent messages a mailbox accepts before `mailbox-full`.
    pub mailbox_bound: u64,
    /// First retry delay; doubled on every further failure.
    pub backoff_base_ms: u64,
    /// Upper bound of the retry delay.
    pub backoff_max_ms: u64,
    /// Idle time after which an activation is passivated.
    pub idle_ms: u64,
    /// WASI capabilities granted to the type (none by default).
    pub wasi: WasiGrant,
}

impl Default for TypeLimits {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            memory_bytes: 64 << 20,
            deadline_ms: 5_000,
            mailbox_bound: 100_000,
            backoff_base_ms: 100,
            backoff_max_ms: 60_000,
            idle_ms: 30_000,
            wasi: WasiGrant::default(),
        }
    }
}

/// WASI capabilities beyond the always-present, capability-free basics
/// (clocks, random, an empty environment, stdout/stderr to the node log).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WasiGrant {
    /// Environment variables visible to the guest.
    pub env: Vec<(String, String)>,
}

impl WasiGrant {
    /// Most environment variables a type may be granted.
    pub const MAX_ENV_VARS: usize = 64;
    /// Most bytes of one variable's name and value together.
    pub const MAX_ENV_BYTES: usize = 4096;

    /// Checks the environment: names non-empty, without `=` or NUL, each
    /// given once; values without NUL; within the bounds above.
    pub fn validate(&self) -> Result<(), String> {
        if self.env.len() > Self::MAX_ENV_VARS {
            return Err(format!(
                "{} environment variables; at most {} may be granted",
                self.env.len(),
                Self::MAX_ENV_VARS
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (name, value) in &self.env {
            if name.is_empty() || name.contains(['=', '\0']) {
                return Err(format!("environment variable name `{name}` must be non-empty, without `=` or NUL"));
            }
            if value.contains('\0') {
                return Err(format!("environment variable `{name}` holds a NUL byte"));
            }
            if name.len() + value.len() > Self::MAX_ENV_BYTES {
                return Err(format!("environment variable `{name}` is over {} bytes", Self::MAX_ENV_BYTES));
            }
            if !seen.insert(name.as_str()) {
                return Err(format!("environment variable `{name}` is given twice"));
            }
        }
        Ok(())
    }
}

/// A deployed actor type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorType {
    /// The name messages address it by.
    pub name: String,
    /// SHA-256 of the component bytes (hex): its version.
    pub component_hash: String,
    /// Size of the component in bytes.
    pub component_size: u64,
    pub limits: TypeLimits,
    /// When it was deployed (ms since the Unix epoch).
    pub deployed_at_ms: u64,
    /// How its imported RPC interfaces reach other actor types.
    pub links: Vec<Link>,
}

/// A link: the actor type that serves an interface a component imports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// The imported interface, as the component names it
    /// (`acme:bank/account@0.1.0`).
    pub interface: String,
    /// The actor type that exports it.
    pub target_type: String,
    /// The key called when the turn does not choose one
    /// (`main` for a link written `account/main`).
    pub default_key: Option<String>,
}

/// Why a message was dead-lettered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeadReason {
    /// Its turns failed `max-attempts` times.
    Failed,
    /// Its time to live ran out before it was handled.
    Expired,
    /// It can never be handled (an RPC call of a function the actor does
    /// not export, or arguments that do not decode): retrying cannot help.
    Rejected,
    /// The node died while handling it, more than once: it is kept from
    /// killing the node again (quarantined).
    Crashed,
}

/// A message that will not be delivered again unless replayed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Dead-letter id (its sequence number).
    pub id: u64,
    pub reason: DeadReason,
    /// The last error.
    pub error: String,
    /// When it was dead-lettered (ms since the Unix epoch).
    pub at_ms: u64,
    pub envelope: Envelope,
}

/// Counters kept per actor, updated in the same transaction as its turns.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorStats {
    /// Turns committed.
    pub processed: u64,
    /// Turns that failed (each retry counts).
    pub failed: u64,
    /// Messages sent to the dead-letter queue.
    pub dead_lettered: u64,
    /// The latest failure's error.
    pub last_error: Option<String>,
    /// Last turn, successful or not (ms since the Unix epoch).
    pub last_activity_ms: u64,
}

/// Counts over the whole store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreTotals {
    /// Actors that ran at least one turn.
    pub actors: u64,
    /// Actors with pending messages.
    pub pending_actors: u64,
    /// Pending messages by priority (index = priority).
    pub queued: Depths,
    /// Messages waiting for their time: delayed sends, retries in backoff.
    pub delayed: u64,
    pub dead_letters: u64,
}

/// What the store knows of one actor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActorSummary {
    /// `type/key`.
    pub address: String,
    /// Pending messages by priority (index = priority).
    pub depths: Depths,
    pub stats: ActorStats,
}

impl ActorSummary {
    pub(crate) fn named(address: String) -> Self {
        Self { address, ..Self::default() }
    }
}

/// Creates every table, so readers never meet a missing one.
pub(crate) fn create_tables(db: &redb::Database) -> Result<(), crate::StoreError> {
    let txn = db.begin_write()?;
    txn.open_table(MAILBOX)?;
    txn.open_table(PENDING)?;
    txn.open_table(DELAYED)?;
    txn.open_table(STATE)?;
    txn.open_table(TYPES)?;
    txn.open_table(COMPONENTS)?;
    txn.open_table(DEAD)?;
    txn.open_table(REPLIES)?;
    txn.open_table(STATS)?;
    txn.open_table(META)?;
    txn.open_table(DEDUP)?;
    txn.open_table(SUBSCRIPTIONS)?;
    txn.open_table(SUBSCRIPTION_PATTERNS)?;
    txn.open_table(TIMERS)?;
    txn.open_table(CRASHES)?;
    txn.open_table(IDENTITY)?;
    txn.open_table(PLACEMENTS)?;
    txn.open_table(OUTBOX)?;
    txn.open_table(OUTBOX_ORDER)?;
    txn.open_table(OUTBOX_DEPTH)?;
    txn.open_table(INBOUND)?;
    txn.open_table(PEERS)?;
    txn.open_table(REMOVED_TYPES)?;
    txn.open_table(HANDOFFS)?;
    txn.open_table(REPLIES_BY_ACTOR)?;
    txn.open_table(REPLY_OWNERS)?;
    txn.open_table(MOVED_ACTORS)?;
    index_delayed(&txn)?;
    txn.commit()?;
    Ok(())
}

/// Fills the per-actor index of delayed messages in a store made before it
/// existed (it is empty then while delayed messages are not), and registers
/// every delayed message's id, retries included, for `cancel_delayed`.
fn index_delayed(txn: &redb::WriteTransaction) -> Result<(), crate::StoreError> {
    use redb::{ReadableTable, ReadableTableMetadata};
    let mut index = txn.open_table(DELAYED_BY_ACTOR)?;
    let delayed = txn.open_table(DELAYED)?;
    if !index.is_empty()? || delayed.is_empty()? {
        return Ok(());
    }
    let mut timers = txn.open_table(TIMERS)?;
    for entry in delayed.iter()? {
        let (key, value) = entry?;
        let (due, seq) = key.value();
        let env = Envelope::decode(value.value(), "delayed")?;
        index.insert((env.to.as_str(), due, seq), env.id.0)?;
        timers.insert(env.id.0, (due, seq))?;
    }
    Ok(())
}
