//! Scaling out and in, end to end (issue 20): a real `nats-server`, real
//! `pigeon up --nats` nodes, the counter and the bank example under load
//! while nodes join and leave and actors move with their state.
//!
//! The load is persistent sends with unique op-ids to 200 counters and
//! the bank's transfers, through every node. Each counter turn also
//! reports `op-id@node` to a ledger that never moves (on `n2`), in the
//! same transaction, so the ledger holds where every committed turn ran.
//! Under that load a third node joins and every type is widened to it,
//! then `n1` is drained. Afterwards:
//! - every acknowledged send was applied exactly once (counters' own
//!   records), and no message was handled on two nodes (the ledger);
//! - money is conserved and every balance is what the outcomes imply;
//! - every actor's state is on its new owner only, and the drained node's
//!   store holds no actor state at all.
//!
//! The second test does the same with SIGKILLs of the node actors move
//! from and of the one they move to, and nats-server restarted, each
//! while a move is under way (the moves are paced in debug builds so the
//! test can see one under way before it strikes).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use pigeon_node::pigeon_store::Placement;
use pigeon_tests::artifacts;
use pigeon_tests::bank::{ACCOUNTS, DESKS, OPENING, check, settle, transfer_message};
use pigeon_tests::cluster::{NewUrls, check_counters, get, http, poster, wait_drained, wait_for_types, waiting};
use pigeon_tests::crash::{drive_through, op_id};
use pigeon_tests::lattice::{LatticeNode, NatsServer, wait_for_peers};
use pigeon_tests::process::{ok, wait_until};
use serde_json::{Value, json};

const COUNTERS: usize = 200;
/// Acknowledged sends before each disturbance and after the last: every
/// one happens under load, however long it takes.
const GAP: usize = 300;
const TYPES: [&str; 3] = ["counter", "account", "transfer"];

/// Op `n`: a bank transfer for every fourth, else an `inc` of counter
/// `a{n % COUNTERS}` that reports to the ledger.
fn load(n: usize) -> (String, Value) {
    let body = if is_transfer(n) {
        transfer_message(&op_id(n))
    } else {
        let headers = json!({ "op-id": op_id(n), "report-to": "ledger/main" });
        json!({ "to": format!("counter/a{}", n % COUNTERS), "payload": "inc", "headers": headers })
    };
    ("/api/v1/messages".to_string(), body)
}

fn is_transfer(n: usize) -> bool {
    n % 4 == 3
}

fn op_number(id: &str) -> usize {
    id.trim_start_matches("op").parse().expect("an op id")
}

/// Two nodes with the counter, the bank and the ledger, and money in the
/// accounts.
fn two_nodes(dir: &std::path::Path, nats: &str, env: &[(&str, &str)]) -> Vec<LatticeNode> {
    let nodes: Vec<LatticeNode> =
        ["n1", "n2"].iter().map(|id| LatticeNode::start_with_env(id, dir.join(id), nats, env)).collect();
    for node in &nodes {
        wait_for_peers(node, 2);
    }
    let n1 = &nodes[0].node;
    ok(&n1.cli(&["deploy", artifacts::COUNTER, "--name", "counter", "--nodes", "n1,n2"]));
    ok(&n1.cli(&["deploy", artifacts::COUNTER, "--name", "ledger", "--nodes", "n2"]));
    ok(&n1.cli(&["deploy", artifacts::BANK_ACCOUNT, "--name", "account", "--nodes", "n1,n2"]));
    let link = "acme:bank/account=account";
    ok(&n1.cli(&["deploy", artifacts::BANK_TRANSFER, "--name", "transfer", "--link", link, "--nodes", "n1,n2"]));
    wait_for_types(&nodes, &["counter", "ledger", "account", "transfer"]);
    for a in 0..ACCOUNTS {
        ok(&n1.cli(&["call", &format!("account/a{a}"), &format!("account.deposit({OPENING})")]));
    }
    nodes
}

/// Starts `n3` and waits until all three see each other.
fn add_third(nodes: &Arc<Mutex<Vec<LatticeNode>>>, dir: &std::path::Path, nats: &str, env: &[(&str, &str)]) {
    let third = LatticeNode::start_with_env("n3", dir.join("n3"), nats, env);
    let mut nodes = nodes.lock().unwrap();
    nodes.push(third);
    for node in nodes.iter() {
        wait_for_peers(node, 3);
    }
    wait_for_types(&nodes, &["counter", "ledger", "account", "transfer"]);
}

