//! Scenario 7: the lattice. Two nodes in this process, `n1` and `n2`, on a
//! real `nats-server` on loopback, with the counter and caller guests
//! deployed once on both (placement: both nodes). Measured:
//! - **durable accept to a remote owner**: 64 senders on `n1` send to
//!   counters `n2` owns, each awaiting `accepted` (durable in `n1`'s
//!   outbox); next to the same to counters `n1` owns;
//! - **calls between actors on two nodes**: a caller on `n1` calls a counter
//!   on `n2` (transient, persistent), timed by the caller's own clock;
//!   next to the same call on one node and to a raw NATS request–reply of
//!   64 bytes on the same server.
//!
//! Both nodes share the machine's cores and disk, as every scenario does.

use std::path::Path;
use std::time::{Duration, Instant};

use pigeon_node::pigeon_lattice::{LatticeConfig, PeerState};
use pigeon_node::pigeon_store::{Delivery, Envelope, Placement};
use pigeon_node::{LatticeSettings, Node, NodeConfig};
use pigeon_test_artifacts as artifacts;

use crate::measure::{Latency, fan_out, median_rate, micros};
use crate::report::{Peer, Report, Row};
use crate::{REPS, jetstream};

const SENDERS: usize = 64;
const PER_SENDER: usize = 100;
const CALLS: usize = 200;
/// How long the nodes may take to see each other and to get the types.
const SETTLE: Duration = Duration::from_secs(60);

pub fn scenario(
    runtime: &tokio::runtime::Runtime,
    scratch: &Path,
    report: &mut Report,
    fsync: Duration,
) -> anyhow::Result<()> {
    println!("7 · lattice");
    if !jetstream::installed() {
        report.note(format!("7 · lattice: not measured, nats-server is not installed (`{}`)", jetstream::INSTALL));
        return Ok(());
    }
    let server = jetstream::start(&scratch.join("lattice-nats"))?;
    let (n1, n2) = runtime.block_on(pair(scratch, &server.url))?;
    let placement = Placement::new(["n1".to_string(), "n2".to_string()]);
    let owned = |ty: &str, owner: &str, n: usize| -> Vec<String> {
        (0..).map(|k| format!("{ty}/k{k}")).filter(|a| placement.owner(a) == Some(owner)).take(n).collect()
    };

    let (local, remote) = (owned("counter", "n1", SENDERS), owned("counter", "n2", SENDERS));
    let here = median_rate(REPS, || runtime.block_on(sends(&n1, &local)))?;
    let there = median_rate(REPS, || runtime.block_on(sends(&n1, &remote)))?;
    let row = Row::new(format!("7 · durable accept to a remote owner, {SENDERS} senders"), there.rate_cell(), true)
        .with(5, Peer::Measured(here.rate_cell()));
    report.row(row);
    let share = there.median / here.median;
    report.aim("cross-node accept ≥ 50% of local accept", format!("{:.0}%", share * 100.0), share >= 0.5);

    let raw = Latency::measure(REPS, || runtime.block_on(request_reply(&server.url, CALLS)))?;
    let caller = owned("caller", "n1", 1).remove(0);
    let (near, far) = (owned("counter", "n1", 1).remove(0), owned("counter", "n2", 1).remove(0));
    let mut persistent = None;
    for delivery in [Delivery::Transient, Delivery::Persistent] {
        let name = if delivery == Delivery::Transient { "transient" } else { "persistent" };
        let timed = |callee: &str| {
            Latency::measure(REPS, || runtime.block_on(crate::node::timed_calls(&n1, &caller, callee, delivery, CALLS)))
        };
        let (one_node, two_nodes) = (timed(&near)?, timed(&far)?);
        let row = Row::new(format!("7 · call between actors on two nodes, {name} (p50/p99)"), two_nodes.cell(), false)
            .with(5, Peer::Measured(one_node.cell()))
            .with(6, Peer::Measured(raw.cell()));
        report.row(row);
        if delivery == Delivery::Persistent {
            persistent = Some(two_nodes.p50);
        }
    }
    if let Some(p50) = persistent {
        let budget = fsync * 2 + raw.p50 * 2;
        report.aim(
            "cross-node persistent call p50 ≤ 2 fsyncs + 2 raw NATS round trips",
            format!("{} vs {} (fsync {}, NATS {})", micros(p50), micros(budget), micros(fsync), micros(raw.p50)),
            p50 <= budget,
        );
    }
    runtime.block_on(async {
        n1.shutdown(Duration::from_secs(10)).await;
        n2.shutdown(Duration::from_secs(10)).await;
    });
    Ok(())
}

