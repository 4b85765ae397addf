//! Pigeon's wasm host: turns component bytes into actors and runs their turns.
//!
//! This crate wraps wasmtime and knows nothing of HTTP or of how messages are
//! scheduled. It offers:
//! - [`Host`]: one engine per node (pooling allocator, async, epoch
//!   interruption), the linker with the `pigeon:actor` imports and the
//!   capability-free WASI, and an on-disk cache of compiled components;
//! - [`Host::load`]: validation of a component against the `actor` world,
//!   with an error that names the problem ([`ComponentError`]);
//! - [`Activation`]: a live instance that runs one turn at a time and reports
//!   its effects as a [`TurnOutcome`] for the node to commit.
//!
//! What the guest reads from its state comes through [`ActorEnv`], which the
//! node implements over the store: the host itself never touches redb.

mod activation;
mod component;
mod error;
mod imports;
mod output;
pub mod rpc;
pub mod state_cache;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pigeon_store::{Delivery, Envelope, Limits, Link};
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

pub use activation::{Activation, ActivationLimits, ActorData, TurnEffects, TurnOutcome};
pub use component::{HANDLER_EXPORT, content_hash};
pub use error::{ActivationError, ComponentError, TurnError};
pub use imports::MAX_TURN_BYTES;
pub use rpc::{LinkError, Operation, RpcImport, RpcSurface};

/// Generated bindings of the `pigeon:actor/actor` world.
pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        world: "actor",
        path: "../../wit",
        imports: { "pigeon:actor/messaging.call": async | trappable, default: trappable },
        exports: { default: async },
    });
}

/// What the node provides to a running turn.
pub trait ActorEnv: Send + Sync + 'static {
    /// Committed state value of `actor` under `key`.
    fn state_get(&self, actor: &str, key: &str) -> Result<Option<Vec<u8>>, String>;
    /// Committed state keys of `actor` starting with `prefix`.
    fn state_keys(&self, actor: &str, prefix: &str) -> Result<Vec<String>, String>;
    /// Whether a message to `to` (a valid address) would be accepted now,
    /// with `queued` more persistent ones already sent there by the turn.
    fn check_send(&self, to: &str, delivery: Delivery, queued: u64) -> Result<(), SendRefusal>;
    /// The node's limits, which hold for guests as for clients.
    fn limits(&self) -> &Limits;
    /// Whether the delayed message `id` is still waiting to be delivered.
    fn timer_pending(&self, id: ulid::Ulid) -> Result<bool, String>;
    /// Sends `call` (its id already derived) and waits up to `timeout` for
    /// the reply; answers from the callee's stored reply when the call was
    /// already made by an earlier attempt of the turn.
    fn call(&self, call: Envelope, timeout: Duration) -> CallFuture;
}

/// What [`ActorEnv::call`] returns.
pub type CallFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Option<Vec<u8>>, CallFailure>> + Send>>;

/// Why a call from a guest brought no reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallFailure {
    /// It could not be sent.
    Refused(SendRefusal),
    /// No reply in time.
    Timeout,
    /// The callee dead-lettered it, with this error.
    Failed(String),
}

/// Why [`ActorEnv::check_send`] refuses a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendRefusal {
    /// No such actor type.
    UnknownType(String),
    /// The receiver's mailbox is at its bound.
    MailboxFull(String),
    /// The store failed; the turn is aborted.
    Store(String),
}

/// Engine-wide settings.
#[derive(Clone, Debug)]
pub struct HostConfig {
    /// Where compiled components are cached (none: no cache).
    pub cache_dir: Option<PathBuf>,
    /// Instances alive at once (the pooling allocator's size).
    pub max_instances: u32,
    /// Largest linear memory of any instance, in bytes; a type's memory
    /// limit cannot exceed it.
    pub max_memory_bytes: u64,
    /// Interval of the epoch ticker: the granularity of deadlines and of
    /// the yields that keep busy guests from starving the others.
    pub epoch_tick: Duration,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self { cache_dir: None, max_instances: 1000, max_memory_bytes: 256 << 20, epoch_tick: Duration::from_millis(5) }
    }
}

/// A component validated against the `actor` world, linked, and ready to
/// instantiate.
#[derive(Clone)]
pub struct ActorComponent {
    pre: wasmtime::component::InstancePre<ActorData>,
    /// Where the typed exports (the handler) are, found once per load.
    indices: bindings::ActorIndices,
    hash: String,
    rpc: Arc<RpcSurface>,
    links: Arc<[Link]>,
}

impl ActorComponent {
    /// SHA-256 of the component bytes (hex).
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// Its exported operations and the interfaces it imports from actors.
    pub fn rpc(&self) -> &RpcSurface {
        &self.rpc
    }

    /// Its links, with interfaces named as the component imports them.
    pub fn links(&self) -> &[Link] {
        &self.links
    }
}

/// The node's wasm engine.
#[derive(Clone)]
pub struct Host {
    inner: Arc<HostInner>,
}

struct HostInner {
    engine: Engine,
    linker: Linker<ActorData>,
    config: HostConfig,
}