/// Runs the CLI on node `via` (blocking: call it from a blocking task).
fn cli(nodes: &Arc<Mutex<Vec<LatticeNode>>>, via: usize, args: &[&str]) -> String {
    let nodes = nodes.lock().unwrap();
    ok(&nodes[via].node.cli(args))
}

fn urls(nodes: &Arc<Mutex<Vec<LatticeNode>>>) -> Vec<String> {
    nodes.lock().unwrap().iter().map(LatticeNode::url).collect()
}

/// Waits until every node says every type's last change is complete.
async fn wait_moved(client: &reqwest::Client, urls: &[String]) {
    for url in urls {
        for ty in TYPES {
            pigeon_tests::eventually(&format!("{ty}'s moves to finish at {url}"), || async {
                let info = get(client, url, &format!("/api/v1/types/{ty}/placement")).await;
                (info["complete"] == true && info.get("previous").is_none()).then_some(())
            })
            .await;
        }
    }
}

/// The nodes (`n1`.., for `urls[0]`..) whose own store holds state of
/// `actor` (`?node=` makes each answer from its own store).
async fn holders(client: &reqwest::Client, urls: &[String], actor: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        let node = format!("n{}", i + 1);
        let page = get(client, url, &format!("/api/v1/state/{actor}?limit=1&node={node}")).await;
        if page.as_array().is_some_and(|entries| !entries.is_empty()) {
            found.push(node);
        }
    }
    found
}

/// Every actor's state is where its owner under the final placement is,
/// and only there; the drained `n1` holds none.
async fn check_homes(client: &reqwest::Client, urls: &[String]) {
    let last = Placement::new(["n2".to_string(), "n3".to_string()]);
    let actors = (0..COUNTERS)
        .map(|a| format!("counter/a{a}"))
        .chain((0..ACCOUNTS).map(|a| format!("account/a{a}")))
        .chain((0..DESKS).map(|d| format!("transfer/d{d}")));
    for actor in actors {
        let found = holders(client, urls, &actor).await;
        if found.is_empty() {
            continue;
        }
        let owner = last.owner(&actor).unwrap().to_string();
        assert_eq!(found, [owner], "{actor}'s state is on its owner under the last placement, and only there");
    }
    let actors = get(client, &urls[0], "/api/v1/actors?node=n1").await;
    let queued: u64 = actors.as_array().into_iter().flatten().map(|a| a["pending"].as_u64().unwrap_or(0)).sum();
    assert_eq!(queued, 0, "the drained node holds no messages: {actors}");
    let listed = actors.as_array().map_or(0, Vec::len);
    assert_eq!(listed, 0, "the drained node lists no actors (their counters moved too): {actors}");
}

/// Where the ledger says each op was handled: op → nodes (with how
/// often each).
async fn ledger(client: &reqwest::Client, url: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let mut handled: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut after = String::new();
    loop {
        let query = format!("prefix=note%2F&limit=10000&after={}", after.replace('/', "%2F").replace('@', "%40"));
        let page = get(client, url, &format!("/api/v1/state/ledger/main?{query}")).await;
        let entries = page.as_array().cloned().unwrap_or_default();
        for entry in &entries {
            let key = entry["key"].as_str().unwrap_or_default();
            let (op, node) = key.trim_start_matches("note/").split_once('@').expect("`op@node`");
            let times = entry["value"]["text"].as_str().unwrap_or_default().to_string();
            handled.entry(op.to_string()).or_default().push((node.to_string(), times));
            after = key.to_string();
        }
        if entries.len() < 10_000 {
            return handled;
        }
    }
}

