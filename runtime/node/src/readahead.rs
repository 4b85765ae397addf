//! The head of a live actor's persistent mailbox, read a few messages at a
//! time.
//!
//! Reading the mailbox costs a store read transaction; reading one message
//! per turn made that a large share of a turn's cost. A live actor
//! therefore holds up to [`READ_AHEAD`] messages from its mailbox's head
//! and works through them, reading again only when what it holds may no
//! longer be the head:
//! - a message arrived with a higher priority than the last one held (it
//!   may sort before them): read again at once. An arrival of the same or
//!   a lower priority sorts after everything held (it came later), so the
//!   held messages stay valid and the mailbox is read again once they are
//!   done;
//! - the store did not record the outcome of a turn on a held message (a
//!   failed commit): forget everything and read again.
//!
//! Held messages stay in the store until their turn commits: holding them
//! is a cache, never a hand-over. Only the actor's own turns take messages
//! from its mailbox, so nothing else can make a held message stale. A taken
//! message whose turn's commit is still on its way is *in flight*: it is
//! still in the store, and a fresh read skips it.

use std::collections::VecDeque;

use pigeon_store::{Envelope, MessageKey, Store, StoreError};

use crate::scheduler::Slot;

/// Most messages held ahead of their turns.
pub(crate) const READ_AHEAD: usize = 8;

/// Messages from the head of one actor's mailbox, in delivery order.
#[derive(Default)]
pub(crate) struct ReadAhead {
    held: VecDeque<(MessageKey, Envelope)>,
    /// The mailbox may hold messages beyond `held`.
    more: bool,
    /// Taken for turns whose commits are not durable yet.
    in_flight: Vec<MessageKey>,
}

impl ReadAhead {
    /// The mailbox's next message, reading the store only when needed.
    pub(crate) fn head(&mut self, store: &Store, actor: &str, slot: &Slot) -> Result<Option<MessageKey>, StoreError> {
        let arrivals = slot.take_arrivals();
        let stale = match self.held.back() {
            Some((key, _)) => !arrivals.all_at_most(key.priority()),
            None => !arrivals.is_empty(),
        };
        self.more |= !arrivals.is_empty();
        if stale || (self.held.is_empty() && self.more) {
            self.forget();
            let limit = READ_AHEAD + self.in_flight.len();
            let read = store.next_messages(actor, limit)?;
            self.more = read.len() == limit;
            self.held = read.into_iter().filter(|(key, _)| !self.in_flight.contains(key)).collect();
        }
        if self.held.is_empty() {
            // An idle live actor keeps no buffer.
            self.held = VecDeque::new();
        }
        Ok(self.held.front().map(|(key, _)| *key))
    }

    /// Takes the head returned by [`ReadAhead::head`] for its turn.
    pub(crate) fn take(&mut self) -> Option<(MessageKey, Envelope)> {
        let taken = self.held.pop_front();
        if let Some((key, _)) = &taken {
            self.in_flight.push(*key);
        }
        taken
    }

    /// The outcome of the turn on `key` is known: committed, or not (then
    /// the message is still in the store, and will be read again).
    pub(crate) fn done(&mut self, key: MessageKey) {
        self.in_flight.retain(|k| *k != key);
    }

    /// Forgets what is held: the next [`ReadAhead::head`] reads the store.
    pub(crate) fn forget(&mut self) {
        self.held = VecDeque::new();
        self.more = true;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use pigeon_store::{ActorType, Arrivals, TurnCommit, TypeLimits, now_ms};

    use super::*;

    /// A fresh store with the type `counter` deployed (the component's
    /// bytes are never run).
    pub(crate) fn store_with_counter() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let ty = ActorType {
            name: "counter".into(),
            component_hash: "00".into(),
            component_size: 1,
            limits: TypeLimits::default(),
            deployed_at_ms: now_ms(),
            links: Vec::new(),
        };
        store.put_type(&ty, b"component").unwrap();
        (dir, store)
    }

    const ACTOR: &str = "counter/a";

    /// One actor's mailbox in a fresh store, its slot, and its read-ahead.
    struct Mailbox {
        _dir: tempfile::TempDir,
        store: Store,
        slot: Slot,
        ahead: ReadAhead,
    }

    impl Mailbox {
        fn new() -> Self {
            let (dir, store) = store_with_counter();
            Self { _dir: dir, store, slot: Slot::new(), ahead: ReadAhead::default() }
        }

        /// Stores a message as a sender would, and tells the slot as the
        /// store's listener would.
        async fn arrive(&self, names: &[&str], priority: u8) {
            for name in names {
                let envelope = Envelope::new(ACTOR, name.as_bytes().to_vec()).with_priority(priority);
                self.store.enqueue(envelope).await.unwrap();
                self.slot.note_arrivals(Arrivals::of(priority));
            }
        }

        /// Takes the head and commits its turn; `None` once the mailbox is
        /// empty.
        async fn handle_next(&mut self) -> Option<String> {
            self.ahead.head(&self.store, ACTOR, &self.slot).unwrap()?;
            let (key, envelope) = self.ahead.take().unwrap();
            let commit = TurnCommit { actor: ACTOR.into(), taken: Some(key), ..TurnCommit::default() };
            self.store.commit_turn(commit).await.unwrap();
            self.ahead.done(key);
            Some(String::from_utf8(envelope.payload).unwrap())
        }

        /// Handles messages until the mailbox is empty; their names in order.
        async fn handle_all(&mut self) -> Vec<String> {
            let mut order = Vec::new();
            while let Some(name) = self.handle_next().await {
                order.push(name);
            }
            order
        }
    }

    #[tokio::test]
    async fn a_higher_priority_arrival_overtakes_the_held_messages() {
        let mut mailbox = Mailbox::new();
        mailbox.arrive(&["a", "b", "c"], 1).await;
        assert_eq!(mailbox.handle_next().await.as_deref(), Some("a"));
        mailbox.arrive(&["urgent"], 5).await;
        assert_eq!(mailbox.handle_all().await, ["urgent", "b", "c"]);
    }

    #[tokio::test]
    async fn arrivals_of_equal_or_lower_priority_follow_the_held_messages() {
        let mut mailbox = Mailbox::new();
        mailbox.arrive(&["a", "b"], 5).await;
        assert_eq!(mailbox.handle_next().await.as_deref(), Some("a"));
        mailbox.arrive(&["low"], 1).await;
        mailbox.arrive(&["same"], 5).await;
        assert_eq!(mailbox.handle_all().await, ["b", "same", "low"]);
    }

    #[tokio::test]
    async fn a_mailbox_longer_than_the_read_ahead_is_handled_whole_and_in_order() {
        let mut mailbox = Mailbox::new();
        let names: Vec<String> = (0..READ_AHEAD * 3 + 1).map(|i| format!("m{i:02}")).collect();
        mailbox.arrive(&names.iter().map(String::as_str).collect::<Vec<_>>(), 3).await;
        assert_eq!(mailbox.handle_all().await, names);
    }

    #[tokio::test]
    async fn a_forgotten_read_ahead_reads_the_mailbox_again() {
        let mut mailbox = Mailbox::new();
        mailbox.arrive(&["a"], 1).await;
        assert!(mailbox.ahead.head(&mailbox.store, ACTOR, &mailbox.slot).unwrap().is_some());
        // The turn on "a" was taken but its outcome never reached the store.
        let (key, _) = mailbox.ahead.take().unwrap();
        mailbox.ahead.done(key);
        mailbox.ahead.forget();
        assert_eq!(mailbox.handle_all().await, ["a"]);
    }
}
