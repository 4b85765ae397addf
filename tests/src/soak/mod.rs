//! The chaos soak: every kind of traffic at once against the real `pigeon`
//! binary, while the node is SIGKILLed at random moments and started again
//! on its data directory.
//!
//! Clients send persistent, delayed and transient sends, calls that wait
//! for replies, publishes to filtered subscribers, reminders (a guest's own
//! timers) and bank transfers (two typed RPC calls per turn) through the
//! HTTP API. A killer SIGKILLs the node at moments drawn uniformly over the
//! run, so kills land mid-turn, mid-commit, mid-recovery and between
//! anything. When the load stops, the last incarnation drains every queue
//! and [`verify`] checks the invariants against the ledger of what each
//! request came back with: every acknowledged effect applied exactly once,
//! nothing applied twice, nothing refused applied, money conserved, no dead
//! letters, empty mailboxes.
//!
//! `just soak` runs it from the command line (`pigeon-soak`); a short run is
//! part of the test suite so that the soak itself cannot rot.

pub mod verify;
pub mod workload;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;

use crate::crash::{Answer, CrashTarget};
use crate::process::{PigeonNode, ok};
use crate::{PATIENCE, artifacts};
use verify::Snapshot;
use workload::{ACCOUNTS, ACTORS, Fate, Kind, Ledger, OPENING, TOPIC};

/// How a soak runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// How long the clients send.
    pub duration: Duration,
    /// How many times the node is SIGKILLed during that time.
    pub kills: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// Seeds the kill moments and the clients' choices.
    pub seed: u64,
}

/// What a soak did and found.
pub struct Report {
    pub config: Config,
    pub ledger: Ledger,
    /// How long each restart took, from the new process's start to listening.
    pub restarts: Vec<Duration>,
    /// Commit-log frames each restart replayed (what was acknowledged
    /// after the store's last checkpoint when the kill came).
    pub replayed: Vec<u64>,
    /// How long the clients sent, kills included.
    pub load: Duration,
    /// How long the queues took to drain after the load stopped.
    pub drain: Duration,
    /// Effects checked, by kind.
    pub checked: Vec<(Kind, usize)>,
    /// Every broken invariant, in words. Empty means the soak passed.
    pub violations: Vec<String>,
    /// The data directory, kept when something was violated.
    pub data: Option<std::path::PathBuf>,
}

/// Runs a soak on a fresh data directory.
pub async fn run(config: Config) -> Report {
    let dir = tempfile::tempdir().expect("temp dir");
    let target = set_up(&dir.path().join("data"));
    let started = Instant::now();
    let (ledger, restarts, replayed, url) = load(&target, &config).await;
    let load = started.elapsed();

    let drained = Instant::now();
    let (snapshot, mut violations) = drain(&target, &url, &ledger).await;
    let drain = drained.elapsed();
    let (checked, found) = verify::verify(&ledger, &snapshot);
    violations.extend(found);
    let data = if violations.is_empty() { None } else { Some(dir.keep()) };
    Report { config, ledger, restarts, replayed, load, drain, checked, violations, data }
}

/// Starts the node and deploys the soak's actors: the counter (sends,
/// calls, publishes), the caller (reminders) and the bank (transfers).
fn set_up(data: &std::path::Path) -> CrashTarget {
    let node = PigeonNode::start(data, "127.0.0.1:0", &[]).expect("pigeon up");
    ok(&node.cli(&["deploy", artifacts::COUNTER, "--name", "counter", "--mailbox-bound", "1000000"]));
    ok(&node.cli(&["deploy", artifacts::CALLER, "--name", "caller", "--mailbox-bound", "1000000"]));
    ok(&node.cli(&["deploy", artifacts::BANK_ACCOUNT, "--name", "account"]));
    ok(&node.cli(&["deploy", artifacts::BANK_TRANSFER, "--name", "transfer", "--link", "acme:bank/account=account"]));
    for a in 0..ACCOUNTS {
        ok(&node.cli(&["call", &format!("account/a{a}"), &format!("account.deposit({OPENING})")]));
    }
    for s in 0..ACTORS {
        let filter = workload::subscriber_filter(s).0;
        ok(&node.cli(&["subscribe", TOPIC, &Kind::Publish.actor(s), "--filter", filter]));
    }
    CrashTarget::new(node)
}

/// Drives the clients for the configured time while killing the node;
/// returns the ledger, the restart times, the frames each restart
/// replayed and the last URL.
async fn load(target: &CrashTarget, config: &Config) -> (Ledger, Vec<Duration>, Vec<u64>, String) {
    // (generation, URL): a client whose request was cut waits for the next.
    let (current, _) = watch::channel((0u64, target.url()));
    let current = Arc::new(current);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let next = Arc::new(Kind::ALL.map(|_| AtomicUsize::new(0)));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for client in 0..config.clients {
        let rng = StdRng::seed_from_u64(config.seed.wrapping_add(1 + client as u64));
        let (target, current, ledger, next, stop) =
            (target.clone(), current.clone(), ledger.clone(), next.clone(), stop.clone());
        clients.push(tokio::spawn(async move { client_loop(rng, target, current, ledger, next, stop).await }));
    }

    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut moments: Vec<Duration> = (0..config.kills).map(|_| config.duration.mul_f64(rng.random())).collect();
    moments.sort();
    let started = tokio::time::Instant::now();
    let (mut restarts, mut replayed) = (Vec::new(), Vec::new());
    for (generation, moment) in moments.iter().enumerate() {
        tokio::time::sleep_until(started + *moment).await;
        let (url, took) = target.restart_timed().await;
        restarts.push(took);
        replayed.push(crate::scrape(&url, "pigeon_store_replayed_frames").await);
        current.send_replace((generation as u64 + 1, url));
    }
    tokio::time::sleep_until(started + config.duration).await;
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        tokio::time::timeout(PATIENCE * 2, client).await.expect("clients finish").expect("client ok");
    }
    let ledger = std::mem::take(&mut *ledger.lock().unwrap());
    let url = current.borrow().1.clone();
    (ledger, restarts, replayed, url)
}

