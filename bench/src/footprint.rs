//! Scenarios 5 and 6, measured in child processes (the bench binary run
//! again as `pigeon-bench child …`), so that resident memory and start-up
//! are those of a node alone, not of a process that ran other scenarios:
//! - 5, footprint: resident memory of a node whose store holds 1,000,000
//!   pending messages for as many passivated actors (against the same node
//!   on an empty store), and of a node with 10,000 active actors; the
//!   store's size on disk per pending message;
//! - 6, recovery: from the start of the node to its first answered call
//!   with those 1,000,000 messages pending.
//!
//! Every child starts from its own copy of the filled store: a node works
//! its backlog off as soon as it starts, and a child that reused the store
//! of the one before would find fewer messages pending. The footprint is
//! measured with one instance slot (`hold`), so that the actors stay
//! passivated with their message while the scheduler takes them all in;
//! with the default pool of 1,000 the node handles tens of thousands of
//! messages before the measurement, and the store's page cache they warm
//! up would be counted as the actors' memory.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use pigeon_node::pigeon_store::{DB_FILE, Delivery, Envelope, MessageKind, Store};

use crate::REPS;
use crate::measure::{Sample, bytes, fan_out, micros, thousands};
use crate::node::{self, wait_for};
use crate::report::{Cell, Report, Row};

/// Pending messages (and passivated actors) of scenarios 5 and 6.
const PENDING: usize = 1_000_000;
/// Active actors of scenario 5.
const ACTIVE: usize = 10_000;

pub fn scenarios(runtime: &tokio::runtime::Runtime, scratch: &Path, report: &mut Report) -> anyhow::Result<()> {
    println!("5 · footprint, 6 · recovery");
    let cache = scratch.join("cache");
    let (empty, pending) = (scratch.join("empty"), scratch.join("pending"));
    for dir in [&empty, &pending] {
        runtime.block_on(deployed(dir, &cache))?;
    }
    let size_before = std::fs::metadata(pending.join(DB_FILE))?.len();
    let filled = Instant::now();
    runtime.block_on(fill(&pending, PENDING))?;
    // Opened again once the filling store has let go: its last checkpoint
    // is then in the file (what the commit log held is written at close).
    drop(runtime.block_on(open(&pending))?);
    let size_after = std::fs::metadata(pending.join(DB_FILE))?.len();
    let per_message = size_after.saturating_sub(size_before) as f64 / PENDING as f64;
    report.note(format!(
        "{} pending messages written in {:.1?} (64 senders); the store grew by {} ({} per message)",
        thousands(PENDING as f64),
        filled.elapsed(),
        bytes(size_after.saturating_sub(size_before) as f64),
        bytes(per_message)
    ));

    let run_dir = scratch.join("run");
    let runs = |dir: &Path, mode: &str| -> anyhow::Result<Vec<[f64; 3]>> {
        let run = |_| {
            copy_store(dir, &run_dir)?;
            run_child(mode, &run_dir, &cache)
        };
        (0..=REPS).map(run).skip(1).collect()
    };
    let idle = runs(&empty, "hold")?;
    let held = runs(&pending, "hold")?;
    let idle_start = runs(&empty, "serve")?;
    let loaded = runs(&pending, "serve")?;
    let rss = |runs: &[[f64; 3]], i: usize| Sample::from_rates(runs.iter().map(|r| r[i]).collect());
    let idle_rss = rss(&idle, 1);
    let loaded_rss = rss(&held, 1);
    let per_actor = (loaded_rss.median - idle_rss.median).max(0.0) / PENDING as f64;
    report.row(Row::new(
        "5 · resident memory, 1,000,000 passivated actors with a pending message each",
        Cell {
            text: format!(
                "{} (empty store: {}) = {} per actor",
                bytes(loaded_rss.median),
                bytes(idle_rss.median),
                bytes(per_actor)
            ),
            value: per_actor,
        },
        false,
    ));
    report.row(Row::new(
        "5 · store on disk per pending message",
        Cell { text: bytes(per_message), value: per_message },
        false,
    ));
    report.aim("memory per passivated actor with a pending message < 1 KiB", bytes(per_actor), per_actor < 1024.0);

    let active: Vec<[f64; 5]> =
        (0..REPS).map(|_| run_child("active", &scratch.join("active"), &cache)).collect::<Result<_, _>>()?;
    let grown = |i: usize| Sample::from_rates(active.iter().map(|r| r[i + 1] - r[i]).collect()).median;
    let (resident, proportional) = (grown(0), grown(2));
    let per_live = proportional / ACTIVE as f64;
    let per_gb = (1u64 << 30) as f64 / per_live.max(1.0);
    report.row(Row::new(
        "5 · memory of 10,000 active counter actors (proportional set; resident set)",
        Cell {
            text: format!(
                "{} = {} per actor ≈ {} per GiB (resident {} = {} per actor)",
                bytes(proportional),
                bytes(per_live),
                thousands(per_gb),
                bytes(resident),
                bytes(resident / ACTIVE as f64)
            ),
            value: per_live,
        },
        false,
    ));
    report.aim("≥ 50,000 live wasm actors per GB", format!("{} per GiB", thousands(per_gb)), per_gb >= 50_000.0);

    let serving = Sample::from_rates(loaded.iter().map(|r| r[2]).collect());
    let took = Duration::from_secs_f64(serving.median);
    report.row(Row::new(
        "6 · recovery: start → first answered call, 1,000,000 pending",
        Cell { text: format!("{} ±{:.0}%", micros(took), serving.spread * 100.0), value: serving.median },
        false,
    ));
    let empty_start = Duration::from_secs_f64(rss(&idle_start, 2).median);
    report.note(format!("the same start on an empty store: {}", micros(empty_start)));
    report.aim("recovery < 1 s with 1,000,000 pending", micros(took), took < Duration::from_secs(1));
    Ok(())
}

