//! From bytes to a ready-to-instantiate actor component.
//!
//! Deploying checks, in order, and stops at the first problem with an error
//! that names it: the bytes are wasm; they are a component, not a core module;
//! wasmtime accepts them; the component exports `pigeon:actor/handler`; every
//! import is something this host provides (all missing ones are listed) or
//! an interface of another actor (typed RPC, see [`crate::rpc`]); the
//! imports' types fit the host's (the linker's verdict).
//!
//! Compilation is the slow part (milliseconds for a Rust guest, seconds for a
//! Python one), so compiled code is cached on disk, keyed by the SHA-256 of
//! the component and by the engine's compatibility hash: a restart, or a
//! redeploy of the same bytes, loads native code instead of compiling.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

use crate::ComponentError;

/// The handler export every actor must have.
pub const HANDLER_EXPORT: &str = "pigeon:actor/handler@0.1.0";

/// Interfaces of the `pigeon:actor` package this host implements.
const PIGEON_INTERFACES: &[&str] = &["types", "messaging", "topics", "state", "logging", "rpc"];

/// WASI 0.2 interfaces linked into every actor, without capabilities: no
/// preopened directories, no network addresses, an empty environment.
const WASI_INTERFACES: &[&str] = &[
    "cli/environment",
    "cli/exit",
    "cli/stdin",
    "cli/stdout",
    "cli/stderr",
    "cli/terminal-input",
    "cli/terminal-output",
    "cli/terminal-stdin",
    "cli/terminal-stdout",
    "cli/terminal-stderr",
    "clocks/monotonic-clock",
    "clocks/wall-clock",
    "filesystem/types",
    "filesystem/preopens",
    "io/error",
    "io/poll",
    "io/streams",
    "random/random",
    "random/insecure",
    "random/insecure-seed",
    "sockets/network",
    "sockets/instance-network",
    "sockets/tcp",
    "sockets/tcp-create-socket",
    "sockets/udp",
    "sockets/udp-create-socket",
    "sockets/ip-name-lookup",
];

/// SHA-256 of component bytes, in hex: the version of an actor type.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Checks the wasm header: is this a component at all?
pub(crate) fn check_header(bytes: &[u8]) -> Result<(), ComponentError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(ComponentError::NotWasm);
    }
    // Bytes 4..8 are the version and layer: 1,0 / 0,0 for a core module;
    // components use layer 1.
    match bytes[6..8] {
        [0, 0] => Err(ComponentError::CoreModule),
        _ => Ok(()),
    }
}

/// Whether the host provides the import called `name`, e.g.
/// `pigeon:actor/state@0.1.0` or `wasi:io/streams@0.2.3`.
fn provided(name: &str) -> bool {
    let (path, version) = name.split_once('@').unwrap_or((name, ""));
    if let Some(interface) = path.strip_prefix("pigeon:actor/") {
        return PIGEON_INTERFACES.contains(&interface) && version.starts_with("0.1.");
    }
    if let Some(interface) = path.strip_prefix("wasi:") {
        return WASI_INTERFACES.contains(&interface) && version.starts_with("0.2.");
    }
    false
}

/// Checks the component's exports and imports against the `actor` world.
pub(crate) fn check_world(engine: &Engine, component: &Component) -> Result<(), ComponentError> {
    let ty = component.component_type();
    // Imports first: a component built for another world is better told
    // what it needs that is missing than that it lacks our export.
    // Interfaces outside the host's namespaces are other actors' to serve
    // (typed RPC, checked against the links); everything else must be ours.
    let missing: Vec<String> = ty
        .imports(engine)
        .filter(|(name, item)| {
            let rpc = !crate::rpc::host_namespace(name) && matches!(item.ty, ComponentItem::ComponentInstance(_));
            !provided(name) && !rpc
        })
        .map(|(name, _)| name.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(ComponentError::UnsatisfiedImports { missing });
    }
    let exports: Vec<&str> = ty.exports(engine).map(|(name, _)| name).collect();
    if !exports.iter().any(|e| e.starts_with("pigeon:actor/handler@0.1.")) {
        let found = if exports.is_empty() { "nothing".to_string() } else { exports.join(", ") };
        return Err(ComponentError::MissingHandler { expected: HANDLER_EXPORT.into(), found });
    }
    Ok(())
}

/// Compiles `bytes`, through the on-disk cache when there is one.
pub(crate) fn compile(
    engine: &Engine,
    bytes: &[u8],
    hash: &str,
    cache_dir: Option<&Path>,
) -> Result<Component, ComponentError> {
    let cached = cache_dir.map(|dir| cache_path(engine, dir, hash));
    if let Some(path) = cached.as_deref().filter(|p| p.exists()) {
        // SAFETY: the file was written by `Component::serialize` of an engine
        // with the same compatibility hash (it is in the file name), in the
        // node's own data directory.
        match unsafe { Component::deserialize_file(engine, path) } {
            Ok(component) => return Ok(component),
            Err(e) => {
                tracing::warn!(path = %path.display(), "ignoring unusable compile cache entry: {e:#}")
            }
        }
    }
    let component = Component::new(engine, bytes).map_err(|e| ComponentError::Invalid(format!("{e:#}")))?;
    if let Some(path) = cached
        && let Err(e) = write_cache(&component, &path)
    {
        tracing::warn!(path = %path.display(), "cannot write the compile cache: {e}");
    }
    Ok(component)
}

fn cache_path(engine: &Engine, dir: &Path, hash: &str) -> PathBuf {
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    dir.join(format!("{hash}-{:016x}.cwasm", hasher.finish()))
}

fn write_cache(component: &Component, path: &Path) -> std::io::Result<()> {
    let bytes = component.serialize().map_err(|e| std::io::Error::other(format!("{e:#}")))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // Write then rename, so a crash never leaves a torn cache entry.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_which_imports_it_provides() {
        assert!(provided("pigeon:actor/state@0.1.0"));
        assert!(provided("wasi:io/streams@0.2.3"));
        assert!(!provided("wasi:http/types@0.2.0"));
        assert!(!provided("pigeon:actor/state@0.2.0"));
        assert!(!provided("acme:bank/account"));
    }

    #[test]
    fn tells_core_modules_from_components() {
        assert!(matches!(check_header(b"hello world"), Err(ComponentError::NotWasm)));
        assert!(matches!(check_header(b"\0asm\x01\0\0\0"), Err(ComponentError::CoreModule)));
        assert!(check_header(b"\0asm\x0d\0\x01\0").is_ok());
    }
}