/// One client: requests of random kinds until told to stop.
async fn client_loop(
    mut rng: StdRng,
    target: CrashTarget,
    current: Arc<watch::Sender<(u64, String)>>,
    ledger: Arc<Mutex<Ledger>>,
    next: Arc<[AtomicUsize; 7]>,
    stop: Arc<AtomicBool>,
) {
    let mut generations = current.subscribe();
    while !stop.load(Ordering::SeqCst) {
        let kind = Kind::pick(&mut rng);
        let index = Kind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        let n = next[index].fetch_add(1, Ordering::SeqCst);
        let (path, body) = workload::request(kind, n, &mut rng);
        let (generation, url) = generations.borrow_and_update().clone();
        let fate = match target.answer(&url, path, &body).await {
            Answer::Ok(answer) => Fate::Acked(answer["reply"]["text"].as_str().map(str::to_string)),
            // The call was stored; its wait ran out (a kill took the reply).
            Answer::Refused(504, code) if code == "timeout" => Fate::Cut,
            Answer::Refused(status, code) => Fate::Refused(status, code),
            Answer::Cut => Fate::Cut,
        };
        let cut = matches!(fate, Fate::Cut);
        ledger.lock().unwrap().record(workload::op_id(kind, n), fate);
        if cut {
            // Wait for the next incarnation (or the end of the run).
            while !stop.load(Ordering::SeqCst) && generations.borrow().0 == generation {
                let _ = tokio::time::timeout(Duration::from_millis(100), generations.changed()).await;
            }
        }
    }
}

/// Waits until every queue is empty and every acknowledged effect is
/// visible (or the patience runs out); returns the last snapshot and what
/// did not drain.
async fn drain(target: &CrashTarget, url: &str, ledger: &Ledger) -> (Snapshot, Vec<String>) {
    let deadline = Instant::now() + PATIENCE * 3;
    loop {
        // The queues are cheap to read; the state only once they are empty.
        if verify::queues(target, url).await != (0, 0) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let snapshot = Snapshot::take(target, url).await;
        let missing = verify::missing(ledger, &snapshot);
        if snapshot.pending == 0 && snapshot.in_flight == 0 && missing == 0 {
            return (snapshot, Vec::new());
        }
        if Instant::now() > deadline {
            let problem = format!(
                "the queues did not drain in {:?}: {} pending, {} in flight, {missing} acknowledged effects not visible",
                PATIENCE * 3,
                snapshot.pending,
                snapshot.in_flight
            );
            return (snapshot, vec![problem]);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

impl Report {
    /// The figures as a table, one row per kind of traffic, then the run.
    pub fn table(&self) -> String {
        let mut table = comfy_table::Table::new();
        table.load_style(comfy_table::presets::ASCII_MARKDOWN);
        table.set_header(["traffic", "sent", "acknowledged", "cut by a kill", "refused", "effects checked"]);
        for kind in Kind::ALL {
            let fates: Vec<&Fate> = self.ledger.of(kind).map(|(_, fate)| fate).collect();
            let count = |f: fn(&Fate) -> bool| fates.iter().filter(|fate| f(fate)).count().to_string();
            let checked = self.checked.iter().find(|(k, _)| *k == kind).map_or(0, |(_, n)| *n);
            table.add_row([
                kind.name().to_string(),
                fates.len().to_string(),
                count(|f| matches!(f, Fate::Acked(_))),
                count(|f| matches!(f, Fate::Cut)),
                count(|f| matches!(f, Fate::Refused(..))),
                checked.to_string(),
            ]);
        }
        let mut restarts = self.restarts.clone();
        restarts.sort();
        let at = |q: f64| restarts.get(((restarts.len() as f64 - 1.0) * q).round() as usize).copied();
        let acked = self.ledger.fates.values().filter(|f| matches!(f, Fate::Acked(_))).count();
        format!(
            "{table}\n\n{} SIGKILLs in {:.0?} of load ({} clients, seed {}); {:.0} acknowledged requests/s\n\
             restart to listening: median {:.0?}, max {:.0?}; drain after the load: {:.1?}\n\
             commit-log frames replayed by each restart: {:?}\n",
            self.restarts.len(),
            self.load,
            self.config.clients,
            self.config.seed,
            acked as f64 / self.load.as_secs_f64(),
            at(0.5).unwrap_or_default(),
            at(1.0).unwrap_or_default(),
            self.drain,
            self.replayed,
        )
    }

    /// The refusals by status and code, which the table only counts.
    pub fn refusals(&self) -> BTreeMap<String, usize> {
        let mut refusals = BTreeMap::new();
        for fate in self.ledger.fates.values() {
            if let Fate::Refused(status, code) = fate {
                *refusals.entry(format!("{status} {code}")).or_default() += 1;
            }
        }
        refusals
    }
}
