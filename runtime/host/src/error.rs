//! Errors of the host layer: what can be wrong with a component, and why a
//! turn failed.

use std::time::Duration;

use thiserror::Error;

/// Why a component cannot be deployed.
#[derive(Debug, Error)]
pub enum ComponentError {
    /// The bytes do not start with the wasm magic number.
    #[error(
        "not a WebAssembly file: it does not start with `\\0asm` (build the actor with `cargo build --target wasm32-wasip2` and deploy the `.wasm` it produces)"
    )]
    NotWasm,
    /// A core module, not a component.
    #[error(
        "this is a core WebAssembly module, not a component: build for `wasm32-wasip2` (or wrap the module with `wasm-tools component new`)"
    )]
    CoreModule,
    /// wasmtime rejected the component.
    #[error("invalid component: {0}")]
    Invalid(String),
    /// The component does not export `pigeon:actor/handler`.
    #[error(
        "the component does not export `{expected}`, so it cannot receive messages: target the `pigeon:actor/actor` world (it exports: {found})"
    )]
    MissingHandler { expected: String, found: String },
    /// The component imports interfaces the host does not provide.
    #[error(
        "the component imports what this node does not provide: {}. Provided: `pigeon:actor/*@0.1`, and the capability-free WASI 0.2 interfaces; rebuild the actor without these imports{}",
        .missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", "),
        rebuild_hint(.missing)
    )]
    UnsatisfiedImports { missing: Vec<String> },
    /// An exported or imported function cannot be called across actors.
    #[error("`{item}` cannot be called across actors: it uses {what}")]
    Unsendable { item: String, what: String },
    /// The component's RPC imports and its links do not agree.
    #[error(transparent)]
    Link(#[from] crate::rpc::LinkError),
    /// The imports have the right names but the wrong types.
    #[error("the component does not fit the `pigeon:actor` world: {0}")]
    WorldMismatch(String),
}

/// Why an activation could not be created.
#[derive(Debug, Error)]
pub enum ActivationError {
    /// The instance could not be created (limits, pool exhausted, start trap).
    #[error("cannot instantiate `{actor}`: {reason}")]
    Instantiate { actor: String, reason: String },
    /// The operating system refused the memory mappings of one more
    /// instance: the process is at its limit of mappings.
    #[error(
        "cannot instantiate `{actor}`: the operating system refused more memory ({reason}). Each live instance holds a few memory mappings and Linux allows 65,530 per process by default (vm.max_map_count), about 10,000 live instances: lower `--max-instances`, or raise the limit with `sysctl -w vm.max_map_count=262144`"
    )]
    OutOfMappings { actor: String, reason: String },
    /// The component's memory at start is already over the type's limit.
    #[error(
        "cannot instantiate `{actor}`: its initial memory ({needed} bytes) is over the limit of {limit} bytes: raise the type's memory limit"
    )]
    InitialMemory { actor: String, needed: u64, limit: u64 },
}

/// Why a turn failed. Every variant rolls the turn back.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TurnError {
    /// The handler returned `err(text)`.
    #[error("handler returned an error: {0}")]
    Guest(String),
    /// The guest trapped (panic, unreachable, bad memory access...).
    #[error("guest trapped: {0}")]
    Trap(String),
    /// The turn ran past its deadline.
    #[error(
        "turn exceeded its deadline of {0:?} and was stopped (raise the type's deadline if the work is legitimate)"
    )]
    Deadline(Duration),
    /// The guest tried to grow its memory past the limit.
    #[error(
        "guest exceeded its memory limit of {limit} bytes (asked for {requested}); raise the type's memory limit if it needs more"
    )]
    Memory { limit: u64, requested: u64 },
    /// The host failed (store I/O) while the guest ran.
    #[error("host failure during the turn: {0}")]
    Host(String),
    /// The guest went over one of the node's limits (the text names it).
    #[error("the turn went over a limit: {0}")]
    Limit(String),
    /// A typed RPC call made by the turn brought no reply.
    #[error("RPC call failed: {0}")]
    Rpc(String),
    /// The message can never be handled by this actor type (an RPC call of
    /// a function it does not export, or undecodable arguments): it goes to
    /// the dead letters without retries.
    #[error("call rejected: {0}")]
    Rejected(String),
}

/// How to build without the usual unprovided import: `wasi:http`, which
/// componentize-js adds by default.
fn rebuild_hint(missing: &[String]) -> &'static str {
    if missing.iter().any(|m| m.starts_with("wasi:http/")) {
        " (JavaScript built with componentize-js imports `wasi:http` unless built with \
         `disableFeatures: ['http', 'fetch-event']`; an actor reaches the outside through messages)"
    } else {
        ""
    }
}
