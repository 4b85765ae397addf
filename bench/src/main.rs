//! `just bench`: how fast Pigeon makes messages durable, next to the
//! ceilings of the same disk measured in the same run.
//!
//! Every figure is the median of several repetitions (spread shown), after a
//! warm-up. The ceilings are:
//! - `fdatasync` of a 4 KiB write: the physical floor of one durable commit;
//! - redb with one durable commit per message: what a store without group
//!   commit can do;
//! - redb with 1,000 messages per commit: the batching ceiling.
//!
//! Pigeon's figure is `Store::enqueue` (a persistent send, acknowledged once
//! durable) from 1 and 32 concurrent senders, through the group committer.
//! Finally it measures how long opening a store with a million pending
//! messages takes (recovery must not scan messages).

mod jetstream;
mod measure;

use std::sync::Arc;
use std::time::{Duration, Instant};

use measure::{Sample, median_rate};
use pigeon_store::{ActorType, Envelope, Store, TypeLimits, now_ms};
use redb::{Database, Durability, TableDefinition};

const PAYLOAD: [u8; 64] = [7; 64];
const REPS: usize = 5;
const RAW: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("raw");

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let scratch = tempfile::tempdir()?;
    println!("Pigeon benchmarks — {} cores, 64-byte payloads, median of {REPS} runs (± spread)\n", cores());
    let mut rows = Vec::new();

    let fsync = median_rate(REPS, || fsync_floor(scratch.path(), 500))?;
    rows.push(("fdatasync of 4 KiB (floor per durable commit)", 1, fsync.clone()));
    let one = median_rate(REPS, || redb_commits(scratch.path(), 1, 1, 400))?;
    rows.push(("redb, one durable commit per message", 1, one.clone()));
    let one32 = median_rate(REPS, || redb_commits(scratch.path(), 32, 1, 25))?;
    rows.push(("redb, one durable commit per message", 32, one32.clone()));
    let batched = median_rate(REPS, || redb_commits(scratch.path(), 1, 1_000, 50))?;
    rows.push(("redb, 1,000 messages per commit (ceiling)", 1, batched.clone()));

    // Each repetition starts from an empty store: the steady state of a
    // system that keeps up. `backlog` keeps one store across repetitions, so
    // every mailbox holds thousands of messages (more B-tree pages per commit).
    let scenarios: [(&str, usize, usize, Target); 4] = [
        ("pigeon, persistent send (group commit)", 1, 400, Target::OwnActor),
        ("pigeon, persistent send (group commit)", 32, 200, Target::OwnActor),
        ("pigeon, persistent send, one hot mailbox", 32, 200, Target::OneActor),
        ("pigeon, persistent send, 1,000s queued each", 32, 200, Target::OwnActor),
    ];
    let backlog = open_store(&scratch.path().join("backlog"))?;
    let mut commits = (0u64, 0u64, 0u64);
    for (i, (name, senders, per_sender, target)) in scenarios.into_iter().enumerate() {
        let sample = median_rate(REPS, || {
            let fresh;
            let store = if i == 3 {
                &backlog
            } else {
                let dir = scratch.path().join(format!("pigeon-{i}"));
                let _ = std::fs::remove_dir_all(&dir);
                fresh = open_store(&dir)?;
                &fresh
            };
            let result = runtime.block_on(pigeon_enqueue(store, senders, per_sender, target));
            let stats = store.commit_stats();
            let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
            if i == 1 {
                commits = (
                    commits.0 + load(&stats.batches),
                    commits.1 + load(&stats.requests),
                    commits.2 + load(&stats.commit_nanos),
                );
            }
            result
        })?;
        rows.push((name, senders, sample));
    }
    print_table(&rows, &one);
    let (batches, requests, nanos) = commits;
    println!(
        "\ngroup commit, 32 senders: {:.1} messages per commit on average, {:.0} µs per commit",
        requests as f64 / batches.max(1) as f64,
        nanos as f64 / batches.max(1) as f64 / 1e3
    );

    let pigeon32 = rows[5].2.median;
    let ratio = pigeon32 / one32.median.max(1.0);
    println!(
        "aim: group commit ≥ 10× one commit per message with 32 senders — {ratio:.1}× ({})",
        if ratio >= 10.0 { "met" } else { "missed" }
    );

    let pigeon = [(1, rows[4].2.clone()), (32, rows[5].2.clone())];
    peers(&runtime, scratch.path(), &pigeon)?;

    let pending = 1_000_000;
    let (fill, open) = runtime.block_on(recovery(&scratch.path().join("recovery"), pending))?;
    println!(
        "\nrecovery: {pending} pending messages written in {fill:.1?}; Store::open + first page of pending actors took {open:.1?}"
    );
    Ok(())
}

