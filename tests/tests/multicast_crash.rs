//! Multicast survives a crash: 50 subscribers with mixed filters, 1,000
//! publishes through the real binary's API, a SIGKILL in the middle. Every
//! subscriber whose filter matched holds exactly the acknowledged publishes
//! (plus, at most, ones whose acknowledgement the kill cut), each applied
//! once, in publish order within each priority.

use std::collections::BTreeSet;
use std::time::Duration;

use pigeon_tests::crash::CrashTarget;
use pigeon_tests::multicast::{applied, check_subscriber, filter, headers};
use pigeon_tests::process::{PigeonNode, ok};
use pigeon_tests::{PATIENCE, artifacts};
use serde_json::json;

const PUBLISHES: usize = 1_000;
const SUBSCRIBERS: usize = 50;

fn priority(n: usize) -> u8 {
    if n.is_multiple_of(3) { 6 } else { 3 }
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
        let applied = applied(&state);
        checked += check_subscriber(s, &applied, &acked, PUBLISHES);
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
