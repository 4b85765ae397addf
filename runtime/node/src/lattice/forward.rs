//! Store and forward between nodes: one forwarder per peer drains this
//! node's outbox towards it, in priority order and in batches, and the
//! receiving side commits each batch before it acknowledges (the protocol
//! and its guarantees are in `pigeon-store`'s `remote` module).
//!
//! A forwarder sleeps while its outbox is empty (a commit that adds to it
//! wakes it) and while its peer is down (the directory wakes it when the
//! peer returns); a failed or refused batch is retried with backoff.
//! Nothing here is durable: after a crash the outbox is where it was, and
//! the receiver's dedup absorbs whatever is sent twice.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use pigeon_lattice::{LatticeError, Op};
use pigeon_store::{InboundBatch, InboundOutcome};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::{decode, encode};
use crate::NodeInner;

/// Most messages in one batch.
const BATCH: usize = 1024;
/// Room left in a NATS message for the framing around a batch's messages.
const FRAMING: usize = 64 << 10;
/// How long a peer may take to commit a batch.
const DELIVER_TIMEOUT: Duration = Duration::from_secs(10);
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// A batch as it travels.
#[derive(Serialize, Deserialize)]
struct Deliver {
    watermark: u64,
    items: Vec<(u64, Vec<u8>)>,
}

/// The receiver's answer: what it took, what it deferred (and why).
#[derive(Serialize, Deserialize)]
struct Delivered {
    accepted: Vec<u64>,
    deferred: Vec<(u64, String)>,
}

/// The forwarders of one node, by peer.
#[derive(Default)]
pub(crate) struct Forwarders {
    wakers: Mutex<HashMap<String, Arc<Notify>>>,
    forwarded: AtomicU64,
    /// `(when, forwarded then, rate)`: the last rate sample.
    sample: Mutex<Option<(Instant, u64, f64)>>,
}

impl Forwarders {
    /// Wakes `peer`'s forwarder, starting it if there is none yet.
    pub(crate) fn wake(&self, node: &Arc<NodeInner>, peer: &str) {
        let mut wakers = self.wakers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(waker) = wakers.get(peer) {
            return waker.notify_one();
        }
        let waker = Arc::new(Notify::new());
        wakers.insert(peer.to_string(), waker.clone());
        // The committer thread wakes forwarders too: it has no runtime of its own.
        node.runtime.spawn(run(Arc::downgrade(node), peer.to_string(), waker));
    }

    /// Messages forwarded (and acknowledged) since the node started.
    pub(crate) fn total(&self) -> u64 {
        self.forwarded.load(Ordering::Relaxed)
    }

    /// Messages forwarded per second, over the last second or so.
    pub(crate) fn rate(&self) -> f64 {
        let now = Instant::now();
        let total = self.total();
        let mut sample = self.sample.lock().unwrap_or_else(|p| p.into_inner());
        match *sample {
            Some((at, _, rate)) if now.duration_since(at) < Duration::from_secs(1) => rate,
            Some((at, then, _)) => {
                let rate = total.saturating_sub(then) as f64 / now.duration_since(at).as_secs_f64();
                *sample = Some((now, total, rate));
                rate
            }
            None => {
                *sample = Some((now, total, 0.0));
                0.0
            }
        }
    }
}

/// Forwards `peer`'s outbox for as long as the node runs.
async fn run(node: Weak<NodeInner>, peer: String, waker: Arc<Notify>) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let Some(strong) = node.upgrade() else { return };
        if strong.is_stopping() {
            return;
        }
        let Some(lattice) = strong.lattice().cloned() else { return };
        if !lattice.is_up(&peer) {
            drop(strong);
            wait_for_peer(&lattice, &waker).await;
            continue;
        }
        let max_bytes = match lattice.max_payload() {
            0 => 1 << 20,
            max => max,
        }
        .saturating_sub(FRAMING)
        .max(1);
        let batch = match strong.store.outbox_batch(&peer, BATCH, max_bytes) {
            Ok(batch) => batch,
            Err(e) => {
                tracing::error!("cannot read the outbox towards `{peer}`: {e}");
                drop(strong);
                tokio::time::sleep(BACKOFF_MAX).await;
                continue;
            }
        };
        if batch.items.is_empty() {
            drop(strong);
            // A commit that fills the outbox wakes us; the timeout is a
            // safety net, not the mechanism.
            let _ = tokio::time::timeout(Duration::from_secs(5), waker.notified()).await;
            continue;
        }
        let body = encode(&Deliver { watermark: batch.watermark, items: batch.items });
        match lattice.request(&peer, Op::Deliver, body, DELIVER_TIMEOUT).await {
            Ok(answer) => match decode::<Delivered>(&answer) {
                Ok(done) => {
                    let deferred = done.deferred;
                    if !done.accepted.is_empty() {
                        let count = done.accepted.len() as u64;
                        if let Err(e) = strong.store.forwarded(&peer, done.accepted).await {
                            tracing::warn!("forwarded to `{peer}` but could not clear the outbox (sent again): {e}");
                        } else {
                            strong.forwarders.forwarded.fetch_add(count, Ordering::Relaxed);
                        }
                    }
                    if let Some((_, reason)) = deferred.first() {
                        tracing::debug!("`{peer}` deferred {} messages: {reason}", deferred.len());
                        drop(strong);
                        backoff = sleep_backoff(backoff).await;
                    } else {
                        backoff = BACKOFF_MIN;
                    }
                }
                Err(e) => {
                    tracing::warn!("`{peer}` answered a batch with something unreadable: {e}");
                    drop(strong);
                    backoff = sleep_backoff(backoff).await;
                }
            },
            Err(e) => {
                if !matches!(e, LatticeError::Disconnected | LatticeError::NoResponder(_)) {
                    tracing::warn!("forwarding to `{peer}` failed (will retry): {e}");
                }
                drop(strong);
                backoff = sleep_backoff(backoff).await;
            }
        }
    }
}

/// Waits until the directory changes (the peer may be up) or a while.
async fn wait_for_peer(lattice: &pigeon_lattice::Lattice, waker: &Notify) {
    let mut changes = lattice.watch();
    tokio::select! {
        _ = changes.changed() => {}
        _ = waker.notified() => {}
        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
    }
}

async fn sleep_backoff(backoff: Duration) -> Duration {
    tokio::time::sleep(backoff).await;
    (backoff * 2).min(BACKOFF_MAX)
}

/// A peer's batch: committed here, then acknowledged.
pub(super) async fn receive(
    node: &Arc<NodeInner>,
    source: String,
    incarnation: String,
    body: &[u8],
) -> Result<Vec<u8>, String> {
    let Deliver { watermark, items } = decode(body)?;
    let outcomes = node
        .store
        .accept_inbound(InboundBatch { source, incarnation, watermark, items })
        .await
        .map_err(|e| e.to_string())?;
    let mut done = Delivered { accepted: Vec::new(), deferred: Vec::new() };
    for outcome in outcomes {
        match outcome {
            InboundOutcome::Accepted(seq) => done.accepted.push(seq),
            InboundOutcome::Deferred { seq, reason } => done.deferred.push((seq, reason)),
        }
    }
    Ok(encode(&done))
}
