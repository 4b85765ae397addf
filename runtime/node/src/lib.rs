//! Pigeon's node core: the store and the host, put to work.
//!
//! A [`Node`] owns one store and one wasm host and runs actors on tokio:
//! - **deploy**: validate a component, keep it in the store's registry and
//!   compiled in memory ([`Node::deploy`]);
//! - **send**: a persistent message is durable in its mailbox before
//!   [`Node::send`] returns; a transient one waits in memory;
//! - **schedule**: every actor with work gets a task that runs its turns one
//!   at a time, many actors in parallel (`scheduler`, `turn`);
//! - **retry**: a failed turn is rolled back and its message retried with
//!   exponential backoff, then dead-lettered (`turn`, `timers`);
//! - **recover**: on start, actors with pending messages are found through
//!   the store's pending index (no scan of messages) and scheduled.
//!
//! The node announces what it does as [`NodeEvent`]s.

mod control;
mod crash;
mod delivery;
mod direct;
mod env;
mod error;
mod events;
mod lattice;
mod metrics;
mod pipeline;
mod readahead;
mod registry;
mod rpc;
mod scheduler;
mod timers;
mod topics;
mod turn;
mod work;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use pigeon_host::{ActivationError, Host, HostConfig};
use pigeon_store::{
    ActorAddr, ActorType, Arrivals, BatchReport, CommitListener, Delivery, Envelope, Limits, Link, MAX_PRIORITY,
    MessageKind, Store, StoreError, StoreOptions, TypeLimits, now_ms, validate_type_name,
};
use tokio::sync::{Notify, broadcast, oneshot};
use ulid::Ulid;

pub use error::NodeError;
pub use events::NodeEvent;
pub use lattice::{
    LatticeSettings, LatticeStatus, MoveProgress, NodeView, PeerApi, PeerRequest, PeerResponse, PlacementStatus,
};
pub use metrics::Counters;
pub use pigeon_host;
pub use pigeon_lattice;
pub use pigeon_store;
pub use rpc::{Invoke, link_texts};

use env::StoreEnv;
use registry::Registry;
use scheduler::Scheduler;

/// How a node is set up.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Where the store (and the compile cache) live.
    pub data_dir: PathBuf,
    /// Engine settings; `cache_dir` defaults to `<data_dir>/cache`.
    pub host: HostConfig,
    /// Store settings (dedup retention).
    pub store: StoreOptions,
    /// Size limits, for clients and guests alike.
    pub limits: Limits,
    /// Crashes of the node during a message's turns after which the
    /// message is quarantined to the dead letters (see `crash`).
    pub quarantine_after: u64,
    /// The lattice to join (none: a node on its own).
    pub lattice: Option<LatticeSettings>,
    /// Environment variables every guest on this node sees beside those
    /// its type was granted (which win): labels of the machine, such as
    /// its zone, never secrets.
    pub guest_env: Vec<(String, String)>,
}

impl NodeConfig {
    /// Defaults for a node whose data lives in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        let host = HostConfig { cache_dir: Some(data_dir.join("cache")), ..HostConfig::default() };
        Self {
            data_dir,
            host,
            store: StoreOptions::default(),
            limits: Limits::default(),
            quarantine_after: 2,
            lattice: None,
            guest_env: Vec::new(),
        }
    }
}

/// The result of a call: the reply, or the error that dead-lettered it.
type CallResult = Result<Answer, String>;

/// A call's reply as its waiter gets it.
pub(crate) struct Answer {
    pub(crate) reply: Option<Vec<u8>>,
    /// Set when the callee's commit was not yet durable: the commit epoch
    /// that whatever the waiter commits must depend on (only turns on this
    /// node get such answers; see `delivery`).
    pub(crate) depends_on: Option<u64>,
}

/// Whoever waits for a call's reply on this node.
pub(crate) struct CallWaiter {
    pub(crate) tx: oneshot::Sender<CallResult>,
    /// A turn, whose own commit comes after the callee's: it may have the
    /// reply before the callee's commit is durable.
    pub(crate) in_turn: bool,
}

/// What a send produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sent {
    /// The message id.
    pub id: Ulid,
    /// The dedup key was seen within the retention window: acknowledged,
    /// not delivered again.
    pub duplicate: bool,
}

/// A running node. Cheap to clone.
#[derive(Clone)]
pub struct Node {
    inner: Arc<NodeInner>,
}

