//! What the committer is asked to do, and what it answers.

use crate::envelope::Envelope;

use super::{InboundBatch, InboundOutcome, TurnCommit, TurnFailure};

pub(crate) enum Request {
    Enqueue(Envelope),
    Commit(TurnCommit),
    Fail(TurnFailure),
    Promote {
        now_ms: u64,
    },
    /// Dead letters back into their mailboxes (all when `None`).
    Replay(Option<Vec<u64>>),
    /// Make the next commit a checkpoint of the commit log.
    Checkpoint,
    /// Forget dedup keys and call replies older than the retention window.
    Sweep {
        now_ms: u64,
    },
    /// Dead letters deleted (all when `None`).
    Purge(Option<Vec<u64>>),
    /// `subscriber` receives copies of `topic`'s messages that pass `filter`.
    Subscribe {
        topic: String,
        subscriber: String,
        filter: String,
    },
    Unsubscribe {
        topic: String,
        subscriber: String,
    },
    /// A copy of `envelope` to every subscriber of `topic` whose filter matches.
    Publish {
        topic: String,
        envelope: Envelope,
    },
    /// The node died while these messages' turns ran: one more crash each.
    Crashed(Vec<ulid::Ulid>),
    /// An operator cancels a delayed message.
    CancelDelayed(ulid::Ulid),
    /// An operator empties an actor's mailbox, or deletes its state.
    Clear {
        actor: String,
        what: Clear,
    },
    /// Messages a peer forwarded (see the store's `remote` module).
    Inbound(InboundBatch),
    /// `peer` acknowledged these outbox entries.
    Forwarded {
        peer: String,
        seqs: Vec<u64>,
    },
    /// An actor handed off to this node (see the store's `handoff` module).
    AcceptHandoff {
        rows: Box<crate::handoff::ActorRows>,
        epoch: u64,
    },
    /// An actor that moved to node `to`: this node's copy goes.
    ReleaseActor {
        actor: String,
        to: String,
        epoch: u64,
    },
    /// A type's placement is now this (see the store's `placement` module).
    PutPlacement {
        name: String,
        placement: crate::placement::Placement,
    },
    /// Node `from` has handed off every actor of `name` it had to move in
    /// placement `epoch`.
    HandoffsDone {
        name: String,
        epoch: u64,
        from: String,
    },
}

/// What [`crate::Store::clear`] removes of an actor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clear {
    /// Its mailbox and delayed messages (timers, retries in backoff).
    Mailbox,
    /// Every state entry.
    State,
}

/// What a replay or purge of selected dead letters did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Selected {
    /// The dead letters replayed or purged, in id order.
    pub done: Vec<u64>,
    /// The ids asked for that named no dead letter (already gone).
    pub missing: Vec<u64>,
}

/// What a request produced.
#[derive(Debug)]
pub(crate) enum Reply {
    Done,
    /// An enqueue whose dedup key was already seen.
    Duplicate,
    /// How many messages a promotion, replay or purge moved.
    Moved(usize),
    /// The dead letters a replay or purge found (and handled).
    DeadLetters(Vec<u64>),
    /// What became of each message of an inbound batch.
    Inbound(Vec<InboundOutcome>),
    /// What a publication reached.
    Published(Published),
    /// What became of a handoff.
    Handoff(crate::handoff::HandoffOutcome),
}

/// What a publication reached, once durable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    /// Subscribers on this node that received a copy.
    pub copies: usize,
    /// The nodes it was relayed to, each to copy it to its own subscribers
    /// when it arrives there.
    pub relayed_to: Vec<String>,
}
