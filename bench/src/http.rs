//! Scenario 1 through the HTTP API, the path a user's client takes: a real
//! node with the example counter, served by `pigeon-api`'s router on a
//! loopback port (as `pigeon up` serves it), and clients that each hold
//! one keep-alive HTTP/1.1 connection and await each answer before the
//! next request (what `wrk` does, one request in flight per connection).
//! Each request is `POST /api/v1/messages` with a 64-byte persistent `inc`
//! for the counter, answered once it is durable (`wait: accepted`).

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use pigeon_node::Node;
use pigeon_test_artifacts as artifacts;
use tokio::net::TcpStream;

/// A node and the API server in front of it.
pub struct Api {
    pub node: Node,
    addr: SocketAddr,
    token: String,
    closing: tokio::sync::watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
}

/// A fresh node on `dir` with the counter deployed, and its API on a free
/// loopback port.
pub async fn serve(dir: &Path, cache: &Path) -> anyhow::Result<Api> {
    let _ = std::fs::remove_dir_all(dir);
    let node = crate::node::start(dir, cache, crate::node::MAX_INSTANCES).await?;
    node.deploy("counter", artifacts::COUNTER_WASM.to_vec(), crate::node::limits(), Vec::new()).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let token = "bench-token".to_string();
    let (closing, closed) = tokio::sync::watch::channel(false);
    let app = pigeon_api::router(node.clone(), token.clone(), addr, closed.clone());
    let server = tokio::spawn(async move {
        let mut closed = closed;
        let shutdown = async move {
            let _ = closed.wait_for(|c| *c).await;
        };
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            eprintln!("the bench's API server stopped: {e}");
        }
    });
    Ok(Api { node, addr, token, closing, server })
}

impl Api {
    pub async fn stop(self) {
        let _ = self.closing.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.server).await;
        self.node.shutdown(Duration::from_secs(10)).await;
    }

    /// `clients` connections, client `c` sending `per_client` messages to
    /// `counter/h<c>`, each awaited; persistent ones, or `transient` ones
    /// (the same path without the disk). Returns how many were sent, how
    /// long they took, and each one's latency.
    pub async fn sends(
        &self,
        clients: usize,
        per_client: usize,
        transient: bool,
    ) -> anyhow::Result<(usize, Duration, Vec<Duration>)> {
        let started = Instant::now();
        let tasks: Vec<_> = (0..clients)
            .map(|c| {
                let (addr, token) = (self.addr, self.token.clone());
                let to = format!("counter/h{c}");
                tokio::spawn(async move { client(addr, &token, &to, per_client, transient).await })
            })
            .collect();
        let mut latencies = Vec::with_capacity(clients * per_client);
        for task in tasks {
            latencies.extend(task.await??);
        }
        Ok((clients * per_client, started.elapsed(), latencies))
    }
}

/// One keep-alive connection sending `n` messages to `to`, one at a time.
async fn client(addr: SocketAddr, token: &str, to: &str, n: usize, transient: bool) -> anyhow::Result<Vec<Duration>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    let driver = tokio::spawn(connection);
    // 64 bytes of payload: the counter reads `inc` and ignores the spaces.
    let payload = format!("inc{}", " ".repeat(crate::PAYLOAD.len() - 3));
    let body = Bytes::from(serde_json::json!({ "to": to, "payload": payload, "transient": transient }).to_string());
    let (host, bearer) = (addr.to_string(), format!("Bearer {token}"));
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let request = hyper::Request::post("/api/v1/messages")
            .header(hyper::header::HOST, &host)
            .header(hyper::header::AUTHORIZATION, &bearer)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body.clone()))?;
        let started = Instant::now();
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let answer = response.into_body().collect().await?.to_bytes();
        times.push(started.elapsed());
        anyhow::ensure!(status.is_success(), "the API answered {status}: {}", String::from_utf8_lossy(&answer));
    }
    driver.abort();
    Ok(times)
}
