//! Scenarios 2–4 on a real node (store, scheduler, wasmtime host) in this
//! process, running the example guests built by `pigeon-test-artifacts`:
//! durable processing, call latency and activation. Scenarios 5 and 6,
//! which need a process of their own to measure, are in `footprint`.

use std::path::Path;
use std::time::{Duration, Instant};

use pigeon_node::pigeon_host::HostConfig;
use pigeon_node::pigeon_store::{Delivery, Envelope, MessageKind, TypeLimits};
use pigeon_node::{Node, NodeConfig};
use pigeon_test_artifacts as artifacts;

use crate::measure::{Latency, fan_out, median_rate, micros, thousands};
use crate::report::{Cell, Peer, Report, Row};
use crate::{REPS, footprint};

/// Longest any single wait of the bench may take.
const PATIENCE: Duration = Duration::from_secs(300);

/// Instances the bench's nodes may keep alive at once: room for the
/// 10,000 active actors of scenario 5. (Each live instance holds about six
/// memory mappings; Linux's default `vm.max_map_count` of 65,530 caps a
/// process near 10,000 of them.)
pub const MAX_INSTANCES: u32 = 10_100;

/// Instances of the nodes of scenarios 2–4, which keep at most 2,000 actors
/// live. A pool reserves its mappings up front, and a node's engine may
/// outlive its shutdown by a moment: two pools of `MAX_INSTANCES` at once
/// would pass the kernel's map limit, two of these stay far below it.
const SCENARIO_INSTANCES: u32 = 2_100;

/// Limits for the bench's types: mailboxes that never refuse, and actors
/// that stay active for the whole run (passivation is measured on purpose,
/// not by accident).
pub fn limits() -> TypeLimits {
    TypeLimits { mailbox_bound: u64::MAX, idle_ms: 3_600_000, ..TypeLimits::default() }
}

/// A node on `dir`, with room for `max_instances` live actors and the
/// compiled guests cached in `cache`.
pub async fn start(dir: &Path, cache: &Path, max_instances: u32) -> anyhow::Result<Node> {
    let host = HostConfig { max_instances, ..start_config(cache) };
    let config = NodeConfig { host, ..NodeConfig::new(dir) };
    Ok(Node::start(config).await?)
}

/// The engine settings of the bench's nodes of scenarios 2–4 and 7.
pub fn start_config(cache: &Path) -> HostConfig {
    HostConfig {
        cache_dir: Some(cache.to_path_buf()),
        max_instances: SCENARIO_INSTANCES,
        max_memory_bytes: 64 << 20,
        ..HostConfig::default()
    }
}

/// A node on a fresh directory under `scratch` with the counter, caller and
/// account guests deployed.
async fn fresh(scratch: &Path, name: &str) -> anyhow::Result<Node> {
    let dir = scratch.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    let node = start(&dir, &scratch.join("cache"), SCENARIO_INSTANCES).await?;
    for (ty, wasm) in [
        ("counter", artifacts::COUNTER_WASM),
        ("caller", artifacts::CALLER_WASM),
        ("account", artifacts::BANK_ACCOUNT_WASM),
    ] {
        node.deploy(ty, wasm.to_vec(), limits(), Vec::new()).await?;
    }
    Ok(node)
}

/// Scenarios 2–8; `fsync` is the latency of one `fdatasync` in this run.
/// Runs those `wanted`.
pub fn scenarios(
    runtime: &tokio::runtime::Runtime,
    scratch: &Path,
    report: &mut Report,
    fsync: Duration,
    wanted: impl Fn(u32) -> bool,
) -> anyhow::Result<()> {
    if wanted(2) {
        processing(runtime, scratch, report)?;
    }
    if wanted(3) {
        latency(runtime, scratch, report, fsync)?;
    }
    if wanted(4) {
        activation(runtime, scratch, report)?;
    }
    if wanted(5) || wanted(6) {
        footprint::scenarios(runtime, scratch, report)?;
    }
    if wanted(7) {
        crate::lattice::scenario(runtime, scratch, report, fsync)?;
    }
    if wanted(8) {
        crate::rebalance::scenario(runtime, scratch, report)?;
    }
    Ok(())
}

/// Concurrent senders in scenario 2: one per actor of the 1,000-actor case.
/// Each sender waits for its message to be durable before it sends the next,
/// so the offered load is at most one message per sender and group commit;
/// with scenario 1's 64 senders it stayed below what the actors can
/// process, and the row measured the senders instead of the processing.
const SENDERS: usize = 1_000;