/// A node on `dir` with the guests deployed, stopped again.
async fn deployed(dir: &Path, cache: &Path) -> anyhow::Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    let node = node::start(dir, cache, node::MAX_INSTANCES).await?;
    node.deploy("counter", pigeon_test_artifacts::COUNTER_WASM.to_vec(), node::limits(), Vec::new()).await?;
    node.shutdown(Duration::from_secs(10)).await;
    Ok(())
}

/// Opens the store of a stopped node (its committer lets go of the file
/// when its last handle is dropped).
async fn open(dir: &Path) -> anyhow::Result<Store> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match Store::open(dir) {
            Ok(store) => return Ok(store),
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(e) => return Err(e.into()),
        }
    }
}

/// `n` persistent `inc`s, one to each of `counter/0` … `counter/{n-1}`,
/// written while no node runs: they stay pending.
async fn fill(dir: &Path, n: usize) -> anyhow::Result<()> {
    let store = open(dir).await?;
    fan_out(64, n, move |i| {
        let store = store.clone();
        async move {
            store.enqueue(Envelope::new(format!("counter/{i}"), &b"inc"[..])).await?;
            Ok(())
        }
    })
    .await
}

/// Makes `to` a copy of the node directory `from` (its store file).
fn copy_store(from: &Path, to: &Path) -> anyhow::Result<()> {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        anyhow::ensure!(entry.file_type()?.is_file(), "the node directory holds more than files: {:?}", entry.path());
        std::fs::copy(entry.path(), to.join(entry.file_name()))?;
    }
    Ok(())
}

/// Runs `pigeon-bench child MODE DIR CACHE` and reads its N numbers.
fn run_child<const N: usize>(mode: &str, dir: &Path, cache: &Path) -> anyhow::Result<[f64; N]> {
    let out = Command::new(std::env::current_exe()?).args(["child", mode]).arg(dir).arg(cache).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(out.status.success(), "`child {mode}` failed: {}{}", text, String::from_utf8_lossy(&out.stderr));
    let numbers: Vec<f64> = text.split_whitespace().filter_map(|n| n.parse().ok()).collect();
    numbers.try_into().map_err(|n| anyhow::anyhow!("`child {mode}` printed {n:?}"))
}

