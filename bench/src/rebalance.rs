//! Scenario 8: a rebalance. Two nodes in this process, `r1` and `r2`, on a
//! real `nats-server` on loopback; [`ACTORS`] counters, each with state
//! (its count and [`WRITES`] applied-op records) and as many dedup keys,
//! placed on one node. Each repetition moves every one of them to the
//! other node (`set_placement`, as `pigeon placement` does) while
//! [`SENDERS`] clients keep sending to them through the node they are
//! leaving. Measured:
//! - **actors moved per second** and **state moved per second**, from the
//!   placement change until the old owner reports its moves complete (what
//!   `pigeon placement` waits for), with the bytes its moves counted;
//! - **send latency to moving actors**: each send awaited until accepted,
//!   during the move, next to the same senders to the same actors on the
//!   same node just before it (the "no rebalance" column).
//!
//! Between repetitions the bench waits until every message sent so far has
//! been handled exactly once on one node or the other, so one move's
//! leftovers do not burden the next measurement.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pigeon_node::Node;
use pigeon_node::pigeon_store::Envelope;
use pigeon_test_artifacts as artifacts;

use crate::measure::{Latency, Sample, bytes, fan_out, thousands};
use crate::report::{Cell, Peer, Report, Row};
use crate::{REPS, jetstream, lattice};

/// Actors moved in each repetition.
const ACTORS: usize = 10_000;
/// Persistent sends with an op id and a dedup key each actor gets before
/// the first move: its state and dedup records.
const WRITES: usize = 4;
/// Concurrent clients sending during (and before) each move.
const SENDERS: usize = 16;
/// Sends measured before each move, the "no rebalance" latency.
const BASELINE_SENDS: usize = 4_000;
/// Longest one move, or the settling after it, may take.
const PATIENCE: Duration = Duration::from_secs(600);
const IDS: [&str; 2] = ["r1", "r2"];

pub fn scenario(runtime: &tokio::runtime::Runtime, scratch: &Path, report: &mut Report) -> anyhow::Result<()> {
    println!("8 · rebalance");
    if !jetstream::installed() {
        report.note(format!("8 · rebalance: not measured, nats-server is not installed (`{}`)", jetstream::INSTALL));
        return Ok(());
    }
    let server = jetstream::start(&scratch.join("rebalance-nats"))?;
    let nodes = runtime.block_on(setup(scratch, &server.url))?;
    let mut sent = (ACTORS * WRITES) as u64;
    let (mut actor_rates, mut byte_rates, mut per_actor) = (Vec::new(), Vec::new(), 0.0);
    let (mut during, mut before) = (Vec::new(), Vec::new());
    let mut took = Vec::new();
    // Run 0 is the warm-up; the actors go back and forth.
    for run in 0..=REPS {
        let (from, to) = (&nodes[run % 2], IDS[(run + 1) % 2]);
        let calm = runtime.block_on(timed_sends(from.clone(), Some(BASELINE_SENDS), None))?;
        let moved = runtime.block_on(move_all(from, to))?;
        sent += (calm.len() + moved.latencies.len()) as u64;
        runtime.block_on(settle(&nodes, sent))?;
        if run == 0 {
            continue;
        }
        actor_rates.push(moved.actors as f64 / moved.took.as_secs_f64());
        byte_rates.push(moved.bytes as f64 / moved.took.as_secs_f64());
        per_actor = moved.bytes as f64 / moved.actors as f64;
        took.push(moved.took.as_secs_f64());
        during.push(moved.latencies);
        before.push(calm);
    }
    let (actors, state) = (Sample::from_rates(actor_rates), Sample::from_rates(byte_rates));
    let title = format!("8 · rebalance: {} actors move to another node", thousands(ACTORS as f64));
    report.row(Row::new(format!("{title}, actors moved"), actors.rate_cell(), true));
    let state_cell = Cell {
        text: format!("{}/s ±{:.0}% ({} per actor)", bytes(state.median), state.spread * 100.0, bytes(per_actor)),
        value: state.median,
    };
    report.row(Row::new(format!("{title}, state moved"), state_cell, true));
    let (during, before) = (Latency::of_runs(during)?, Latency::of_runs(before)?);
    let row = Row::new(
        format!("8 · send to a moving actor, {SENDERS} senders, each awaited until accepted (p99/p50)"),
        during.tail_cell(),
        false,
    )
    .with(7, Peer::Measured(before.tail_cell()));
    report.row(row);
    report.note(format!(
        "rebalance of {} actors: change → complete in {:.2} s (median), {} in all",
        thousands(ACTORS as f64),
        Sample::from_rates(took).median,
        bytes(per_actor * ACTORS as f64)
    ));
    runtime.block_on(async {
        for node in &nodes {
            node.shutdown(Duration::from_secs(10)).await;
        }
    });
    Ok(())
}

