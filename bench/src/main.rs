//! `just bench`: every scenario of Pigeon's performance in one run, next to
//! the disk's ceilings and the brokers a user would pick instead, measured
//! in the same run on the same machine.
//!
//! Scenarios (64-byte payloads):
//! 1. durable accept — persistent sends/s acknowledged as durable, 1 and 64
//!    senders (`accept`), against `fdatasync`, raw redb (`disk`), RabbitMQ
//!    with publisher confirms (`rabbitmq`) and NATS JetStream with
//!    `sync_interval: always` (`jetstream`);
//! 2. durable processing, 3. call latency, 4. activation, 5. footprint,
//! 6. recovery — on a real node running the example counter guest (`node`);
//! 7. the lattice — two nodes on a real nats-server: durable accept to a
//!    remote owner and calls between actors on different nodes, next to
//!    the same on one node and to raw NATS request–reply (`lattice`);
//! 8. a rebalance — 10,000 actors with their state moving between two
//!    nodes under load: actors and bytes moved per second, and the send
//!    latency to the moving actors next to the same without a move
//!    (`rebalance`).
//!
//! Every figure is a warm-up and then the median of [`REPS`] repetitions
//! with their spread. The table goes to stdout and, with the machine's
//! description, into `docs/benchmarks.md`. Benchmarks never decide whether
//! the tests pass.

/// The allocator of the `pigeon` binary, so that the nodes measured here
/// allocate as a user's do.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod accept;
mod disk;
mod footprint;
mod http;
mod jetstream;
mod lattice;
mod measure;
mod node;
mod rabbitmq;
mod rebalance;
mod report;
mod smaps;

use std::path::Path;

use measure::{Latency, median_rate, micros};
use report::{Cell, Peer, Report, Row};

pub const PAYLOAD: [u8; 64] = [7; 64];
pub const REPS: usize = 5;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "child") {
        return footprint::child(&args[1..]);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    // The scratch directory lives next to the target dir, on the disk a node's
    // `.pigeon/` would use (a tmpfs /tmp would flatter every fsync).
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // `target/` itself may not exist when CARGO_TARGET_DIR points elsewhere.
    std::fs::create_dir_all(root.join("target"))?;
    let scratch = tempfile::Builder::new().prefix("pigeon-bench-").tempdir_in(root.join("target"))?;
    let started = std::time::Instant::now();
    println!("Pigeon benchmarks: a warm-up, then the median of {REPS} runs (± spread)\n");
    let mut report = Report::default();
    let mut peers = Vec::new();

    // `--only N` runs scenario N alone (for profiling) and writes no docs.
    let only: Option<u32> = match args.iter().position(|a| a == "--only") {
        Some(i) => Some(
            args.get(i + 1)
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| anyhow::anyhow!("--only takes a scenario number, 1 to 8"))?,
        ),
        None => None,
    };
    let fsync = if only.is_none_or(|n| n == 1) {
        durable_accept(&runtime, scratch.path(), &mut report, &mut peers)?
    } else {
        std::time::Duration::from_secs_f64(1.0 / median_rate(REPS, || disk::fsync_floor(scratch.path(), 500))?.median)
    };
    node::scenarios(&runtime, scratch.path(), &mut report, fsync, |n| only.is_none_or(|o| o == n))?;
    if only.is_some() {
        return Ok(());
    }

    let machine = report::machine(scratch.path(), &peers);
    let markdown = report.markdown(&machine);
    println!("\n{markdown}");
    let doc = root.join("docs/benchmarks.md");
    report::write_into(&doc, &markdown)?;
    println!("written to {} ({:.0?} in all)", doc.display(), started.elapsed());
    Ok(())
}