pub(crate) struct NodeInner {
    pub(crate) store: Store,
    pub(crate) host: Host,
    pub(crate) registry: Registry,
    pub(crate) env: Arc<StoreEnv>,
    pub(crate) scheduler: Scheduler,
    pub(crate) timer_wake: Notify,
    pub(crate) runtime: tokio::runtime::Handle,
    events: broadcast::Sender<NodeEvent>,
    calls: Mutex<HashMap<Ulid, CallWaiter>>,
    /// Senders waiting for their message's turn to start.
    delivered: Mutex<HashMap<Ulid, oneshot::Sender<()>>>,
    transient_seq: AtomicU64,
    dropped: Mutex<HashMap<String, u64>>,
    /// Persistent sends refused with `mailbox-full`, per actor, since start.
    refused: Mutex<HashMap<String, u64>>,
    stopping: AtomicBool,
    started: std::time::Instant,
    pub(crate) metrics: metrics::Metrics,
    pub(crate) crashes: crash::Crashes,
    /// The lattice, once joined.
    pub(crate) lattice: std::sync::OnceLock<pigeon_lattice::Lattice>,
    pub(crate) forwarders: lattice::Forwarders,
    pub(crate) pulling: Mutex<std::collections::HashSet<String>>,
    /// The API this node serves to its peers.
    pub(crate) peer_api: lattice::PeerApiSlot,
    /// Actors moving after placement changes.
    pub(crate) moves: lattice::Moves,
    /// What every guest here sees in its environment (see [`NodeConfig`]).
    pub(crate) guest_env: Vec<(String, String)>,
}

/// Wakes the scheduler and the timer task after each group commit.
struct Wake(Weak<NodeInner>);

impl CommitListener for Wake {
    fn on_ready(&self, actors: &[(String, Arrivals)]) {
        if let Some(node) = self.0.upgrade() {
            for (actor, arrivals) in actors {
                node.scheduler.schedule(&node, actor, *arrivals);
            }
            if node.events.receiver_count() > 0 {
                node.emit(NodeEvent::Enqueued { actors: actors.iter().map(|(actor, _)| actor.clone()).collect() });
            }
        }
    }

    fn on_batch(&self, report: &BatchReport) {
        if let Some(node) = self.0.upgrade() {
            node.metrics.observe_batch(report);
        }
    }

    fn on_delayed(&self, _due_ms: u64) {
        if let Some(node) = self.0.upgrade() {
            node.timer_wake.notify_one();
        }
    }

    fn on_outbox(&self, peers: &[String]) {
        if let Some(node) = self.0.upgrade()
            && node.lattice.get().is_some()
        {
            for peer in peers {
                node.forwarders.wake(&node, peer);
            }
        }
    }
}

