//! Typed RPC between actors, from the WIT of their components.
//!
//! A component may export interfaces besides `pigeon:actor/handler`: their
//! functions are the **operations** of its actor type. It may import
//! interfaces outside the host's own namespaces (`pigeon:` and `wasi:`):
//! each needs a **link** to an actor type that exports it. For every
//! imported function the host installs a stub ([`stub`]) that encodes the
//! arguments ([`codec`]), sends a call message to the chosen actor, waits
//! for the reply and decodes the results — the guest sees a plain function.
//! On the callee's side the activation invokes the exported function with
//! the decoded arguments instead of the handler, and the encoded results are
//! its reply, stored with its turn like any reply.
//!
//! Calls through stubs are ordinary calls: they get the turn's deterministic
//! call ids (exactly-once across retries and crashes), the deadlock check of
//! the call chain, and the rest of the turn's deadline.

pub mod codec;
mod signature;
pub(crate) mod stub;
mod wave;

use std::collections::BTreeSet;

use pigeon_store::Link;
use thiserror::Error;
use wasmtime::Engine;
use wasmtime::component::types::{ComponentFunc, ComponentItem};
use wasmtime::component::{Component, ComponentExportIndex};

pub use wave::{Invocation, WaveError, parse_invocation};

use crate::ComponentError;

/// The host's own namespaces: imports there are provided by the host,
/// exports there are not operations.
const HOST_NAMESPACES: &[&str] = &["pigeon:", "wasi:"];

/// A function an actor type exports for typed RPC.
#[derive(Clone, Debug)]
pub struct Operation {
    /// The exported interface (`acme:bank/account@0.1.0`).
    pub interface: String,
    /// The function (`deposit`).
    pub function: String,
    /// Its signature as WIT-like text (`func(amount: u64) -> u64`).
    pub signature: String,
    pub(crate) func: ComponentFunc,
    pub(crate) index: ComponentExportIndex,
}

impl Operation {
    /// How a call message names it: `interface#function`.
    pub fn key(&self) -> String {
        format!("{}#{}", self.interface, self.function)
    }

    /// Parameter types, in order.
    pub fn param_types(&self) -> impl Iterator<Item = wasmtime::component::types::Type> + '_ {
        self.func.params().map(|(_, ty)| ty)
    }

    /// Decodes the encoded results of a reply and shows them as WAVE text.
    pub fn results_to_wave(&self, reply: &[u8]) -> Result<String, WaveError> {
        wave::results_to_wave(&self.func, reply)
    }

    /// Decodes encoded arguments and shows them as a WAVE call,
    /// `deposit(100)`.
    pub fn call_to_wave(&self, payload: &[u8]) -> Result<String, WaveError> {
        wave::call_to_wave(&self.function, &self.func, payload)
    }
}

/// An interface a component imports from other actors.
#[derive(Clone, Debug)]
pub struct RpcImport {
    /// As the component names it (`acme:bank/account@0.1.0`).
    pub interface: String,
    /// Its functions with their signatures.
    pub functions: Vec<(String, String)>,
}

/// What links can get wrong.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LinkError {
    /// Imported interfaces without a link.
    #[error(
        "the component imports {} from other actors but no link says which actor type serves {}: deploy with {}",
        list(.missing), if .missing.len() == 1 { "it" } else { "them" },
        .missing.iter().map(|m| format!("`--link {}=TYPE[/KEY]`", base(m))).collect::<Vec<_>>().join(" ")
    )]
    Missing { missing: Vec<String> },
    /// A link for an interface the component does not import.
    #[error("the link for `{interface}` is not used: the component does not import it (it imports from other actors: {})", list_or_nothing(.imports))]
    Unused { interface: String, imports: Vec<String> },
    /// A link written wrong.
    #[error(
        "bad link `{link}`: {reason} (write INTERFACE=TYPE or INTERFACE=TYPE/KEY, e.g. `acme:bank/account=account/main`)"
    )]
    Malformed { link: String, reason: String },
    /// The target type is not deployed.
    #[error("the link for `{interface}` names actor type `{target}`, which is not deployed: deploy it first")]
    UnknownTarget { interface: String, target: String },
    /// The target type does not export the interface.
    #[error("actor type `{target}` does not export `{interface}` (it exports: {})", list_or_nothing(.exports))]
    NotExported { interface: String, target: String, exports: Vec<String> },
    /// The target exports the interface with other signatures.
    #[error(
        "actor type `{target}` exports `{interface}` but `{function}` does not match: this component imports `{function}: {expected}`, `{target}` exports {}",
        .found.as_ref().map_or("no such function".to_string(), |f| format!("`{function}: {f}`"))
    )]
    Mismatch { interface: String, target: String, function: String, expected: String, found: Option<String> },
    /// A redeploy or undeploy would break another type's link.
    #[error("actor type `{dependent}` links `{interface}` to `{target}`: {reason}")]
    Breaks { dependent: String, interface: String, target: String, reason: String },
}

