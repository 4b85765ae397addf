//! Errors of the node layer.

use thiserror::Error;

use pigeon_host::ComponentError;
use pigeon_host::rpc::{LinkError, WaveError};
use pigeon_store::{AddressError, LimitError, StoreError};

/// Why a node operation failed.
#[derive(Debug, Error)]
pub enum NodeError {
    #[error(transparent)]
    Address(#[from] AddressError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Component(#[from] ComponentError),
    /// Links between types do not hold.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// An RPC call written in WAVE is not valid.
    #[error(transparent)]
    Wave(#[from] WaveError),
    /// The type exports no such function.
    #[error("actor type `{ty}` has no operation `{name}` (its operations: {})", if .available.is_empty() { "none: it exports no interface".to_string() } else { .available.join(", ") })]
    UnknownOperation { ty: String, name: String, available: Vec<String> },
    /// The actor type name is not valid.
    #[error("invalid type name: {0}")]
    TypeName(String),
    /// No type of that name is deployed.
    #[error("unknown actor type `{0}`: deploy it first (`pigeon deploy FILE.wasm --name {0}`)")]
    UnknownType(String),
    /// Priority above 9.
    #[error("invalid priority {0}: priorities go from 0 (lowest) to 9 (highest)")]
    Priority(u8),
    /// Payload over the limit.
    #[error("payload of {size} bytes is over the limit of {limit} bytes: send a reference to the data instead")]
    PayloadTooLarge { size: usize, limit: usize },
    /// A message over one of the node's limits (besides its payload).
    #[error(transparent)]
    OverLimit(#[from] LimitError),
    /// A deploy asked for more than the engine allows.
    #[error("invalid limits: {0}")]
    Limits(String),
    /// A call's deadline passed before its reply came.
    #[error("no reply from `{to}` within {waited:?} (the message stays queued and will still be handled)")]
    Timeout { to: String, waited: std::time::Duration },
    /// The call's message was dead-lettered instead of answered.
    #[error("call to `{to}` failed: {error}")]
    CallFailed { to: String, error: String },
    /// The lattice could not do what was asked.
    #[error("lattice: {0}")]
    Lattice(String),
    /// The actor's owner did not answer within the deadline.
    #[error(
        "no answer from `{to}` within {waited:?}: its owner, node `{owner}`, is down or unreachable (see `pigeon \
         nodes`); a plain send is still accepted and waits for it"
    )]
    OwnerDown { to: String, owner: String, waited: std::time::Duration },
    /// The owner of an actor refused the operation.
    #[error("{0}")]
    Remote(String),
    /// A placement named nodes the lattice does not know.
    #[error("unknown node(s) {}: the lattice has {}", .unknown.join(", "), .known.join(", "))]
    UnknownNodes { unknown: Vec<String>, known: Vec<String> },
    /// A placement change that cannot be made now (another one of the
    /// type is still moving actors, or a deploy would change the nodes).
    #[error("{0}")]
    PlacementConflict(String),
    /// The operation needs the node to be in a lattice.
    #[error("{0} needs a lattice: start the nodes with `pigeon up --nats URL` (see docs/lattice.md)")]
    NotInLattice(&'static str),
    /// The node is stopping.
    #[error("the node is shutting down")]
    ShuttingDown,
}
