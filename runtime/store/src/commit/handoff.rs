//! The committer's half of a handoff (see the store's `handoff` module).

use redb::ReadableTable;

use super::tables::Tables;
use super::*;
use crate::envelope::encode_record;
use crate::handoff::{ActorRows, HandoffOutcome};
use crate::placement::Placement;

impl Worker {
    /// Commits a handed-off actor once per `(actor, epoch)`.
    pub(super) fn accept_handoff(
        &mut self,
        t: &mut Tables<'_>,
        rows: &ActorRows,
        epoch: u64,
        fx: &mut Effects,
    ) -> Result<Reply, StoreError> {
        let actor = rows.actor.as_str();
        if t.handoffs.get((actor, epoch))?.is_some() {
            return Ok(Reply::Handoff(HandoffOutcome::AlreadyHad));
        }
        for (key, value) in &rows.state {
            t.state.insert((actor, key.as_str()), value.as_slice())?;
        }
        // Fresh sequence numbers in the order they came, the messages the
        // old owner had first and those held here since after them: the
        // handling order is kept within each priority.
        let held = t.take_mailbox(actor)?;
        for env in &rows.mailbox {
            let seq = self.take_seq();
            t.put_in_mailbox(env, seq)?;
            fx.arrived(env);
        }
        for bytes in held {
            let env = Envelope::decode(&bytes, "mailbox")?;
            let seq = self.take_seq();
            t.put_in_mailbox(&env, seq)?;
            fx.arrived(&env);
        }
        for (due, env) in &rows.delayed {
            let seq = self.take_seq();
            t.put_delayed(env, *due, seq)?;
            fx.delayed(*due);
        }
        for (key, until) in &rows.dedup {
            let known = t.dedup.get((actor, key.as_str()))?.map_or(0, |v| v.value());
            t.dedup.insert((actor, key.as_str()), (*until).max(known))?;
        }
        for (id, stored) in &rows.replies {
            t.put_reply(actor, *id, stored)?;
        }
        for (topic, filter) in &rows.subscriptions {
            t.subscribe(topic, actor, filter)?;
        }
        if let Some(stats) = &rows.stats {
            t.add_stats(actor, stats)?;
        }
        t.handoffs.insert((actor, epoch), ())?;
        Ok(Reply::Handoff(HandoffOutcome::Applied))
    }

    /// Deletes this node's copy of `actor` and records where it went.
    pub(super) fn release_actor(
        &mut self,
        t: &mut Tables<'_>,
        actor: &str,
        to: &str,
        epoch: u64,
    ) -> Result<Reply, StoreError> {
        let mut removed = t.clear_mailbox(actor)? + t.clear_state(actor)?;
        let end = format!("{actor}\0");
        removed += t.dedup.take_range((actor, "")..(end.as_str(), ""))?.len();
        for id in t.replies_of(actor)? {
            t.remove_reply(id)?;
            removed += 1;
        }
        for (topic, _) in t.subscriptions_of(actor)? {
            t.unsubscribe(&topic, actor)?;
            removed += 1;
        }
        if t.forget_stats(actor)? {
            removed += 1;
        }
        t.moved_actors.insert(actor, (to, epoch))?;
        Ok(Reply::Moved(removed))
    }

    /// Sets a type's placement, in order with every other write: a turn
    /// commit applied after it is fenced by it (see [`Worker::fence`]).
    pub(super) fn put_placement(
        &mut self,
        t: &mut Tables<'_>,
        name: &str,
        placement: &Placement,
    ) -> Result<Reply, StoreError> {
        if placement.nodes.is_empty() {
            t.placements.remove(name)?;
        } else {
            t.placements.insert(name, encode_record(placement).as_slice())?;
        }
        self.refresh_type_caches();
        self.placements.insert(name.to_string(), placement.clone());
        Ok(Reply::Done)
    }

    /// Refuses a turn's commit for an actor this node does not own now, or
    /// whose state has not arrived from its previous owner: so a turn runs
    /// for an actor on one node only, whatever the timing of a change.
    pub(super) fn fence(&mut self, t: &Tables<'_>, actor: &str) -> Result<(), StoreError> {
        let me = self.me.clone();
        let placement = self.placement_of(t, actor)?;
        if let Some(owner) = placement.owner(actor)
            && owner != me
        {
            return Err(StoreError::ActorElsewhere { actor: actor.to_string(), owner: owner.to_string() });
        }
        if placement.previous.is_none() {
            return Ok(());
        }
        let placement = placement.clone();
        match crate::handoff::held_from(&placement, &me, actor, &*t.handoffs, &*t.handoffs_done)? {
            Some(from) => Err(StoreError::ActorHeld { actor: actor.to_string(), from }),
            None => Ok(()),
        }
    }
}
