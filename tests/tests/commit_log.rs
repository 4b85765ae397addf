//! The commit log from the outside: what a SIGKILL leaves acknowledged
//! after the store's last checkpoint is replayed at the next start, once,
//! and a clean stop leaves nothing to replay.
//!
//! `--checkpoint-interval 1h` keeps every batch of the test in the log
//! (no checkpoint comes between the sends and the kill), so what the
//! restart replays does not depend on the machine's speed.

use pigeon_tests::artifacts;
use pigeon_tests::process::{PigeonNode, ok};
use serde_json::{Value, json};

async fn send(http: &reqwest::Client, node: &PigeonNode, body: Value) -> Value {
    let response = http
        .post(format!("{}/api/v1/messages", node.url))
        .bearer_auth(node.token())
        .json(&body)
        .send()
        .await
        .expect("the node answers");
    assert!(response.status().is_success(), "{body}: {}", response.status());
    response.json().await.expect("a JSON body")
}

async fn count(http: &reqwest::Client, node: &PigeonNode) -> u64 {
    let reply = send(http, node, json!({"to": "counter/a", "payload": "get", "wait": "replied"})).await;
    reply["reply"]["text"].as_str().and_then(|t| t.parse().ok()).unwrap_or_else(|| panic!("a count: {reply}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_sigkill_leaves_after_the_last_checkpoint_is_replayed_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let http = reqwest::Client::new();
    let mut node = PigeonNode::start(&data, "127.0.0.1:0", &["--checkpoint-interval", "1h"]).expect("pigeon up");
    ok(&node.cli(&["deploy", artifacts::COUNTER, "--name", "counter"]));
    for _ in 0..20 {
        send(&http, &node, json!({"to": "counter/a", "payload": "inc"})).await;
    }
    node.kill();

    let mut node = PigeonNode::start(&data, "127.0.0.1:0", &[]).expect("pigeon up again");
    let replayed = pigeon_tests::scrape(&node.url, "pigeon_store_replayed_frames").await;
    // One batch per acknowledged send at least: each waited for the last.
    assert!(replayed >= 20, "{replayed} frames replayed for 20 acknowledged sends");
    assert_eq!(count(&http, &node).await, 20, "every acknowledged inc, once");

    // A clean stop checkpoints: the next start has nothing to replay.
    node.terminate();
    let node = PigeonNode::start(&data, "127.0.0.1:0", &[]).expect("pigeon up a third time");
    assert_eq!(
        pigeon_tests::scrape(&node.url, "pigeon_store_replayed_frames").await,
        0,
        "a clean stop left frames to replay"
    );
    assert_eq!(count(&http, &node).await, 20);
}
