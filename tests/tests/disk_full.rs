//! A full or failing disk takes nothing acknowledged and needs no restart:
//! below the free-space limit persistent work is refused (`507
//! storage_full`) while reads, turns and transient messages go on; a write
//! that hits the end of the disk fails without being acknowledged, the
//! store reopens itself, and both resume by themselves once there is room;
//! an `fdatasync` of the commit log that fails (injected by `strace`)
//! fails its batch alone, and loses or doubles nothing acknowledged.
//!
//! The full-disk tests mount a small tmpfs of their own (root only), the
//! failing one runs the node under `strace`; elsewhere they skip, and fail
//! under `PIGEON_E2E_REQUIRED`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use pigeon_tests::process::{PigeonNode, ok};
use pigeon_tests::{PATIENCE, artifacts};
use serde_json::{Value, json};

/// A tmpfs mounted on a temporary directory, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().ok()?;
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then_some(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Bytes free on the file system.
    fn available(&self) -> u64 {
        let out = Command::new("df").args(["-B1", "--output=avail"]).arg(self.path()).output().expect("df runs");
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines().nth(1).and_then(|l| l.trim().parse().ok()).expect("df prints the free bytes")
    }

    /// Fills the disk with a file until less than `left` bytes are free.
    fn fill_until(&self, left: u64) -> PathBuf {
        use std::io::Write;
        let path = self.path().join("ballast");
        let mut file = std::fs::File::create(&path).expect("ballast file");
        let chunk = vec![0u8; 256 << 10];
        while self.available() >= left {
            file.write_all(&chunk).expect("room for the ballast");
            file.sync_all().expect("ballast synced");
        }
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

fn small_disk(size: &str) -> Option<SmallDisk> {
    let disk = SmallDisk::mount(size);
    if disk.is_none() {
        pigeon_tests::skip("a tmpfs for the disk-full tests: run as root (`mount -t tmpfs` failed)");
    }
    disk
}

struct Api {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Api {
    fn of(node: &PigeonNode) -> Self {
        Self { http: reqwest::Client::new(), url: node.url.clone(), token: node.token() }
    }

    async fn send(&self, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/api/v1/messages", self.url))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .expect("the node answers");
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON body"))
    }

    async fn get(&self, path: &str) -> String {
        let response = self.http.get(format!("{}{path}", self.url)).send().await.expect("the node answers");
        assert!(response.status().is_success(), "GET {path}: {}", response.status());
        response.text().await.expect("a body")
    }

    async fn health(&self) -> Value {
        serde_json::from_str(&self.get("/api/v1/health").await).expect("health is JSON")
    }

    /// Sends persistent messages (`body`) until one is accepted.
    async fn send_until_accepted(&self, body: Value) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if self.send(body.clone()).await.0 == 200 {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "persistent sends did not resume");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn start(data: &Path, free_limit: &str) -> PigeonNode {
    let node = PigeonNode::start(data, "127.0.0.1:0", &["--disk-free-limit", free_limit])
        .unwrap_or_else(|log| panic!("pigeon up starts:\n{log}"));
    ok(&node.cli(&["deploy", artifacts::COUNTER, "--name", "counter"]));
    node
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_the_free_space_limit_persistent_work_waits_and_resumes_by_itself() {
    let Some(disk) = small_disk("40m") else { return };
    let data = disk.path().join("data");
    let node = start(&data, "8MiB");
    let api = Api::of(&node);
    let inc = json!({"to": "counter/a", "payload": "inc"});
    assert_eq!(api.send(inc.clone()).await.0, 200);
    let ballast = disk.fill_until(6 << 20);

    let (status, body) = api.send(inc.clone()).await;
    assert_eq!(status, 507, "{body}");
    assert_eq!(body["error"]["code"], "storage_full");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(&data.display().to_string()) && message.contains("bytes free"), "{message}");
    let health = api.health().await;
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["storage"]["alarm"], true);
    assert!(api.get("/metrics").await.contains("pigeon_disk_alarm 1"));
    // Reads and transient work go on.
    let (status, body) = api.send(json!({"to": "counter/a", "payload": "inc", "transient": true})).await;
    assert_eq!(status, 200, "{body}");
    api.get("/api/v1/actors/counter/a").await;

    std::fs::remove_file(ballast).expect("ballast removed");
    api.send_until_accepted(inc).await;
    assert_eq!(api.health().await["status"], "ok");
    let (_, reply) = api.send(json!({"to": "counter/a", "payload": "get", "wait": "replied"})).await;
    assert_eq!(reply["reply"]["text"], "3", "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_hits_a_full_disk_is_not_acknowledged_and_the_store_recovers_without_a_restart() {
    let Some(disk) = small_disk("24m") else { return };
    let data = disk.path().join("data");
    // No free-space limit: the writes themselves meet the end of the disk.
    let mut node = start(&data, "0");
    let api = Api::of(&node);
    let ballast = disk.fill_until(3 << 20);
    // Delayed an hour: the messages stay on disk for the whole test.
    let big = json!({"to": "counter/d", "payload": "x".repeat(64 << 10), "delay_ms": 3_600_000});
    let mut acknowledged = 0u64;
    let refusal = loop {
        let (status, body) = api.send(big.clone()).await;
        if status != 200 {
            break (status, body);
        }
        acknowledged += 1;
        assert!(acknowledged < 1000, "3 MiB never filled");
    };
    assert_eq!(refusal.0, 503, "{}", refusal.1);
    assert_eq!(refusal.1["error"]["code"], "storage_unavailable", "{}", refusal.1);
    assert!(api.health().await["storage"]["io_errors"].as_u64() >= Some(1));

    std::fs::remove_file(ballast).expect("ballast removed");
    api.send_until_accepted(big).await;
    acknowledged += 1;
    assert_eq!(api.health().await["status"], "ok");

    // Every acknowledged message is on disk after a restart.
    node.terminate();
    let node = PigeonNode::start(&data, "127.0.0.1:0", &["--disk-free-limit", "0"]).expect("restarts");
    let delayed = pigeon_tests::scrape(&node.url, "pigeon_delayed_messages").await;
    // A refused write may still have reached the disk (it was never
    // acknowledged, so having it is allowed; losing an acknowledged one is not).
    assert!(delayed >= acknowledged, "{delayed} delayed on disk, {acknowledged} acknowledged");
}

/// The `pigeon` process a wrapper (`strace`) started: its only child.
fn child_of(wrapper_pid: u32) -> Option<u32> {
    let children = std::fs::read_to_string(format!("/proc/{wrapper_pid}/task/{wrapper_pid}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sync_of_the_commit_log_fails_its_batch_alone_and_nothing_is_lost_or_applied_twice() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let Some(mut node) = start_failing_sync(&data) else { return };
    let api = Api::of(&node);
    let inc = json!({"to": "counter/a", "payload": "inc"});
    let (mut acknowledged, mut refused) = (0u64, 0u64);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    // One at a time, 60 acknowledged: well past the failing fsync.
    while acknowledged < 60 {
        match api.send(inc.clone()).await {
            (200, _) => acknowledged += 1,
            (503, body) => {
                assert_eq!(body["error"]["code"], "storage_unavailable", "{body}");
                refused += 1;
                assert!(tokio::time::Instant::now() < deadline, "sends did not resume after the failed fsync");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (status, body) => panic!("a send answered {status}: {body}"),
        }
    }
    let health = api.health().await;
    assert!(health["storage"]["io_errors"].as_u64() >= Some(1), "no fsync failed: {health}");
    assert_eq!(health["status"], "ok", "the store did not recover by itself: {health}");

    // The failed batch may be a send (refused: 503) or the turn of a queued
    // one (retried). Killed mid-run, the node comes back with every
    // acknowledged inc applied once, and none of the refused ones: a failed
    // batch's frame is withdrawn (its header zeroed by a sync that worked)
    // and the next batch is a checkpoint into a new generation.
    let pigeon = child_of(node.pid()).expect("strace's child is the node");
    ok(&Command::new("kill").args(["-KILL", &pigeon.to_string()]).output().expect("kill runs"));
    node.wait_exit();
    let node = PigeonNode::start(&data, "127.0.0.1:0", &["--disk-free-limit", "0"]).expect("restarts");
    let (_, reply) = Api::of(&node).send(json!({"to": "counter/a", "payload": "get", "wait": "replied"})).await;
    let count: u64 = reply["reply"]["text"].as_str().and_then(|t| t.parse().ok()).expect("the count");
    eprintln!("{acknowledged} sends acknowledged, {refused} refused; count {count}");
    assert_eq!(count, acknowledged, "{refused} sends were refused");
}

/// `pigeon up` under `strace`, which fails the 30th `fdatasync` of each
/// thread: only the committer makes that many (one per batch), well after
/// the node has started. `None` (the test skips) without strace.
fn start_failing_sync(data: &Path) -> Option<PigeonNode> {
    if Command::new("strace").arg("-V").output().is_err() {
        pigeon_tests::skip("strace, to make an fdatasync fail (`apt-get install strace`)");
        return None;
    }
    let strace = [
        "strace",
        "-f",
        "-qq",
        "--seccomp-bpf",
        "-o",
        "/dev/null",
        "-e",
        "trace=fdatasync",
        "-e",
        "inject=fdatasync:error=EIO:when=30",
        "--",
    ];
    let node = PigeonNode::start_under(&strace, data, "127.0.0.1:0", &["--disk-free-limit", "0"])
        .unwrap_or_else(|log| panic!("pigeon up starts under strace:\n{log}"));
    ok(&node.cli(&["deploy", artifacts::COUNTER, "--name", "counter"]));
    Some(node)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_message_whose_commit_fails_is_dropped_counted_and_its_caller_told() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(node) = start_failing_sync(&dir.path().join("data")) else { return };
    let api = Api::of(&node);
    // Transient calls only: every batch is one of their turns' commits
    // (each writes the counter's state), so one of them meets the failure.
    let call = json!({"to": "counter/t", "payload": "inc", "transient": true, "wait": "replied", "timeout_ms": 30_000});
    let (mut answered, mut failed) = (0u64, 0u64);
    for _ in 0..60 {
        match api.send(call.clone()).await {
            (200, body) => {
                answered += 1;
                // A failed turn's increment is gone with it: the count goes on
                // from what is durable.
                assert_eq!(body["reply"]["text"], answered.to_string(), "{body}");
            }
            (502, body) => {
                assert_eq!(body["error"]["code"], "call_failed", "{body}");
                let message = body["error"]["message"].as_str().unwrap_or_default();
                assert!(message.contains("commit did not happen"), "{message}");
                failed += 1;
            }
            (status, body) => panic!("a transient call answered {status}: {body}"),
        }
    }
    assert!(failed >= 1, "no call met the failed fsync ({answered} answered)");
    let dropped = pigeon_tests::scrape(&node.url, "pigeon_transient_dropped_total").await;
    assert_eq!(dropped, failed, "every transient message whose commit failed is counted as dropped");
}