fn list(items: &[String]) -> String {
    items.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ")
}

fn list_or_nothing(items: &[String]) -> String {
    if items.is_empty() { "nothing".into() } else { list(items) }
}

/// An interface name without its version: `acme:bank/account`.
pub fn base(interface: &str) -> &str {
    interface.split_once('@').map_or(interface, |(b, _)| b)
}

/// Whether `name` (as a user or a guest writes it, with or without a
/// version) names `interface`.
pub fn same_interface(name: &str, interface: &str) -> bool {
    name == interface || (!name.contains('@') && name == base(interface))
}

/// Whether an import is the host's to provide (rather than another actor's).
pub(crate) fn host_namespace(name: &str) -> bool {
    HOST_NAMESPACES.iter().any(|ns| name.starts_with(ns))
}

/// The RPC surface of a component: its operations and the interfaces it
/// imports from other actors.
#[derive(Clone, Debug, Default)]
pub struct RpcSurface {
    pub operations: Vec<Operation>,
    pub imports: Vec<RpcImport>,
}

impl RpcSurface {
    /// Reads the component's exported and imported interfaces.
    pub(crate) fn of(engine: &Engine, component: &Component) -> Result<Self, ComponentError> {
        let ty = component.component_type();
        let mut surface = Self::default();
        for (name, item) in ty.exports(engine) {
            let ComponentItem::ComponentInstance(instance) = item.ty else { continue };
            // Only interfaces of a WIT package (`ns:pkg/name`) are callable:
            // plain-named exports are toolchain plumbing, such as the
            // `exports.init` that componentize-py adds to every component.
            if host_namespace(name) || !name.contains(':') {
                continue;
            }
            let Some(iface_index) = component.get_export_index(None, name) else { continue };
            for (function, item) in instance.exports(engine) {
                let ComponentItem::ComponentFunc(func) = item.ty else { continue };
                check_sendable(name, function, &func)?;
                let index = component
                    .get_export_index(Some(&iface_index), function)
                    .ok_or_else(|| ComponentError::Invalid(format!("export `{name}.{function}` has no index")))?;
                surface.operations.push(Operation {
                    interface: name.to_string(),
                    function: function.to_string(),
                    signature: signature::func_text(&func),
                    func,
                    index,
                });
            }
        }
        for (name, item) in ty.imports(engine) {
            let ComponentItem::ComponentInstance(instance) = item.ty else { continue };
            if host_namespace(name) {
                continue;
            }
            let mut functions = Vec::new();
            for (function, item) in instance.exports(engine) {
                let func = match item.ty {
                    ComponentItem::ComponentFunc(func) => func,
                    // Named types (records, variants...) come along with
                    // the functions that use them.
                    ComponentItem::Type(_) => continue,
                    _ => {
                        return Err(ComponentError::Unsendable {
                            item: format!("{name}.{function}"),
                            what: "a resource (only functions over plain values can be called across actors)".into(),
                        });
                    }
                };
                check_sendable(name, function, &func)?;
                functions.push((function.to_string(), signature::func_text(&func)));
            }
            surface.imports.push(RpcImport { interface: name.to_string(), functions });
        }
        Ok(surface)
    }

    /// The operation a call message names (`interface#function`); the
    /// interface may differ from the export in its version.
    pub fn operation(&self, key: &str) -> Option<&Operation> {
        let (interface, function) = key.split_once('#')?;
        let by_function = || self.operations.iter().filter(move |o| o.function == function);
        by_function()
            .find(|o| o.interface == interface)
            .or_else(|| by_function().find(|o| base(&o.interface) == base(interface)))
    }