/// Scenario 2: persistent `inc`s from [`SENDERS`] senders until every turn has
/// committed, to 1 actor and spread over 1,000 actors.
fn processing(runtime: &tokio::runtime::Runtime, scratch: &Path, report: &mut Report) -> anyhow::Result<()> {
    println!("2 · durable processing");
    for (actors, messages) in [(1usize, 3_000usize), (1_000, 30_000)] {
        let node = runtime.block_on(fresh(scratch, "processing"))?;
        let sample = median_rate(REPS, || runtime.block_on(process(&node, actors, messages)))?;
        runtime.block_on(node.shutdown(Duration::from_secs(10)));
        let row = Row::new(
            format!(
                "2 · durable processing, {} {}, {} senders, send → committed turn",
                thousands(actors as f64),
                crate::plural(actors, "actor"),
                thousands(SENDERS as f64)
            ),
            sample.rate_cell(),
            true,
        );
        if actors == 1_000 {
            let rate = sample.median;
            report.aim(
                "durable processing ≥ 100,000 msg/s across 1,000 actors",
                format!("{rate:.0}/s"),
                rate >= 100_000.0,
            );
        }
        report.row(row);
    }
    Ok(())
}

/// Sends `messages` persistent `inc`s round-robin over `actors` counters
/// from [`SENDERS`] senders and waits until as many turns have committed.
async fn process(node: &Node, actors: usize, messages: usize) -> anyhow::Result<(usize, Duration)> {
    let done_before = node.counters().completed;
    let started = Instant::now();
    let sender = node.clone();
    fan_out(SENDERS, messages, move |i| {
        let node = sender.clone();
        async move {
            node.send(Envelope::new(format!("counter/p{}", i % actors), &b"inc"[..])).await?;
            Ok(())
        }
    })
    .await?;
    let target = done_before + messages as u64;
    wait_for(|| node.counters().completed >= target, "every turn to commit").await?;
    Ok((messages, started.elapsed()))
}

/// Polls `done` every 200 µs until it holds, for at most [`PATIENCE`].
pub async fn wait_for(mut done: impl FnMut() -> bool, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        anyhow::ensure!(Instant::now() < deadline, "gave up waiting {PATIENCE:?} for {what}");
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    Ok(())
}

/// Scenario 3: call round trips, from outside the node and between actors.
fn latency(
    runtime: &tokio::runtime::Runtime,
    scratch: &Path,
    report: &mut Report,
    fsync: Duration,
) -> anyhow::Result<()> {
    println!("3 · call latency");
    let node = runtime.block_on(fresh(scratch, "latency"))?;
    let fsync_peer =
        || Peer::Measured(Cell { text: format!("{} per sync", micros(fsync)), value: fsync.as_secs_f64() });
    let mut between = Vec::new();
    for delivery in [Delivery::Transient, Delivery::Persistent] {
        let name = if delivery == Delivery::Transient { "transient" } else { "persistent" };
        // Actor to actor: the caller times each call with its own clock.
        let timed = Latency::measure(REPS, || runtime.block_on(guest_timed(&node, delivery, 200)))?;
        let mut row = Row::new(format!("3 · call between two actors, {name} (p50/p99)"), timed.cell(), false);
        if delivery == Delivery::Persistent {
            row = row.with(0, fsync_peer());
        }
        between.push(timed);
        report.row(row);
        // From outside: a call into the node and back, by the counter.
        let outside = Latency::measure(REPS, || {
            runtime.block_on(client_calls(&node, &["counter/lat".into()], b"get".to_vec(), None, delivery, 300))
        })?;
        report.row(Row::new(format!("3 · call from a client to an actor, {name}"), outside.cell(), false));
        let invoke = node.invocation("account/lat", "acme:bank/account.balance()")?;
        let typed = Latency::measure(REPS, || {
            let (payload, operation) = (invoke.envelope.payload.clone(), invoke.envelope.operation.clone());
            runtime.block_on(client_calls(&node, &["account/lat".into()], payload, operation, delivery, 300))
        })?;
        report.row(Row::new(format!("3 · typed RPC `balance()` from a client, {name}"), typed.cell(), false));
    }
    runtime.block_on(node.shutdown(Duration::from_secs(10)));
    let transient = between[0].p50;
    report.aim("call p50 between actors, transient < 10 µs", micros(transient), transient < Duration::from_micros(10));
    let persistent = between[1].p50;
    report.aim(
        "call p50 between actors, persistent < 2 fsync latencies",
        format!(
            "{} = {:.1} fsyncs of {}",
            micros(persistent),
            persistent.as_secs_f64() / fsync.as_secs_f64(),
            micros(fsync)
        ),
        persistent < fsync * 2,
    );
    Ok(())
}

/// The caller guest calls `counter/lat` `n` times inside one turn and
/// reports each round trip as its clock saw it.
async fn guest_timed(node: &Node, delivery: Delivery, n: usize) -> anyhow::Result<Vec<Duration>> {
    timed_calls(node, "caller/lat", "counter/lat", delivery, n).await
}

