//! Nothing acknowledged is lost, nothing is applied twice — whatever is
//! killed when.
//!
//! The node core runs in a child process (`pigeon-node-harness`). Eight
//! concurrent clients send 5,000 persistent messages to `counter/a`, each
//! with a unique `op-id` that the counter records in its state. The child is
//! SIGKILLed at three random moments while the clients send (and while the
//! counter handles), and restarted on the same data directory each time.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use pigeon_tests::crash::{Outcome, drive, verify};
use pigeon_tests::{PATIENCE, artifacts};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

const MESSAGES: usize = 5_000;

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
    let line = tokio::time::timeout(PATIENCE, lines.next_line()).await.expect("harness ready in time");
    let line = line.expect("harness stdout").expect("harness printed its port");
    let port = line.strip_prefix("listening ").and_then(|p| p.parse().ok()).expect("`listening PORT`");
    (child, port)
}

/// One request on a fresh connection; the answer's lines up to `until`.
async fn request(port: u16, line: &str, until: fn(&str) -> bool) -> std::io::Result<Vec<String>> {
    let (read, mut write) = TcpStream::connect(("127.0.0.1", port)).await?.into_split();
    write.write_all(format!("{line}\n").as_bytes()).await?;
    let mut lines = BufReader::new(read).lines();
    let mut answer = Vec::new();
    while let Some(line) = lines.next_line().await? {
        let done = until(&line);
        answer.push(line);
        if done {
            return Ok(answer);
        }
    }
    Err(std::io::Error::other("connection closed"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_load_loses_no_acknowledged_message_and_applies_none_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (child, port) = start_harness(dir.path()).await;
    let child = Arc::new(tokio::sync::Mutex::new(child));
    let send = |port: u16, id: String| async move {
        match request(port, &format!("send counter/a {id} inc"), |_| true).await {
            Ok(answer) if answer == ["ok"] => Outcome::Acked,
            Ok(answer) => panic!("send {id} refused: {answer:?}"),
            Err(_) => Outcome::Cut,
        }
    };
    let restart = || {
        let (child, dir) = (child.clone(), dir.path().to_path_buf());
        async move {
            let mut child = child.lock().await;
            child.kill().await.expect("SIGKILL the node");
            let (next, port) = start_harness(&dir).await;
            *child = next;
            port
        }
    };
    let (acked, kills, port) = drive(MESSAGES, 8, 3, port, send, restart).await;

    // Let the last incarnation drain the mailbox, then read the counter.
    let deadline = tokio::time::Instant::now() + PATIENCE * 3;
    while request(port, "depth counter/a", |_| true).await.unwrap() != ["depth 0"] {
        assert!(tokio::time::Instant::now() < deadline, "the mailbox did not drain");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let state = |prefix: &'static str| async move {
        let lines = request(port, &format!("state counter/a {prefix}"), |l| l == "end").await.unwrap();
        let entries = lines.iter().filter_map(|l| l.strip_prefix("entry ")).filter_map(|l| l.split_once(' '));
        entries.map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>()
    };
    let applied = state("applied/").await;
    let count: usize = state("count").await.get("count").map_or(0, |c| c.parse().unwrap());
    verify(&applied, count, &acked, MESSAGES);
    eprintln!(
        "{MESSAGES} sent, {} acknowledged, {} applied across SIGKILLs at {kills:?} acknowledgements",
        acked.len(),
        applied.len()
    );
}
