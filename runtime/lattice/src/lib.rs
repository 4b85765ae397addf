//! Pigeon's lattice transport: how nodes on many machines find each other
//! and talk, over NATS.
//!
//! NATS is the network of routers here, and nothing more: this crate
//! carries bytes between nodes and keeps the live directory of peers; every
//! durable fact stays in each node's own redb store, and a NATS restart may
//! cause a retransmission, never a loss (see `pigeon-store`'s `remote`
//! module for the store and forward on top). Only core NATS is used —
//! no JetStream: its acknowledgement comes before fsync by default, and its
//! dedup window is time-bound, so nothing here rests on it.
//!
//! The node reaches the lattice through this narrow interface:
//! - [`Lattice::join`] connects (in the background, retrying for ever:
//!   a node whose NATS is down serves its local actors and catches up),
//!   announces the node's [`Member`] every beat and serves its requests
//!   through a [`Handler`];
//! - [`Lattice::request`] asks one peer something (see [`Op`]) and waits,
//!   within a deadline, for its answer;
//! - [`Lattice::peers`] is the directory (up, down, refused), and
//!   [`Lattice::watch`] tells when it changes.

mod directory;
pub mod wire;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use thiserror::Error;
use tokio::sync::watch;

pub use directory::{Peer, PeerState};
pub use wire::{Member, Op, TypeInfo};

use directory::Directory;
use wire::{Frame, reply};

/// How a node joins its lattice.
#[derive(Clone, Debug)]
pub struct LatticeConfig {
    /// NATS server URL(s), comma-separated (`nats://127.0.0.1:4222`).
    pub url: String,
    /// Lattice name: nodes of one name see each other, others do not.
    pub name: String,
    /// Time between heartbeats.
    pub beat: Duration,
    /// Silence after which a peer is marked down.
    pub down_after: Duration,
}

impl LatticeConfig {
    pub fn new(url: impl Into<String>, name: impl Into<String>) -> Self {
        Self { url: url.into(), name: name.into(), beat: Duration::from_secs(1), down_after: Duration::from_secs(4) }
    }
}

/// Why a lattice operation failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LatticeError {
    #[error("cannot use the NATS address `{url}`: {reason}")]
    Url { url: String, reason: String },
    #[error("lattice name `{0}` is not a NATS subject token (use letters, digits, `-` and `_`)")]
    Name(String),
    #[error("not connected to NATS: the lattice is disconnected (the node keeps retrying)")]
    Disconnected,
    #[error("node `{0}` does not answer: it is down (or not in this lattice)")]
    NoResponder(String),
    #[error("node `{0}` did not answer in time")]
    Timeout(String),
    #[error("node `{0}` is refused by this node: {1}")]
    PeerRefused(String, String),
    /// The peer answered with an error.
    #[error("{0}")]
    Remote(String),
    #[error("lattice transport failed: {0}")]
    Transport(String),
}

/// A boxed future, for the handler's answers.
pub type Answer = Pin<Box<dyn Future<Output = Result<Vec<u8>, String>> + Send>>;

/// The node's side of the lattice: answers peers' requests and decides
/// which peers it admits.
pub trait Handler: Send + Sync + 'static {
    /// A request `op` from the admitted peer `from` (its id and
    /// incarnation); the answer goes back to it.
    fn handle(&self, from: &str, incarnation: &str, op: Op, body: Vec<u8>) -> Answer;
    /// Whether a peer announcing itself as `member` is admitted: a node
    /// refuses a known id with a new incarnation.
    fn admit(&self, member: &Member) -> Result<(), String>;
    /// A peer's state changed (it came up, went down, was refused).
    fn peer_changed(&self, _peer: &Peer) {}
}

/// A node's membership of a lattice. Cheap to clone.
#[derive(Clone)]
pub struct Lattice {
    inner: Arc<Inner>,
}

struct Inner {
    client: async_nats::Client,
    config: LatticeConfig,
    me: Mutex<Member>,
    directory: Directory,
    handler: Arc<dyn Handler>,
}

