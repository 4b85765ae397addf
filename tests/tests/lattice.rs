//! The lattice end to end: a real `nats-server` and three real `pigeon up
//! --nats` nodes, driven over their HTTP APIs and CLIs.
//!
//! - 3,000 persistent sends with unique op-ids go through all three nodes
//!   to 30 counters spread over them, while a random node is SIGKILLed and
//!   restarted three times: every acknowledged send is applied exactly
//!   once, at the one node that owns its actor, and the outboxes drain;
//! - a call to an actor whose owner is down fails at its deadline saying
//!   so, a redeploy meanwhile does not move that owner's actors, and they
//!   answer from their state once it is back;
//! - a node that returns with a wiped store is refused, naming both
//!   incarnations, until it is forgotten.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pigeon_node::pigeon_store::Placement;
use pigeon_tests::crash::{Outcome, drive};
use pigeon_tests::lattice::{LatticeNode, NatsServer, cluster, wait_for_peers};
use pigeon_tests::process::{fails, ok, wait_until};
use pigeon_tests::{PATIENCE, artifacts};
use rand::Rng;
use serde_json::{Value, json};

const MESSAGES: usize = 3_000;
const ACTORS: usize = 30;

fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("HTTP client")
}

async fn get(http: &reqwest::Client, url: &str, path: &str) -> Value {
    let response = http.get(format!("{url}{path}")).send().await.expect("GET");
    response.json().await.expect("JSON")
}

/// Deploys the counter once, on the first node, and waits until every node has it.
fn deploy_counter(nodes: &[LatticeNode]) {
    ok(&nodes[0].node.cli(&["deploy", artifacts::COUNTER, "--name", "counter"]));
    for node in nodes {
        wait_until(&format!("{} to have the counter", node.id), || {
            String::from_utf8_lossy(&node.node.cli(&["ls"]).stdout).contains("counter")
        });
    }
}