    /// Interfaces exported for RPC, each once.
    pub fn exported_interfaces(&self) -> Vec<String> {
        let set: BTreeSet<&str> = self.operations.iter().map(|o| o.interface.as_str()).collect();
        set.into_iter().map(str::to_string).collect()
    }

    /// Matches `links` to the imports: every import needs exactly one link;
    /// returns the links with their interface as the component names it.
    pub fn resolve_links(&self, links: &[Link]) -> Result<Vec<Link>, LinkError> {
        let imports: Vec<String> = self.imports.iter().map(|i| i.interface.clone()).collect();
        let mut resolved = Vec::new();
        for link in links {
            let Some(import) = imports.iter().find(|i| same_interface(&link.interface, i)) else {
                return Err(LinkError::Unused { interface: link.interface.clone(), imports: imports.clone() });
            };
            resolved.push(Link { interface: import.clone(), ..link.clone() });
        }
        let missing: Vec<String> =
            imports.iter().filter(|i| !resolved.iter().any(|l| &l.interface == *i)).cloned().collect();
        if !missing.is_empty() {
            return Err(LinkError::Missing { missing });
        }
        Ok(resolved)
    }

    /// Checks that `target` (deployed as `target_name`) exports `interface`,
    /// imported by this component, with the same signatures.
    pub fn check_target(&self, interface: &str, target_name: &str, target: &RpcSurface) -> Result<(), LinkError> {
        let Some(import) = self.imports.iter().find(|i| i.interface == interface) else {
            return Err(LinkError::Unused {
                interface: interface.into(),
                imports: self.imports.iter().map(|i| i.interface.clone()).collect(),
            });
        };
        let exported = target.exported_interfaces();
        let Some(export) =
            exported.iter().find(|e| *e == interface).or_else(|| exported.iter().find(|e| base(e) == base(interface)))
        else {
            return Err(LinkError::NotExported {
                interface: interface.into(),
                target: target_name.into(),
                exports: exported,
            });
        };
        for (function, expected) in &import.functions {
            let found = target
                .operations
                .iter()
                .find(|o| &o.interface == export && &o.function == function)
                .map(|o| o.signature.clone());
            if found.as_ref() != Some(expected) {
                return Err(LinkError::Mismatch {
                    interface: interface.into(),
                    target: target_name.into(),
                    function: function.clone(),
                    expected: expected.clone(),
                    found,
                });
            }
        }
        Ok(())
    }
}

fn check_sendable(interface: &str, function: &str, func: &ComponentFunc) -> Result<(), ComponentError> {
    match signature::func_unsendable(func) {
        Some(what) => Err(ComponentError::Unsendable { item: format!("{interface}.{function}"), what: what.into() }),
        None => Ok(()),
    }
}

/// Parses a link as the CLI writes it: `acme:bank/account=account` or
/// `acme:bank/account=account/main`.
pub fn parse_link(text: &str) -> Result<Link, LinkError> {
    let malformed = |reason: &str| LinkError::Malformed { link: text.into(), reason: reason.into() };
    let (interface, target) = text.split_once('=').ok_or_else(|| malformed("no `=`"))?;
    let (interface, target) = (interface.trim(), target.trim());
    if !interface.contains(':') || !interface.contains('/') {
        return Err(malformed("the interface must be written `namespace:package/interface`"));
    }
    let (target_type, default_key) = match target.split_once('/') {
        Some((ty, key)) => (ty, Some(key.to_string())),
        None => (target, None),
    };
    pigeon_store::validate_type_name(target_type).map_err(|e| malformed(&e.to_string()))?;
    if let Some(key) = &default_key {
        pigeon_store::ActorAddr::parse(&format!("{target_type}/{key}")).map_err(|e| malformed(&e.to_string()))?;
    }
    Ok(Link { interface: interface.into(), target_type: target_type.into(), default_key })
}

/// Shows a link as the CLI writes it.
pub fn link_text(link: &Link) -> String {
    match &link.default_key {
        Some(key) => format!("{}={}/{key}", link.interface, link.target_type),
        None => format!("{}={}", link.interface, link.target_type),
    }
}

#[cfg(test)]
mod tests;
