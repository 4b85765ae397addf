//! An activation: one live instance of an actor, and the running of a turn.
//!
//! An activation owns a wasmtime `Store` with the actor's instance in it. It
//! runs one turn at a time: the message goes in, the handler runs, and what
//! the guest did comes out as a [`TurnOutcome`] — the host commits nothing
//! itself. During the turn the guest's state writes and sends are buffered in
//! [`TurnBuffer`]; reads see the buffer first, then the committed state.
//!
//! Two limits guard every turn:
//! - a **deadline**: the engine's epoch ticks every few milliseconds; at each
//!   tick the guest yields to the executor (so a busy actor never starves the
//!   others) and, once the turn's deadline has passed, is stopped;
//! - a **memory limit**: growing linear memory past the type's limit traps.
//!
//! After any failed turn the activation is discarded (the caller drops it):
//! an instance that trapped cannot be entered again, and one whose handler
//! returned an error may hold in-memory state that no longer matches its
//! durable state.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pigeon_store::{Delivery, Envelope, Link, MessageKind, TopicEffect};
use wasmtime::component::{Instance, ResourceTable, Val};
use wasmtime::{ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::Actor;
use crate::bindings::pigeon::actor::types as wit;
use crate::output::GuestOutput;
use crate::rpc::{RpcSurface, codec};
use crate::state_cache::StateCache;
use crate::{ActivationError, ActorComponent, ActorEnv, Host, TurnError};

/// Per-activation limits, from the actor type.
#[derive(Clone, Debug)]
pub struct ActivationLimits {
    /// Linear memory the instance may use, in bytes.
    pub memory_bytes: u64,
    /// Wall-clock budget of one turn.
    pub deadline: Duration,
    /// Environment variables granted.
    pub env: Vec<(String, String)>,
}

/// What a turn produced.
#[derive(Debug)]
pub enum TurnOutcome {
    /// The handler returned `ok`: commit these effects.
    Completed {
        /// The handler's reply.
        reply: Option<Vec<u8>>,
        /// State writes and sends to commit with the turn.
        effects: TurnEffects,
    },
    /// The turn failed; nothing of it may become visible.
    Failed(TurnError),
}

/// The buffered effects of a successful turn.
#[derive(Debug, Default)]
pub struct TurnEffects {
    /// In order: `Some` sets, `None` deletes (the last write of a key wins).
    pub state_writes: Vec<(String, Option<Vec<u8>>)>,
    /// Messages sent, persistent and transient, in send order.
    pub sends: Vec<Envelope>,
    /// Subscriptions and publications, in call order.
    pub topics: Vec<TopicEffect>,
    /// Delayed messages to cancel.
    pub cancels: Vec<ulid::Ulid>,
}

/// What the guest did so far in the current turn.
pub(crate) struct TurnBuffer {
    pub(crate) writes: BTreeMap<String, Option<Vec<u8>>>,
    pub(crate) sends: Vec<Envelope>,
    /// The callers waiting on the message being handled (addresses),
    /// extended by calls made from this turn.
    pub(crate) chain: Vec<String>,
    /// Bytes buffered so far (see [`crate::MAX_TURN_BYTES`]).
    pub(crate) bytes: usize,
    /// The message being handled (calls derive their ids from it).
    pub(crate) message_id: ulid::Ulid,
    /// Calls made so far in this turn.
    pub(crate) calls: u32,
    /// The delivery of the message being handled, which its calls inherit:
    /// a transient turn is never retried after a crash, so its calls need
    /// not be durable either.
    pub(crate) delivery: Delivery,
    pub(crate) topics: Vec<TopicEffect>,
    /// Delayed messages to cancel when the turn commits.
    pub(crate) cancels: Vec<ulid::Ulid>,
    /// RPC targets chosen in this turn, by imported interface.
    pub(crate) targets: HashMap<String, String>,
    /// Messages sent and published so far (see `Limits::turn_sends`).
    pub(crate) sent: usize,
    /// Persistent messages sent so far, by receiver: the mailbox bound
    /// counts them.
    pub(crate) sent_to: HashMap<String, u64>,
    /// Bytes of state keys and values written so far.
    pub(crate) state_bytes: usize,
}

impl TurnBuffer {
    fn new(message: &Envelope) -> Self {
        Self {
            writes: BTreeMap::new(),
            sends: Vec::new(),
            chain: message.call_chain.clone(),
            bytes: 0,
            message_id: message.id,
            calls: 0,
            delivery: message.delivery,
            topics: Vec::new(),
            cancels: Vec::new(),
            targets: HashMap::new(),
            sent: 0,
            sent_to: HashMap::new(),
            state_bytes: 0,
        }
    }
}

/// The data of an activation's wasmtime store.
pub struct ActorData {
    pub(crate) address: String,
    pub(crate) env: Arc<dyn ActorEnv>,
    /// Where the component's imported interfaces lead.
    pub(crate) links: Arc<[Link]>,
    pub(crate) turn: Option<TurnBuffer>,
    /// State already read or written (see [`StateCache`]).
    pub(crate) committed: StateCache,
    /// Delayed messages sent, and timers cancelled, by completed turns
    /// whose commits are not settled yet, with the turn's number: the
    /// store does not show them yet, and `cancel` must.
    pub(crate) unsettled_timers: HashMap<ulid::Ulid, (u64, bool)>,
    /// Turns completed so far (the number of the last one).
    turns: u64,
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
    pub(crate) deadline: Instant,
    deadline_hit: bool,
    stderr: GuestOutput,
}

impl WasiView for ActorData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Enforces the memory limit over all of an instance's memories together.
struct MemoryLimiter {
    limit: usize,
    used: usize,
    exceeded: Option<usize>,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        let total = self.used.saturating_add(desired.saturating_sub(current));
        if total > self.limit {
            self.exceeded = Some(total);
            return Err(wasmtime::Error::msg(format!(
                "memory limit of {} bytes exceeded (asked for {total})",
                self.limit
            )));
        }
        self.used = total;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        // Tables hold function references; a million is far beyond any
        // real guest and bounds what a hostile one can take.
        Ok(desired <= 1_000_000)
    }
}

