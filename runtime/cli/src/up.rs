//! `pigeon up`: a node, its HTTP API, and a clean stop on Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use crate::units;
use pigeon_node::pigeon_host::rpc::parse_link;
use pigeon_node::pigeon_store::{Envelope, TypeLimits};
use pigeon_node::{Invoke, Node, NodeConfig};

/// How `pigeon up` runs the node (its flags).
#[derive(clap::Args)]
pub struct UpOptions {
    /// Address of the HTTP API.
    #[arg(long, default_value = "127.0.0.1:7070")]
    pub listen: SocketAddr,
    /// Deploys the example actors (counter, forwarder, faulty) and sends
    /// them a few messages.
    #[arg(long)]
    pub demo: bool,
    /// How long a dedup key is remembered (a second message with the same
    /// key to the same actor within it is acknowledged, not delivered).
    #[arg(long, default_value = "24h", value_parser = units::parse_duration)]
    pub dedup_window: Duration,
    /// The largest memory limit an actor type may ask for (`deploy
    /// --memory`). A JavaScript guest starts with ~9 MiB, a Python one
    /// with ~12 MiB.
    #[arg(long, default_value = "256MiB", value_parser = units::parse_size)]
    pub max_memory: u64,
    /// Actor instances alive at once; idle ones are passivated to make
    /// room.
    #[arg(long, default_value_t = 1000)]
    pub max_instances: u32,
    /// Changes one of the size limits that hold for clients and guests
    /// alike, as NAME=VALUE (repeat for more): payload=1MiB, reply=1MiB,
    /// headers=64, header-bytes=16KiB, dedup-key=1KiB, state-key=1KiB,
    /// state-value=1MiB, turn-state=16MiB, turn-sends=10000 are the
    /// defaults (see docs/operations.md).
    #[arg(long = "limit", value_name = "NAME=VALUE", value_parser = units::parse_limit)]
    pub limits: Vec<(String, u64)>,
    /// Quarantines a message to the dead letters (reason `crashed`) once
    /// the node has died this many times while handling it.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    pub quarantine_after: u64,
    /// Refuses new persistent work (sends, publications, deploys) while
    /// the data directory's file system has less than this free, like
    /// RabbitMQ's disk alarm; reads, turns and transient messages go
    /// on, and it resumes by itself once there is room. 0 turns it off.
    #[arg(long, default_value = "64MiB", value_parser = units::parse_size)]
    pub disk_free_limit: u64,
    /// Longest time between checkpoints of the store's commit log while
    /// writes come (each batch is durable in the log at once; a checkpoint
    /// also writes it to the store's file). Longer means fewer writes to
    /// the file and more to replay after a crash.
    #[arg(long, default_value = "100ms", value_parser = units::parse_duration)]
    pub checkpoint_interval: Duration,
    /// Joins a lattice over this NATS server (`nats://127.0.0.1:4222`;
    /// several, comma-separated): actors are spread over the nodes and
    /// every operation works from any node. Without it the node is on its
    /// own. If NATS is unreachable the node still starts, serves its own
    /// actors and keeps retrying.
    #[arg(long, value_name = "URL")]
    pub nats: Option<String>,
    /// The lattice to join: nodes see only those of the same name.
    #[arg(long, default_value = "default", requires = "nats")]
    pub lattice: String,
    /// This node's id in the lattice (a-z, 0-9, `-`, `_`). Defaults to
    /// the one kept in the data directory, generated on first start.
    #[arg(long)]
    pub node_id: Option<String>,
    /// NATS's max_payload (the server's setting, 1MiB by default): a
    /// message for another node must fit in it.
    #[arg(long, default_value = "1MiB", value_parser = units::parse_size)]
    pub nats_max_payload: u64,
    /// An environment variable every guest on this node sees, beside what
    /// its type was granted with `deploy --env` (which wins), e.g.
    /// `--guest-env ZONE=eu-1` (repeatable): a label of the machine that
    /// actors may read, never a secret.
    #[arg(long = "guest-env", value_name = "NAME=VALUE", value_parser = units::parse_env)]
    pub guest_env: Vec<(String, String)>,
}

