//! The RPC value codec: any bytes decode as an operation's arguments or
//! results, or are refused, without a crash and without allocating more than
//! they could hold; what decodes encodes back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pigeon_node::pigeon_host::rpc::codec;

fuzz_target!(|bytes: &[u8]| {
    for op in pigeon_fuzz::operations() {
        if let Ok(values) = codec::decode(op.param_types(), bytes) {
            let again = codec::encode(op.param_types(), &values).expect("decoded values encode");
            assert_eq!(again, bytes, "{} arguments", op.function);
        }
        let _ = op.results_to_wave(bytes);
    }
});