/// The checks of the module doc, once the load and the moves are over.
async fn check_everything(client: &reqwest::Client, urls: &[String], acked: &BTreeSet<String>, sent: usize) {
    wait_moved(client, urls).await;
    wait_drained(client, urls).await;
    let counted: BTreeSet<String> = acked.iter().filter(|id| !is_transfer(op_number(id))).cloned().collect();
    let applied = check_counters(client, urls, &counted, sent, COUNTERS).await;
    let handled = ledger(client, &urls[1]).await;
    for (op, nodes) in &handled {
        assert_eq!(nodes.len(), 1, "{op} was handled on more than one node: {nodes:?}");
        assert_eq!(nodes[0].1, "1", "{op} was handled {} times on {}", nodes[0].1, nodes[0].0);
    }
    assert_eq!(handled.len(), applied, "the ledger names every applied op once");
    let on: BTreeSet<&str> = handled.values().map(|nodes| nodes[0].0.as_str()).collect();
    assert!(on.contains("n1") && on.contains("n3"), "turns ran on the first nodes and on the new one: {on:?}");

    let get_state = |path: String| {
        let (client, url) = (client.clone(), urls[1].clone());
        async move { get(&client, &url, &path).await }
    };
    let transfers: BTreeSet<String> = acked.iter().filter(|id| is_transfer(op_number(id))).cloned().collect();
    let (outcomes, balances) = settle(get_state, || waiting(client, urls), &transfers).await;
    check(&outcomes, &balances, sent);
    check_homes(client, urls).await;
    eprintln!(
        "{} acknowledged sends (of at most {sent}), {applied} counter ops applied once each, on {on:?}",
        acked.len()
    );
}

/// The load of the module doc through `n1` and `n2`, with `step(0)` then
/// `step(1)` run (blocking) under it, then every check. Returns the
/// acknowledgements at each step.
async fn load_through(
    nodes: &Arc<Mutex<Vec<LatticeNode>>>,
    step: impl Fn(usize) + Clone + Send + 'static,
) -> Vec<usize> {
    const MESSAGES: usize = 50_000;
    // The third node joins later with its own token: sends go through the first two.
    let tokens: Vec<String> = nodes.lock().unwrap().iter().map(|n| n.node.token()).collect();
    let client = http();
    let send = poster(client.clone(), tokens, load);
    let mut next = 0;
    let disturb = {
        let nodes = nodes.clone();
        move || -> NewUrls {
            let (nodes, step, n) = (nodes.clone(), step.clone(), next);
            next += 1;
            Box::pin(async move {
                tokio::task::spawn_blocking(move || {
                    step(n);
                    urls(&nodes)[..2].to_vec()
                })
                .await
                .unwrap()
            })
        }
    };
    let (acked, points, _) = drive_through(MESSAGES, 8, 2, GAP, urls(nodes), send, disturb).await;
    check_everything(&client, &urls(nodes), &acked, MESSAGES).await;
    points
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actors_move_with_their_state_when_a_node_joins_and_another_is_drained_under_load() {
    let Some(nats) = NatsServer::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let nodes = Arc::new(Mutex::new(two_nodes(dir.path(), &nats.url, &[])));
    let (dir_path, nats_url) = (dir.path().to_path_buf(), nats.url.clone());
    let step = {
        let nodes = nodes.clone();
        move |step: usize| {
            if step == 0 {
                add_third(&nodes, &dir_path, &nats_url, &[]);
                for ty in TYPES {
                    let out = cli(&nodes, 2, &["placement", ty, "--nodes", "n1,n2,n3"]);
                    assert!(out.contains("moved"), "{out}");
                }
            } else {
                let out = cli(&nodes, 1, &["drain", "n1"]);
                assert!(out.contains("node n1 holds no actors now"), "{out}");
            }
        }
    };
    let points = load_through(&nodes, step).await;
    eprintln!("n3 joined at {} acknowledgements, n1 drained at {}", points[0], points[1]);
    let status = cli(&nodes, 1, &["placement", "counter"]);
    assert!(status.contains("n2, n3"), "{status}");
    // n1 handed off every actor it had, and counted them.
    let n1 = urls(&nodes)[0].clone();
    let metrics = http().get(format!("{n1}/metrics")).send().await.unwrap().text().await.unwrap();
    let moved = |name: &str| -> f64 {
        let line = metrics.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name}: {metrics}"));
        line.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or_default()
    };
    assert!(moved("pigeon_handoff_actors_moved_total") > 0.0, "n1 counts the actors it handed off");
    assert!(moved("pigeon_handoff_moved_bytes_total") > 0.0, "and their bytes");
    assert!(moved("pigeon_handoff_duration_seconds_count") > 0.0, "and the handoffs' durations");
}