/// Scenario 1: persistent sends acknowledged as durable, with 1 and 64
/// senders, and every peer at the same concurrency. Returns the latency of
/// one `fdatasync`, the unit of the persistent call's aim.
fn durable_accept(
    runtime: &tokio::runtime::Runtime,
    scratch: &Path,
    report: &mut Report,
    versions: &mut Vec<String>,
) -> anyhow::Result<std::time::Duration> {
    println!("1 · durable accept");
    let fsync = median_rate(REPS, || disk::fsync_floor(scratch, 500))?;
    let batched = median_rate(REPS, || disk::redb_commits(scratch, 1, 1_000, 50))?;
    let mut rows = Vec::new();
    for (senders, per_sender) in [(1, 400), (64, 100)] {
        let redb_one = median_rate(REPS, || disk::redb_commits(scratch, senders, 1, (400 / senders).max(8)))?;
        let mut before = (0, 0);
        let ours = median_rate(REPS, || {
            let dir = scratch.join("accept");
            let _ = std::fs::remove_dir_all(&dir);
            let store = accept::open_store(&dir)?;
            let result = runtime.block_on(accept::enqueue(&store, senders, per_sender));
            let stats = store.commit_stats();
            let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
            before = (before.0 + load(&stats.batches), before.1 + load(&stats.requests));
            result
        })?;
        if senders > 1 {
            report.note(format!(
                "group commit with {senders} senders: {:.1} messages per durable commit on average",
                before.1 as f64 / before.0.max(1) as f64
            ));
        }
        let row =
            Row::new(format!("1 · durable accept, {senders} {}", plural(senders, "sender")), ours.rate_cell(), true)
                .with(0, Peer::Measured(fsync.rate_cell()))
                .with(1, Peer::Measured(redb_one.rate_cell()))
                .with(2, Peer::Measured(batched.rate_cell()));
        rows.push((senders, row));
    }

    let rabbit = if rabbitmq::installed() {
        versions.push(format!("RabbitMQ {} (Debian)", rabbitmq::version().unwrap_or_default()));
        Some(runtime.block_on(rabbitmq::start(&scratch.join("rabbitmq")))?)
    } else {
        None
    };
    let nats = if jetstream::installed() {
        versions.push(format!("nats-server {}", jetstream::version().unwrap_or_default()));
        Some(jetstream::start(&scratch.join("nats"))?)
    } else {
        None
    };
    // The peers at each concurrency, once, for the store's rows and the API's.
    let mut peer_cells = Vec::new();
    for (senders, per_sender) in [(1, 400), (64, 50)] {
        let rabbit = match &rabbit {
            Some(b) => Peer::Measured(
                median_rate(REPS, || runtime.block_on(rabbitmq::publish(b, senders, per_sender)))?.rate_cell(),
            ),
            None => Peer::NotInstalled(rabbitmq::INSTALL),
        };
        let nats = match &nats {
            Some(s) => Peer::Measured(
                median_rate(REPS, || runtime.block_on(jetstream::publish(s, senders, per_sender)))?.rate_cell(),
            ),
            None => Peer::NotInstalled(jetstream::INSTALL),
        };
        peer_cells.push((senders, rabbit, nats));
    }
    let store = accept::open_store(&scratch.join("turns-store"))?;
    let through_store = Latency::measure(REPS, || runtime.block_on(accept::turn_commits(&store, 400)))?;
    drop(store);
    let by_redb = Latency::measure(REPS, || disk::turn_commits(scratch, 400))?;
    for (latency, what) in [
        (by_redb, "made durable by redb alone (the store before its commit log)"),
        (through_store, "committed through the store (its commit log, docs/design/commit-log.md)"),
    ] {
        report.note(format!(
            "a counter turn's writes (state and stats rows), one commit at a time, {what}: p50 {} · p99 {}",
            micros(latency.p50),
            micros(latency.p99)
        ));
    }
    let http = http_rows(runtime, scratch, report)?
        .into_iter()
        .map(|(n, row)| (n, row.with(0, Peer::Measured(fsync.rate_cell()))));
    let fsync_latency = std::time::Duration::from_secs_f64(1.0 / fsync.median);
    for (senders, row) in rows.into_iter().chain(http) {
        let Some((_, rabbit, nats)) = peer_cells.iter().find(|(n, ..)| *n == senders) else { continue };
        let row = row.with(3, rabbit.clone()).with(4, nats.clone());
        accept_aims(report, &row, senders, fsync_latency);
        report.row(row);
    }
    Ok(fsync_latency)
}