impl Host {
    /// Builds the engine, the linker and the epoch ticker.
    pub fn new(config: HostConfig) -> Result<Self, ComponentError> {
        let engine =
            build_engine(&config).map_err(|e| ComponentError::Invalid(format!("cannot configure wasmtime: {e:#}")))?;
        let mut linker = Linker::new(&engine);
        let link = |e: wasmtime::Error| ComponentError::Invalid(format!("cannot link the host imports: {e:#}"));
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(link)?;
        bindings::Actor::add_to_linker::<ActorData, HasSelf<ActorData>>(&mut linker, |d| d).map_err(link)?;
        spawn_ticker(&engine, config.epoch_tick);
        Ok(Self { inner: Arc::new(HostInner { engine, linker, config }) })
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The configuration in force.
    pub fn config(&self) -> &HostConfig {
        &self.inner.config
    }

    /// Validates and compiles a component (through the compile cache), and
    /// links its RPC imports with `links` (every import needs one; whether
    /// the targets export them is the caller's check, see
    /// [`RpcSurface::check_target`]). Blocking: call it off the async
    /// executor for large components.
    pub fn load(&self, bytes: &[u8], links: &[Link]) -> Result<ActorComponent, ComponentError> {
        component::check_header(bytes)?;
        let hash = content_hash(bytes);
        let compiled = component::compile(&self.inner.engine, bytes, &hash, self.inner.config.cache_dir.as_deref())?;
        component::check_world(&self.inner.engine, &compiled)?;
        let surface = RpcSurface::of(&self.inner.engine, &compiled)?;
        let links: Arc<[Link]> = surface.resolve_links(links)?.into();
        let mismatch = |e: wasmtime::Error| ComponentError::WorldMismatch(format!("{e:#}"));
        let pre = if surface.imports.is_empty() {
            self.inner.linker.instantiate_pre(&compiled)
        } else {
            let mut linker = self.inner.linker.clone();
            rpc::stub::install(&mut linker, &surface.imports).map_err(mismatch)?;
            linker.instantiate_pre(&compiled)
        }
        .map_err(mismatch)?;
        let indices = bindings::ActorIndices::new(&pre).map_err(mismatch)?;
        Ok(ActorComponent { pre, indices, hash, rpc: Arc::new(surface), links })
    }

    /// Creates a live instance of `component` for the actor at `address`.
    pub async fn activate(
        &self,
        component: &ActorComponent,
        address: &str,
        limits: ActivationLimits,
        env: Arc<dyn ActorEnv>,
    ) -> Result<Activation, ActivationError> {
        Activation::new(self, component, address, limits, env).await
    }

    /// Instantiates `component` once under `limits` and drops the instance
    /// (no guest code runs but its start-up): a deploy learns at once, not at
    /// the first message, that the guest cannot even start under them.
    pub async fn probe(
        &self,
        component: &ActorComponent,
        name: &str,
        limits: ActivationLimits,
    ) -> Result<(), ActivationError> {
        let address = format!("{name}/deploy-probe");
        Activation::new(self, component, &address, limits, Arc::new(ProbeEnv(Limits::default()))).await.map(drop)
    }
}

/// The world of a probe instance: empty state, and every send refused.
struct ProbeEnv(Limits);

impl ActorEnv for ProbeEnv {
    fn state_get(&self, _: &str, _: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(None)
    }
    fn state_keys(&self, _: &str, _: &str) -> Result<Vec<String>, String> {
        Ok(Vec::new())
    }
    fn check_send(&self, _: &str, _: Delivery, _: u64) -> Result<(), SendRefusal> {
        Err(SendRefusal::Store("a deploy probe sends nothing".into()))
    }
    fn limits(&self) -> &Limits {
        &self.0
    }
    fn timer_pending(&self, _: ulid::Ulid) -> Result<bool, String> {
        Ok(false)
    }
    fn call(&self, _: Envelope, _: Duration) -> CallFuture {
        Box::pin(async { Err(CallFailure::Failed("a deploy probe calls nothing".into())) })
    }
}

fn build_engine(config: &HostConfig) -> wasmtime::Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    let max_memory = usize::try_from(config.max_memory_bytes).unwrap_or(usize::MAX);
    pool.total_component_instances(config.max_instances)
        .total_core_instances(config.max_instances.saturating_mul(4))
        .total_memories(config.max_instances.saturating_mul(2))
        .total_tables(config.max_instances.saturating_mul(4))
        .total_stacks(config.max_instances)
        .max_memory_size(max_memory);
    let mut wasm = Config::new();
    wasm.epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .memory_reservation(config.max_memory_bytes.max(1 << 20))
        .memory_guard_size(64 << 10);
    Engine::new(&wasm)
}

/// Advances the engine's epoch every `tick` until the engine is dropped.
/// The ticker holds it weakly: the engine — and the memory mappings its
/// instance pool reserves — go with the last host and component, not a
/// tick later (a node started right after another one's end would
/// otherwise find both pools mapped, and may hit `vm.max_map_count`).
fn spawn_ticker(engine: &Engine, tick: Duration) {
    let engine = engine.weak();
    let _ = std::thread::Builder::new().name("pigeon-epoch".into()).spawn(move || {
        loop {
            std::thread::sleep(tick);
            match engine.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => return,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_and_its_pool_go_with_the_host() {
        let config = HostConfig { max_instances: 8, cache_dir: None, ..HostConfig::default() };
        let host = Host::new(config).expect("a host");
        let engine = host.engine().weak();
        drop(host);
        // At most the length of one `increment_epoch` on the ticker's thread.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while engine.upgrade().is_some() {
            assert!(std::time::Instant::now() < deadline, "the epoch ticker keeps the engine alive");
            std::thread::yield_now();
        }
    }
}