/// The status of `ty`'s placement as node `via` tells it.
fn status(nodes: &Arc<Mutex<Vec<LatticeNode>>>, via: usize, ty: &str) -> Value {
    let out = nodes.lock().unwrap()[via].node.cli(&["placement", ty, "--json"]);
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

/// Waits until the counters are moving from node `from` (any node:
/// `None`), some moved and several left: a move is under way.
fn wait_moving(nodes: &Arc<Mutex<Vec<LatticeNode>>>, via: usize, from: Option<&str>) {
    wait_until(&format!("counters to be moving from {from:?}"), || {
        let moves = status(nodes, via, "counter")["moves"].as_array().cloned().unwrap_or_default();
        moves.iter().any(|m| {
            from.is_none_or(|f| m["from"] == f)
                && m["moved"].as_u64().unwrap_or(0) >= 1
                && m["remaining"].as_u64().unwrap_or(0) >= 5
        })
    });
}

/// Waits until every type's last change is complete, as node `via` sees it.
fn wait_complete(nodes: &Arc<Mutex<Vec<LatticeNode>>>, via: usize) {
    for ty in TYPES {
        wait_until(&format!("{ty}'s moves to finish"), || status(nodes, via, ty)["complete"] == true);
    }
}

fn connected(nodes: &Arc<Mutex<Vec<LatticeNode>>>, i: usize) -> bool {
    let out = nodes.lock().unwrap()[i].node.cli(&["nodes", "--json"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    list["lattice"]["connected"] == true
}

/// Waits until every node is connected to NATS again; says which is not.
fn wait_reconnected(nodes: &Arc<Mutex<Vec<LatticeNode>>>) {
    let deadline = std::time::Instant::now() + pigeon_tests::PATIENCE;
    while !(0..3).all(|i| connected(nodes, i)) {
        if std::time::Instant::now() > deadline {
            let views: Vec<String> = (0..3)
                .map(|i| {
                    let out = nodes.lock().unwrap()[i].node.cli(&["nodes", "--json"]);
                    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
                })
                .collect();
            panic!("the nodes did not all reconnect to NATS: {views:#?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moves_resume_after_sigkills_of_either_side_and_a_nats_restart_mid_move() {
    let Some(nats) = NatsServer::start() else { return };
    let nats_url = nats.url.clone();
    let nats = Arc::new(Mutex::new(nats));
    // One actor at a time, 100 ms apart: each move lasts seconds, so every
    // fault below strikes while one is under way (the test waits to see it).
    let pace = [("PIGEON_TEST_HANDOFF_PACE_MS", "100")];
    let dir = tempfile::tempdir().unwrap();
    let nodes = Arc::new(Mutex::new(two_nodes(dir.path(), &nats_url, &pace)));
    let dir_path = dir.path().to_path_buf();
    let step = {
        let (nodes, nats) = (nodes.clone(), nats.clone());
        move |step: usize| {
            if step == 0 {
                add_third(&nodes, &dir_path, &nats_url, &pace);
                for ty in TYPES {
                    cli(&nodes, 2, &["placement", ty, "--nodes", "n1,n2,n3", "--no-wait"]);
                }
                // The sending side, then the receiving side, mid-move.
                wait_moving(&nodes, 1, Some("n1"));
                nodes.lock().unwrap()[0].restart();
                wait_moving(&nodes, 1, None);
                nodes.lock().unwrap()[2].restart();
                wait_complete(&nodes, 1);
            } else {
                cli(&nodes, 1, &["drain", "n1", "--no-wait"]);
                wait_moving(&nodes, 1, Some("n1"));
                nats.lock().unwrap().kill();
                wait_until("n2 to notice NATS is gone", || !connected(&nodes, 1));
                nats.lock().unwrap().resume();
                wait_reconnected(&nodes);
                wait_moving(&nodes, 1, Some("n1"));
                nodes.lock().unwrap()[0].restart();
                wait_complete(&nodes, 1);
            }
        }
    };
    let points = load_through(&nodes, step).await;
    eprintln!(
        "widened with 2 SIGKILLs at {} acknowledgements, drained with a NATS restart and a SIGKILL at {}",
        points[0], points[1]
    );
}
