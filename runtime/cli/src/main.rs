//! `pigeon`: the command line of the Pigeon actor runtime.
//!
//! This is the binary's edge: arguments are parsed with clap, errors become
//! `anyhow` reports printed on one line, and everything else is the node's.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use pigeon_node::pigeon_store::{Envelope, TypeLimits};
use pigeon_node::{Node, NodeConfig};

/// Pigeon: a runtime for actors compiled to WebAssembly components, with
/// durable mailboxes.
#[derive(Parser)]
#[command(version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Starts a node on the embedded store and runs until Ctrl-C.
    ///
    /// Messages and state live in the data directory: stop the node, start
    /// it again, and its actors carry on where they were.
    Up {
        /// Where the node keeps its store and compile cache.
        #[arg(long, default_value = ".pigeon")]
        data: PathBuf,
        /// Deploys the example actors (counter, forwarder, faulty) and sends
        /// them a few messages, so there is something to see at once.
        #[arg(long)]
        demo: bool,
    },
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PIGEON_LOG")
                .unwrap_or_else(|_| "info,wasmtime=warn,cranelift=warn".into()),
        )
        .init();
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    match cli.command {
        Command::Up { data, demo } => runtime.block_on(up(data, demo)),
    }
}

async fn up(data: PathBuf, demo: bool) -> anyhow::Result<()> {
    let node = Node::start(NodeConfig::new(&data))
        .await
        .with_context(|| format!("cannot start a node in {}", data.display()))?;
    tracing::info!(data = %data.display(), types = ?node.type_names(), "node started");
    if demo {
        run_demo(&node).await?;
    }
    shutdown_signal().await;
    tracing::info!("shutting down: running turns finish, nothing accepted is lost");
    node.shutdown(Duration::from_secs(10)).await;
    Ok(())
}

/// Deploys the example actors and shows a few turns.
async fn run_demo(node: &Node) -> anyhow::Result<()> {
    use pigeon_test_artifacts as guests;
    for (name, bytes) in [
        ("counter", guests::COUNTER_WASM),
        ("forwarder", guests::FORWARDER_WASM),
        ("faulty", guests::FAULTY_WASM),
    ] {
        let limits = TypeLimits {
            max_attempts: 3,
            deadline_ms: 2_000,
            ..TypeLimits::default()
        };
        let ty = node.deploy(name, bytes.to_vec(), limits).await?;
        tracing::info!(
            name,
            version = &ty.component_hash[..12],
            "deployed example actor"
        );
    }
    let reply = node
        .call("counter/demo", b"inc".to_vec(), Duration::from_secs(10))
        .await?;
    let count = String::from_utf8_lossy(&reply.unwrap_or_default()).into_owned();
    tracing::info!(count, "counter/demo replied to `inc`");
    node.send(
        Envelope::new("forwarder/demo", b"add 10".to_vec())
            .with_header("forward-to", "counter/demo"),
    )
    .await?;
    node.send(Envelope::new("faulty/demo", b"trap".to_vec()))
        .await?;
    tracing::info!(
        "sent `add 10` through forwarder/demo, and a `trap` to faulty/demo (it will be retried, then dead-lettered)"
    );
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return std::future::pending::<()>().await,
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