impl Node {
    /// Opens the store, loads every deployed type, and starts scheduling:
    /// actors with pending messages resume at once. Must be called within a
    /// tokio runtime.
    pub async fn start(config: NodeConfig) -> Result<Node, NodeError> {
        let store = Store::open_with(&config.data_dir, config.store.clone())?;
        // Before the engine: the crash handler must come before wasmtime's.
        let slots = config.host.max_instances as usize;
        let (journal, in_flight) = crash::Journal::open(&config.data_dir, slots).map_err(|source| {
            StoreError::DataDir { path: config.data_dir.join(crash::JOURNAL_FILE).display().to_string(), source }
        })?;
        let in_flight = crash::store_arrivals(&store, in_flight).await;
        if !in_flight.is_empty() {
            tracing::error!(
                messages = in_flight.len(),
                "the node crashed while handling these messages; they now run one at a time, and one that \
                 crashes it again is quarantined: {}",
                in_flight.iter().map(Ulid::to_string).collect::<Vec<_>>().join(", ")
            );
        }
        let crashes = crash::Crashes::new(journal, store.record_crashes(in_flight).await?, config.quarantine_after);
        let host_config = config.host.clone();
        let host = tokio::task::spawn_blocking(move || Host::new(host_config))
            .await
            .map_err(|e| NodeError::Limits(format!("engine start-up panicked: {e}")))??;
        let registry = Registry::default();
        for record in store.list_types()? {
            let bytes = store.component(&record.component_hash)?.ok_or_else(|| pigeon_store::StoreError::Corrupt {
                table: "components",
                reason: format!("component of `{}` is missing", record.name),
            })?;
            let (loader, links) = (host.clone(), record.links.clone());
            let component = tokio::task::spawn_blocking(move || loader.load(&bytes, &links))
                .await
                .map_err(|e| NodeError::Limits(format!("compilation panicked: {e}")))??;
            let placement = store.placement(&record.name)?;
            registry.insert(record, component, placement);
        }
        let env = Arc::new(StoreEnv {
            store: store.clone(),
            registry: registry.clone(),
            node: Default::default(),
            limits: config.limits.clone(),
        });
        let max_active = config.host.max_instances as usize;
        let inner = Arc::new(NodeInner {
            store: store.clone(),
            host,
            registry,
            env,
            scheduler: Scheduler::new(max_active),
            timer_wake: Notify::new(),
            runtime: tokio::runtime::Handle::current(),
            events: broadcast::channel(4096).0,
            calls: Mutex::default(),
            delivered: Mutex::default(),
            transient_seq: AtomicU64::new(0),
            dropped: Mutex::default(),
            refused: Mutex::default(),
            stopping: AtomicBool::new(false),
            started: std::time::Instant::now(),
            metrics: metrics::Metrics::new(),
            crashes,
            lattice: std::sync::OnceLock::new(),
            forwarders: lattice::Forwarders::default(),
            pulling: Mutex::default(),
            peer_api: lattice::PeerApiSlot::default(),
            moves: lattice::Moves::default(),
            guest_env: config.guest_env.clone(),
        });
        store.set_listener(Arc::new(Wake(Arc::downgrade(&inner))));
        let _ = inner.env.node.set(Arc::downgrade(&inner));
        if let Some(settings) = config.lattice {
            let joined = lattice::join(&inner, settings).await?;
            let _ = inner.lattice.set(joined);
            lattice::start(&inner);
        }
        tokio::spawn(timers::run_timers(inner.clone()));
        tokio::spawn(schedule_pending(inner.clone(), String::new()));
        Ok(Node { inner })
    }

    /// The node's store, for inspection.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Subscribes to the node's events.
    pub fn events(&self) -> broadcast::Receiver<NodeEvent> {
        self.inner.events.subscribe()
    }

    /// Names of the deployed types.
    pub fn type_names(&self) -> Vec<String> {
        self.inner.registry.names()
    }

    /// The deployed types, by name.
    pub fn types(&self) -> Vec<ActorType> {
        let names = self.inner.registry.names();
        names.iter().filter_map(|n| self.inner.registry.get(n)).map(|t| t.record.clone()).collect()
    }

    /// The node's size limits.
    pub fn limits(&self) -> &Limits {
        &self.inner.env.limits
    }

