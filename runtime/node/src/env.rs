//! The node's side of [`ActorEnv`]: committed state reads and send checks,
//! served from the store for the host's imports.

use std::sync::{OnceLock, Weak};
use std::time::Duration;

use pigeon_host::{ActorEnv, CallFailure, CallFuture, SendRefusal};
use pigeon_store::{Delivery, Envelope, Limits, Store};

use crate::NodeInner;
use crate::registry::Registry;

/// [`ActorEnv`] over the store and the registry of loaded types.
pub(crate) struct StoreEnv {
    pub(crate) store: Store,
    pub(crate) registry: Registry,
    /// The node, for calls (set once the node exists).
    pub(crate) node: OnceLock<Weak<NodeInner>>,
    pub(crate) limits: Limits,
}

impl ActorEnv for StoreEnv {
    fn state_get(&self, actor: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.store.state_get(actor, key).map_err(|e| e.to_string())
    }

    fn state_keys(&self, actor: &str, prefix: &str) -> Result<Vec<String>, String> {
        self.store.state_keys(actor, prefix).map_err(|e| e.to_string())
    }

    fn limits(&self) -> &Limits {
        &self.limits
    }

    fn check_send(&self, to: &str, delivery: Delivery, queued: u64) -> Result<(), SendRefusal> {
        let ty = to.split('/').next().unwrap_or_default();
        let Some(loaded) = self.registry.get(ty) else {
            return Err(SendRefusal::UnknownType(ty.to_string()));
        };
        if delivery == Delivery::Persistent {
            let depth = self.store.mailbox_depth(to).map_err(|e| SendRefusal::Store(e.to_string()))?;
            if depth.saturating_add(queued) >= loaded.record.limits.mailbox_bound {
                return Err(SendRefusal::MailboxFull(to.to_string()));
            }
        }
        Ok(())
    }

    fn timer_pending(&self, id: ulid::Ulid) -> Result<bool, String> {
        self.store.timer_pending(id).map_err(|e| e.to_string())
    }

    fn call(&self, call: Envelope, timeout: Duration) -> CallFuture {
        let node = self.node.get().and_then(Weak::upgrade);
        Box::pin(async move {
            match node {
                Some(node) => node.call_from_turn(call, timeout).await,
                None => Err(CallFailure::Failed("the node is stopping".into())),
            }
        })
    }
}
