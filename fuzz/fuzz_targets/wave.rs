//! WAVE calls as clients type them: any text is a call of an operation with
//! typed arguments, or an error that says why — never a crash. What encodes
//! shows back as a call.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pigeon_node::pigeon_host::rpc::parse_invocation;

fuzz_target!(|text: &str| {
    let Ok(invocation) = parse_invocation(text) else { return };
    for op in pigeon_fuzz::operations() {
        if let Ok(payload) = invocation.encode_args(op) {
            op.call_to_wave(&payload).unwrap_or_else(|e| panic!("encoded arguments of {text:?} do not show: {e}"));
        }
    }
});
