//! How each request of a batch is applied to the transaction: validate
//! first, then write, so a refused request leaves no trace (see the parent
//! module for the batching itself).

use redb::ReadableTable;

use super::tables::Tables;
use super::*;
use crate::envelope::{Envelope, decode_record, encode_record};
use crate::error::StoreError;
use crate::schema::*;
use crate::time::now_ms;

impl Worker {
    pub(super) fn enqueue(
        &mut self,
        t: &mut Tables<'_>,
        env: &Envelope,
        fx: &mut Effects,
    ) -> Result<Reply, StoreError> {
        let ty = env.to.split('/').next().unwrap_or_default();
        let Some(bound) = self.mailbox_bound(t, ty)? else {
            return Err(StoreError::UnknownType(ty.to_string()));
        };
        // Dedup and the mailbox bound are the owner's to check.
        if let Some(peer) = self.route(t, &env.to)? {
            let record = self.outbox_record(t, &peer, env, 1)?;
            self.put_in_outbox(t, &peer, &record, fx)?;
            return Ok(Reply::Done);
        }
        if self.is_duplicate(t, env)? {
            return Ok(Reply::Duplicate);
        }
        let depth: u64 = t.depths(&env.to)?.iter().sum();
        if depth >= bound {
            return Err(StoreError::MailboxFull { actor: env.to.clone(), bound });
        }
        self.place(t, env, fx)?;
        Ok(Reply::Done)
    }

    /// The mailbox bound of type `ty` (none: not deployed), cached.
    pub(super) fn mailbox_bound(&mut self, t: &Tables<'_>, ty: &str) -> Result<Option<u64>, StoreError> {
        self.refresh_type_caches();
        if let Some(bound) = self.bounds.get(ty) {
            return Ok(*bound);
        }
        let bound = match t.types.get(ty)? {
            Some(record) => Some(decode_record::<ActorType>(record.value(), "types")?.limits.mailbox_bound),
            None => None,
        };
        self.bounds.insert(ty.to_string(), bound);
        Ok(bound)
    }

    /// Forgets cached type data (bounds, placements) after a registry write.
    pub(super) fn refresh_type_caches(&mut self) {
        let version = self.types_version.load(Ordering::Acquire);
        if version != self.types_seen {
            self.bounds.clear();
            self.placements.clear();
            self.types_seen = version;
        }
    }

    /// Whether `env`'s dedup key was seen for its actor within the window.
    pub(super) fn is_duplicate(&self, t: &Tables<'_>, env: &Envelope) -> Result<bool, StoreError> {
        let Some(key) = env.dedup_key.as_deref() else { return Ok(false) };
        let until = t.dedup.get((env.to.as_str(), key))?.map(|v| v.value());
        Ok(until.is_some_and(|until| until > now_ms()))
    }

    /// Puts a message into its mailbox, or into `delayed` if not yet due,
    /// remembering its dedup key.
    /// The caller has routed it: its owner is this node.
    pub(super) fn place(&mut self, t: &mut Tables<'_>, env: &Envelope, fx: &mut Effects) -> Result<(), StoreError> {
        if let Some(key) = env.dedup_key.as_deref() {
            let until = now_ms().saturating_add(self.options.dedup_retention_ms);
            t.dedup.insert((env.to.as_str(), key), until)?;
        }
        let seq = self.take_seq();
        fx.accepted += 1;
        match env.not_before_ms {
            Some(due) if due > now_ms() => {
                t.put_delayed(env, due, seq)?;
                fx.delayed(due);
            }
            _ => {
                t.put_in_mailbox(env, seq)?;
                fx.arrived(env);
            }
        }
        Ok(())
    }

