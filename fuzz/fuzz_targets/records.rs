//! Stored records, as a damaged or foreign data directory may hold them:
//! any bytes decode or are a `Corrupt` error, never a crash; what decodes
//! encodes back to a record that decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pigeon_node::pigeon_store::{ActorStats, ActorType, DeadLetter, Envelope, decode_record, encode_record};

fn round_trips<T>(bytes: &[u8])
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq,
{
    if let Ok(value) = decode_record::<T>(bytes, "fuzz") {
        let again: T = decode_record(&encode_record(&value), "fuzz").expect("an encoded record decodes");
        assert!(again == value, "a record changed in a round trip");
    }
}

fuzz_target!(|bytes: &[u8]| {
    round_trips::<Envelope>(bytes);
    round_trips::<DeadLetter>(bytes);
    round_trips::<ActorType>(bytes);
    round_trips::<ActorStats>(bytes);
});
