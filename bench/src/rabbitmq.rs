//! The RabbitMQ peer: persistent messages into durable queues, each publish
//! awaited until the broker confirms it (publisher confirms) — RabbitMQ's
//! "the message is safe on disk", the same promise as a Pigeon `send`.
//!
//! The bench starts its own broker from the Debian package
//! (`rabbitmq-server`), on a free loopback port, with a node name, home,
//! database and log directory of its own (nothing of a system broker is
//! touched), drives it with `lapin`, and kills it when done. Each sender has
//! its own channel and its own queue, as each Pigeon sender has its own
//! mailbox. Without the package, the row says how to install it.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};

/// How to get a broker that can run this peer.
pub const INSTALL: &str = "apt-get install rabbitmq-server";

/// The broker's start script, run as the current user (the `/usr/sbin`
/// wrapper switches to the `rabbitmq` system user).
const SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";

/// A running broker, killed on drop.
pub struct Broker {
    child: Child,
    pub url: String,
}

impl Drop for Broker {
    fn drop(&mut self) {
        // The script runs the Erlang VM in its process group: stop them all.
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.child.id())]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn installed() -> bool {
    Path::new(SERVER).exists()
}

/// The installed version (`3.10.8`), for the run's description.
pub fn version() -> Option<String> {
    let out = Command::new("dpkg-query").args(["-W", "-f", "${Version}", "rabbitmq-server"]).output().ok()?;
    let version = String::from_utf8_lossy(&out.stdout);
    Some(version.split('-').next()?.to_string()).filter(|v| !v.is_empty())
}

/// Starts a broker keeping its data under `dir`, and waits until it accepts
/// AMQP connections.
pub async fn start(dir: &Path) -> anyhow::Result<Broker> {
    use std::os::unix::process::CommandExt;
    std::fs::create_dir_all(dir)?;
    let free = || -> anyhow::Result<u16> { Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port()) };
    let (port, dist) = (free()?, free()?);
    std::fs::write(dir.join("enabled_plugins"), "[].\n")?;
    let child = Command::new(SERVER)
        .env("HOME", dir)
        .env("RABBITMQ_NODENAME", format!("pigeon-bench-{port}@localhost"))
        .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
        .env("RABBITMQ_NODE_PORT", port.to_string())
        .env("RABBITMQ_DIST_PORT", dist.to_string())
        .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
        .env("RABBITMQ_LOG_BASE", dir.join("log"))
        .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
        .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq"))
        .env("RABBITMQ_PID_FILE", dir.join("pid"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {SERVER}"))?;
    let broker = Broker { child, url: format!("amqp://guest:guest@127.0.0.1:{port}/%2f") };
    // The port opens before the broker has booted: wait for a real session.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match Connection::connect(&broker.url, ConnectionProperties::default()).await {
            Ok(connection) => {
                let _ = connection.close(200, "ready".into()).await;
                return Ok(broker);
            }
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => bail!("RabbitMQ did not come up on port {port} within 60 s: {e}"),
        }
    }
}

/// `senders` publishers, each on its own channel to its own fresh durable
/// queue, publish `per_sender` persistent 64-byte messages and await each
/// confirm. Returns how many and how long.
pub async fn publish(broker: &Broker, senders: usize, per_sender: usize) -> anyhow::Result<(usize, Duration)> {
    let connection = Connection::connect(&broker.url, ConnectionProperties::default()).await?;
    let mut channels = Vec::new();
    for s in 0..senders {
        let channel = connection.create_channel().await?;
        let queue = format!("bench-{s}");
        let _ = channel.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await;
        let options = QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() };
        channel.queue_declare(queue.as_str().into(), options, FieldTable::default()).await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await?;
        channels.push((channel, queue));
    }
    let started = Instant::now();
    let tasks: Vec<_> = channels
        .into_iter()
        .map(|(channel, queue)| {
            tokio::spawn(async move {
                let persistent = BasicProperties::default().with_delivery_mode(2);
                for _ in 0..per_sender {
                    let confirm = channel
                        .basic_publish(
                            "".into(),
                            queue.as_str().into(),
                            BasicPublishOptions::default(),
                            &super::PAYLOAD,
                            persistent.clone(),
                        )
                        .await?;
                    anyhow::ensure!(confirm.await?.is_ack(), "RabbitMQ refused (nacked) a publish");
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let took = started.elapsed();
    let _ = connection.close(200, "done".into()).await;
    Ok((senders * per_sender, took))
}