    pub(super) fn commit_turn(
        &mut self,
        t: &mut Tables<'_>,
        c: &TurnCommit,
        fx: &mut Effects,
    ) -> Result<Reply, StoreError> {
        if let Some(since) = c.depends_on
            && since < self.epoch.load(Ordering::Acquire)
        {
            return Err(StoreError::DependencyLost { actor: c.actor.clone() });
        }
        self.fence(t, &c.actor)?;
        // The same call handled twice (a copy delivered while the first
        // one's commit was on its way): the first answer stands.
        if let Some((id, true)) = c.message_id
            && t.replies.get(id.0)?.is_some()
        {
            return Err(StoreError::AlreadyAnswered { actor: c.actor.clone(), id: id.to_string() });
        }
        let outgoing = self.check_bounds(t, c)?;
        if let Some(key) = c.taken {
            t.take_from_mailbox(&c.actor, key, c.message_id.map(|(id, _)| id))?;
        }
        for (key, value) in &c.state_writes {
            match value {
                Some(v) => t.state.insert((c.actor.as_str(), key.as_str()), v.as_slice())?,
                None => t.state.remove((c.actor.as_str(), key.as_str()))?,
            };
        }
        for (env, outgoing) in c.sends.iter().zip(&outgoing) {
            match outgoing {
                Some((peer, record)) => self.put_in_outbox(t, peer, record, fx)?,
                None if !self.is_duplicate(t, env)? => self.place(t, env, fx)?,
                None => {}
            }
        }
        for id in &c.cancels {
            t.cancel_timer(&c.actor, *id)?;
        }
        for effect in &c.topics {
            match effect {
                TopicEffect::Subscribe { topic, filter } => t.subscribe(topic, &c.actor, filter)?,
                TopicEffect::Unsubscribe { topic } => {
                    t.unsubscribe(topic, &c.actor)?;
                }
                TopicEffect::Publish { topic, envelope } => {
                    self.publish(t, topic, envelope, true, fx)?;
                }
            }
        }
        // A call's reply is stored even when empty, so that a retried
        // caller is always answered; with its time, for the retention sweep.
        if let Some((id, true)) = c.message_id {
            t.put_reply(&c.actor, id.0, &encode_reply(now_ms(), c.reply.as_deref()))?;
        }
        // Like a turn that is not submitted at all (see
        // `Store::submit_turn`), one that writes nothing is not counted.
        if !c.writes_nothing() {
            t.update_stats(&c.actor, |s| s.processed += 1)?;
        }
        fx.accepted += u64::from(c.arrived);
        Ok(Reply::Done)
    }

    /// Refuses a turn whose sends would take a mailbox past its type's
    /// bound. The host checked each send when the guest made it, but other
    /// turns may have filled the mailbox since: the turn is handled again,
    /// and then its guest sees `mailbox-full`. Sends to actors other nodes
    /// own are checked against their outbox instead, and come back routed
    /// and encoded, one entry per send (`None`: this node owns it).
    #[allow(clippy::type_complexity)]
    fn check_bounds(
        &mut self,
        t: &mut Tables<'_>,
        c: &TurnCommit,
    ) -> Result<Vec<Option<(String, Vec<u8>)>>, StoreError> {
        let mut sent: HashMap<&str, u64> = HashMap::new();
        let mut remote: HashMap<String, u64> = HashMap::new();
        let mut outgoing = Vec::with_capacity(c.sends.len());
        for env in &c.sends {
            if let Some(peer) = self.route(t, &env.to)? {
                let count = remote.entry(peer.clone()).or_default();
                *count += 1;
                let record = self.outbox_record(t, &peer, env, *count)?;
                outgoing.push(Some((peer, record)));
                continue;
            }
            if !self.is_duplicate(t, env)? {
                *sent.entry(env.to.as_str()).or_default() += 1;
            }
            outgoing.push(None);
        }
        // Its publications' relays are checked here too: once the turn's
        // writes begin, nothing may refuse it.
        for effect in &c.topics {
            if let TopicEffect::Publish { topic, envelope } = effect {
                self.relays(t, topic, envelope, &mut remote)?;
            }
        }
        for (to, count) in sent {
            let ty = to.split('/').next().unwrap_or_default();
            let Some(bound) = self.mailbox_bound(t, ty)? else { continue };
            let mut depth: u64 = t.depths(to)?.iter().sum();
            // The message this turn handled leaves the same mailbox.
            if to == c.actor && c.taken.is_some() {
                depth = depth.saturating_sub(1);
            }
            if depth.saturating_add(count) > bound {
                return Err(StoreError::MailboxFull { actor: to.to_string(), bound });
            }
        }
        Ok(outgoing)
    }

    pub(super) fn fail_turn(
        &mut self,
        t: &mut Tables<'_>,
        f: &TurnFailure,
        fx: &mut Effects,
    ) -> Result<Reply, StoreError> {
        self.fence(t, &f.actor)?;
        let seq = match f.taken {
            Some(key) => {
                t.take_from_mailbox(&f.actor, key, Some(f.envelope.id))?;
                key.seq
            }
            None => self.take_seq(),
        };
        let error = f.envelope.last_error.clone().unwrap_or_default();
        match f.disposition {
            Disposition::RetryAt { due_ms } => {
                if f.taken.is_some() || f.arrived {
                    t.put_delayed(&f.envelope, due_ms, seq)?;
                    fx.delayed(due_ms);
                }
            }
            Disposition::DeadLetter { reason } => {
                if reason == DeadReason::Crashed {
                    // Quarantined: a replay starts with a clean record.
                    t.crashes.remove(f.envelope.id.0)?;
                }
                let id = self.take_seq();
                let dead =
                    DeadLetter { id, reason, error: error.clone(), at_ms: now_ms(), envelope: f.envelope.clone() };
                t.dead.insert(id, encode_record(&dead).as_slice())?;
                fx.dead_lettered += 1;
                // The call failed for good: a retried caller making it again
                // gets this failure at once, not another round of attempts.
                if f.envelope.kind == crate::MessageKind::Call && f.envelope.delivery == crate::Delivery::Persistent {
                    let failed = super::encode_failed_reply(now_ms(), &error);
                    t.put_reply(&f.actor, f.envelope.id.0, &failed)?;
                }
            }
        }
        let dead = matches!(f.disposition, Disposition::DeadLetter { .. });
        t.update_stats(&f.actor, |s| {
            s.failed += 1;
            s.dead_lettered += u64::from(dead);
            s.last_error = Some(error);
        })?;
        fx.accepted += u64::from(f.arrived);
        Ok(Reply::Done)
    }

