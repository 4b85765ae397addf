//! The crash test through the real binary: `pigeon up` takes 3,000
//! persistent sends with unique ids over its HTTP API from 8 concurrent
//! clients and is SIGKILLed at 3 random moments, restarting on the same
//! data directory each time. Every acknowledged send is applied exactly
//! once; none is applied twice. The same test runs against the counter
//! written in Rust, in JavaScript and in Python.

use std::collections::BTreeMap;
use std::time::Duration;

use pigeon_tests::PATIENCE;
use pigeon_tests::crash::{CrashTarget, verify};
use pigeon_tests::process::{PigeonNode, ok};
use serde_json::json;

const MESSAGES: usize = 3_000;

/// The crash test against the counter of `language` (skipped, saying so,
/// when that language's toolchain did not build it).
async fn crash_test(language: &str) {
    let Some(&(_, path)) = pigeon_tests::counters().iter().find(|(l, _)| *l == language) else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let node = PigeonNode::start(&data, "127.0.0.1:0", &[]).expect("pigeon up");
    ok(&node.cli(&["deploy", path, "--name", "counter"]));
    let target = CrashTarget::new(node);
    let (acked, kills, url) = target
        .drive(MESSAGES, 8, 3, |id| {
            ("/api/v1/messages", json!({ "to": "counter/a", "payload": "inc", "headers": { "op-id": id } }))
        })
        .await;

    let deadline = tokio::time::Instant::now() + PATIENCE * 3;
    while target.get(&url, "/api/v1/actors/counter/a").await["pending"] != 0 {
        assert!(tokio::time::Instant::now() < deadline, "the mailbox did not drain");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let entries = target.state(&url, "counter/a").await;
    let count: usize = entries.get("count").map_or(0, |c| c.parse().unwrap());
    let applied: BTreeMap<String, String> = entries.into_iter().filter(|(k, _)| k.starts_with("applied/")).collect();
    verify(&applied, count, &acked, MESSAGES);
    eprintln!(
        "{language}: {MESSAGES} sent over HTTP, {} acknowledged, {} applied across SIGKILLs at {kills:?} acknowledgements",
        acked.len(),
        applied.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_the_node_loses_no_acknowledged_send_and_applies_none_twice() {
    crash_test("rust").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_javascript_counter_survives_sigkill_alike() {
    crash_test("javascript").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_counter_survives_sigkill_alike() {
    crash_test("python").await;
}