/// Nodes `n1` and `n2` on `url`, seeing each other, with the counter and
/// caller deployed (from `n1`) on both.
async fn pair(scratch: &Path, url: &str) -> anyhow::Result<(Node, Node)> {
    let mut nodes = start_nodes(scratch, url, &["n1", "n2"]).await?;
    let (n1, n2) = (nodes.remove(0), nodes.remove(0));
    for (ty, wasm) in [("counter", artifacts::COUNTER_WASM), ("caller", artifacts::CALLER_WASM)] {
        n1.deploy(ty, wasm.to_vec(), crate::node::limits(), Vec::new()).await?;
    }
    wait("n2 to get the types", || n2.type_names().len() == 2).await?;
    Ok((n1, n2))
}

/// Nodes with the ids `ids`, each on a fresh directory under `scratch`,
/// in one lattice on `url`, once every one of them sees all the others.
pub async fn start_nodes(scratch: &Path, url: &str, ids: &[&str]) -> anyhow::Result<Vec<Node>> {
    let mut nodes = Vec::new();
    for id in ids {
        let dir = scratch.join(format!("lattice-{id}"));
        let _ = std::fs::remove_dir_all(&dir);
        let mut config = NodeConfig::new(&dir);
        config.host = crate::node::start_config(&scratch.join("cache"));
        config.store.node_id = Some(id.to_string());
        let lattice = LatticeConfig::new(url, "bench");
        config.lattice = Some(LatticeSettings { config: lattice, api: format!("bench://{id}") });
        nodes.push(Node::start(config).await?);
    }
    let all_up = |n: &Node| n.nodes().iter().filter(|p| p.state == PeerState::Up).count() == ids.len();
    wait("the nodes to see each other", || nodes.iter().all(all_up)).await?;
    Ok(nodes)
}

pub async fn wait(what: &str, done: impl Fn() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + SETTLE;
    while !done() {
        anyhow::ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// [`SENDERS`] senders on `node`, each sending [`PER_SENDER`] persistent
/// `inc`s to its own actor of `actors` and awaiting each acceptance.
async fn sends(node: &Node, actors: &[String]) -> anyhow::Result<(usize, Duration)> {
    let (node, actors) = (node.clone(), actors.to_vec());
    let started = Instant::now();
    fan_out(SENDERS, SENDERS * PER_SENDER, move |i| {
        let (node, to) = (node.clone(), actors[i % actors.len()].clone());
        async move {
            node.send(Envelope::new(to, b"inc".to_vec())).await?;
            Ok(())
        }
    })
    .await?;
    Ok((SENDERS * PER_SENDER, started.elapsed()))
}

/// `n` request–replies of 64 bytes to an echoing subscriber, one at a time.
async fn request_reply(url: &str, n: usize) -> anyhow::Result<Vec<Duration>> {
    use futures_util::StreamExt as _;
    let client = async_nats::connect(url).await?;
    let mut echo = client.subscribe("bench.echo").await?;
    let responder = client.clone();
    let serving = tokio::spawn(async move {
        while let Some(request) = echo.next().await {
            if let Some(reply) = request.reply {
                let _ = responder.publish(reply, request.payload).await;
            }
        }
    });
    client.flush().await?;
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        client.request("bench.echo", crate::PAYLOAD.to_vec().into()).await?;
        times.push(started.elapsed());
    }
    serving.abort();
    Ok(times)
}
