//! Helpers shared by Pigeon's integration tests: a node on a temporary data
//! directory, and waiting on conditions with deadlines (never sleep-and-hope).

use std::future::Future;
use std::time::Duration;

use pigeon_node::pigeon_store::ulid::Ulid;
use pigeon_node::pigeon_store::{ActorType, DeadLetter, Envelope, TypeLimits};
use pigeon_node::{Node, NodeConfig, NodeEvent};
use tokio::sync::broadcast;

pub use pigeon_test_artifacts as artifacts;

pub mod bank;
pub mod browser;
pub mod cluster;
pub mod crash;
pub mod lattice;
pub mod multicast;
pub mod process;
pub mod soak;

/// Generous upper bound for anything a test waits for.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A node on a fresh temporary data directory.
pub struct TestNode {
    pub node: Node,
    pub dir: tempfile::TempDir,
}

impl TestNode {
    /// Starts a node with default settings.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a node with the settings `configure` makes.
    pub async fn start_with(configure: impl FnOnce(&mut NodeConfig)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = NodeConfig::new(dir.path());
        configure(&mut config);
        let node = Node::start(config).await.expect("node starts");
        Self { node, dir }
    }

    /// Stops the node gracefully and starts a new one on the same directory
    /// (waiting for the old one to let go of its store).
    pub async fn restart(self) -> Self {
        let Self { node, dir } = self;
        node.shutdown(Duration::from_secs(10)).await;
        drop(node);
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            match Node::start(NodeConfig::new(dir.path())).await {
                Ok(node) => return Self { node, dir },
                Err(_) if tokio::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(e) => panic!("the node does not restart: {e}"),
            }
        }
    }

    /// Sends a persistent text message to `to`; returns its id.
    pub async fn tell(&self, to: &str, payload: &str) -> Ulid {
        let envelope = Envelope::new(to, payload.as_bytes().to_vec());
        self.node.send(envelope).await.unwrap_or_else(|e| panic!("send {to} `{payload}`: {e}")).id
    }

    /// Calls `to` with a text payload and returns its text reply.
    pub async fn ask(&self, to: &str, payload: &str) -> String {
        let reply = self.node.call(to, payload.as_bytes().to_vec(), PATIENCE).await;
        let reply = reply.unwrap_or_else(|e| panic!("call {to} `{payload}`: {e}"));
        String::from_utf8(reply.expect("a reply")).expect("a UTF-8 reply")
    }

    /// Waits until `actor`'s state holds `value` under `key`.
    pub async fn state_becomes(&self, actor: &str, key: &str, value: &str) {
        let store = self.node.store().clone();
        eventually(&format!("{actor}'s `{key}` to be `{value}`"), || {
            let store = store.clone();
            async move { (store.state_get(actor, key).unwrap().as_deref() == Some(value.as_bytes())).then_some(()) }
        })
        .await
    }

    /// Waits for a dead letter and returns the latest one.
    pub async fn dead_letter(&self) -> DeadLetter {
        let store = self.node.store().clone();
        eventually("a dead letter", || {
            let store = store.clone();
            async move { store.dead_letters(100).unwrap().pop() }
        })
        .await
    }

    /// Deploys a guest built by the artifacts crate.
    pub async fn deploy(&self, name: &str, wasm: &str, limits: TypeLimits) -> ActorType {
        self.node.deploy(name, artifacts::read(wasm), limits, Vec::new()).await.expect("deploy")
    }
}

/// Limits with short backoff, so retry tests run quickly.
pub fn quick_limits() -> TypeLimits {
    TypeLimits { backoff_base_ms: 20, backoff_max_ms: 200, ..TypeLimits::default() }
}

/// Waits for the first event matching `pred`, failing the test after `PATIENCE`.
pub async fn next_event(
    events: &mut broadcast::Receiver<NodeEvent>,
    what: &str,
    mut pred: impl FnMut(&NodeEvent) -> bool,
) -> NodeEvent {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(event) if pred(&event) => return event,
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    panic!("test fell {n} events behind waiting for {what}")
                }
                Err(broadcast::error::RecvError::Closed) => {
                    panic!("node stopped while waiting for {what}")
                }
            }
        }
    };
    tokio::time::timeout(PATIENCE, wait).await.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Polls `check` until it returns `Some`, failing the test after `PATIENCE`.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The value of the unlabelled metric `name` of the node at `url`, read
/// from its `/metrics` (a loopback node serves reads without the token).
pub async fn scrape(url: &str, name: &str) -> u64 {
    let text = reqwest::get(format!("{url}/metrics")).await.expect("/metrics answers").text().await.expect("text");
    let prefix = format!("{name} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} in /metrics"))
}

/// Skips the calling test, saying what is `missing` and how to install it —
/// or fails it when `PIGEON_E2E_REQUIRED` is set (CI), where nothing skips.
pub fn skip(missing: &str) {
    assert!(std::env::var_os("PIGEON_E2E_REQUIRED").is_none(), "{missing} (PIGEON_E2E_REQUIRED is set)");
    eprintln!("SKIPPED: {missing}");
}

/// The `counter` guest in every language whose toolchain built it: Rust
/// always, JavaScript and Python when componentize-js and componentize-py
/// are installed (the build script fails instead under
/// `PIGEON_E2E_REQUIRED=1`, so CI never skips one).
pub fn counters() -> Vec<(&'static str, &'static str)> {
    let mut counters = vec![("rust", artifacts::COUNTER)];
    for (language, path) in [("javascript", artifacts::COUNTER_JS), ("python", artifacts::COUNTER_PY)] {
        match path {
            Some(path) => counters.push((language, path)),
            None => skip(&format!("the {language} counter: its toolchain is not installed (see the build warning)")),
        }
    }
    counters
}
