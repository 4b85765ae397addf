//! Nothing acknowledged is lost, nothing is applied twice — whatever is
//! killed when.
//!
//! The node core runs in a child process (`pigeon-node-harness`). Eight
//! concurrent clients send 5,000 persistent messages to `counter/a`, each
//! with a unique `op-id` that the counter records in its state. The child is
//! SIGKILLed at three random moments while the clients send (and while the
//! counter handles), and restarted on the same data directory each time. A
//! send whose acknowledgement was cut by a kill may be applied once or not
//! at all; every acknowledged one must be applied exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pigeon_tests::{PATIENCE, artifacts, eventually};
use rand::Rng;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::watch;

const MESSAGES: usize = 5_000;
const CLIENTS: usize = 8;
const KILLS: usize = 3;

/// Starts the harness on `dir`; returns it and its port.
async fn start_harness(dir: &std::path::Path) -> (Child, u16) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pigeon-node-harness"))
        .arg(dir)
        .arg(artifacts::COUNTER)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("harness starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .expect("harness ready in time")
        .expect("harness stdout")
        .expect("harness printed its port");
    let port = line
        .strip_prefix("listening ")
        .and_then(|p| p.parse().ok())
        .expect("`listening PORT`");
    (child, port)
}

/// One request/answer connection to the harness.
struct Conn {
    lines: tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>,
    write: tokio::net::tcp::OwnedWriteHalf,
}

impl Conn {
    async fn open(port: u16) -> std::io::Result<Self> {
        let (read, write) = TcpStream::connect(("127.0.0.1", port)).await?.into_split();
        Ok(Self {
            lines: BufReader::new(read).lines(),
            write,
        })
    }

    async fn request(&mut self, line: &str) -> std::io::Result<String> {
        self.write.write_all(format!("{line}\n").as_bytes()).await?;
        self.lines
            .next_line()
            .await?
            .ok_or_else(|| std::io::Error::other("connection closed"))
    }

    async fn state(&mut self, actor: &str, prefix: &str) -> BTreeMap<String, String> {
        self.write
            .write_all(format!("state {actor} {prefix}\n").as_bytes())
            .await
            .unwrap();
        let mut entries = BTreeMap::new();
        loop {
            let line = self.lines.next_line().await.unwrap().unwrap();
            if line == "end" {
                return entries;
            }
            let mut parts = line.splitn(3, ' ');
            assert_eq!(parts.next(), Some("entry"), "{line}");
            entries.insert(
                parts.next().unwrap().to_string(),
                parts.next().unwrap_or_default().to_string(),
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_load_loses_no_acknowledged_message_and_applies_none_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (child, port) = start_harness(dir.path()).await;
    // (generation, port): senders reconnect when the generation moves.
    let (current, _) = watch::channel((0u64, port));
    let current = Arc::new(current);
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let ack_count = Arc::new(AtomicUsize::new(0));

    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let (current, acked, ack_count) = (current.clone(), acked.clone(), ack_count.clone());
        clients.push(tokio::spawn(async move {
            let mut rx = current.subscribe();
            let mut conn: Option<(u64, Conn)> = None;
            for n in (client..MESSAGES).step_by(CLIENTS) {
                let id = format!("op{n:05}");
                if conn.is_none() {
                    let (generation, port) = *rx.borrow_and_update();
                    match Conn::open(port).await {
                        Ok(c) => conn = Some((generation, c)),
                        Err(_) => {
                            // The node is down: this id is never sent.
                            rx.wait_for(|(g, _)| *g > generation).await.unwrap();
                            continue;
                        }
                    }
                }
                let Some((generation, c)) = conn.as_mut() else {
                    continue;
                };
                match c.request(&format!("send counter/a {id} inc")).await {
                    Ok(answer) if answer == "ok" => {
                        acked.lock().unwrap().insert(id);
                        ack_count.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(answer) => panic!("send {id} refused: {answer}"),
                    Err(_) => {
                        // Killed mid-request: {id} may or may not be applied.
                        let generation = *generation;
                        conn = None;
                        rx.wait_for(|(g, _)| *g > generation).await.unwrap();
                    }
                }
            }
        }));
    }

    // Kill at three random points of the load, restarting each time.
    let mut thresholds: Vec<usize> = (0..KILLS)
        .map(|_| rand::rng().random_range(300..MESSAGES - 600))
        .collect();
    thresholds.sort();
    let mut child = child;
    for (generation, threshold) in thresholds.iter().enumerate() {
        let acks = ack_count.clone();
        eventually("acknowledgements to reach the next kill point", || {
            let acks = acks.clone();
            async move { (acks.load(Ordering::SeqCst) >= *threshold).then_some(()) }
        })
        .await;
        child.kill().await.expect("SIGKILL the node");
        let (next, port) = start_harness(dir.path()).await;
        child = next;
        current.send_replace((generation as u64 + 1, port));
    }
    for client in clients {
        tokio::time::timeout(PATIENCE * 5, client)
            .await
            .expect("clients finish")
            .expect("client ok");
    }

    // Let the last incarnation drain the mailbox, then read the counter.
    let (_, port) = *current.borrow();
    let mut conn = Conn::open(port).await.unwrap();
    let deadline = tokio::time::Instant::now() + PATIENCE * 3;
    while conn.request("depth counter/a").await.unwrap() != "depth 0" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the mailbox did not drain"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let applied = conn.state("counter/a", "applied/").await;
    let count: usize = conn
        .state("counter/a", "count")
        .await
        .get("count")
        .map_or(0, |c| c.parse().unwrap());
    drop(child);

    let acked = acked.lock().unwrap().clone();
    let mut orders = BTreeSet::new();
    for (key, value) in &applied {
        let id = key.trim_start_matches("applied/");
        let (times, order) = value.split_once(' ').expect("`TIMES ORDER`");
        assert_eq!(times, "1", "{id} was applied {times} times");
        let n: usize = id.trim_start_matches("op").parse().expect("an id we sent");
        assert!(n < MESSAGES, "{id} was never sent");
        orders.insert(order.parse::<usize>().unwrap());
    }
    let lost: Vec<&String> = acked
        .iter()
        .filter(|id| !applied.contains_key(&format!("applied/{id}")))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged sends were lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    assert_eq!(
        count,
        applied.len(),
        "the count equals the number of distinct ids applied"
    );
    assert_eq!(
        orders,
        (1..=count).collect(),
        "each application moved the counter by exactly one"
    );
    eprintln!(
        "{} sent, {} acknowledged, {} applied ({} unacknowledged but applied) across {KILLS} SIGKILLs at {thresholds:?} acks",
        MESSAGES,
        acked.len(),
        applied.len(),
        applied.len() - acked.len()
    );
}
