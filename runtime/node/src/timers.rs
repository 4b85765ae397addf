//! The timer task: moves delayed messages (timers, retries in backoff) into
//! their mailboxes when they fall due.
//!
//! It sleeps until the earliest due time in the store, and is woken early
//! when a commit schedules something sooner. Promotion is itself a group
//! commit request, so a due message enters its mailbox durably and in its
//! original place (it kept its sequence number).

use std::sync::Arc;
use std::time::Duration;

use pigeon_store::now_ms;

use crate::NodeInner;

/// Longest sleep between checks: bounds the effect of a wall-clock jump.
const MAX_SLEEP: Duration = Duration::from_secs(1);

/// How often dedup keys and old replies are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

pub(crate) async fn run_timers(node: Arc<NodeInner>) {
    let mut next_sweep = tokio::time::Instant::now() + SWEEP_EVERY;
    while !node.is_stopping() {
        if tokio::time::Instant::now() >= next_sweep {
            if let Err(e) = node.store.sweep(now_ms()).await {
                tracing::warn!("cannot sweep dedup keys and replies: {e}");
            }
            next_sweep = tokio::time::Instant::now() + SWEEP_EVERY;
        }
        let now = now_ms();
        let wait = match node.store.next_due() {
            Ok(Some(due)) if due <= now => {
                if let Err(e) = node.store.promote_due(now).await {
                    tracing::error!("cannot promote due messages: {e}");
                    tokio::time::sleep(MAX_SLEEP).await;
                }
                continue;
            }
            Ok(Some(due)) => Duration::from_millis(due - now).min(MAX_SLEEP),
            Ok(None) => MAX_SLEEP,
            Err(e) => {
                tracing::error!("cannot read delayed messages: {e}");
                MAX_SLEEP
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = node.timer_wake.notified() => {}
        }
    }
}