impl Lattice {
    /// Joins the lattice as `me`, in the background: this returns at once,
    /// connected or not (see [`Lattice::connected`]). Must be called within
    /// a tokio runtime.
    pub async fn join(config: LatticeConfig, me: Member, handler: Arc<dyn Handler>) -> Result<Lattice, LatticeError> {
        if !is_token(&config.name) {
            return Err(LatticeError::Name(config.name.clone()));
        }
        let url = config.url.clone();
        let options = async_nats::ConnectOptions::new()
            .name(format!("pigeon node {}", me.id))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .reconnect_delay_callback(|attempt| {
                Duration::from_millis(100u64 << attempt.min(4)).min(Duration::from_secs(2))
            })
            .event_callback(move |event| {
                let url = url.clone();
                async move {
                    match event {
                        async_nats::Event::Connected => tracing::info!("lattice: connected to NATS at {url}"),
                        async_nats::Event::Disconnected => {
                            tracing::warn!("lattice: disconnected from NATS at {url}; retrying")
                        }
                        other => tracing::debug!("lattice: NATS {other}"),
                    }
                }
            });
        let client = options
            .connect(config.url.as_str())
            .await
            .map_err(|e| LatticeError::Url { url: config.url.clone(), reason: e.to_string() })?;
        let inner = Arc::new(Inner { client, config, me: Mutex::new(me), directory: Directory::new(), handler });
        let lattice = Lattice { inner };
        lattice.spawn_tasks().await?;
        Ok(lattice)
    }

    async fn spawn_tasks(&self) -> Result<(), LatticeError> {
        let inner = &self.inner;
        let transport = |e: async_nats::SubscribeError| LatticeError::Transport(e.to_string());
        let requests = inner.client.subscribe(format!("{}.>", node_prefix(&inner.config.name, &inner.me().id))).await;
        let beats = inner.client.subscribe(beat_subject(&inner.config.name)).await;
        tokio::spawn(serve(Arc::downgrade(inner), requests.map_err(transport)?));
        tokio::spawn(listen(Arc::downgrade(inner), beats.map_err(transport)?));
        tokio::spawn(announce(Arc::downgrade(inner)));
        Ok(())
    }

    /// Whether the NATS connection is up right now.
    pub fn connected(&self) -> bool {
        self.inner.connected()
    }

    /// The lattice's name.
    pub fn name(&self) -> &str {
        &self.inner.config.name
    }

    /// What this node announces.
    pub fn me(&self) -> Member {
        self.inner.me().clone()
    }

    /// Changes what this node announces from its next heartbeat on.
    pub fn update(&self, change: impl FnOnce(&mut Member)) {
        change(&mut self.inner.me());
    }

    /// Every peer heard of, by id.
    pub fn peers(&self) -> Vec<Peer> {
        self.inner.directory.list()
    }

    pub fn peer(&self, id: &str) -> Option<Peer> {
        self.inner.directory.get(id)
    }

    /// Whether `id` is up (heard from recently, and admitted).
    pub fn is_up(&self, id: &str) -> bool {
        self.inner.directory.state(id) == Some(PeerState::Up)
    }

    /// Changes whenever a peer's state does.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.inner.directory.watch()
    }

    /// Forgets what was heard of `id`, so its next heartbeat is judged anew.
    pub fn forget(&self, id: &str) {
        self.inner.directory.forget(id);
    }

    /// The largest payload the NATS server takes (0 until connected).
    pub fn max_payload(&self) -> usize {
        // Unknown until the server first answers: NATS's default till then.
        match self.inner.client.server_info().max_payload {
            0 => 1 << 20,
            known => known,
        }
    }

    /// Asks `peer` to do `op` with `body`; waits up to `timeout`.
    pub async fn request(&self, peer: &str, op: Op, body: Vec<u8>, timeout: Duration) -> Result<Vec<u8>, LatticeError> {
        if !self.connected() {
            return Err(LatticeError::Disconnected);
        }
        if let Some(Peer { state: PeerState::Refused, refusal, .. }) = self.peer(peer) {
            return Err(LatticeError::PeerRefused(peer.to_string(), refusal.unwrap_or_default()));
        }
        let me = self.me();
        let frame = wire::encode(&Frame { from: me.id, incarnation: me.incarnation, body });
        let subject = format!("{}.{}", node_prefix(&self.inner.config.name, peer), op.token());
        let request = async_nats::Request::new().payload(frame.into()).timeout(Some(timeout));
        let answer = self.inner.client.send_request(subject, request).await.map_err(|e| match e.kind() {
            async_nats::RequestErrorKind::NoResponders => LatticeError::NoResponder(peer.to_string()),
            async_nats::RequestErrorKind::TimedOut => LatticeError::Timeout(peer.to_string()),
            _ => LatticeError::Transport(e.to_string()),
        })?;
        reply::read(&answer.payload).map_err(LatticeError::Remote)
    }
}

impl Inner {
    fn me(&self) -> std::sync::MutexGuard<'_, Member> {
        self.me.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }
}

