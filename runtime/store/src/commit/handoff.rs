//! The committer's half of a handoff (see the store's `handoff` module).

use redb::ReadableTable;

use super::tables::Tables;
use super::*;
use crate::handoff::{ActorRows, HandoffOutcome};

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
        // Fresh sequence numbers in the order they came: the handling
        // order is kept within each priority.
        for env in &rows.mailbox {
            let seq = self.take_seq();
            t.put_in_mailbox(env, seq)?;
            fx.arrived(env);
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
        for entry in t.dedup.extract_from_if((actor, "")..(end.as_str(), ""), |_, _| true)? {
            entry?;
            removed += 1;
        }
        for id in t.replies_of(actor)? {
            t.remove_reply(id)?;
            removed += 1;
        }
        t.moved_actors.insert(actor, (to, epoch))?;
        Ok(Reply::Moved(removed))
    }
}