    pub(super) fn promote(&mut self, t: &mut Tables<'_>, now: u64, fx: &mut Effects) -> Result<Reply, StoreError> {
        let due = t.take_due(now, MAX_PROMOTE)?;
        for (seq, env) in &due {
            t.put_in_mailbox(env, *seq)?;
            fx.arrived(env);
        }
        Ok(Reply::Moved(due.len()))
    }

    /// The dead letters named by `ids` (all when `None`) that exist, each
    /// once, in id order.
    pub(super) fn dead_ids(t: &Tables<'_>, ids: Option<&[u64]>) -> Result<Vec<u64>, StoreError> {
        match ids {
            Some(ids) => {
                let ids: std::collections::BTreeSet<u64> = ids.iter().copied().collect();
                let mut found = Vec::with_capacity(ids.len());
                for id in ids {
                    if t.dead.get(id)?.is_some() {
                        found.push(id);
                    }
                }
                Ok(found)
            }
            None => t.dead.iter()?.map(|e| Ok(e?.0.value())).collect(),
        }
    }

    /// Puts dead letters back at the end of their mailboxes, as fresh
    /// deliveries (failures reset, priority kept).
    pub(super) fn replay(
        &mut self,
        t: &mut Tables<'_>,
        ids: Option<&[u64]>,
        fx: &mut Effects,
    ) -> Result<Reply, StoreError> {
        let ids = Self::dead_ids(t, ids)?;
        for id in &ids {
            let Some(record) = t.dead.remove(id)? else {
                continue;
            };
            let dead: DeadLetter = decode_record(record.value(), "dead_letters")?;
            drop(record);
            let mut env = dead.envelope;
            env.failures = 0;
            env.not_before_ms = None;
            // A replayed call runs afresh: its stored failure goes.
            if env.kind == crate::MessageKind::Call {
                t.remove_reply(env.id.0)?;
            }
            let seq = self.take_seq();
            t.put_in_mailbox(&env, seq)?;
            fx.arrived(&env);
        }
        Ok(Reply::DeadLetters(ids))
    }

    /// Copies `envelope` into the mailbox of every subscriber of `topic`
    /// (or of a pattern it matches) on this node whose filter matches its
    /// headers, once per subscriber however many of its subscriptions
    /// match; a full mailbox is skipped (and not counted). With `relay`, the
    /// publication also goes into the outbox of every node this one has
    /// met, which copies it to its own subscribers when it arrives (see
    /// [`Worker::inbound`]); an outbox that cannot take it refuses the whole
    /// publication before anything is written.
    pub(super) fn publish(
        &mut self,
        t: &mut Tables<'_>,
        topic: &str,
        envelope: &Envelope,
        relay: bool,
        fx: &mut Effects,
    ) -> Result<Reply, StoreError> {
        let relays = if relay { self.relays(t, topic, envelope, &mut HashMap::new())? } else { Vec::new() };
        // Filters were validated at subscribe time; one that no longer
        // parses (a newer grammar?) matches nothing rather than all.
        let passes = |filter: &str| {
            filter.is_empty() || crate::filter::Filter::parse(filter).is_ok_and(|f| f.matches(&envelope.headers))
        };
        let mut receivers = std::collections::BTreeSet::new();
        for (subscriber, filter) in t.subscribers(topic)? {
            if !receivers.contains(&subscriber) && passes(&filter) {
                receivers.insert(subscriber);
            }
        }
        let mut copies = 0;
        for subscriber in receivers {
            let ty = subscriber.split('/').next().unwrap_or_default();
            let Some(bound) = self.mailbox_bound(t, ty)? else { continue };
            let depth: u64 = t.depths(&subscriber)?.iter().sum();
            if depth >= bound {
                continue;
            }
            let mut copy = envelope.clone();
            copy.id = ulid::Ulid::new();
            copy.to = subscriber;
            copy.kind = crate::MessageKind::Publish;
            copy.headers.push(("topic".into(), topic.to_string()));
            match self.route(t, &copy.to)? {
                // A subscriber on another node whose outbox is full is
                // skipped like a full mailbox.
                Some(peer) => match self.outbox_record(t, &peer, &copy, 1) {
                    Ok(record) => self.put_in_outbox(t, &peer, &record, fx)?,
                    Err(_) => continue,
                },
                None => self.place(t, &copy, fx)?,
            }
            copies += 1;
        }
        let mut relayed_to = Vec::with_capacity(relays.len());
        for (peer, record) in relays {
            self.put_in_outbox(t, &peer, &record, fx)?;
            relayed_to.push(peer);
        }
        Ok(Reply::Published(Published { copies, relayed_to }))
    }

