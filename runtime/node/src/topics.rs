//! Topics, on one node and across the lattice.
//!
//! A subscription lives on the node that owns its subscriber: one that a
//! client makes through another node is sent on to the owner, and a guest's
//! own subscriptions are made by its turns, which run there. A publication
//! fans out in one transaction to this node's subscribers and into the
//! outbox of every node this one has met; each of those copies it to its
//! own subscribers when it arrives (the store's `publish` and `inbound`).
//! So an actor receives one copy however many of its subscriptions match,
//! a filter is applied where its subscription is, and a persistent
//! publication survives a crash like any message in an outbox.
//!
//! What this costs: one outbox entry per node and publication, even for a
//! node without a matching subscriber. A node that has not yet met the
//! publisher (it joined a moment ago) misses what was published before.

use pigeon_store::topic::validate_subscription;
use pigeon_store::{ActorAddr, Envelope, Published};

use crate::{Node, NodeError};

/// One subscription: `(topic, subscriber, filter)`.
pub type Subscription = (String, String, String);

impl Node {
    /// Subscribes the actor `subscriber` to `topic`: it receives a copy of
    /// every message published there whose headers pass `filter` (empty:
    /// all). A malformed filter is refused with the position of the error.
    pub async fn subscribe(&self, topic: &str, subscriber: &str, filter: &str) -> Result<(), NodeError> {
        ActorAddr::parse(subscriber)?;
        validate_subscription(topic, filter)?;
        match self.inner.remote_owner(subscriber) {
            Some(owner) => self.inner.subscribe_remote(&owner, topic, subscriber, filter).await.map(drop),
            None => Ok(self.inner.store.subscribe(topic, subscriber, filter).await?),
        }
    }

    /// Ends `subscriber`'s subscription to `topic`; returns whether it had one.
    pub async fn unsubscribe(&self, topic: &str, subscriber: &str) -> Result<bool, NodeError> {
        match self.inner.remote_owner(subscriber) {
            Some(owner) => self.inner.unsubscribe_remote(&owner, topic, subscriber).await,
            None => Ok(self.inner.store.unsubscribe(topic, subscriber).await?),
        }
    }

    /// Publishes to `topic`: one transaction puts a copy of `envelope` (its
    /// `to` is ignored) into every matching subscriber's mailbox on this
    /// node, and relays it to every other node of the lattice.
    pub async fn publish(&self, topic: &str, envelope: Envelope) -> Result<Published, NodeError> {
        self.inner.check_message(&envelope)?;
        Ok(self.inner.store.publish(topic, envelope).await?)
    }

    /// Every subscription, by topic: this node's and those of the peers
    /// that answer now. The second list names the nodes that did not.
    pub async fn subscriptions(&self) -> Result<(Vec<Subscription>, Vec<String>), NodeError> {
        let mut all = self.inner.store.subscriptions()?;
        let mut missing = Vec::new();
        for peer in self.known_peers() {
            if !self.inner.lattice().is_some_and(|l| l.is_up(&peer)) {
                missing.push(peer);
                continue;
            }
            match self.inner.subscriptions_of(&peer).await {
                Ok(theirs) => all.extend(theirs),
                Err(_) => missing.push(peer),
            }
        }
        all.sort();
        all.dedup();
        Ok((all, missing))
    }

    /// The other nodes of the lattice, up or down.
    fn known_peers(&self) -> Vec<String> {
        self.inner.lattice().map(|l| l.peers().into_iter().map(|p| p.member.id).collect()).unwrap_or_default()
    }
}