/// A live instance of an actor.
pub struct Activation {
    store: Store<ActorData>,
    actor: Actor,
    /// The same instance, untyped: exported RPC functions are looked up in it.
    instance: Instance,
    rpc: Arc<RpcSurface>,
    limits: ActivationLimits,
}

impl Activation {
    pub(crate) async fn new(
        host: &Host,
        component: &ActorComponent,
        address: &str,
        limits: ActivationLimits,
        env: Arc<dyn ActorEnv>,
    ) -> Result<Self, ActivationError> {
        let stderr = GuestOutput::new(address, "stderr");
        let wasi = WasiCtx::builder()
            .stdout(GuestOutput::new(address, "stdout"))
            .stderr(stderr.clone())
            .envs(&limits.env)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let data = ActorData {
            address: address.to_string(),
            env,
            links: component.links.clone(),
            turn: None,
            committed: StateCache::default(),
            unsettled_timers: HashMap::new(),
            turns: 0,
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter {
                limit: usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX),
                used: 0,
                exceeded: None,
            },
            deadline: Instant::now() + limits.deadline,
            deadline_hit: false,
            stderr,
        };
        let mut store = Store::new(host.engine(), data);
        store.limiter(|d| &mut d.limiter);
        store.epoch_deadline_callback(|mut ctx| {
            let data = ctx.data_mut();
            if Instant::now() >= data.deadline {
                data.deadline_hit = true;
                return Err(wasmtime::Error::msg("turn deadline exceeded"));
            }
            Ok(UpdateDeadline::Yield(1))
        });
        store.set_epoch_deadline(1);
        let instantiated = async {
            let instance = component.pre.instantiate_async(&mut store).await?;
            let actor = component.indices.load(&mut store, &instance)?;
            Ok::<_, wasmtime::Error>((instance, actor))
        };
        let (instance, actor) = instantiated.await.map_err(|e| match store.data().limiter.exceeded {
            Some(needed) => ActivationError::InitialMemory {
                actor: address.to_string(),
                needed: needed as u64,
                limit: limits.memory_bytes,
            },
            None => instantiate_error(address, &e),
        })?;
        Ok(Self { store, actor, instance, rpc: component.rpc.clone(), limits })
    }

    /// The number of the last completed turn (the first is 1).
    pub fn turns(&self) -> u64 {
        self.store.data().turns
    }

    /// The commits of turns up to number `through` are durable: their
    /// writes need no longer be kept apart (see [`crate::state_cache`]).
    pub fn settle(&mut self, through: u64) {
        let data = self.store.data_mut();
        data.committed.settle(through);
        data.unsettled_timers.retain(|_, (turn, _)| *turn > through);
    }

    /// Bytes written by completed turns whose commits are not settled yet.
    pub fn unsettled_bytes(&self) -> usize {
        self.store.data().committed.unsettled_bytes()
    }

    /// Runs one turn: hands `message` to the handler and returns what it did.
    /// Nothing is committed here. After `Failed`, or when the `Completed`
    /// effects could not be committed, drop the activation: it has taken
    /// them as committed (see [`crate::state_cache`]). The next turn may
    /// run before this one's commit is durable, provided the commits are
    /// applied in the order the turns ran.
    pub async fn run_turn(&mut self, message: &Envelope) -> TurnOutcome {
        let data = self.store.data_mut();
        data.turn = Some(TurnBuffer::new(message));
        data.deadline = Instant::now() + self.limits.deadline;
        data.deadline_hit = false;
        data.stderr.clear();
        self.store.set_epoch_deadline(1);

        let result = match (&message.operation, message.kind) {
            (Some(operation), MessageKind::Call) => match self.invoke(operation, &message.payload).await {
                Ok(result) => result.map(|reply| Ok(Some(reply))),
                Err(rejected) => return TurnOutcome::Failed(rejected),
            },
            _ => {
                let envelope = to_wit(message);
                self.actor.pigeon_actor_handler().call_handle(&mut self.store, &envelope).await
            }
        };
        let data = self.store.data_mut();
        let buffer = data.turn.take();
        let reply_size = match &result {
            Ok(Ok(Some(reply))) => data.env.limits().check_reply(reply.len()).err(),
            _ => None,
        };
        if let Some(over) = reply_size {
            return TurnOutcome::Failed(TurnError::Limit(over.to_string()));
        }
        match result {
            Ok(Ok(reply)) => {
                let buffer = buffer.unwrap_or_else(|| TurnBuffer::new(message));
                // The node drops this activation if the commit fails, so the
                // cache may take the writes now (unsettled until the node
                // says the commit is durable).
                data.turns += 1;
                for (key, value) in &buffer.writes {
                    data.committed.write(data.turns, key.clone(), value.clone());
                }
                let timers =
                    buffer.sends.iter().filter(|e| e.not_before_ms.is_some() && e.delivery == Delivery::Persistent);
                for timer in timers {
                    data.unsettled_timers.insert(timer.id, (data.turns, true));
                }
                for id in &buffer.cancels {
                    data.unsettled_timers.insert(*id, (data.turns, false));
                }
                TurnOutcome::Completed {
                    reply,
                    effects: TurnEffects {
                        state_writes: buffer.writes.into_iter().collect(),
                        sends: buffer.sends,
                        topics: buffer.topics,
                        cancels: buffer.cancels,
                    },
                }
            }
            Ok(Err(text)) => TurnOutcome::Failed(TurnError::Guest(text)),
            Err(trap) => TurnOutcome::Failed(self.classify(trap)),
        }
    }

    /// Runs the exported function an RPC call names with its decoded
    /// arguments; the reply is its encoded results. A call this type can
    /// never serve is rejected (`Err`); a trap is the inner `Err`.
    async fn invoke(&mut self, operation: &str, payload: &[u8]) -> Result<wasmtime::Result<Vec<u8>>, TurnError> {
        let rpc = self.rpc.clone();
        let Some(op) = rpc.operation(operation) else {
            let exported = self.rpc.exported_interfaces();
            return Err(TurnError::Rejected(format!(
                "this actor type does not export `{}` (it exports: {})",
                operation.replace('#', "."),
                if exported.is_empty() { "no interface".to_string() } else { exported.join(", ") }
            )));
        };
        let params = codec::decode(op.param_types(), payload)
            .map_err(|e| TurnError::Rejected(format!("the arguments of `{}` do not decode: {e}", op.function)))?;
        let Some(func) = self.instance.get_func(&mut self.store, op.index) else {
            return Err(TurnError::Rejected(format!("`{}` is not a function of this instance", op.function)));
        };
        let mut results = vec![Val::Bool(false); op.func.results().len()];
        Ok(async {
            func.call_async(&mut self.store, &params, &mut results).await?;
            codec::encode(op.func.results(), &results).map_err(wasmtime::Error::msg)
        }
        .await)
    }

    /// Names the cause of a trap: deadline, memory, or the guest itself.
    fn classify(&self, trap: wasmtime::Error) -> TurnError {
        let data = self.store.data();
        if data.deadline_hit {
            return TurnError::Deadline(self.limits.deadline);
        }
        if let Some(requested) = data.limiter.exceeded {
            return TurnError::Memory { limit: self.limits.memory_bytes, requested: requested as u64 };
        }
        match trap.downcast_ref::<crate::imports::Abort>() {
            Some(crate::imports::Abort::Host(text)) => return TurnError::Host(text.clone()),
            Some(crate::imports::Abort::Rpc(text)) => return TurnError::Rpc(text.clone()),
            Some(crate::imports::Abort::Limit(over)) => return TurnError::Limit(over.to_string()),
            None => {}
        }
        // The trap's cause, without the wasm backtrace (it names only
        // function indices), and what the guest printed: a Rust guest's
        // panic message.
        let cause = match trap.downcast_ref::<wasmtime::Trap>() {
            Some(trap) => trap.to_string(),
            None => trap.root_cause().to_string(),
        };
        let printed: Vec<String> = data
            .stderr
            .tail()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
            .map(str::to_string)
            .collect();
        if printed.is_empty() {
            TurnError::Trap(cause)
        } else {
            TurnError::Trap(format!("{cause}; the guest printed: {}", printed.join(" ")))
        }
    }
}

