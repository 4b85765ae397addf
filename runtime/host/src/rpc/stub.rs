//! The caller's side of typed RPC: host functions standing in for the
//! functions a component imports from other actors, and `rpc.set-target`.
//!
//! A stub encodes its arguments, picks the target actor (the one chosen in
//! this turn with `set-target`, else the link's default key), makes an
//! ordinary call (deterministic id, call chain, the turn's deadline) whose
//! message names the operation, and decodes the reply into the function's
//! results. Whatever keeps the reply from arriving — a deadlock, the
//! deadline, a dead-lettered call, an unknown or full target — traps the
//! caller's turn with an `Abort::Rpc` that says so: a typed function has
//! no way to return it, and a retry of the turn (or its dead letter) is what
//! the caller's author expects of a failed call. Errors the callee returns
//! as values (`result<_, E>`) are results like any other and arrive typed.

use std::sync::Arc;

use pigeon_store::{ActorAddr, Link};
use wasmtime::component::types::ComponentFunc;
use wasmtime::component::{Linker, Val};

use super::{RpcImport, base, codec, same_interface};
use crate::activation::ActorData;
use crate::bindings::pigeon::actor::rpc;
use crate::imports::{Abort, PreparedCall};
use crate::{CallFailure, SendRefusal};

/// A failed RPC call: traps the caller's turn.
fn failure(text: String) -> wasmtime::Error {
    wasmtime::Error::new(Abort::Rpc(text))
}

/// Defines a stub in `linker` for every function of every import.
pub(crate) fn install(linker: &mut Linker<ActorData>, imports: &[RpcImport]) -> wasmtime::Result<()> {
    for import in imports {
        let mut instance = linker.instance(&import.interface)?;
        for (function, _) in &import.functions {
            let operation: Arc<str> = format!("{}#{function}", import.interface).into();
            instance.func_new_async(function, move |mut store, ty, params, results| {
                let operation = operation.clone();
                Box::new(async move { call(store.data_mut(), &operation, ty, params, results).await })
            })?;
        }
    }
    Ok(())
}

async fn call(
    data: &mut ActorData,
    operation: &str,
    ty: ComponentFunc,
    params: &[Val],
    results: &mut [Val],
) -> wasmtime::Result<()> {
    let (interface, function) = operation.split_once('#').unwrap_or((operation, ""));
    let shown = format!("{}.{function}", base(interface));
    let payload = codec::encode(ty.params().map(|(_, t)| t), params)
        .map_err(|e| failure(format!("cannot encode the arguments of {shown}: {e}")))?;
    let limit = data.limits().payload_bytes;
    if payload.len() > limit {
        return Err(failure(format!(
            "the arguments of {shown} take {} bytes, over the message limit of {limit}: pass a reference to the data instead",
            payload.len()
        )));
    }
    let to = data.rpc_target(interface)?;
    let mut call = match data.prepare_call(&to, payload, None)? {
        PreparedCall::Ready(call) => call,
        PreparedCall::Deadlock(chain) => {
            return Err(failure(format!("{shown} on {to} would deadlock: the call chain {chain} comes back to it")));
        }
    };
    call.envelope.operation = Some(operation.to_string());
    let reply = data.env.call(call.envelope, call.timeout).await.map_err(|f| {
        failure(match f {
            CallFailure::Timeout => {
                format!("{shown} on {to} got no reply within {:?}, the rest of the turn's deadline", call.timeout)
            }
            CallFailure::Failed(error) => format!("{shown} on {to} failed and was dead-lettered: {error}"),
            CallFailure::Refused(SendRefusal::UnknownType(t)) => {
                format!("{shown} on {to}: actor type `{t}` is not deployed")
            }
            CallFailure::Refused(SendRefusal::MailboxFull(a)) => {
                format!("{shown} on {to}: the mailbox of {a} stayed full for the rest of the turn's deadline")
            }
            CallFailure::Refused(SendRefusal::Store(e)) => format!("{shown} on {to}: store failure: {e}"),
        })
    })?;
    let vals = codec::decode(ty.results(), &reply.unwrap_or_default())
        .map_err(|e| failure(format!("the reply of {shown} from {to} does not fit its results: {e}")))?;
    for (slot, val) in results.iter_mut().zip(vals) {
        *slot = val;
    }
    Ok(())
}

impl ActorData {
    /// The actor the next call of `interface` goes to.
    fn rpc_target(&mut self, interface: &str) -> wasmtime::Result<String> {
        // The links are shared and immutable: hold them apart from `self`,
        // which the turn's buffer borrows mutably.
        let links = self.links.clone();
        let link = links.iter().find(|l| same_interface(interface, &l.interface)).ok_or_else(|| {
            failure(format!("`{interface}` is imported but not linked (the host installed a stub without a link)"))
        })?;
        if let Some(target) = self.buffer()?.targets.get(&link.interface) {
            return Ok(target.clone());
        }
        match &link.default_key {
            Some(key) => Ok(format!("{}/{key}", link.target_type)),
            None => Err(failure(format!(
                "no target for `{0}`: call `rpc.set-target(\"{0}\", \"{1}/KEY\")` in the turn before calling it, or deploy with a default key (`--link {0}={1}/KEY`)",
                base(interface),
                link.target_type
            ))),
        }
    }

    fn link(&self, interface: &str) -> Option<&Link> {
        self.links.iter().find(|l| same_interface(interface, &l.interface))
    }
}

impl rpc::Host for ActorData {
    fn set_target(&mut self, interface: String, target: String) -> wasmtime::Result<Result<(), String>> {
        let Some(link) = self.link(&interface).cloned() else {
            let imports: Vec<&str> = self.links.iter().map(|l| l.interface.as_str()).collect();
            return Ok(Err(format!(
                "this component does not import `{interface}` from another actor (it imports: {})",
                if imports.is_empty() { "nothing".to_string() } else { imports.join(", ") }
            )));
        };
        let address = match ActorAddr::parse(&target) {
            Ok(address) => address,
            Err(e) => return Ok(Err(format!("invalid target `{target}`: {e}"))),
        };
        if address.actor_type() != link.target_type {
            return Ok(Err(format!(
                "`{}` is linked to actor type `{}`, and `{target}` is not one of its actors",
                base(&link.interface),
                link.target_type
            )));
        }
        self.buffer()?.targets.insert(link.interface, target);
        Ok(Ok(()))
    }
}
