//! The bank example under crashes: transfers between accounts through the
//! typed `acme:bank/account` import, and the check that money is conserved
//! and every balance is exactly what the recorded outcomes imply. Shared
//! by the crash tests on one node and across a lattice.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use serde_json::Value;

use crate::PATIENCE;

pub const ACCOUNTS: usize = 10;
/// Transfer desks. Each records every transfer it handled (`done/ID`), and
/// an actor moves between nodes in one lattice message, so a desk must
/// stay under half of one (512 KiB; see docs/lattice.md, "Limits"): with 4
/// desks a rebalance test under load grew one to 552 KB, and its move
/// could not finish.
pub const DESKS: usize = 8;
pub const OPENING: u64 = 1_000;
/// State entries per read (the API's most).
const PAGE: usize = 10_000;

/// The transfer with id number `n`: (desk, from, to, amount).
pub fn transfer(n: usize) -> (String, String, String, u64) {
    let from = n % ACCOUNTS;
    let to = (from + 1 + (n / ACCOUNTS) % (ACCOUNTS - 1)) % ACCOUNTS;
    (format!("transfer/d{}", n % DESKS), format!("a{from}"), format!("a{to}"), 1 + (n as u64 * 37) % 300)
}

/// The body of `POST /api/v1/messages` for transfer `id`.
pub fn transfer_message(id: &str) -> Value {
    let (desk, from, to, amount) = transfer(id.trim_start_matches("op").parse().unwrap_or_default());
    serde_json::json!({ "to": desk, "payload": format!("{id} {from} {to} {amount}") })
}

/// State entries as text, from `GET /api/v1/state/..`.
fn entries(state: &Value) -> BTreeMap<String, String> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let entries = state.as_array().cloned().unwrap_or_default();
    entries.iter().map(|e| (text(&e["key"]), text(&e["value"]["text"]))).collect()
}

/// Waits until every acknowledged transfer has its outcome and nothing is
/// pending (`pending` counts what waits anywhere); answers the outcomes by
/// id and the balances. `get(path)` is a `GET` of the API.
pub async fn settle<G, GF, P, PF>(
    get: G,
    pending: P,
    acked: &BTreeSet<String>,
) -> (BTreeMap<String, String>, BTreeMap<String, u64>)
where
    G: Fn(String) -> GF,
    GF: Future<Output = Value>,
    P: Fn() -> PF,
    PF: Future<Output = u64>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE * 3;
    loop {
        let mut outcomes = BTreeMap::new();
        for d in 0..DESKS {
            // Page by page: a busy desk records more outcomes than one page holds.
            let mut after = String::new();
            loop {
                let path = format!(
                    "/api/v1/state/transfer/d{d}?prefix=done%2F&limit={PAGE}&after={}",
                    after.replace('/', "%2F")
                );
                let page = entries(&get(path).await);
                for (key, value) in &page {
                    if let Some(id) = key.strip_prefix("done/") {
                        assert!(outcomes.insert(id.to_string(), value.clone()).is_none(), "{id} recorded by two desks");
                    }
                }
                match page.keys().next_back() {
                    Some(last) if page.len() == PAGE => after = last.clone(),
                    _ => break,
                }
            }
        }
        let waiting = pending().await;
        if waiting == 0 && acked.iter().all(|id| outcomes.contains_key(id)) {
            let mut balances = BTreeMap::new();
            for a in 0..ACCOUNTS {
                let state = entries(&get(format!("/api/v1/state/account/a{a}")).await);
                let balance = state.get("balance").and_then(|b| b.parse::<u64>().ok());
                balances.insert(format!("a{a}"), balance.unwrap_or_else(|| panic!("a{a} has no balance: {state:?}")));
            }
            return (outcomes, balances);
        }
        assert!(tokio::time::Instant::now() < deadline, "transfers did not finish: {waiting} pending");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Checks money is conserved and each balance is what the outcomes imply;
/// returns how many transfers moved money.
pub fn check(outcomes: &BTreeMap<String, String>, balances: &BTreeMap<String, u64>, sent: usize) -> usize {
    let total: u64 = balances.values().sum();
    assert_eq!(total, OPENING * ACCOUNTS as u64, "money is conserved: {balances:?}");
    // Outcomes are replayed in id order, not in the order they happened, so
    // a balance may dip below zero on the way: signed arithmetic.
    let mut expected: BTreeMap<String, i64> = (0..ACCOUNTS).map(|a| (format!("a{a}"), OPENING as i64)).collect();
    let mut moved = 0;
    for (id, outcome) in outcomes {
        let n: usize = id.trim_start_matches("op").parse().expect("an id we sent");
        assert!(n < sent, "{id} was never sent");
        let (_, from, to, amount) = transfer(n);
        let words: Vec<&str> = outcome.split_whitespace().collect();
        match words.as_slice() {
            ["ok", f, t, a] => {
                assert_eq!((*f, *t, a.parse::<u64>().ok()), (from.as_str(), to.as_str(), Some(amount)), "{id}");
                *expected.entry(from).or_default() -= amount as i64;
                *expected.entry(to).or_default() += amount as i64;
                moved += 1;
            }
            ["insufficient", f, _, a, _] => assert_eq!((*f, a.parse::<u64>().ok()), (from.as_str(), Some(amount))),
            _ => panic!("unexpected outcome of {id}: {outcome}"),
        }
    }
    let balances: BTreeMap<String, i64> = balances.iter().map(|(a, b)| (a.clone(), *b as i64)).collect();
    assert_eq!(balances, expected, "each recorded transfer moved its money exactly once");
    moved
}