/// Nodes `r1` and `r2`, with the counter deployed on `r1` alone and every
/// actor given its state there.
async fn setup(scratch: &Path, url: &str) -> anyhow::Result<Vec<Node>> {
    let nodes = lattice::start_nodes(scratch, url, &IDS).await?;
    let limits = crate::node::limits();
    let on = Some(vec![IDS[0].to_string()]);
    nodes[0].deploy_on("counter", artifacts::COUNTER_WASM.to_vec(), limits, Vec::new(), on).await?;
    lattice::wait("r2 to get the counter", || nodes[1].type_names().len() == 1).await?;
    let sender = nodes[0].clone();
    fan_out(64, ACTORS * WRITES, move |i| {
        let node = sender.clone();
        async move {
            let mut write = Envelope::new(actor(i), &b"inc"[..]).with_header("op-id", format!("w{i}"));
            write.dedup_key = Some(format!("w{i}"));
            node.send(write).await?;
            Ok(())
        }
    })
    .await?;
    settle(&nodes, (ACTORS * WRITES) as u64).await?;
    Ok(nodes)
}

/// The `i`-th actor, spread so that consecutive sends hit different ones.
fn actor(i: usize) -> String {
    format!("counter/a{}", i.wrapping_mul(7_919) % ACTORS)
}

struct Moved {
    actors: u64,
    bytes: u64,
    took: Duration,
    /// Of the sends made while the actors moved.
    latencies: Vec<Duration>,
}

/// Moves every counter from `from` to node `to` under load; see the module doc.
async fn move_all(from: &Node, to: &str) -> anyhow::Result<Moved> {
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(timed_sends(from.clone(), None, Some(stop.clone())));
    let before = from.counters();
    let started = Instant::now();
    from.set_placement("counter", vec![to.to_string()]).await?;
    let completed = complete(from).await;
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let latencies = load.await??;
    completed?;
    let after = from.counters();
    let (actors, bytes) = (after.handed_off - before.handed_off, after.handed_off_bytes - before.handed_off_bytes);
    anyhow::ensure!(
        actors >= ACTORS as u64,
        "only {actors} of {ACTORS} actors moved: the rebalance measured is not the one described"
    );
    Ok(Moved { actors, bytes, took, latencies })
}

/// Polls the counter's placement status on `node` until its change is
/// complete (what `pigeon placement` waits for).
async fn complete(node: &Node) -> anyhow::Result<()> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if node.placement_status("counter").await?.complete {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "the rebalance did not complete in {PATIENCE:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// [`SENDERS`] closed-loop clients sending persistent `inc`s through `node`,
/// each awaited until accepted, `count` of them in all or until `stop`.
/// Returns every send's latency.
async fn timed_sends(node: Node, count: Option<usize>, stop: Option<Arc<AtomicBool>>) -> anyhow::Result<Vec<Duration>> {
    let next = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..SENDERS)
        .map(|_| {
            let (node, next, stop) = (node.clone(), next.clone(), stop.clone());
            tokio::spawn(async move {
                let mut times = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let stopped = stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed));
                    if stopped || count.is_some_and(|n| i >= n) {
                        return anyhow::Ok(times);
                    }
                    let started = Instant::now();
                    node.send(Envelope::new(actor(i), &b"inc"[..])).await?;
                    times.push(started.elapsed());
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for client in clients {
        all.extend(client.await??);
    }
    Ok(all)
}

/// Waits until the nodes together have committed `sent` turns: every
/// message sent so far handled, wherever its actor lives now.
async fn settle(nodes: &[Node], sent: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let done: u64 = nodes.iter().map(|n| n.counters().completed).sum();
        anyhow::ensure!(done <= sent, "{done} turns committed for {sent} messages sent: a message ran twice");
        if done == sent {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "only {done} of {sent} messages handled after {PATIENCE:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