/// The child's side:
/// - `serve DIR CACHE` starts a node on DIR and prints its resident memory
///   before, its peak once every pending actor is scheduled, and the time
///   to its first answered call;
/// - `hold DIR CACHE`: the same with one instance slot and no call (its
///   time is the start's alone);
/// - `active DIR CACHE` activates [`ACTIVE`] counters on a fresh DIR and
///   prints its resident memory before and after, its proportional set
///   before and after, and the time it took (with `PIGEON_BENCH_SMAPS` set,
///   where the memory is, on stderr).
///
/// The child exits at once: it does not drain the backlog.
pub fn child(args: &[String]) -> anyhow::Result<()> {
    let [mode, dir, cache] = args else { anyhow::bail!("usage: pigeon-bench child serve|hold|active DIR CACHE") };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let (dir, cache) = (Path::new(dir), Path::new(cache));
    let numbers = runtime.block_on(async {
        match mode.as_str() {
            "serve" | "hold" => {
                let before = rss()?;
                let started = Instant::now();
                // `serve`: the default instance pool of `pigeon up`, so
                // recovery activates actors up to it while the backlog
                // drains. `hold`: one slot, so the actors stay passivated.
                let instances = if mode == "serve" { 1_000 } else { 1 };
                let node = node::start(dir, cache, instances).await?;
                // With one slot the probe would queue behind every pending
                // actor recovery scheduled before it (minutes, on a loaded
                // machine): `hold` measures memory only.
                if mode == "serve" {
                    call(&node, "counter/probe").await?;
                }
                let took = started.elapsed();
                // Recovery schedules the pending actors in pages, in the
                // background: measure once the scheduler holds them all.
                settled(&node).await;
                anyhow::Ok(vec![before, rss_peak()?, took.as_secs_f64()])
            }
            "active" => {
                let _ = std::fs::remove_dir_all(dir);
                let node = node::start(dir, cache, node::MAX_INSTANCES).await?;
                node.deploy("counter", pigeon_test_artifacts::COUNTER_WASM.to_vec(), node::limits(), Vec::new())
                    .await?;
                call(&node, "counter/warm").await?;
                let (before, pss_before) = (rss()?, pss()?);
                let started = Instant::now();
                activate(&node, ACTIVE).await?;
                let took = started.elapsed();
                if std::env::var_os("PIGEON_BENCH_SMAPS").is_some() {
                    crate::smaps::print(20);
                }
                anyhow::Ok(vec![before, rss()?, pss_before, pss()?, took.as_secs_f64()])
            }
            other => anyhow::bail!("unknown child mode `{other}`"),
        }
    })?;
    let line: Vec<String> = numbers.iter().map(f64::to_string).collect();
    println!("{}", line.join(" "));
    std::process::exit(0)
}

/// A transient `get`, answered.
async fn call(node: &pigeon_node::Node, to: &str) -> anyhow::Result<()> {
    let mut envelope = Envelope::new(to, &b"get"[..]).with_kind(MessageKind::Call);
    envelope.delivery = Delivery::Transient;
    node.request(envelope, Duration::from_secs(60)).await?;
    Ok(())
}

/// Activates `n` counters (`counter/live-0` …) by a transient `get` each,
/// 64 at a time, and waits until all are active.
async fn activate(node: &pigeon_node::Node, n: usize) -> anyhow::Result<()> {
    let caller = node.clone();
    fan_out(64, n, move |i| {
        let node = caller.clone();
        async move { call(&node, &format!("counter/live-{i}")).await }
    })
    .await?;
    wait_for(|| node.active_actors() >= n, "the actors to be active").await
}

/// Waits until the number of scheduled actors stops growing (sampled
/// every 100 ms, for at most a minute).
async fn settled(node: &pigeon_node::Node) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = 0;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = node.active_actors();
        if now <= last {
            return;
        }
        last = now;
    }
}

/// This process's resident memory, in bytes.
fn rss() -> anyhow::Result<f64> {
    status_kib("VmRSS:")
}

/// This process's proportional set size, in bytes: its resident memory
/// with each page counted once, however many of its mappings share it.
/// (Every instance of a guest maps the same copy-on-write image of its
/// memory; the resident set counts each shared page once per instance.)
fn pss() -> anyhow::Result<f64> {
    field_kib("/proc/self/smaps_rollup", "Pss:")
}

/// This process's peak resident memory so far, in bytes.
fn rss_peak() -> anyhow::Result<f64> {
    status_kib("VmHWM:")
}

fn status_kib(field: &str) -> anyhow::Result<f64> {
    field_kib("/proc/self/status", field)
}

/// A `Name:  N kB` field of a /proc file, in bytes.
fn field_kib(file: &str, field: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(file)?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no {field} in {file}"))?;
    Ok(kib * 1024.0)
}
