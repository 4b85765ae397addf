//! Errors of the store layer.

use thiserror::Error;

/// A malformed actor address.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AddressError {
    /// No `/` between type and key.
    #[error("invalid address `{0}`: no `/` between type and key (expected `type/key`, e.g. `counter/alice`)")]
    MissingSlash(String),
    /// The type part is not a valid type name.
    #[error("invalid address `{address}`: {reason}")]
    BadType { address: String, reason: String },
    /// Nothing after the `/`.
    #[error("invalid address `{0}`: the key after `/` is empty (expected `type/key`)")]
    EmptyKey(String),
    /// The key contains whitespace or a control character.
    #[error(
        "invalid address `{address}`: the key contains {found:?} (whitespace and control characters are not allowed)"
    )]
    BadKeyChar { address: String, found: char },
    /// Longer than [`crate::MAX_ADDRESS_LEN`].
    #[error("invalid address: {len} bytes long (at most {max})")]
    TooLong { len: usize, max: usize },
}

/// Why the store refused or failed an operation.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database file could not be opened or created.
    #[error("cannot open the store at {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: Box<redb::DatabaseError>,
    },
    /// Another process (or node) has the store open.
    #[error("the data directory {0} is in use by another Pigeon node: stop it, or use another directory")]
    InUse(String),
    /// The store's data directory could not be prepared.
    #[error("cannot use the data directory {path}: {source} (check that it exists and is writable)")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// redb failed underneath (I/O, corruption, full disk).
    #[error("storage failure: {0}")]
    Storage(String),
    /// A stored record could not be decoded (corruption or a newer format).
    #[error("corrupt record in table `{table}`: {reason}")]
    Corrupt { table: &'static str, reason: String },
    /// The message is addressed to a type that is not deployed.
    #[error("unknown actor type `{0}`: deploy it first (`pigeon deploy FILE.wasm --name {0}`)")]
    UnknownType(String),
    /// The receiver's mailbox is at its bound.
    #[error("mailbox of `{actor}` is full ({bound} pending messages): retry later or raise the type's mailbox bound")]
    MailboxFull { actor: String, bound: u64 },
    /// A turn tried to commit for a message that is no longer in the mailbox.
    #[error("message {id} is no longer in the mailbox of `{actor}` (purged while its turn ran): the turn is discarded")]
    MessageGone { actor: String, id: String },
    /// A turn built on effects of a commit that was refused or failed
    /// (see [`crate::commit::TurnCommit::depends_on`]): it is discarded and
    /// its message handled again.
    #[error(
        "a turn of `{actor}` built on a commit that did not happen: the turn is discarded and its message handled again"
    )]
    DependencyLost { actor: String },
    /// A call's reply is already stored: another delivery of the same call
    /// was handled first.
    #[error("call {id} to `{actor}` was already answered: this second handling is discarded")]
    AlreadyAnswered { actor: String, id: String },
    /// The actor's owner is another node now (its placement changed while
    /// the turn ran): the turn is discarded, its message moves with it.
    #[error("`{actor}` is owned by node `{owner}` now: this node's turn is discarded, its message moves there")]
    ActorElsewhere { actor: String, owner: String },
    /// The actor's state is still on its previous owner (a handoff is under
    /// way): its messages wait here until it arrives.
    #[error("`{actor}` is still being handed off from node `{from}`: its turn waits until its state is here")]
    ActorHeld { actor: String, from: String },
    /// No dead letter with that id.
    #[error("no dead letter with id {0}: list them with `pigeon dlq ls`")]
    UnknownDeadLetter(String),
    /// A malformed topic name or pattern.
    #[error(
        "invalid topic `{topic}`: {why} (topics are tokens separated by `.`, e.g. `orders.eu`; subscriptions may use `*` and `>`)"
    )]
    BadTopic { topic: String, why: String },
    /// A subscription filter that does not parse.
    #[error(transparent)]
    Filter(#[from] crate::filter::FilterError),
    /// The disk is below its free-space limit: new persistent work waits
    /// for room.
    #[error(
        "the disk holding {dir} has {free} bytes free, below the node's limit of {limit}: persistent messages are \
         refused until there is room (free disk space, or lower `pigeon up --disk-free-limit`); transient \
         messages and reads still work"
    )]
    StorageFull { dir: String, free: u64, limit: u64 },
    /// The batch holding this request failed to reach the disk: nothing of
    /// it was stored.
    #[error(
        "the store in {dir} could not write this request ({reason}; {free} bytes free): nothing of it was stored, \
         retry it (if the disk is full, free space first)"
    )]
    WriteFailed { dir: String, free: u64, reason: String },
    /// The database is being reopened after an I/O error.
    #[error(
        "the store at {0} is being reopened after an I/O error (see the node's log and `/health`): retry shortly; \
         nothing acknowledged was lost"
    )]
    Unavailable(String),
    /// The node id asked for does not fit this store (or is malformed).
    #[error("{0}")]
    Identity(String),
    /// A message too large to travel between nodes.
    #[error(
        "the message to `{actor}` is {size} bytes encoded, over the {limit} bytes a message between nodes may have: \
         send less, or raise NATS's max_payload and start the nodes with a larger `pigeon up --nats-max-payload`"
    )]
    TooLargeForLattice { actor: String, size: usize, limit: usize },
    /// The outbox towards a peer is at its bound (the peer is down or slow).
    #[error(
        "the outbox towards node `{peer}` holds {bound} messages, its bound: that node is down or not keeping up; \
         retry later (see `pigeon nodes`)"
    )]
    OutboxFull { peer: String, bound: u64 },
    /// The group committer has stopped (the store is closing).
    #[error("the store is shutting down")]
    Closed,
}

macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Storage(e.to_string())
            }
        }
    )*};
}

storage_from!(redb::Error, redb::StorageError, redb::TransactionError, redb::TableError, redb::CommitError);
