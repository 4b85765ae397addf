//! Multicast survives a crash: 50 subscribers with mixed filters, 1,000
//! publishes through the real binary's API, a SIGKILL in the middle. Every
//! subscriber whose filter matched holds exactly the acknowledged publishes
//! (plus, at most, ones whose acknowledgement the kill cut), each applied
//! once, in publish order within each priority.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use pigeon_tests::crash::{CrashTarget, op_id};
use pigeon_tests::process::{PigeonNode, ok};
use pigeon_tests::{PATIENCE, artifacts};
use serde_json::json;

const PUBLISHES: usize = 1_000;
const SUBSCRIBERS: usize = 50;

/// The headers of publish `n`.
fn headers(n: usize) -> Headers {
    let mut h = BTreeMap::from([
        ("op-id".to_string(), op_id(n)),
        ("amount".to_string(), ((n * 37) % 300).to_string()),
        ("kind".to_string(), if n.is_multiple_of(2) { "even" } else { "odd" }.to_string()),
    ]);
    if n.is_multiple_of(7) {
        h.insert("vip".into(), "yes".into());
    }
    h
}

fn priority(n: usize) -> u8 {
    if n.is_multiple_of(3) { 6 } else { 3 }
}

/// Subscriber `s`'s filter, and the same rule in Rust to know what it must get.
/// Headers of a publication.
type Headers = BTreeMap<String, String>;

fn filter(s: usize) -> (&'static str, fn(&Headers) -> bool) {
    match s % 5 {
        0 => ("", |_| true),
        1 => ("amount > 150", |h| h["amount"].parse::<u32>().unwrap() > 150),
        2 => ("kind = 'even'", |h| h["kind"] == "even"),
        3 => ("kind = 'odd' AND amount <= 100", |h| h["kind"] == "odd" && h["amount"].parse::<u32>().unwrap() <= 100),
        _ => ("NOT (amount >= 200) OR EXISTS vip", |h| {
            h["amount"].parse::<u32>().unwrap() < 200 || h.contains_key("vip")
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_matching_subscriber_holds_exactly_the_acknowledged_publishes_after_a_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let node = PigeonNode::start(&data, "127.0.0.1:0", &[]).expect("pigeon up");
    ok(&node.cli(&["deploy", artifacts::COUNTER, "--name", "counter", "--mailbox-bound", "1000000"]));
    for s in 0..SUBSCRIBERS {
        ok(&node.cli(&["subscribe", "ticks", &format!("counter/s{s:02}"), "--filter", filter(s).0]));
    }
    let target = CrashTarget::new(node);
    // One publisher, so publish order is op order.
    let (acked, kills, url) = target
        .drive(PUBLISHES, 1, 1, |id| {
            let n: usize = id.trim_start_matches("op").parse().unwrap();
            (
                "/api/v1/topics/ticks/messages",
                json!({ "payload": "inc", "priority": priority(n), "headers": headers(n) }),
            )
        })
        .await;
    let acked: BTreeSet<usize> = acked.iter().map(|id| id.trim_start_matches("op").parse().unwrap()).collect();
    // The publishes whose acknowledgement was cut may or may not have landed.
    let cut: BTreeSet<usize> = (0..PUBLISHES).filter(|n| !acked.contains(n)).collect();

    let deadline = tokio::time::Instant::now() + PATIENCE * 3;
    let pending = || async {
        let actors = target.get(&url, "/api/v1/actors").await;
        actors.as_array().unwrap().iter().map(|a| a["pending"].as_u64().unwrap()).sum::<u64>()
    };
    while pending().await > 0 {
        assert!(tokio::time::Instant::now() < deadline, "the mailboxes did not drain");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut checked = 0;
    for s in 0..SUBSCRIBERS {
        let state = target.get(&url, &format!("/api/v1/state/counter/s{s:02}?prefix=applied/")).await;
        // op number → (times, order)
        let applied: BTreeMap<usize, (u64, u64)> = state
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let n = e["key"].as_str().unwrap().trim_start_matches("applied/op").parse().unwrap();
                let (times, order) = e["value"]["text"].as_str().unwrap().split_once(' ').unwrap();
                (n, (times.parse().unwrap(), order.parse().unwrap()))
            })
            .collect();
        let matches = filter(s).1;
        for (n, (times, _)) in &applied {
            assert_eq!(*times, 1, "s{s:02} applied op{n} {times} times");
            assert!(matches(&headers(*n)), "s{s:02} got op{n}, which its filter `{}` rejects", filter(s).0);
            assert!(acked.contains(n) || cut.contains(n));
        }
        for n in acked.iter().filter(|n| matches(&headers(**n))) {
            assert!(applied.contains_key(n), "s{s:02} lost acknowledged publish op{n}");
            checked += 1;
        }
        // Within a priority, publishes are handled in publish order.
        for p in [3, 6] {
            let orders: Vec<u64> = applied.iter().filter(|(n, _)| priority(**n) == p).map(|(_, (_, o))| *o).collect();
            assert!(orders.windows(2).all(|w| w[0] < w[1]), "s{s:02}: priority {p} out of order: {orders:?}");
        }
    }
    eprintln!(
        "{PUBLISHES} publishes, {} acknowledged, SIGKILL at {kills:?}; {checked} (subscriber, publish) deliveries checked",
        acked.len()
    );
}
