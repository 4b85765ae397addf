//! Driving a test lattice over its HTTP APIs: reads of each node's own
//! store, a poster for the crash driver, SIGKILL-and-restart of its nodes,
//! waiting until every outbox and mailbox is empty, and the check of the
//! counters' exactly-once records. Shared by the lattice and rebalance
//! tests.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use serde_json::Value;

use crate::crash::Outcome;
use crate::lattice::LatticeNode;
use crate::process::{ok, wait_until};
use crate::{PATIENCE, artifacts};

pub fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("HTTP client")
}

/// A GET of `path` on the node at `url`, as JSON. A GET is idempotent, so
/// one that dies on a reset connection (a pooled keep-alive connection that
/// went stale, seen once during a NATS outage) is sent once more on a new
/// one; a node that is gone fails both.
pub async fn get(http: &reqwest::Client, url: &str, path: &str) -> Value {
    let url = format!("{url}{path}");
    let response = match http.get(&url).send().await {
        Ok(response) => response,
        Err(e) if e.is_request() => {
            eprintln!("GET {url}: {e}; sending it again");
            http.get(&url).header(reqwest::header::CONNECTION, "close").send().await.expect("GET, sent again")
        }
        Err(e) => panic!("GET {url}: {e}"),
    };
    response.json().await.expect("JSON")
}

/// Deploys the counter once, on the first node, and waits until every node has it.
pub fn deploy_counter(nodes: &[LatticeNode], flags: &[&str]) {
    let mut args = vec!["deploy", artifacts::COUNTER, "--name", "counter"];
    args.extend(flags);
    ok(&nodes[0].node.cli(&args));
    wait_for_types(nodes, &["counter"]);
}

/// Waits until every node lists the types `names`.
pub fn wait_for_types(nodes: &[LatticeNode], names: &[&str]) {
    for node in nodes {
        wait_until(&format!("{} to have {names:?}", node.id), || {
            // Its own list: a plain `ls` lists every node's types.
            let listed = String::from_utf8_lossy(&node.node.cli(&["--on", &node.id, "ls"]).stdout).to_string();
            names.iter().all(|name| listed.contains(name))
        });
    }
}

/// The state pages (`query`: `prefix=..&limit=..`) of `actor` in the
/// stores of the nodes that hold any. `urls[i]` is node `n{i+1}`; naming
/// each node itself with `?node=` reads its own store, where a plain read
/// would be answered by the actor's owner.
pub async fn own_state(http: &reqwest::Client, urls: &[String], actor: &str, query: &str) -> Vec<Value> {
    let mut found = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        let page = get(http, url, &format!("/api/v1/state/{actor}?{query}&node=n{}", i + 1)).await;
        if page.as_array().is_some_and(|entries| !entries.is_empty()) {
            found.push(page);
        }
    }
    found
}

/// The state of `actor` on each node that has any, as text.
pub async fn state_by_node(http: &reqwest::Client, urls: &[String], actor: &str) -> Vec<BTreeMap<String, String>> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let pages = own_state(http, urls, actor, "limit=10000").await;
    pages
        .iter()
        .map(|page| {
            let entries = page.as_array().cloned().unwrap_or_default();
            entries.iter().map(|e| (text(&e["key"]), text(&e["value"]["text"]))).collect()
        })
        .collect()
}

/// What [`drive`] needs to POST request `n` to node `n % nodes`: `route(n)`
/// is the path and the body. A refusal fails the test; a cut connection is
/// a cut.
#[allow(clippy::type_complexity)]
pub fn poster(
    client: reqwest::Client,
    tokens: Vec<String>,
    route: fn(usize) -> (String, Value),
) -> impl Fn(Vec<String>, String) -> std::pin::Pin<Box<dyn std::future::Future<Output = Outcome> + Send>>
+ Clone
+ Send
+ Sync
+ 'static {
    move |urls: Vec<String>, id: String| {
        let (client, tokens) = (client.clone(), tokens.clone());
        Box::pin(async move {
            let n: usize = id.trim_start_matches("op").parse().unwrap();
            let via = n % urls.len();
            let (path, body) = route(n);
            let request = client.post(format!("{}{path}", urls[via])).bearer_auth(&tokens[via]);
            match request.json(&body).send().await {
                Ok(response) if response.status().is_success() => match response.text().await {
                    Ok(_) => Outcome::Acked,
                    Err(_) => Outcome::Cut,
                },
                Ok(response) => {
                    let status = response.status();
                    panic!("request {id} refused: {status} {}", response.text().await.unwrap_or_default())
                }
                Err(_) => Outcome::Cut,
            }
        })
    }
}