/// The caller guest `caller` calls `callee` (a counter) `n` times inside
/// one turn and reports each round trip as its clock saw it.
pub async fn timed_calls(
    node: &Node,
    caller: &str,
    callee: &str,
    delivery: Delivery,
    n: usize,
) -> anyhow::Result<Vec<Duration>> {
    let mut envelope = Envelope::new(caller, format!("time-calls {n} {callee} get")).with_kind(MessageKind::Call);
    envelope.delivery = delivery;
    let reply = node.request(envelope, PATIENCE).await?.unwrap_or_default();
    let text = String::from_utf8(reply)?;
    text.split_whitespace()
        .map(|t| Ok(Duration::from_nanos(t.parse().map_err(|_| anyhow::anyhow!("the caller replied `{text}`"))?)))
        .collect()
}

/// 2,000 counter addresses, distinct for each `tag`.
fn actors(tag: &str) -> Vec<String> {
    (0..2_000).map(|i| format!("counter/{tag}-{i}")).collect()
}

/// One timed transient `get` to each of `to`, in turn.
async fn first_calls(node: &Node, to: &[String]) -> anyhow::Result<Vec<Duration>> {
    client_calls(node, to, b"get".to_vec(), None, Delivery::Transient, 1).await
}

/// `n` sequential calls to each of `to`, each timed, made by a task on the
/// node's runtime — where the HTTP API's handlers make them — rather than
/// from the bench's own thread, whose every request would have to wake a
/// parked worker thread.
async fn client_calls(
    node: &Node,
    to: &[String],
    payload: Vec<u8>,
    operation: Option<String>,
    delivery: Delivery,
    n: usize,
) -> anyhow::Result<Vec<Duration>> {
    let (node, to) = (node.clone(), to.to_vec());
    tokio::spawn(async move {
        let mut times = Vec::with_capacity(n * to.len());
        for actor in &to {
            for _ in 0..n {
                let mut envelope = Envelope::new(actor, payload.clone()).with_kind(MessageKind::Call);
                envelope.operation = operation.clone();
                envelope.delivery = delivery;
                let started = Instant::now();
                node.request(envelope, PATIENCE).await?;
                times.push(started.elapsed());
            }
        }
        Ok(times)
    })
    .await?
}

/// Scenario 4: a transient call to each of 10,000 distinct actors (2,000
/// per repetition): activation, first turn and the round trip. Measured
/// twice: to passivated actors — active once, then passivated — as a
/// running node meets them, and to actors new to a fresh node, whose
/// instances each take a pool slot no instance has used yet.
fn activation(runtime: &tokio::runtime::Runtime, scratch: &Path, report: &mut Report) -> anyhow::Result<()> {
    println!("4 · activation");
    let node = runtime.block_on(async {
        let dir = scratch.join("passivation");
        let _ = std::fs::remove_dir_all(&dir);
        let node = start(&dir, &scratch.join("cache"), SCENARIO_INSTANCES).await?;
        // Idle long enough that a repetition's 2,000 first messages are
        // all sent before the first of its actors passivates.
        let napping = TypeLimits { idle_ms: 500, ..limits() };
        node.deploy("counter", artifacts::COUNTER_WASM.to_vec(), napping, Vec::new()).await?;
        anyhow::Ok(node)
    })?;
    let passivated = |node: &Node| node.active_actors() == 0;
    let mut next = 0;
    let first = Latency::measure(REPS, || {
        next += 1;
        let to = actors(&format!("p{next}"));
        runtime.block_on(async {
            first_calls(&node, &to).await?;
            wait_for(|| passivated(&node), "the actors to passivate").await?;
            let times = first_calls(&node, &to).await?;
            wait_for(|| passivated(&node), "the actors to passivate").await?;
            anyhow::Ok(times)
        })
    })?;
    runtime.block_on(node.shutdown(Duration::from_secs(10)));
    // A fresh node per repetition: every instance takes a cold slot.
    let cold = Latency::measure(REPS, || {
        next += 1;
        let to = actors(&format!("n{next}"));
        runtime.block_on(async {
            let node = fresh(scratch, "activation").await?;
            let times = first_calls(&node, &to).await?;
            node.shutdown(Duration::from_secs(10)).await;
            anyhow::Ok(times)
        })
    })?;
    let node = runtime.block_on(fresh(scratch, "activation"))?;
    let live = Latency::measure(REPS, || {
        runtime.block_on(client_calls(
            &node,
            &["counter/live".into()],
            b"get".to_vec(),
            None,
            Delivery::Transient,
            2_000,
        ))
    })?;
    runtime.block_on(node.shutdown(Duration::from_secs(10)));
    report.row(Row::new(
        "4 · first message to a passivated actor (activation + turn + round trip)",
        first.cell(),
        false,
    ));
    report.row(Row::new("4 · first message to an actor new to a fresh node (cold pool slot)", cold.cell(), false));
    report.row(Row::new("4 · the same call to an active actor (for comparison)", live.cell(), false));
    let activation = first.p50.saturating_sub(live.p50);
    report.aim(
        "activation p50 < 50 µs (first-message p50 − active p50)",
        micros(activation),
        activation < Duration::from_micros(50),
    );
    Ok(())
}