/// Names why an instance could not be created. `ENOMEM` from the kernel
/// at instantiation is, in practice, the per-process limit of memory
/// mappings (the pool reserves the address space up front), which has its
/// own fix.
fn instantiate_error(actor: &str, error: &wasmtime::Error) -> ActivationError {
    let reason = format!("{error:#}");
    // However wasmtime wraps it, the kernel's refusal reads
    // "Cannot allocate memory (os error 12)".
    if reason.contains("(os error 12)") {
        ActivationError::OutOfMappings { actor: actor.to_string(), reason }
    } else {
        ActivationError::Instantiate { actor: actor.to_string(), reason }
    }
}

fn to_wit(m: &Envelope) -> wit::Envelope {
    use pigeon_store::{Delivery, MessageKind};
    wit::Envelope {
        id: m.id.to_string(),
        sender: m.from.clone(),
        recipient: m.to.clone(),
        kind: match m.kind {
            MessageKind::Send => wit::MessageKind::Send,
            MessageKind::Call => wit::MessageKind::Call,
            MessageKind::Reply => wit::MessageKind::Reply,
            MessageKind::Publish | MessageKind::Relay => wit::MessageKind::Publish,
        },
        priority: m.priority,
        delivery: match m.delivery {
            Delivery::Persistent => wit::Delivery::Persistent,
            Delivery::Transient => wit::Delivery::Transient,
        },
        headers: m.headers.iter().map(|(n, v)| wit::Header { name: n.clone(), value: v.clone() }).collect(),
        payload: m.payload.clone(),
        attempt: m.attempt(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_mapping_names_the_limit_and_its_fixes() {
        let refused = wasmtime::Error::from(std::io::Error::from_raw_os_error(12)).context("mmap failed");
        let text = instantiate_error("counter/a", &refused).to_string();
        assert!(text.contains("`counter/a`") && text.contains("Cannot allocate memory"), "{text}");
        assert!(text.contains("vm.max_map_count") && text.contains("--max-instances"), "{text}");
        let other = instantiate_error("counter/a", &wasmtime::Error::msg("start function trapped"));
        assert_eq!(other.to_string(), "cannot instantiate `counter/a`: start function trapped");
    }
}
