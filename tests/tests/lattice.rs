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
//! - the same with nats-server killed for 10 s mid-load: the nodes say they
//!   are disconnected, keep accepting, and catch up;
//! - 600 publications through all three nodes to 30 subscribers with
//!   filters, spread over the nodes, with a node SIGKILLed mid-publish:
//!   every matching subscriber holds every acknowledged one exactly once;
//! - a call cycle across two nodes is a deadlock error, not a hang;
//! - the bank with its accounts on one node and its transfer desks on the
//!   other, both SIGKILLed in turn: money is conserved and every balance is
//!   what the recorded outcomes imply;
//! - any node inspects, lists and handles the dead letters of any actor;
//! - a node that returns with a wiped store is refused, naming both
//!   incarnations, until it is forgotten.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pigeon_node::pigeon_store::Placement;
use pigeon_tests::bank::{ACCOUNTS, OPENING, check, settle, transfer_message};
use pigeon_tests::cluster::{
    check_counters, deploy_counter, get, http, own_state, poster, restart_in_turn, restart_random, wait_drained,
    wait_for_types, waiting,
};
use pigeon_tests::crash::{drive, op_id};
use pigeon_tests::lattice::{LatticeNode, NatsServer, cluster, wait_for_peers};
use pigeon_tests::multicast::{applied, check_subscriber, filter, headers};
use pigeon_tests::process::{fails, ok, wait_until};
use pigeon_tests::{PATIENCE, artifacts};
use serde_json::{Value, json};

const MESSAGES: usize = 3_000;
const ACTORS: usize = 30;

