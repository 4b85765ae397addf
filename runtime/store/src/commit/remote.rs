//! How a batch routes messages to other nodes and takes in what peers
//! forward: the committer's half of store and forward (the protocol is
//! described in the store's `remote` module).

use redb::ReadableTable;

use super::tables::Tables;
use super::*;
use crate::envelope::Envelope;
use crate::error::StoreError;
use crate::placement::Placement;

/// Messages a peer forwarded, as the receiver commits them.
#[derive(Debug, Clone)]
pub struct InboundBatch {
    /// The sending node's id.
    pub source: String,
    /// The sending node's incarnation: with `seq`, names a message.
    pub incarnation: String,
    /// Every sequence number below this has left the sender's outbox.
    pub watermark: u64,
    /// `(seq, encoded envelope)`.
    pub items: Vec<(u64, Vec<u8>)>,
}

/// What the receiver made of one forwarded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundOutcome {
    /// Durable here (or received before, or a duplicate of its dedup key):
    /// the sender may forget it.
    Accepted(u64),
    /// Not taken now (a full mailbox, a type not deployed here yet): the
    /// sender keeps it and tries again later.
    Deferred { seq: u64, reason: String },
}

impl Worker {
    /// The node that owns `actor`, when it is not this one.
    pub(super) fn route(&mut self, t: &Tables<'_>, actor: &str) -> Result<Option<String>, StoreError> {
        let owner = self.placement_of(t, actor)?.owner(actor).map(str::to_string);
        Ok(owner.filter(|owner| *owner != self.me))
    }

    /// The placement of `actor`'s type, cached.
    pub(super) fn placement_of(&mut self, t: &Tables<'_>, actor: &str) -> Result<&Placement, StoreError> {
        self.refresh_type_caches();
        let ty = actor.split('/').next().unwrap_or_default();
        if !self.placements.contains_key(ty) {
            let placement = match t.placements.get(ty)? {
                Some(v) => Placement::decode(v.value())?,
                None => Placement::default(),
            };
            self.placements.insert(ty.to_string(), placement);
        }
        Ok(self.placements.entry(ty.to_string()).or_default())
    }

    /// `env` as `peer`'s outbox stores it (`[9 - priority][envelope]`), or
    /// the refusal of a message that cannot go there: too large for the
    /// lattice, or `count` more would take the outbox past its bound.
    pub(super) fn outbox_record(
        &self,
        t: &mut Tables<'_>,
        peer: &str,
        env: &Envelope,
        count: u64,
    ) -> Result<Vec<u8>, StoreError> {
        let mut record = vec![slot(env.priority)];
        record.extend(env.encode());
        let size = record.len() - 1;
        if size > self.options.remote_message_bytes {
            return Err(StoreError::TooLargeForLattice {
                actor: env.to.clone(),
                size,
                limit: self.options.remote_message_bytes,
            });
        }
        let depth = t.outbox_depth(peer)?;
        if depth.saturating_add(count) > self.options.outbox_bound {
            return Err(StoreError::OutboxFull { peer: peer.to_string(), bound: self.options.outbox_bound });
        }
        Ok(record)
    }

    /// Commits a record from [`Worker::outbox_record`] to `peer`'s outbox.
    pub(super) fn put_in_outbox(
        &mut self,
        t: &mut Tables<'_>,
        peer: &str,
        record: &[u8],
        fx: &mut Effects,
    ) -> Result<(), StoreError> {
        let seq = self.take_seq();
        let slot = record.first().copied().unwrap_or_default();
        t.outbox.insert((peer, seq), record)?;
        t.outbox_order.insert((peer, slot, seq), ())?;
        t.count_outbox(peer, 1)?;
        fx.accepted += 1;
        fx.forward(peer);
        Ok(())
    }

    /// Removes what `peer` acknowledged from its outbox.
    pub(super) fn forwarded(&mut self, t: &mut Tables<'_>, peer: &str, seqs: &[u64]) -> Result<Reply, StoreError> {
        let mut removed = 0u64;
        for seq in seqs {
            let Some(slot) = t.outbox.remove((peer, *seq))?.and_then(|v| v.value().first().copied()) else { continue };
            t.outbox_order.remove((peer, slot, *seq))?;
            removed += 1;
        }
        t.count_outbox(peer, -(removed as i64))?;
        Ok(Reply::Moved(removed as usize))
    }

    /// Commits what a peer forwarded: each message once, however often it
    /// is sent (see the store's `remote` module).
    pub(super) fn inbound(
        &mut self,
        t: &mut Tables<'_>,
        batch: &InboundBatch,
        fx: &mut Effects,
    ) -> Result<Reply, StoreError> {
        let inc = batch.incarnation.as_str();
        t.inbound.take_range((inc, 0)..(inc, batch.watermark))?;
        let mut outcomes = Vec::with_capacity(batch.items.len());
        for (seq, bytes) in &batch.items {
            let seq = *seq;
            if t.inbound.get((inc, seq))?.is_some() {
                outcomes.push(InboundOutcome::Accepted(seq));
                continue;
            }
            let env = match Envelope::decode(bytes, "inbound") {
                Ok(env) => env,
                Err(e) => {
                    // Nothing could ever read it: keeping it in the
                    // sender's outbox would block nothing but fill it.
                    tracing::error!(source = %batch.source, seq, "dropped an undecodable message from a peer: {e}");
                    outcomes.push(InboundOutcome::Accepted(seq));
                    continue;
                }
            };
            // A relayed publication reaches this node's subscribers, as a
            // local one would (full mailboxes skipped); it is relayed no further.
            if env.kind == crate::MessageKind::Relay {
                self.publish(t, &env.to, &env, false, fx)?;
                t.inbound.insert((inc, seq), ())?;
                outcomes.push(InboundOutcome::Accepted(seq));
                continue;
            }
            // As a local send goes: the owner's dedup and bound apply (and
            // on to another owner, if this node's placement says so).
            match self.enqueue(t, &env, fx) {
                Ok(_) => {
                    t.inbound.insert((inc, seq), ())?;
                    outcomes.push(InboundOutcome::Accepted(seq));
                }
                Err(e @ StoreError::Storage(_)) => return Err(e),
                Err(e) => outcomes.push(InboundOutcome::Deferred { seq, reason: e.to_string() }),
            }
        }
        Ok(Reply::Inbound(outcomes))
    }
}
