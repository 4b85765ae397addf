//! Scenario 1, Pigeon's side: persistent sends acknowledged once durable.
//!
//! Each sender awaits `Store::enqueue` — the path of every persistent send
//! (`Node::send`, the HTTP API, a guest's `send` when its turn commits) —
//! which returns once the group committer has made the message durable.
//! Each sender sends to its own actor, on an empty store per repetition.
//! And a turn's commit through the store, shaped like a counter's, for the
//! note that sets it beside the same writes made durable by redb alone.

use std::path::Path;
use std::time::{Duration, Instant};

use pigeon_store::{ActorType, Envelope, Store, TurnCommit, TypeLimits, now_ms};

use crate::measure::fan_out;

/// A store with one actor type, `bench`, whose mailboxes are unbounded.
pub fn open_store(dir: &Path) -> anyhow::Result<Store> {
    let store = Store::open(dir)?;
    let limits = TypeLimits { mailbox_bound: u64::MAX, ..TypeLimits::default() };
    let ty = ActorType {
        name: "bench".into(),
        component_hash: "bench".into(),
        component_size: 0,
        limits,
        deployed_at_ms: now_ms(),
        links: Vec::new(),
    };
    store.put_type(&ty, b"")?;
    Ok(store)
}

/// `senders` concurrent tasks each send `per_sender` persistent messages to
/// their own actor, waiting for each to be durable.
pub async fn enqueue(store: &Store, senders: usize, per_sender: usize) -> anyhow::Result<(usize, Duration)> {
    let started = Instant::now();
    let store = store.clone();
    fan_out(senders, senders * per_sender, move |i| {
        let store = store.clone();
        async move {
            // Task `s` takes s, s + senders, …: always its own actor.
            store.enqueue(Envelope::new(format!("bench/{}", i % senders), super::PAYLOAD.to_vec())).await?;
            Ok(())
        }
    })
    .await?;
    Ok((senders * per_sender, started.elapsed()))
}

/// `n` turn commits of `bench` actors, one of [`crate::disk::ACTORS`] in
/// turn, each writing one state row (and, as every turn, its stats row),
/// one at a time; each commit's latency, from submission to durable.
pub async fn turn_commits(store: &Store, n: usize) -> anyhow::Result<Vec<Duration>> {
    let mut latencies = Vec::with_capacity(n);
    for i in 0..n {
        let commit = TurnCommit {
            actor: format!("bench/a{}", i % crate::disk::ACTORS),
            state_writes: vec![("count".into(), Some((i as u64).to_le_bytes().to_vec()))],
            ..TurnCommit::default()
        };
        let started = Instant::now();
        store.commit_turn(commit).await?;
        latencies.push(started.elapsed());
    }
    Ok(latencies)
}