    /// The data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        self.inner.store.dir()
    }

    /// How long the node has been running.
    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }

    /// Counters since the node started (messages accepted, turns, failures).
    pub fn counters(&self) -> Counters {
        self.inner.metrics.counters()
    }

    /// The node's metrics in the OpenMetrics text format (which Prometheus
    /// scrapes), with the store's gauges read now.
    pub fn render_metrics(&self) -> Result<String, NodeError> {
        let totals = self.inner.store.totals()?;
        let storage = self.inner.store.storage_status();
        Ok(self.inner.metrics.render(&totals, &storage, self.active_actors(), self.inner.registry.names().len()))
    }

    /// Actors with a live or queued task.
    pub fn active_actors(&self) -> usize {
        self.inner.scheduler.slot_count()
    }

    /// The id of the message `actor` is handling right now, if any. It stays
    /// in the mailbox until its turn commits.
    pub fn in_flight(&self, actor: &str) -> Option<Ulid> {
        self.inner.scheduler.in_flight(actor)
    }

    /// Persistent sends to `actor` refused because its mailbox was full,
    /// since the node started.
    pub fn refused(&self, actor: &str) -> u64 {
        self.inner.refused.lock().unwrap_or_else(|p| p.into_inner()).get(actor).copied().unwrap_or(0)
    }

    /// Transient messages dropped for `actor` since the node started.
    pub fn dropped(&self, actor: &str) -> u64 {
        self.inner.dropped.lock().unwrap_or_else(|p| p.into_inner()).get(actor).copied().unwrap_or(0)
    }

    /// Deploys `bytes` as the actor type `name` (replacing any previous
    /// version: live actors switch at their next turn). `links` say which
    /// types serve the interfaces the component imports from actors; each
    /// target must be deployed and export them with the same signatures,
    /// and a redeploy must keep serving the types that link to `name`.
    ///
    /// In a lattice the type reaches every node, and its actors live on
    /// the nodes of its placement: this node and every peer that is up
    /// (a redeploy keeps the placement it has).
    pub async fn deploy(
        &self,
        name: &str,
        bytes: Vec<u8>,
        limits: TypeLimits,
        links: Vec<Link>,
    ) -> Result<ActorType, NodeError> {
        self.deploy_on(name, bytes, limits, links, None).await
    }

    /// [`Node::deploy`] with the type's placement given: its actors live on
    /// `nodes` (ids of this node or its peers); `None` as for a deploy.
    pub async fn deploy_on(
        &self,
        name: &str,
        bytes: Vec<u8>,
        limits: TypeLimits,
        links: Vec<Link>,
        nodes: Option<Vec<String>>,
    ) -> Result<ActorType, NodeError> {
        validate_type_name(name).map_err(NodeError::TypeName)?;
        let placement = self.inner.placement_for(name, nodes.as_deref())?;
        let record = self.deploy_checked(name, bytes, limits, links, now_ms(), placement).await?;
        self.inner.replicate_deploy(name).await;
        Ok(record)
    }

    /// Installs a type a peer deployed, with its record's deploy time.
    pub(crate) async fn install(
        &self,
        record: ActorType,
        bytes: Vec<u8>,
        placement: pigeon_store::Placement,
    ) -> Result<ActorType, NodeError> {
        let ActorType { name, limits, links, deployed_at_ms, .. } = record;
        // A placement change this node knows and the deploying one did not
        // yet stays: the highest epoch wins.
        let placement = match self.inner.registry.get(&name) {
            Some(local) if local.placement.epoch >= placement.epoch => local.placement.clone(),
            _ => placement,
        };
        self.deploy_checked(&name, bytes, limits, links, deployed_at_ms, placement).await
    }

    async fn deploy_checked(
        &self,
        name: &str,
        bytes: Vec<u8>,
        limits: TypeLimits,
        links: Vec<Link>,
        deployed_at_ms: u64,
        placement: pigeon_store::Placement,
    ) -> Result<ActorType, NodeError> {
        validate_type_name(name).map_err(NodeError::TypeName)?;
        let max_memory = self.inner.host.config().max_memory_bytes;
        if limits.memory_bytes > max_memory {
            return Err(NodeError::Limits(format!(
                "memory limit of {} MiB is above this node's maximum of {} MiB: ask for less, or start the node \
                 with a larger `pigeon up --max-memory`",
                limits.memory_bytes >> 20,
                max_memory >> 20
            )));
        }
        if limits.max_attempts == 0 || limits.deadline_ms == 0 || limits.mailbox_bound == 0 {
            return Err(NodeError::Limits("max-attempts, deadline and mailbox bound must be above zero".into()));
        }
        limits.wasi.validate().map_err(NodeError::Limits)?;
        let host = self.inner.host.clone();
        let (component, bytes) = tokio::task::spawn_blocking(move || (host.load(&bytes, &links), bytes))
            .await
            .map_err(|e| NodeError::Limits(format!("compilation panicked: {e}")))?;
        let component = component?;
        self.inner.check_links(name, &component)?;
        self.inner.check_dependents(name, Some(component.rpc()))?;
        let probe = self.inner.host.probe(&component, name, turn::activation_limits(&limits)).await;
        probe.map_err(|e| deploy_probe_error(e, max_memory))?;
        let record = ActorType {
            name: name.to_string(),
            component_hash: component.hash().to_string(),
            component_size: bytes.len() as u64,
            limits,
            deployed_at_ms,
            links: component.links().to_vec(),
        };
        // The placement first: a message accepted in between must already
        // go to the right owner.
        self.inner.store.put_placement(name, &placement).await?;
        self.inner.store.put_type(&record, &bytes)?;
        self.inner.registry.insert(record.clone(), component, placement);
        tokio::spawn(schedule_pending(self.inner.clone(), format!("{name}/")));
        Ok(record)
    }

    /// Removes the type `name`. Its mailboxes and state are kept, and its
    /// actors resume if it is deployed again.
    pub async fn undeploy(&self, name: &str) -> Result<(), NodeError> {
        let at_ms = now_ms();
        self.undeploy_here(name, at_ms).await?;
        self.inner.replicate_undeploy(name, at_ms).await;
        Ok(())
    }

    /// Removes the type `name`, undeployed at `at_ms`, from this node only
    /// (a deploy here after that time stays).
    pub(crate) async fn undeploy_here(&self, name: &str, at_ms: u64) -> Result<(), NodeError> {
        match self.inner.registry.get(name) {
            Some(loaded) if loaded.record.deployed_at_ms > at_ms => return Ok(()),
            Some(_) => self.inner.check_dependents(name, None)?,
            None => {}
        }
        if !self.inner.store.remove_type(name, at_ms)? {
            return Err(NodeError::UnknownType(name.to_string()));
        }
        self.inner.registry.remove(name);
        Ok(())
    }

    /// Sends a message. A persistent one is durable when this returns: in
    /// the receiver's mailbox, or already handled by a turn whose commit
    /// is (a send to an idle actor, see `direct`); a transient one is
    /// queued in memory.
    pub async fn send(&self, envelope: Envelope) -> Result<Sent, NodeError> {
        let addr = ActorAddr::parse(&envelope.to)?;
        self.inner.check_message(&envelope)?;
        if self.inner.is_stopping() {
            return Err(NodeError::ShuttingDown);
        }
        let id = envelope.id;
        let duplicate = match envelope.delivery {
            Delivery::Persistent => match self.inner.send_direct(envelope).await {
                direct::Handover::Answered(accepted) => {
                    accepted?;
                    false
                }
                direct::Handover::Declined(envelope) => self.inner.enqueue(envelope).await?,
            },
            Delivery::Transient => {
                if self.inner.registry.get(addr.actor_type()).is_none() {
                    return Err(NodeError::UnknownType(addr.actor_type().to_string()));
                }
                self.inner.metrics.accept_transient();
                let _ = self.inner.deliver_transient(envelope);
                false
            }
        };
        Ok(Sent { id, duplicate })
    }

    /// Sends a message and waits until the receiver's turn for it has
    /// started (not finished), at most `timeout`. A duplicate returns at once.
    pub async fn send_delivered(&self, envelope: Envelope, timeout: Duration) -> Result<Sent, NodeError> {
        ActorAddr::parse(&envelope.to)?;
        if let Some(owner) = self.inner.remote_owner(&envelope.to) {
            self.inner.check_message(&envelope)?;
            return self.inner.delivered_remote(&owner, envelope, timeout).await;
        }
        let (to, id) = (envelope.to.clone(), envelope.id);
        let (tx, rx) = oneshot::channel();
        self.inner.delivered().insert(id, tx);
        let sent = self.send(envelope).await;
        if !matches!(sent, Ok(Sent { duplicate: false, .. })) {
            self.inner.delivered().remove(&id);
            return sent;
        }
        let waited = tokio::time::timeout(timeout, rx).await;
        self.inner.delivered().remove(&id);
        match waited {
            Ok(Ok(())) => sent,
            Ok(Err(_)) => Err(NodeError::ShuttingDown),
            Err(_) => Err(NodeError::Timeout { to, waited: timeout }),
        }
    }

    /// Sends `payload` to `to` as a call and waits up to `timeout` for the
    /// handler's reply.
    pub async fn call(&self, to: &str, payload: Vec<u8>, timeout: Duration) -> Result<Option<Vec<u8>>, NodeError> {
        self.request(Envelope::new(to, payload).with_kind(MessageKind::Call), timeout).await
    }

    /// Sends `envelope` (a call) and waits up to `timeout` for the reply. A
    /// timeout leaves the message queued: it will still be handled.
    pub async fn request(&self, envelope: Envelope, timeout: Duration) -> Result<Option<Vec<u8>>, NodeError> {
        ActorAddr::parse(&envelope.to)?;
        if let Some(owner) = self.inner.remote_owner(&envelope.to) {
            self.inner.check_message(&envelope)?;
            return self.inner.request_remote(&owner, envelope, timeout).await;
        }
        let to = envelope.to.clone();
        let id = envelope.id;
        let (tx, rx) = oneshot::channel();
        self.inner.calls().insert(id, CallWaiter { tx, in_turn: false });
        if let Err(e) = self.send(envelope).await {
            self.inner.calls().remove(&id);
            return Err(e);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(Ok(answer))) => Ok(answer.reply),
            Ok(Ok(Err(error))) => Err(NodeError::CallFailed { to, error }),
            Ok(Err(_)) => Err(NodeError::ShuttingDown),
            Err(_) => {
                self.inner.calls().remove(&id);
                Err(NodeError::Timeout { to, waited: timeout })
            }
        }
    }

    /// Stops taking work: running turns finish (or roll back), idle actors
    /// passivate. Waits up to `grace` for the actors to stop, then
    /// checkpoints the store.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.stopping.store(true, Ordering::SeqCst);
        self.inner.scheduler.pressure.notify_waiters();
        self.inner.timer_wake.notify_one();
        let deadline = tokio::time::Instant::now() + grace;
        while self.inner.scheduler.slot_count() > 0 && tokio::time::Instant::now() < deadline {
            self.inner.scheduler.pressure.notify_waiters();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Everything committed is durable already (in the commit log); a
        // checkpoint puts it in the store's file, so the next start has
        // nothing to replay.
        if let Err(e) = self.inner.store.checkpoint().await {
            tracing::warn!("cannot checkpoint the store at shutdown ({e}); the next start replays its commit log");
        }
    }
}

