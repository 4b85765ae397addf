//! Makes sure the toolchain building this crate can target `wasm32-wasip2`
//! before the guests are built.
//!
//! rustup installs the `targets` of `rust-toolchain.toml` only when it
//! installs the toolchain itself (rustup issue #4216): on a machine that
//! already had the pinned toolchain, the guest build would fail minutes in
//! with "can't find crate for `core`". So the build script looks in the
//! toolchain's sysroot first and, when the target is missing and rustup is
//! there, adds it (`rustup target add wasm32-wasip2 --toolchain ...`),
//! saying so. Without rustup it stops at once with what to install.

use std::env;
use std::path::PathBuf;
use std::process::Command;

pub const TARGET: &str = "wasm32-wasip2";

/// Installs the target when it is missing; panics with the fix if it cannot.
pub fn ensure_installed() {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    let Some(sysroot) = sysroot else {
        panic!("cannot ask `{rustc} --print sysroot` where the toolchain lives");
    };
    if sysroot.join("lib/rustlib").join(TARGET).is_dir() {
        return;
    }
    // Under rustup, RUSTUP_TOOLCHAIN names the toolchain running this build.
    let toolchain = env::var("RUSTUP_TOOLCHAIN").ok();
    println!(
        "cargo:warning=the guest examples need the {TARGET} target, which {} lacks: running `rustup target add {TARGET}`",
        toolchain.as_deref().unwrap_or("this toolchain")
    );
    let mut rustup = Command::new("rustup");
    rustup.args(["target", "add", TARGET]);
    if let Some(toolchain) = &toolchain {
        rustup.args(["--toolchain", toolchain]);
    }
    match rustup.status() {
        Ok(status) if status.success() => {}
        Ok(status) => panic!(
            "`rustup target add {TARGET}` failed ({status}); the guest examples cannot be built without it. \
             Run it by hand (with network access) and build again"
        ),
        Err(e) => panic!(
            "the guest examples need the {TARGET} target, which {} lacks, and rustup could not be run ({e}). \
             Install the target for this Rust toolchain (with rustup: `rustup target add {TARGET}`) and build again",
            sysroot.display()
        ),
    }
}