/// The state of `actor` on each node that has any.
async fn state_by_node(http: &reqwest::Client, urls: &[String], actor: &str) -> Vec<BTreeMap<String, String>> {
    let mut found = Vec::new();
    for url in urls {
        let page = get(http, url, &format!("/api/v1/state/{actor}?limit=10000")).await;
        let entries = page.as_array().cloned().unwrap_or_default();
        if entries.is_empty() {
            continue;
        }
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        found.push(entries.iter().map(|e| (text(&e["key"]), text(&e["value"]["text"]))).collect());
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_apply_every_acknowledged_send_once_across_sigkills() {
    let Some(nats) = NatsServer::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let nodes = cluster(dir.path(), &nats.url, 3);
    deploy_counter(&nodes);
    let tokens: Vec<String> = nodes.iter().map(|n| n.node.token()).collect();
    let urls: Vec<String> = nodes.iter().map(LatticeNode::url).collect();
    let nodes = Arc::new(Mutex::new(nodes));
    let client = http();

    let send = {
        let (client, tokens) = (client.clone(), tokens.clone());
        move |urls: Vec<String>, id: String| {
            let (client, tokens) = (client.clone(), tokens.clone());
            async move {
                let n: usize = id.trim_start_matches("op").parse().unwrap();
                let via = n % urls.len();
                let body = json!({
                    "to": format!("counter/a{}", n % ACTORS), "payload": "inc", "headers": { "op-id": id }
                });
                let request = client.post(format!("{}/api/v1/messages", urls[via])).bearer_auth(&tokens[via]);
                match request.json(&body).send().await {
                    Ok(response) if response.status().is_success() => match response.text().await {
                        Ok(_) => Outcome::Acked,
                        Err(_) => Outcome::Cut,
                    },
                    Ok(response) => {
                        let status = response.status();
                        panic!("send {id} refused: {status} {}", response.text().await.unwrap_or_default())
                    }
                    Err(_) => Outcome::Cut,
                }
            }
        }
    };
    let restart = || {
        let nodes = nodes.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let mut nodes = nodes.lock().unwrap();
                let victim = rand::rng().random_range(0..nodes.len());
                nodes[victim].restart();
                nodes.iter().map(LatticeNode::url).collect::<Vec<_>>()
            })
            .await
            .unwrap()
        }
    };
    let (acked, kills, urls) = drive(MESSAGES, 8, 3, urls, send, restart).await;

    // Every outbox drains and every mailbox empties.
    let deadline = tokio::time::Instant::now() + PATIENCE * 3;
    loop {
        let mut waiting = 0;
        for url in &urls {
            let list = get(&client, url, "/api/v1/nodes").await;
            let nodes = list["nodes"].as_array().cloned().unwrap_or_default();
            waiting += nodes.iter().map(|n| n["outbox_to"].as_u64().unwrap_or(0)).sum::<u64>();
            let actors = get(&client, url, "/api/v1/actors").await;
            let actors = actors.as_array().cloned().unwrap_or_default();
            waiting += actors.iter().map(|a| a["pending"].as_u64().unwrap_or(0)).sum::<u64>();
        }
        if waiting == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{waiting} messages still wait in outboxes or mailboxes");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut applied_anywhere = BTreeSet::new();
    for a in 0..ACTORS {
        let actor = format!("counter/a{a}");
        let holders = state_by_node(&client, &urls, &actor).await;
        assert!(holders.len() <= 1, "{actor} has state on {} nodes: one owner only", holders.len());
        let Some(state) = holders.into_iter().next() else { continue };
        let count: usize = state.get("count").map_or(0, |c| c.parse().unwrap());
        let mut orders = BTreeSet::new();
        for (key, value) in state.iter().filter(|(k, _)| k.starts_with("applied/")) {
            let id = key.trim_start_matches("applied/");
            let (times, order) = value.split_once(' ').expect("`TIMES ORDER`");
            assert_eq!(times, "1", "{id} was applied {times} times at {actor}");
            let n: usize = id.trim_start_matches("op").parse().expect("an id we sent");
            assert!(n < MESSAGES, "{id} was never sent");
            assert_eq!(n % ACTORS, a, "{id} was applied at {actor}, not at the actor it was sent to");
            orders.insert(order.parse::<usize>().unwrap());
            applied_anywhere.insert(id.to_string());
        }
        assert_eq!(orders, (1..=count).collect(), "{actor}: each application moved its count by exactly one");
    }
    let lost: Vec<&String> = acked.iter().filter(|id| !applied_anywhere.contains(*id)).collect();
    assert!(lost.is_empty(), "{} acknowledged sends were lost, e.g. {:?}", lost.len(), &lost[..lost.len().min(5)]);
    eprintln!(
        "{MESSAGES} sends through 3 nodes, {} acknowledged, {} applied once each, SIGKILLs at {kills:?}",
        acked.len(),
        applied_anywhere.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_to_an_actor_whose_owner_is_down_says_so_and_a_redeploy_keeps_its_actors() {
    let Some(nats) = NatsServer::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = cluster(dir.path(), &nats.url, 2);
    deploy_counter(&nodes);
    // The placement is both nodes; every node computes owners alike.
    let placement = Placement::new(["n1".to_string(), "n2".to_string()]);
    let actors: Vec<String> = (0..20).map(|k| format!("counter/k{k}")).collect();
    let on_n2: Vec<&String> = actors.iter().filter(|a| placement.owner(a) == Some("n2")).collect();
    assert!(!on_n2.is_empty() && on_n2.len() < actors.len(), "20 actors spread over both nodes");
    let first = &nodes[0];
    for actor in &actors {
        assert_eq!(ok(&first.node.cli(&["call", actor, "inc"])).trim(), "1", "{actor} answers through n1");
    }
    let mut second = nodes.remove(1);
    second.node.kill();
    let first = &nodes[0];
    // A redeploy while n2 is down must not move n2's actors to n1.
    ok(&first.node.cli(&["deploy", artifacts::COUNTER, "--name", "counter"]));
    for actor in &actors {
        if on_n2.contains(&actor) {
            let error = fails(&first.node.cli(&["call", "--timeout", "1s", actor, "get"]));
            assert!(error.contains("[owner_down]") && error.contains("`n2`"), "{actor}: {error}");
        } else {
            assert_eq!(ok(&first.node.cli(&["call", actor, "get"])).trim(), "1", "{actor} is served by n1");
        }
    }
    second.restart();
    wait_for_peers(first, 2);
    for actor in on_n2 {
        let count = ok(&first.node.cli(&["call", actor, "get"]));
        assert_eq!(count.trim(), "1", "{actor} answers from its state on n2 once n2 is back");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_back_with_a_wiped_store_is_refused_until_forgotten() {
    let Some(nats) = NatsServer::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let nodes = cluster(dir.path(), &nats.url, 2);
    let list: Value = serde_json::from_str(&ok(&nodes[0].node.cli(&["nodes", "--json"]))).unwrap();
    let old = list["nodes"][1]["incarnation"].as_str().unwrap().to_string();
    let mut nodes = nodes;
    let mut wiped = nodes.remove(1);
    wiped.node.kill();
    std::fs::remove_dir_all(dir.path().join("n2")).unwrap();
    let fresh = LatticeNode::start("n2", dir.path().join("n2"), &nats.url);
    let first = &nodes[0];
    wait_until("n1 to refuse the new n2", || {
        let list: Value = serde_json::from_slice(&first.node.cli(&["nodes", "--json"]).stdout).unwrap_or_default();
        list["nodes"][1]["state"] == "refused"
    });
    let table = ok(&first.node.cli(&["nodes"]));
    assert!(table.contains("n2 refused") && table.contains(&old), "{table}");
    ok(&first.node.cli(&["nodes", "forget", "n2"]));
    wait_for_peers(first, 2);
    drop(fresh);
}
