//! Publications with mixed headers and subscribers with mixed filters, and
//! the check that each subscriber holds exactly what it must: shared by
//! the multicast crash tests on one node and across a lattice.

use std::collections::{BTreeMap, BTreeSet};

use crate::crash::op_id;

/// Headers of a publication.
pub type Headers = BTreeMap<String, String>;

/// The headers of publication `n`.
pub fn headers(n: usize) -> Headers {
    let mut h = BTreeMap::from([
        ("op-id".to_string(), op_id(n)),
        ("amount".to_string(), ((n * 37) % 300).to_string()),
        ("kind".to_string(), if n.is_multiple_of(2) { "even" } else { "odd" }.to_string()),
    ]);
    if n.is_multiple_of(7) {
        h.insert("vip".into(), "yes".into());
    }
    h
}

/// Subscriber `s`'s filter, and the same rule in Rust to know what it must get.
pub fn filter(s: usize) -> (&'static str, fn(&Headers) -> bool) {
    match s % 5 {
        0 => ("", |_| true),
        1 => ("amount > 150", |h| h["amount"].parse::<u32>().is_ok_and(|a| a > 150)),
        2 => ("kind = 'even'", |h| h["kind"] == "even"),
        3 => ("kind = 'odd' AND amount <= 100", |h| {
            h["kind"] == "odd" && h["amount"].parse::<u32>().is_ok_and(|a| a <= 100)
        }),
        _ => ("NOT (amount >= 200) OR EXISTS vip", |h| {
            h["amount"].parse::<u32>().is_ok_and(|a| a < 200) || h.contains_key("vip")
        }),
    }
}

/// A subscriber's `applied/` state entries (`GET /api/v1/state/..`) as
/// publication number → (times applied, order of application).
pub fn applied(state: &serde_json::Value) -> BTreeMap<usize, (u64, u64)> {
    let entries = state.as_array().cloned().unwrap_or_default();
    entries
        .iter()
        .filter_map(|e| {
            let n = e["key"].as_str()?.strip_prefix("applied/op")?.parse().ok()?;
            let (times, order) = e["value"]["text"].as_str()?.split_once(' ')?;
            Some((n, (times.parse().ok()?, order.parse().ok()?)))
        })
        .collect()
}

/// Checks what subscriber `s` applied against the acknowledged
/// publications (`sent` are all that were attempted): each applied once,
/// only ones its filter passes and that were sent, and none acknowledged
/// missing. Returns how many acknowledged deliveries it checked.
pub fn check_subscriber(
    s: usize,
    applied: &BTreeMap<usize, (u64, u64)>,
    acked: &BTreeSet<usize>,
    sent: usize,
) -> usize {
    let (text, matches) = filter(s);
    for (n, (times, _)) in applied {
        assert_eq!(*times, 1, "s{s:02} applied op{n} {times} times");
        assert!(matches(&headers(*n)), "s{s:02} got op{n}, which its filter `{text}` rejects");
        assert!(*n < sent, "s{s:02} got op{n}, which was never published");
    }
    let mut checked = 0;
    for n in acked.iter().filter(|n| matches(&headers(**n))) {
        assert!(applied.contains_key(n), "s{s:02} lost acknowledged publish op{n}");
        checked += 1;
    }
    checked
}
