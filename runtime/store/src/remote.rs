//! The store's side of the lattice: the node's identity, the types'
//! placements, the outbox of messages for actors other nodes own, and the
//! receiver's dedup of what peers forward.
//!
//! Store and forward works like this (the node and `pigeon-lattice` move
//! the bytes; everything durable is here):
//! 1. A message whose owner is another node is committed to this node's
//!    **outbox** under a store-wide sequence number, in the same
//!    transaction as whatever produced it (a client's send, a turn).
//! 2. A forwarder reads the peer's outbox in priority order
//!    ([`Store::outbox_batch`]) and sends the batch with its **watermark**:
//!    the lowest sequence number still in that outbox.
//! 3. The receiver commits the batch ([`Store::accept_inbound`]): each
//!    message goes into its mailbox and `(source incarnation, seq)` into the
//!    `inbound` table, in one transaction; a pair already there is a
//!    retransmission and is acknowledged without being stored again.
//!    Entries below the watermark are deleted: the sender will never send
//!    them again, because they left its outbox. So dedup needs no time
//!    window, unlike JetStream's.
//! 4. Only after that commit is durable does the receiver acknowledge, and
//!    the sender removes the entries ([`Store::forwarded`]).
//!
//! A crash anywhere repeats a step and never loses one: an unacknowledged
//! entry stays in the outbox, and an acknowledged one is in the receiver's
//! mailbox and in its `inbound` table until the sender's watermark passes it.

use redb::ReadableTable;

use crate::commit::{InboundBatch, InboundOutcome, Reply, Request};
use crate::error::StoreError;
use crate::placement::Placement;
use crate::schema::*;
use crate::{Store, ulid};

/// What [`Store::outbox_batch`] found for one peer.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OutboxBatch {
    /// `(seq, encoded envelope)`, highest priority first, then oldest.
    pub items: Vec<(u64, Vec<u8>)>,
    /// The lowest sequence number in the peer's outbox (0 when empty).
    pub watermark: u64,
}

/// Who this node is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Stable name of the node in its lattice.
    pub node_id: String,
    /// Made with the store: a node that lost its disk comes back with a
    /// new one under its old id, and must not be taken for the old node.
    pub incarnation: String,
}

/// Checks a node id: what a type name may be (it is a NATS subject token
/// and a column in tables, so no dots, wildcards or spaces).
pub fn validate_node_id(id: &str) -> Result<(), String> {
    crate::validate_type_name(id).map_err(|e| e.replace("type name", "node id"))
}

/// Reads the identity of the store behind `db`, creating it on first open.
pub(crate) fn load_identity(db: &redb::Database, wanted: Option<&str>) -> Result<Identity, StoreError> {
    if let Some(id) = wanted {
        validate_node_id(id).map_err(StoreError::Identity)?;
    }
    let txn = db.begin_write()?;
    let identity = {
        let mut table = txn.open_table(IDENTITY)?;
        let stored = |key| -> Result<Option<String>, StoreError> { Ok(table.get(key)?.map(|v| v.value().to_string())) };
        let (node_id, incarnation) = (stored(NODE_ID)?, stored(INCARNATION)?);
        match (node_id, incarnation) {
            (Some(node_id), Some(incarnation)) => {
                if let Some(wanted) = wanted.filter(|w| *w != node_id) {
                    return Err(StoreError::Identity(format!(
                        "this data directory belongs to node `{node_id}`, not `{wanted}`: start it with \
                         `--node-id {node_id}` (or without --node-id), or give node `{wanted}` a data directory of \
                         its own"
                    )));
                }
                Identity { node_id, incarnation }
            }
            _ => {
                let fresh = ulid::Ulid::new().to_string().to_lowercase();
                let node_id = wanted.map_or_else(|| format!("n{}", &fresh[16..]), str::to_string);
                table.insert(NODE_ID, node_id.as_str())?;
                table.insert(INCARNATION, fresh.as_str())?;
                Identity { node_id, incarnation: fresh }
            }
        }
    };
    txn.commit()?;
    Ok(identity)
}

impl Store {
    /// This node's id and incarnation.
    pub fn identity(&self) -> &Identity {
        &self.inner.identity
    }