/// Scenario 1 through the HTTP API (`http`): one client, then 64, each
/// with a keep-alive connection and one request in flight. Each row's
/// cell is the rate, with the p50 of a send.
fn http_rows(
    runtime: &tokio::runtime::Runtime,
    scratch: &Path,
    report: &mut Report,
) -> anyhow::Result<Vec<(usize, Row)>> {
    let api = runtime.block_on(http::serve(&scratch.join("http"), &scratch.join("cache")))?;
    let mut rows = Vec::new();
    for (clients, per_client) in [(1, 400), (64, 100)] {
        let mut runs = Vec::new();
        let rate = median_rate(REPS, || {
            let (n, took, latencies) = runtime.block_on(api.sends(clients, per_client, false))?;
            runs.push(latencies);
            Ok((n, took))
        })?;
        runs.remove(0); // the warm-up's
        let latency = Latency::of_runs(runs)?;
        let cell = Cell {
            text: format!("{} · p50 {} · p99 {}", rate.rate_cell().text, micros(latency.p50), micros(latency.p99)),
            value: rate.median,
        };
        let name = format!("1 · durable accept via HTTP, {clients} {}", plural(clients, "client"));
        rows.push((clients, Row::new(name, cell, true).with_latency(latency.p50)));
    }
    // The HTTP path alone: the same request, transient (no commit).
    let floor = Latency::measure(REPS, || Ok(runtime.block_on(api.sends(1, 400, true))?.2))?;
    report.note(format!(
        "the same request with `transient: true` (the HTTP path and the turn, no disk), 1 client: p50 {} · p99 {}",
        micros(floor.p50),
        micros(floor.p99)
    ));
    let direct = api.node.counters().direct;
    report.note(format!("sends through HTTP accepted with their turn's commit (direct delivery): {direct}"));
    runtime.block_on(api.stop());
    Ok(rows)
}

/// The aims of scenario 1, read off its rows through the HTTP API (and
/// the store's 64-sender row for the batching aim).
fn accept_aims(report: &mut Report, row: &Row, senders: usize, fsync: std::time::Duration) {
    let ours = row.pigeon.value;
    let Some(p50) = row.latency else {
        if let (64, Peer::Measured(Cell { value, .. })) = (senders, &row.peers[2]) {
            let share = ours / value;
            report.aim(
                "durable accept, 64 senders ≥ 50% of batched redb (store level)",
                format!("{:.0}%", share * 100.0),
                share >= 0.5,
            );
        }
        return;
    };
    let who = format!("{senders} {} via HTTP", plural(senders, "client"));
    if senders == 1 {
        let budget = fsync + std::time::Duration::from_micros(150);
        report.aim(
            format!("{who}: send p50 ≤ fsync + 150 µs"),
            format!("{} vs {} (fsync {})", micros(p50), micros(budget), micros(fsync)),
            p50 <= budget,
        );
    }
    let times = if senders == 1 { 1.5 } else { 3.0 };
    for (column, name) in [(3, "RabbitMQ's confirmed durable publishes"), (4, "JetStream's synced publishes")] {
        let aim = format!("{who} ≥ {times}× {name}");
        match &row.peers[column] {
            Peer::Measured(peer) => {
                let ratio = ours / peer.value;
                report.aim(aim, format!("{ratio:.1}×"), ratio >= times)
            }
            _ => report.aim(aim, "peer not installed", false),
        }
    }
}

/// `1 sender`, `64 senders`.
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 { word.to_string() } else { format!("{word}s") }
}