/// A persistent send with op-id `n` to one of the counters.
fn counter_send(n: usize) -> (String, Value) {
    let body = json!({ "to": format!("counter/a{}", n % ACTORS), "payload": "inc", "headers": { "op-id": op_id(n) } });
    ("/api/v1/messages".to_string(), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_transfers_between_nodes_conserve_money_across_sigkills_of_both_sides() {
    const TRANSFERS: usize = 400;
    let Some(nats) = NatsServer::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let nodes = cluster(dir.path(), &nats.url, 2);
    // The accounts live on n2, the transfer desks on n1: every withdraw and
    // deposit is a typed call from one node to the other.
    let n1 = &nodes[0].node;
    ok(&n1.cli(&["deploy", artifacts::BANK_ACCOUNT, "--name", "account", "--nodes", "n2"]));
    let link = "acme:bank/account=account";
    ok(&n1.cli(&["deploy", artifacts::BANK_TRANSFER, "--name", "transfer", "--link", link, "--nodes", "n1"]));
    wait_for_types(&nodes, &["account", "transfer"]);
    for a in 0..ACCOUNTS {
        let out = ok(&n1.cli(&["call", &format!("account/a{a}"), &format!("account.deposit({OPENING})")]));
        assert_eq!(out.trim(), format!("ok({OPENING})"), "a typed call from n1's CLI to n2's account");
    }
    let tokens: Vec<String> = nodes.iter().map(|n| n.node.token()).collect();
    let urls: Vec<String> = nodes.iter().map(LatticeNode::url).collect();
    let nodes = Arc::new(Mutex::new(nodes));
    let client = http();
    let send = poster(client.clone(), tokens, |n| ("/api/v1/messages".to_string(), transfer_message(&op_id(n))));
    let (acked, kills, urls) = drive(TRANSFERS, 8, 2, urls, send, restart_in_turn(nodes.clone())).await;

    // Every read goes through n1, which asks n2 for its actors' state.
    let get_state = |path: String| {
        let (client, url) = (client.clone(), urls[0].clone());
        async move { get(&client, &url, &path).await }
    };
    let (outcomes, balances) = settle(get_state, || waiting(&client, &urls), &acked).await;
    let moved = check(&outcomes, &balances, TRANSFERS);
    assert!(moved > TRANSFERS / 4, "most transfers went through ({moved})");
    eprintln!(
        "{TRANSFERS} transfers n1 → n2, {} acknowledged, {} recorded ({moved} moved money), SIGKILLs of n1 then n2 at {kills:?}",
        acked.len(),
        outcomes.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_apply_every_acknowledged_send_once_across_sigkills() {
    let Some(nats) = NatsServer::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let nodes = cluster(dir.path(), &nats.url, 3);
    deploy_counter(&nodes, &[]);
    let tokens: Vec<String> = nodes.iter().map(|n| n.node.token()).collect();
    let urls: Vec<String> = nodes.iter().map(LatticeNode::url).collect();
    let nodes = Arc::new(Mutex::new(nodes));
    let client = http();
    let send = poster(client.clone(), tokens, counter_send);
    let (acked, kills, urls) = drive(MESSAGES, 8, 3, urls, send, restart_random(nodes.clone())).await;
    wait_drained(&client, &urls).await;
    let applied = check_counters(&client, &urls, &acked, MESSAGES, ACTORS).await;
    eprintln!(
        "{MESSAGES} sends through 3 nodes, {} acknowledged, {applied} applied once each, SIGKILLs at {kills:?}",
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_down_for_ten_seconds_mid_load_loses_and_doubles_nothing() {
    let Some(nats) = NatsServer::start() else { return };
    let nats = Arc::new(Mutex::new(nats));
    let dir = tempfile::tempdir().unwrap();
    let url = nats.lock().unwrap().url.clone();
    let nodes = cluster(dir.path(), &url, 3);
    deploy_counter(&nodes, &[]);
    let tokens: Vec<String> = nodes.iter().map(|n| n.node.token()).collect();
    let urls: Vec<String> = nodes.iter().map(LatticeNode::url).collect();
    let client = http();
    let send = poster(client.clone(), tokens, counter_send);
    let outage = {
        let (nats, urls, client) = (nats.clone(), urls.clone(), client.clone());
        move || {
            let (nats, urls, client) = (nats.clone(), urls.clone(), client.clone());
            async move {
                nats.lock().unwrap().kill();
                let started = tokio::time::Instant::now();
                // Every node sees it and says so, while it keeps taking sends.
                for url in &urls {
                    lattice_connected_becomes(&client, url, false).await;
                }
                // The outage the acceptance names lasts 10 s (a fault, not a deadline).
                tokio::time::sleep_until(started + Duration::from_secs(10)).await;
                nats.lock().unwrap().resume();
                urls
            }
        }
    };
    let (acked, _, urls) = drive(MESSAGES / 2, 8, 1, urls, send, outage).await;
    for url in &urls {
        lattice_connected_becomes(&client, url, true).await;
    }
    wait_drained(&client, &urls).await;
    let applied = check_counters(&client, &urls, &acked, MESSAGES / 2, ACTORS).await;
    assert_eq!(applied, acked.len(), "no send was cut, so every one was acknowledged and applied");
    drop(nodes);
}

/// Waits until the node at `url` reports its lattice connection as `connected`.
async fn lattice_connected_becomes(client: &reqwest::Client, url: &str, connected: bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let health = get(client, url, "/api/v1/health").await;
        if health["lattice"]["connected"] == connected {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{url}: lattice never became connected={connected}: {health}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publication_reaches_every_matching_subscriber_on_every_node_once_across_a_sigkill() {
    const PUBLISHES: usize = 600;
    const SUBSCRIBERS: usize = 30;
    let Some(nats) = NatsServer::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let nodes = cluster(dir.path(), &nats.url, 3);
    deploy_counter(&nodes, &["--mailbox-bound", "1000000"]);
    // Each subscription is made through some node, whoever owns the subscriber.
    for s in 0..SUBSCRIBERS {
        let subscriber = format!("counter/s{s:02}");
        ok(&nodes[s % 3].node.cli(&["subscribe", "ticks", &subscriber, "--filter", filter(s).0]));
    }
    let listed: Value = serde_json::from_str(&ok(&nodes[0].node.cli(&["--json", "topics"]))).unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(SUBSCRIBERS), "every node's subscriptions are listed: {listed}");
    let placement = Placement::new(["n1".to_string(), "n2".to_string(), "n3".to_string()]);
    let owners: BTreeSet<&str> =
        (0..SUBSCRIBERS).filter_map(|s| placement.owner(&format!("counter/s{s:02}"))).collect();
    assert_eq!(owners.len(), 3, "the subscribers live on all three nodes");

    let tokens: Vec<String> = nodes.iter().map(|n| n.node.token()).collect();
    let urls: Vec<String> = nodes.iter().map(LatticeNode::url).collect();
    let nodes = Arc::new(Mutex::new(nodes));
    let client = http();
    let publish =
        |n: usize| ("/api/v1/topics/ticks/messages".to_string(), json!({ "payload": "inc", "headers": headers(n) }));
    let send = poster(client.clone(), tokens, publish);
    let (acked, kills, urls) = drive(PUBLISHES, 4, 1, urls, send, restart_random(nodes.clone())).await;
    let acked: BTreeSet<usize> = acked.iter().map(|id| id.trim_start_matches("op").parse().unwrap()).collect();
    wait_drained(&client, &urls).await;

    let mut checked = 0;
    for s in 0..SUBSCRIBERS {
        let subscriber = format!("counter/s{s:02}");
        let mut holders = own_state(&client, &urls, &subscriber, "prefix=applied/&limit=10000").await;
        assert!(holders.len() <= 1, "{subscriber} has state on {} nodes: one owner only", holders.len());
        let state = holders.pop().unwrap_or(Value::Null);
        checked += check_subscriber(s, &applied(&state), &acked, PUBLISHES);
    }
    eprintln!(
        "{PUBLISHES} publishes through 3 nodes, {} acknowledged, SIGKILL at {kills:?}; {checked} deliveries checked",
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_cycle_across_two_nodes_is_a_deadlock_error() {
    let Some(nats) = NatsServer::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let nodes = cluster(dir.path(), &nats.url, 2);
    ok(&nodes[0].node.cli(&["deploy", artifacts::CALLER, "--name", "caller"]));
    wait_for_types(&nodes, &["caller"]);
    let placement = Placement::new(["n1".to_string(), "n2".to_string()]);
    let on = |owner: &str| (0..).map(|k| format!("caller/k{k}")).find(|a| placement.owner(a) == Some(owner)).unwrap();
    let (a, b) = (on("n1"), on("n2"));
    // a (on n1) → b (on n2) → a would wait forever; both nodes see the chain.
    let answer = ok(&nodes[1].node.cli(&["call", &a, &format!("call {b} call {a} get")]));
    let cycle = format!("Deadlock(\"{a} → {b} → {a}\")");
    assert!(answer.starts_with("ok:error:CallError::") && answer.contains(&cycle), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_to_an_actor_whose_owner_is_down_says_so_and_a_redeploy_keeps_its_actors() {
    let Some(nats) = NatsServer::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = cluster(dir.path(), &nats.url, 2);
    deploy_counter(&nodes, &[]);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_node_inspects_lists_and_handles_the_dead_letters_of_any_actor() {
    let Some(nats) = NatsServer::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let nodes = cluster(dir.path(), &nats.url, 2);
    ok(&nodes[0].node.cli(&["deploy", artifacts::FAULTY, "--name", "faulty", "--max-attempts", "1"]));
    deploy_counter(&nodes, &[]);
    let placement = Placement::new(["n1".to_string(), "n2".to_string()]);
    let on = |ty: &str, owner: &str| (0..).map(|k| format!("{ty}/k{k}")).find(|a| placement.owner(a) == Some(owner));
    let (counter, faulty) = (on("counter", "n2").unwrap(), on("faulty", "n2").unwrap());
    let n1 = &nodes[0].node;
    assert_eq!(ok(&n1.cli(&["call", &counter, "inc"])).trim(), "1");
    ok(&n1.cli(&["send", &faulty, "trap", "--wait", "delivered"]));

    // inspect through n1 shows n2's actor, its state and who answered.
    let shown = ok(&n1.cli(&["inspect", &counter]));
    assert!(shown.starts_with(&format!("{counter}  (on node n2)")), "{shown}");
    assert!(shown.contains("processed  1") && shown.lines().any(|l| l.starts_with("count ")), "{shown}");
    let state: Value = serde_json::from_str(&ok(&n1.cli(&["--json", "inspect", &counter]))).unwrap();
    assert_eq!(state["state"][0]["key"], "count", "{state}");

    // ls through n1 lists both nodes' actors, each with its node.
    let listed: Value = serde_json::from_str(&ok(&n1.cli(&["--json", "ls"]))).unwrap();
    let actors = listed["actors"].as_array().cloned().unwrap_or_default();
    let row = actors.iter().find(|a| a["address"] == counter.as_str()).unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(row["node"], "n2", "{row}");
    assert!(ok(&n1.cli(&["ls"])).lines().any(|l| l.starts_with("n2 ") && l.contains(&counter)));

    // The dead letter is n2's: listed through n1, purged there with --on.
    wait_until("the dead letter to be listed through n1", || {
        let dead: Value = serde_json::from_slice(&n1.cli(&["--json", "dlq", "ls"]).stdout).unwrap_or_default();
        dead.as_array().is_some_and(|d| d.iter().any(|d| d["node"] == "n2" && d["message"]["to"] == faulty.as_str()))
    });
    assert!(ok(&n1.cli(&["dlq", "ls"])).contains("pigeon --on NODE dlq replay ID"));
    assert_eq!(ok(&n1.cli(&["--on", "n2", "dlq", "purge", "--all"])).trim(), "purged 1 dead letter");
    let dead: Value = serde_json::from_str(&ok(&nodes[1].node.cli(&["--json", "dlq", "ls"]))).unwrap();
    assert_eq!(dead.as_array().map(Vec::len), Some(0), "purged on n2 itself: {dead}");

    // Deleting the state through n1 deletes it where it is.
    ok(&n1.cli(&["forget", &counter]));
    let state: Value = serde_json::from_str(&ok(&nodes[1].node.cli(&["--json", "inspect", &counter]))).unwrap();
    assert_eq!(state["state"].as_array().map(Vec::len), Some(0), "{state}");

    let error = fails(&n1.cli(&["--on", "n9", "ls"]));
    assert!(error.contains("no node `n9`") && error.contains("[unknown_node]"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undeploy_reaches_a_node_that_was_down_and_nothing_brings_the_type_back() {
    let Some(nats) = NatsServer::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = cluster(dir.path(), &nats.url, 2);
    deploy_counter(&nodes, &[]);
    let has_counter = |node: &LatticeNode| String::from_utf8_lossy(&node.node.cli(&["ls"]).stdout).contains("counter");
    let mut second = nodes.remove(1);
    second.node.kill();
    let first = &nodes[0];
    ok(&first.node.cli(&["undeploy", "counter"]));
    second.restart();
    wait_for_peers(first, 2);
    wait_until("n2 to learn of the undeploy it missed", || !has_counter(&second));
    assert!(!has_counter(first), "n1 did not fetch the undeployed type back from n2");
    // A deploy after the undeploy is newer than it, and reaches both again.
    ok(&first.node.cli(&["deploy", artifacts::COUNTER, "--name", "counter"]));
    wait_until("n2 to have the counter again", || has_counter(&second));
}