/// What a restart answers, in time: every node's URL.
pub type NewUrls = std::pin::Pin<Box<dyn std::future::Future<Output = Vec<String>> + Send>>;

/// SIGKILLs node `pick(n)` of the `n` nodes at each call and starts it
/// again; answers the new URLs.
pub fn restarter(nodes: Arc<Mutex<Vec<LatticeNode>>>, mut pick: impl FnMut(usize) -> usize) -> impl FnMut() -> NewUrls {
    move || {
        let nodes = nodes.clone();
        let victim = pick(nodes.lock().unwrap().len());
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let mut nodes = nodes.lock().unwrap();
                nodes[victim].restart();
                nodes.iter().map(LatticeNode::url).collect::<Vec<_>>()
            })
            .await
            .unwrap()
        })
    }
}

/// A random node at each call.
pub fn restart_random(nodes: Arc<Mutex<Vec<LatticeNode>>>) -> impl FnMut() -> NewUrls {
    restarter(nodes, |n| rand::rng().random_range(0..n))
}

/// The first node, then the second, and so on.
pub fn restart_in_turn(nodes: Arc<Mutex<Vec<LatticeNode>>>) -> impl FnMut() -> NewUrls {
    let mut next = 0;
    restarter(nodes, move |n| {
        next += 1;
        (next - 1) % n
    })
}

/// Messages waiting in every outbox and every mailbox of every node.
pub async fn waiting(client: &reqwest::Client, urls: &[String]) -> u64 {
    let mut waiting = 0;
    for url in urls {
        let list = get(client, url, "/api/v1/nodes").await;
        let nodes = list["nodes"].as_array().cloned().unwrap_or_default();
        waiting += nodes.iter().map(|n| n["outbox_to"].as_u64().unwrap_or(0)).sum::<u64>();
        let actors = get(client, url, "/api/v1/actors").await;
        let actors = actors.as_array().cloned().unwrap_or_default();
        waiting += actors.iter().map(|a| a["pending"].as_u64().unwrap_or(0)).sum::<u64>();
    }
    waiting
}

/// Waits until every outbox and every mailbox of every node is empty.
pub async fn wait_drained(client: &reqwest::Client, urls: &[String]) {
    let deadline = tokio::time::Instant::now() + PATIENCE * 3;
    loop {
        let left = waiting(client, urls).await;
        if left == 0 {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{left} messages still wait in outboxes or mailboxes");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Checks the counters `counter/a0..` after a load of sends with op-ids
/// (op `n` to `counter/a{n % actors}`): each has state
/// on one node at most, every acknowledged send was applied exactly once
/// at the actor it was sent to, and each application moved the count by
/// one. Returns how many sends were applied.
pub async fn check_counters(
    client: &reqwest::Client,
    urls: &[String],
    acked: &BTreeSet<String>,
    sent: usize,
    actors: usize,
) -> usize {
    let mut applied_anywhere = BTreeSet::new();
    for a in 0..actors {
        let actor = format!("counter/a{a}");
        let holders = state_by_node(client, urls, &actor).await;
        assert!(holders.len() <= 1, "{actor} has state on {} nodes: one owner only", holders.len());
        let Some(state) = holders.into_iter().next() else { continue };
        let count: usize = state.get("count").map_or(0, |c| c.parse().unwrap());
        let mut orders = BTreeSet::new();
        for (key, value) in state.iter().filter(|(k, _)| k.starts_with("applied/")) {
            let id = key.trim_start_matches("applied/");
            let (times, order) = value.split_once(' ').expect("`TIMES ORDER`");
            assert_eq!(times, "1", "{id} was applied {times} times at {actor}");
            let n: usize = id.trim_start_matches("op").parse().expect("an id we sent");
            assert!(n < sent, "{id} was never sent");
            assert_eq!(n % actors, a, "{id} was applied at {actor}, not at the actor it was sent to");
            orders.insert(order.parse::<usize>().unwrap());
            applied_anywhere.insert(id.to_string());
        }
        assert_eq!(orders, (1..=count).collect(), "{actor}: each application moved its count by exactly one");
    }
    let lost: Vec<&String> = acked.iter().filter(|id| !applied_anywhere.contains(*id)).collect();
    assert!(lost.is_empty(), "{} acknowledged sends were lost, e.g. {:?}", lost.len(), &lost[..lost.len().min(5)]);
    applied_anywhere.len()
}
