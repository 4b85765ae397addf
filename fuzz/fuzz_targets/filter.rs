//! The filter language: any text parses or is refused with a position,
//! never a crash; a filter that parses evaluates, and prints to text that
//! parses back to the same filter.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pigeon_node::pigeon_store::filter::Filter;

fuzz_target!(|text: &str| {
    let Ok(filter) = Filter::parse(text) else { return };
    let headers = vec![("kind".to_string(), "order".to_string()), ("amount".to_string(), "250".to_string())];
    let _ = filter.matches(&headers);
    let printed = filter.to_string();
    let again = Filter::parse(&printed).unwrap_or_else(|e| panic!("{printed:?} does not parse back: {e}"));
    assert_eq!(again, filter, "{printed:?}");
});