/// The brokers a user would pick instead, measured now on the same disk,
/// next to Pigeon's figure for as many senders.
fn peers(
    runtime: &tokio::runtime::Runtime,
    scratch: &std::path::Path,
    pigeon: &[(usize, Sample)],
) -> anyhow::Result<()> {
    println!("\npeers, same run: durable publishes, each acknowledged once on disk");
    let name = "NATS JetStream, file stream, sync always";
    if !jetstream::installed() {
        println!("{name:<48} not installed ({})", jetstream::INSTALL);
        return Ok(());
    }
    let server = jetstream::start(&scratch.join("nats"))?;
    println!("{:<48} {:>7} {:>14} {:>10} {:>12}", "peer", "senders", "messages/s", "spread", "pigeon ÷ it");
    for (senders, ours) in pigeon {
        let per_sender = if *senders == 1 { 400 } else { 100 };
        let sample =
            measure::median_rate(REPS, || runtime.block_on(jetstream::publish(&server, *senders, per_sender)))?;
        println!(
            "{name:<48} {senders:>7} {:>14} {:>9.0}% {:>11.1}×",
            measure::thousands(sample.median),
            sample.spread * 100.0,
            ours.median / sample.median.max(1.0)
        );
    }
    Ok(())
}

fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

fn print_table(rows: &[(&str, usize, Sample)], baseline: &Sample) {
    println!("{:<48} {:>7} {:>14} {:>10} {:>12}", "scenario", "senders", "messages/s", "spread", "vs 1 commit");
    for (name, senders, s) in rows {
        println!(
            "{:<48} {:>7} {:>14} {:>9.0}% {:>11.1}×",
            name,
            senders,
            measure::thousands(s.median),
            s.spread * 100.0,
            s.median / baseline.median.max(1.0)
        );
    }
}

/// Writes 4 KiB and `fdatasync`s it, `n` times: durable commits per second.
fn fsync_floor(dir: &std::path::Path, n: usize) -> anyhow::Result<(usize, Duration)> {
    use std::io::{Seek, SeekFrom, Write};
    let mut file = std::fs::OpenOptions::new().create(true).truncate(true).write(true).open(dir.join("fsync"))?;
    let block = [1u8; 4096];
    let started = Instant::now();
    for _ in 0..n {
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&block)?;
        file.sync_data()?;
    }
    Ok((n, started.elapsed()))
}

/// `threads` writers each make `commits` durable commits of `per_commit`
/// 64-byte messages to a raw redb table.
fn redb_commits(
    dir: &std::path::Path,
    threads: usize,
    per_commit: usize,
    commits: usize,
) -> anyhow::Result<(usize, Duration)> {
    let path = dir.join("raw.redb");
    let _ = std::fs::remove_file(&path);
    let db = Arc::new(Database::create(&path)?);
    let started = Instant::now();
    std::thread::scope(|s| -> anyhow::Result<()> {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let db = db.clone();
                s.spawn(move || -> anyhow::Result<()> {
                    for c in 0..commits {
                        let mut txn = db.begin_write()?;
                        txn.set_durability(Durability::Immediate)?;
                        {
                            let mut table = txn.open_table(RAW)?;
                            for i in 0..per_commit {
                                table.insert((t as u64, (c * per_commit + i) as u64), PAYLOAD.as_slice())?;
                            }
                        }
                        txn.commit()?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("writer panicked"))??;
        }
        Ok(())
    })?;
    Ok((threads * commits * per_commit, started.elapsed()))
}

fn open_store(dir: &std::path::Path) -> anyhow::Result<Store> {
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

/// Whom the senders of a scenario send to.
#[derive(Clone, Copy)]
enum Target {
    /// Each sender to its own actor.
    OwnActor,
    /// All senders to the same actor.
    OneActor,
}

/// `senders` concurrent tasks each send `per_sender` persistent messages,
/// waiting for each to be durable.
async fn pigeon_enqueue(
    store: &Store,
    senders: usize,
    per_sender: usize,
    target: Target,
) -> anyhow::Result<(usize, Duration)> {
    let started = Instant::now();
    let tasks: Vec<_> = (0..senders)
        .map(|s| {
            let store = store.clone();
            tokio::spawn(async move {
                let to = match target {
                    Target::OwnActor => format!("bench/{s}"),
                    Target::OneActor => "bench/hot".to_string(),
                };
                for _ in 0..per_sender {
                    store.enqueue(Envelope::new(to.as_str(), PAYLOAD.to_vec())).await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    Ok((senders * per_sender, started.elapsed()))
}

/// Fills a store with `n` pending messages (one per actor), closes it, and
/// times reopening it and reading the first page of the pending index.
async fn recovery(dir: &std::path::Path, n: usize) -> anyhow::Result<(Duration, Duration)> {
    let started = Instant::now();
    {
        let store = open_store(dir)?;
        let senders = 256;
        let tasks: Vec<_> = (0..senders)
            .map(|s| {
                let store = store.clone();
                tokio::spawn(async move {
                    for i in (s..n).step_by(senders) {
                        store.enqueue(Envelope::new(format!("bench/{i}"), PAYLOAD.to_vec())).await?;
                    }
                    anyhow::Ok(())
                })
            })
            .collect();
        for t in tasks {
            t.await??;
        }
    }
    let fill = started.elapsed();
    // The committer thread lets go of the file once its channel closes.
    let deadline = Instant::now() + Duration::from_secs(10);
    let opened = loop {
        let started = Instant::now();
        match Store::open(dir) {
            Ok(store) => {
                let page = store.pending_actors(None, 1024)?;
                anyhow::ensure!(page.len() == 1024, "expected pending actors after reopening");
                break started.elapsed();
            }
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(e.into()),
        }
    };
    Ok((fill, opened))
}