    /// The placement of type `name` (empty: this node owns its actors).
    pub fn placement(&self, name: &str) -> Result<Placement, StoreError> {
        let table = self.read()?.open_table(PLACEMENTS)?;
        Ok(table.get(name)?.map(|v| Placement::decode(v.value())).transpose()?.unwrap_or_default())
    }

    /// Sets the placement of type `name` (an empty one is removed), in
    /// order with the commits: one applied after this is routed and
    /// fenced by it. Writes nothing when it is already that: a node
    /// outside a lattice deploys without this extra commit.
    pub async fn put_placement(&self, name: &str, placement: &Placement) -> Result<(), StoreError> {
        if self.placement(name)? == *placement {
            return Ok(());
        }
        let request = Request::PutPlacement { name: name.to_string(), placement: placement.clone() };
        self.submit(request).await.map(drop)
    }

    /// Up to `limit` messages (and about `max_bytes`, at least one) from
    /// `peer`'s outbox in forwarding order, with the watermark.
    pub fn outbox_batch(&self, peer: &str, limit: usize, max_bytes: usize) -> Result<OutboxBatch, StoreError> {
        let txn = self.read()?;
        let order = txn.open_table(OUTBOX_ORDER)?;
        let outbox = txn.open_table(OUTBOX)?;
        let watermark = match outbox.range((peer, 0u64)..=(peer, u64::MAX))?.next() {
            Some(entry) => entry?.0.value().1,
            None => return Ok(OutboxBatch::default()),
        };
        let (mut items, mut bytes) = (Vec::new(), 0usize);
        for entry in order.range((peer, 0u8, 0u64)..=(peer, u8::MAX, u64::MAX))?.take(limit) {
            let (_, _, seq) = entry?.0.value();
            let Some(value) = outbox.get((peer, seq))? else { continue };
            let envelope = value.value().get(1..).unwrap_or_default();
            if !items.is_empty() && bytes.saturating_add(envelope.len()) > max_bytes {
                break;
            }
            bytes = bytes.saturating_add(envelope.len());
            items.push((seq, envelope.to_vec()));
        }
        Ok(OutboxBatch { items, watermark })
    }

    /// Messages waiting in each peer's outbox, by peer.
    pub fn outbox_depths(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let table = self.read()?.open_table(OUTBOX_DEPTH)?;
        table
            .iter()?
            .map(|entry| {
                let (peer, depth) = entry?;
                Ok((peer.value().to_string(), depth.value()))
            })
            .collect()
    }

    /// Removes entries `peer` has acknowledged from its outbox; returns how
    /// many were there.
    pub async fn forwarded(&self, peer: &str, seqs: Vec<u64>) -> Result<usize, StoreError> {
        self.moved(Request::Forwarded { peer: peer.to_string(), seqs }).await
    }

    /// Commits a batch a peer forwarded (see the module doc); returns, once
    /// durable, what became of each message.
    pub async fn accept_inbound(&self, batch: InboundBatch) -> Result<Vec<InboundOutcome>, StoreError> {
        match self.submit(Request::Inbound(batch)).await? {
            Reply::Inbound(outcomes) => Ok(outcomes),
            _ => Ok(Vec::new()),
        }
    }

    /// The incarnation `node` had when this node first met it.
    pub fn peer_incarnation(&self, node: &str) -> Result<Option<String>, StoreError> {
        let table = self.read()?.open_table(PEERS)?;
        Ok(table.get(node)?.map(|v| v.value().to_string()))
    }

    /// Remembers `node`'s incarnation (the first one seen is kept).
    pub fn remember_peer(&self, node: &str, incarnation: &str) -> Result<(), StoreError> {
        let txn = self.inner.db.get()?.begin_write()?;
        {
            let mut table = txn.open_table(PEERS)?;
            if table.get(node)?.is_none() {
                table.insert(node, incarnation)?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Forgets `node`'s incarnation, so that it may join again with a new one.
    pub fn forget_peer(&self, node: &str) -> Result<bool, StoreError> {
        let txn = self.inner.db.get()?.begin_write()?;
        let existed = txn.open_table(PEERS)?.remove(node)?.is_some();
        txn.commit()?;
        Ok(existed)
    }
}