/// Starts the node on `data`, serves the API on `listen`, and runs until a
/// signal; running turns then finish or roll back, and nothing accepted is
/// lost.
pub async fn up(data: &Path, options: UpOptions) -> anyhow::Result<()> {
    let UpOptions {
        listen,
        demo,
        dedup_window,
        max_memory,
        max_instances,
        limits,
        quarantine_after,
        disk_free_limit,
        checkpoint_interval,
        nats,
        lattice,
        node_id,
        nats_max_payload,
        guest_env,
    } = options;
    // Bind first: a busy port should fail before any work is done.
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
            "is another node running? choose another address with --listen"
        } else {
            "choose another address with --listen"
        };
        anyhow::anyhow!("cannot listen on {listen}: {e} ({hint})")
    })?;
    let bound = listener.local_addr()?;
    let mut config = NodeConfig::new(data);
    config.store.dedup_retention_ms = dedup_window.as_millis() as u64;
    config.host.max_memory_bytes = max_memory;
    config.host.max_instances = max_instances;
    config.quarantine_after = quarantine_after;
    config.store.disk_free_limit = disk_free_limit;
    config.store.checkpoint_interval = checkpoint_interval;
    config.store.node_id = node_id;
    pigeon_node::pigeon_store::WasiGrant { env: guest_env.clone() }
        .validate()
        .map_err(|e| anyhow::anyhow!("--guest-env: {e}"))?;
    config.guest_env = guest_env;
    if let Some(url) = nats {
        // Room for the batch framing around one message.
        config.store.remote_message_bytes =
            usize::try_from(nats_max_payload).unwrap_or(usize::MAX).saturating_sub(64 << 10);
        let lattice = pigeon_node::pigeon_lattice::LatticeConfig::new(url, lattice);
        config.lattice = Some(pigeon_node::LatticeSettings { config: lattice, api: format!("http://{bound}") });
    }
    for (name, value) in limits {
        let value = usize::try_from(value).map_err(|_| anyhow::anyhow!("limit `{name}` is too large"))?;
        config.limits.set(&name, value).map_err(anyhow::Error::msg)?;
    }
    let node = Node::start(config).await.with_context(|| format!("cannot start a node in {}", data.display()))?;
    let token = pigeon_api::auth::load_or_create_token(data)
        .with_context(|| format!("cannot write the API token in {}", data.display()))?;
    if demo {
        run_demo(&node).await?;
    }
    let (closing_tx, closing) = tokio::sync::watch::channel(false);
    let app = pigeon_api::router(node.clone(), token.clone(), bound, closing);
    // Kept for as long as the server runs: peers reach this node's API through it.
    let _for_peers = pigeon_api::forward::serve_peers(&node, &app, &token);
    // The one line scripts and tests wait for.
    println!("pigeon node listening on http://{bound} (data in {})", data.display());
    println!("dashboard: http://{bound}/   metrics: http://{bound}/metrics");
    tracing::info!(types = ?node.type_names(), "node ready");
    let stop = async move {
        shutdown_signal().await;
        let _ = closing_tx.send(true);
    };
    axum::serve(listener, app).with_graceful_shutdown(stop).await.context("the HTTP server failed")?;
    tracing::info!("shutting down: running turns finish, nothing accepted is lost");
    node.shutdown(Duration::from_secs(10)).await;
    Ok(())
}

/// Deploys the example actors and shows a few turns.
async fn run_demo(node: &Node) -> anyhow::Result<()> {
    use pigeon_test_artifacts as guests;
    let examples =
        [("counter", guests::COUNTER_WASM), ("forwarder", guests::FORWARDER_WASM), ("faulty", guests::FAULTY_WASM)];
    let bank = [
        ("account", guests::BANK_ACCOUNT_WASM, None),
        ("transfer", guests::BANK_TRANSFER_WASM, Some("acme:bank/account=account")),
    ];
    let examples = examples.into_iter().map(|(name, bytes)| (name, bytes, None)).chain(bank);
    for (name, bytes, link) in examples {
        let limits = TypeLimits { max_attempts: 3, deadline_ms: 2_000, ..TypeLimits::default() };
        let links = link.map(parse_link).transpose()?.into_iter().collect();
        let ty = node.deploy(name, bytes.to_vec(), limits, links).await?;
        tracing::info!(name, version = &ty.component_hash[..12], "deployed example actor");
    }
    let reply = node.call("counter/demo", b"inc".to_vec(), Duration::from_secs(10)).await?;
    let count = String::from_utf8_lossy(&reply.unwrap_or_default()).into_owned();
    tracing::info!(count, "counter/demo replied to `inc`");
    let forward = Envelope::new("forwarder/demo", b"add 10".to_vec()).with_header("forward-to", "counter/demo");
    node.send(forward).await?;
    node.send(Envelope::new("faulty/demo", b"trap".to_vec())).await?;
    tracing::info!("sent `add 10` through forwarder/demo, and a `trap` to faulty/demo (retried, then dead-lettered)");
    for call in ["account.deposit(100)", "account.withdraw(30)"] {
        let Invoke { envelope, operation } = node.invocation("account/alice", call)?;
        let reply = node.request(envelope, Duration::from_secs(10)).await?;
        let result = operation.results_to_wave(&reply.unwrap_or_default())?;
        tracing::info!(call, result, "account/alice answered");
    }
    let transfer = Envelope::new("transfer/demo", b"demo-1 alice bob 20".to_vec());
    let reply =
        node.request(transfer.with_kind(pigeon_node::pigeon_store::MessageKind::Call), Duration::from_secs(10)).await?;
    tracing::info!(outcome = %String::from_utf8_lossy(&reply.unwrap_or_default()), "transfer/demo moved 20 from account/alice to account/bob");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = ctrl_c.await;
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
