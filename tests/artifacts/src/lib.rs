//! The example guest components, built from `guest-examples/` by this
//! crate's build script: tests and benchmarks load them from here, and
//! `pigeon up --demo` embeds them.

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));

/// Reads a component built by the build script.
pub fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read guest component {path}: {e}"))
}