    /// `envelope` as a relay of `topic` for the outbox of each node this
    /// one has met, or the refusal of an outbox that cannot take it.
    /// `counts` holds, per peer, what the same request already puts there.
    pub(super) fn relays(
        &mut self,
        t: &mut Tables<'_>,
        topic: &str,
        envelope: &Envelope,
        counts: &mut HashMap<String, u64>,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let peers = t.peers(&self.me)?;
        if peers.is_empty() {
            return Ok(Vec::new());
        }
        let mut relay = envelope.clone();
        relay.kind = crate::MessageKind::Relay;
        relay.to = topic.to_string();
        let mut relays = Vec::with_capacity(peers.len());
        for peer in peers {
            let count = counts.entry(peer.clone()).or_default();
            *count += 1;
            let record = self.outbox_record(t, &peer, &relay, *count)?;
            relays.push((peer, record));
        }
        Ok(relays)
    }

    /// Removes expired dedup keys and replies older than the retention
    /// window, at most [`MAX_SWEEP`] of each per call, continuing where the
    /// previous sweep stopped.
    pub(super) fn sweep(&mut self, t: &mut Tables<'_>, now: u64) -> Result<Reply, StoreError> {
        let mut removed = 0;
        let start = std::mem::take(&mut self.dedup_cursor);
        let mut expired = Vec::new();
        let mut last = None;
        let range = match &start {
            Some((a, k)) => t.dedup.range((a.as_str(), k.as_str())..)?,
            None => t.dedup.range::<(&str, &str)>(..)?,
        };
        for entry in range.take(MAX_SWEEP) {
            let (key, until) = entry?;
            let (actor, k) = key.value();
            last = Some((actor.to_string(), k.to_string()));
            if until.value() <= now {
                expired.push((actor.to_string(), k.to_string()));
            }
        }
        for (actor, k) in &expired {
            t.dedup.remove((actor.as_str(), k.as_str()))?;
        }
        removed += expired.len();
        // Resume after the last key seen, unless this pass reached the end.
        self.dedup_cursor = if last.is_some() && expired.len() + 1 < MAX_SWEEP { None } else { last };

        let cutoff = now.saturating_sub(self.options.dedup_retention_ms);
        let from = self.reply_cursor.take().unwrap_or(0);
        let mut old = Vec::new();
        let mut seen = 0;
        for entry in t.replies.range(from..)?.take(MAX_SWEEP) {
            let (id, value) = entry?;
            seen += 1;
            self.reply_cursor = Some(id.value().saturating_add(1));
            if decode_reply_time(value.value()) <= cutoff {
                old.push(id.value());
            }
        }
        if seen < MAX_SWEEP {
            self.reply_cursor = None;
        }
        for id in &old {
            t.remove_reply(*id)?;
        }
        removed += old.len();

        // Crash counts of messages long handled or quarantined (the table
        // holds a few entries at most: one per message in flight at a crash).
        let mut forgotten = Vec::new();
        for entry in t.crashes.iter()?.take(MAX_SWEEP) {
            let (id, value) = entry?;
            if value.value().1 <= cutoff {
                forgotten.push(id.value());
            }
        }
        for id in &forgotten {
            t.crashes.remove(id)?;
        }
        removed += forgotten.len();
        Ok(Reply::Moved(removed))
    }

    /// One more crash for each message in `ids`, with its time (for the sweep).
    pub(super) fn record_crashes(&mut self, t: &mut Tables<'_>, ids: &[ulid::Ulid]) -> Result<Reply, StoreError> {
        for id in ids {
            let count = t.crashes.get(id.0)?.map_or(0, |v| v.value().0);
            t.crashes.insert(id.0, (count + 1, now_ms()))?;
        }
        Ok(Reply::Done)
    }

    pub(super) fn purge(&mut self, t: &mut Tables<'_>, ids: Option<&[u64]>) -> Result<Reply, StoreError> {
        let ids = Self::dead_ids(t, ids)?;
        for id in &ids {
            t.dead.remove(id)?;
        }
        Ok(Reply::DeadLetters(ids))
    }
}