/// Answers requests addressed to this node, each in its own task.
async fn serve(inner: std::sync::Weak<Inner>, mut requests: async_nats::Subscriber) {
    while let Some(message) = requests.next().await {
        let Some(node) = inner.upgrade() else { return };
        tokio::spawn(async move {
            let Some(reply_to) = message.reply.clone() else { return };
            let answer = answer(&node, &message).await;
            if let Err(e) = node.client.publish(reply_to, answer.into()).await {
                tracing::debug!("lattice: could not answer a request: {e}");
            }
        });
    }
}

async fn answer(node: &Inner, message: &async_nats::Message) -> Vec<u8> {
    let op = message.subject.rsplit('.').next().and_then(Op::from_token);
    let Some(op) = op else { return reply::err(&format!("unknown lattice request `{}`", message.subject)) };
    let frame: Frame = match wire::decode(&message.payload) {
        Ok(frame) => frame,
        Err(e) => return reply::err(&e),
    };
    match node.directory.get(&frame.from) {
        Some(Peer { state: PeerState::Refused, refusal, .. }) => {
            let reason = refusal.unwrap_or_default();
            return reply::err(&format!("node `{}` refuses node `{}`: {reason}", node.me().id, frame.from));
        }
        // Asked before its first heartbeat under a new incarnation: not
        // the node this one knows.
        Some(peer) if peer.member.incarnation != frame.incarnation => {
            return reply::err(&format!(
                "node `{}` knows node `{}` as incarnation {}, not {}",
                node.me().id,
                frame.from,
                peer.member.incarnation,
                frame.incarnation
            ));
        }
        _ => {}
    }
    match node.handler.handle(&frame.from, &frame.incarnation, op, frame.body).await {
        Ok(body) => reply::ok(body),
        Err(e) => reply::err(&e),
    }
}

/// Takes in every heartbeat, and marks silent peers down.
async fn listen(inner: std::sync::Weak<Inner>, mut beats: async_nats::Subscriber) {
    let down_after = match inner.upgrade() {
        Some(node) => node.config.down_after,
        None => return,
    };
    let mut sweep = tokio::time::interval(down_after / 4);
    loop {
        tokio::select! {
            beat = beats.next() => {
                let Some(beat) = beat else { return };
                let Some(node) = inner.upgrade() else { return };
                node.heard(&beat.payload);
            }
            _ = sweep.tick() => {
                let Some(node) = inner.upgrade() else { return };
                for id in node.directory.sweep(down_after) {
                    tracing::warn!("lattice: node `{id}` is down (no heartbeat for {down_after:?})");
                    if let Some(peer) = node.directory.get(&id) {
                        node.handler.peer_changed(&peer);
                    }
                }
            }
        }
    }
}

impl Inner {
    fn heard(&self, payload: &[u8]) {
        let member: Member = match wire::decode(payload) {
            Ok(member) => member,
            Err(e) => return tracing::warn!("lattice: ignored a heartbeat: {e}"),
        };
        if member.id == self.me().id {
            if member.incarnation != self.me().incarnation {
                tracing::error!(
                    "lattice: another node announces itself as `{}` (incarnation {}, this one is {}): two nodes \
                     must not share an id",
                    member.id,
                    member.incarnation,
                    self.me().incarnation
                );
            }
            return;
        }
        let admitted = self.handler.admit(&member);
        let id = member.id.clone();
        if let Some(before) = self.directory.heard(member, admitted)
            && let Some(peer) = self.directory.get(&id)
        {
            match (&peer.state, before) {
                (PeerState::Up, Some(PeerState::Down)) => tracing::info!("lattice: node `{id}` is up again"),
                (PeerState::Up, _) => tracing::info!("lattice: node `{id}` joined"),
                (PeerState::Refused, _) => {
                    tracing::error!("lattice: refused node `{id}`: {}", peer.refusal.clone().unwrap_or_default())
                }
                (PeerState::Down, _) => {}
            }
            self.handler.peer_changed(&peer);
        }
    }
}

/// Publishes this node's announcement every beat.
async fn announce(inner: std::sync::Weak<Inner>) {
    let beat = match inner.upgrade() {
        Some(node) => node.config.beat,
        None => return,
    };
    let mut tick = tokio::time::interval(beat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(node) = inner.upgrade() else { return };
        if !node.connected() {
            continue;
        }
        let payload = wire::encode(&*node.me());
        if let Err(e) = node.client.publish(beat_subject(&node.config.name), payload.into()).await {
            tracing::debug!("lattice: heartbeat not sent: {e}");
        }
    }
}

fn beat_subject(lattice: &str) -> String {
    format!("pigeon.{lattice}.beat")
}

fn node_prefix(lattice: &str, node: &str) -> String {
    format!("pigeon.{lattice}.node.{node}")
}

/// Whether `s` may be one token of a NATS subject.
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}