impl NodeInner {
    /// Checks a client's message against the priorities and the limits.
    fn check_message(&self, envelope: &Envelope) -> Result<(), NodeError> {
        if envelope.priority > MAX_PRIORITY {
            return Err(NodeError::Priority(envelope.priority));
        }
        let limits = &self.env.limits;
        if envelope.payload.len() > limits.payload_bytes {
            return Err(NodeError::PayloadTooLarge { size: envelope.payload.len(), limit: limits.payload_bytes });
        }
        limits.check_envelope(envelope)?;
        Ok(())
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// Whether anyone listens to the node's events: the events of every
    /// turn are only built for listeners (the metrics count them apart).
    pub(crate) fn has_listeners(&self) -> bool {
        self.events.receiver_count() > 0
    }

    pub(crate) fn emit(&self, event: NodeEvent) {
        self.metrics.observe(&event);
        // No subscriber is not an error.
        let _ = self.events.send(event);
    }
}

/// Schedules every actor with pending messages whose address starts with
/// `prefix`, paging through the store's pending index.
pub(crate) async fn schedule_pending(node: Arc<NodeInner>, prefix: String) {
    const PAGE: usize = 1024;
    let mut after = (!prefix.is_empty()).then(|| prefix.clone());
    loop {
        let page = match node.store.pending_actors(after.as_deref(), PAGE) {
            Ok(page) => page,
            Err(e) => return tracing::error!("cannot list actors with pending messages: {e}"),
        };
        let done = page.len() < PAGE;
        for (actor, _) in &page {
            if !actor.starts_with(&prefix) {
                return;
            }
            node.scheduler.schedule(&node, actor, Arrivals::ANY);
        }
        match page.last() {
            Some((last, _)) if !done => after = Some(last.clone()),
            _ => return,
        }
        tokio::task::yield_now().await;
    }
}

/// Turns a failed deploy probe into an error that says what to raise.
fn deploy_probe_error(error: ActivationError, node_max: u64) -> NodeError {
    match error {
        ActivationError::InitialMemory { needed, limit, .. } => {
            // Room to grow past the start-up memory: twice it, in whole MiB.
            let suggest = (needed.saturating_mul(2) >> 20).next_power_of_two().max(1);
            let fix = if suggest << 20 <= node_max {
                format!("deploy with a larger memory limit, e.g. `--memory {suggest}MiB`")
            } else {
                format!(
                    "that is more than this node allows ({} MiB): start it with `pigeon up --max-memory {suggest}MiB`, \
                     then deploy with `--memory {suggest}MiB`",
                    node_max >> 20
                )
            };
            NodeError::Limits(format!(
                "the component needs {:.1} MiB ({needed} bytes) of memory to start, over the type's limit of {} MiB: {fix}",
                needed as f64 / f64::from(1 << 20),
                limit >> 20
            ))
        }
        out_of_mappings @ ActivationError::OutOfMappings { .. } => NodeError::Limits(out_of_mappings.to_string()),
        ActivationError::Instantiate { reason, .. } => NodeError::Limits(format!(
            "the component cannot start: {reason} (if that names a pooling or instance limit, start the node with \
             larger `pigeon up --max-memory` / `--max-instances`)"
        )),
    }
}
