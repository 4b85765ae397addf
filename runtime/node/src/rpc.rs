//! Typed RPC at the node: links checked across types, and calls written in
//! WAVE by users.
//!
//! The host knows one component at a time; the node knows them all, so it
//! checks what spans types:
//! - at deploy, every link's target type must be deployed and export the
//!   linked interface with the same signatures (a type may link to itself);
//! - a redeploy must keep serving the interfaces other types link to it
//!   with, and a type others link to cannot be undeployed: either would
//!   turn their calls into failures at run time.
//!
//! Users call operations with WAVE text (`account.deposit(100)`): the node
//! resolves the function on the target's type, types and encodes the
//! arguments, and shows the reply's results as WAVE.

use pigeon_host::rpc::{LinkError, WaveError, parse_invocation};
use pigeon_host::{ActorComponent, Operation, RpcSurface};
use pigeon_store::{ActorAddr, Envelope, Link, MessageKind};

use crate::{Node, NodeError, NodeInner};

/// A call built from WAVE text, ready to send.
pub struct Invoke {
    /// The call message (its payload holds the encoded arguments).
    pub envelope: Envelope,
    /// The function it calls: shows the reply with
    /// [`Operation::results_to_wave`].
    pub operation: Operation,
}

impl Node {
    /// Builds the RPC call `call` (`acme:bank/account.deposit(100)`) to the
    /// actor `to`; the arguments are checked against the function's
    /// signature, with the position of any error.
    pub fn invocation(&self, to: &str, call: &str) -> Result<Invoke, NodeError> {
        let addr = ActorAddr::parse(to)?;
        let ty = self
            .inner
            .registry
            .get(addr.actor_type())
            .ok_or_else(|| NodeError::UnknownType(addr.actor_type().to_string()))?;
        let invocation = parse_invocation(call)?;
        let operation = invocation.resolve(ty.component.rpc()).map_err(|e| match e {
            WaveError::UnknownOperation { name, available } => {
                NodeError::UnknownOperation { ty: addr.actor_type().to_string(), name, available }
            }
            other => other.into(),
        })?;
        let payload = invocation.encode_args(operation)?;
        let mut envelope = Envelope::new(addr.as_str(), payload).with_kind(MessageKind::Call);
        envelope.operation = Some(operation.key());
        Ok(Invoke { envelope, operation: operation.clone() })
    }

    /// The operations the type `name` exports, if it is deployed.
    pub fn operations(&self, name: &str) -> Option<Vec<Operation>> {
        self.inner.registry.get(name).map(|t| t.component.rpc().operations.clone())
    }

    /// A stored RPC call shown as WAVE (`deposit(100)`), for inspection;
    /// `None` for other messages or when it no longer decodes.
    pub fn describe_call(&self, envelope: &Envelope) -> Option<String> {
        let key = envelope.operation.as_deref()?;
        let addr = ActorAddr::parse(&envelope.to).ok()?;
        let ty = self.inner.registry.get(addr.actor_type())?;
        let op = ty.component.rpc().operation(key)?;
        op.call_to_wave(&envelope.payload).ok().map(|call| format!("{}.{call}", op.interface))
    }
}

impl NodeInner {
    /// Checks the links of `component`, about to be deployed as `name`.
    pub(crate) fn check_links(&self, name: &str, component: &ActorComponent) -> Result<(), NodeError> {
        for link in component.links() {
            // A type may link to itself: its own surface is the target.
            let deployed = (link.target_type != name).then(|| self.registry.get(&link.target_type));
            let target = match &deployed {
                None => component.rpc(),
                Some(Some(ty)) => ty.component.rpc(),
                Some(None) => {
                    let (interface, target) = (link.interface.clone(), link.target_type.clone());
                    return Err(LinkError::UnknownTarget { interface, target }.into());
                }
            };
            component.rpc().check_target(&link.interface, &link.target_type, target)?;
        }
        Ok(())
    }

    /// Checks that deploying `surface` as `name` (`None`: undeploying it)
    /// breaks no other type's link.
    pub(crate) fn check_dependents(&self, name: &str, surface: Option<&RpcSurface>) -> Result<(), NodeError> {
        for dependent in self.registry.names().iter().filter(|n| *n != name) {
            let Some(ty) = self.registry.get(dependent) else { continue };
            for link in ty.component.links().iter().filter(|l| l.target_type == name) {
                let breaks = |reason: String| LinkError::Breaks {
                    dependent: dependent.clone(),
                    interface: link.interface.clone(),
                    target: name.to_string(),
                    reason,
                };
                let Some(surface) = surface else {
                    return Err(breaks(format!(
                        "undeploy `{dependent}` (or redeploy it without that link) before undeploying `{name}`"
                    ))
                    .into());
                };
                if let Err(e) = ty.component.rpc().check_target(&link.interface, name, surface) {
                    return Err(breaks(format!("the new `{name}` would break it: {e}")).into());
                }
            }
        }
        Ok(())
    }
}

/// Links of a type, for display: `acme:bank/account=account/main`.
pub fn link_texts(links: &[Link]) -> Vec<String> {
    links.iter().map(pigeon_host::rpc::link_text).collect()
}
