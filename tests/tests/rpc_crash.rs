//! Exactly-once typed RPC across crashes, through the real binary: 500
//! transfers between 10 accounts, sent over HTTP by 8 concurrent clients to
//! 4 `transfer` actors, while `pigeon up` is SIGKILLed twice and restarted
//! on the same data directory. Each transfer calls `withdraw` on one
//! account and `deposit` on another through the imported
//! `acme:bank/account`.
//!
//! Afterwards: every acknowledged transfer has its outcome recorded, the
//! money is conserved, and each account's balance is exactly what the
//! recorded outcomes imply — so no withdrawal or deposit was applied twice
//! or lost, even when the node died between a callee's commit and its
//! caller's.

use std::collections::BTreeMap;
use std::time::Duration;

use pigeon_tests::crash::CrashTarget;
use pigeon_tests::process::{PigeonNode, ok};
use pigeon_tests::{PATIENCE, artifacts};
use serde_json::json;

const TRANSFERS: usize = 500;
const ACCOUNTS: usize = 10;
const DESKS: usize = 4;
const OPENING: u64 = 1_000;

/// The transfer with id number `n`: (desk, from, to, amount).
fn transfer(n: usize) -> (String, String, String, u64) {
    let from = n % ACCOUNTS;
    let to = (from + 1 + (n / ACCOUNTS) % (ACCOUNTS - 1)) % ACCOUNTS;
    (format!("transfer/d{}", n % DESKS), format!("a{from}"), format!("a{to}"), 1 + (n as u64 * 37) % 300)
}

/// All state entries of `actor` as text.
async fn state(target: &CrashTarget, url: &str, actor: &str) -> BTreeMap<String, String> {
    let entries = target.get(url, &format!("/api/v1/state/{actor}")).await;
    entries
        .as_array()
        .unwrap_or_else(|| panic!("state of {actor}: {entries}"))
        .iter()
        .map(|e| (e["key"].as_str().unwrap().to_string(), e["value"]["text"].as_str().unwrap().to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_conserve_money_and_apply_once_across_sigkills() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let node = PigeonNode::start(&data, "127.0.0.1:0", &[]).expect("pigeon up");
    ok(&node.cli(&["deploy", artifacts::BANK_ACCOUNT, "--name", "account"]));
    ok(&node.cli(&["deploy", artifacts::BANK_TRANSFER, "--name", "transfer", "--link", "acme:bank/account=account"]));
    for a in 0..ACCOUNTS {
        let out = ok(&node.cli(&["call", &format!("account/a{a}"), &format!("account.deposit({OPENING})")]));
        assert_eq!(out.trim(), format!("ok({OPENING})"));
    }
    let target = CrashTarget::new(node);
    let (acked, kills, url) = target
        .drive(TRANSFERS, 8, 2, |id| {
            let (desk, from, to, amount) = transfer(id.trim_start_matches("op").parse().unwrap());
            ("/api/v1/messages", json!({ "to": desk, "payload": format!("{id} {from} {to} {amount}") }))
        })
        .await;

    // Wait until every acknowledged transfer has its outcome, and nothing
    // is left queued anywhere.
    let deadline = tokio::time::Instant::now() + PATIENCE * 3;
    let (outcomes, balances) = loop {
        let mut outcomes = BTreeMap::new();
        for d in 0..DESKS {
            for (key, value) in state(&target, &url, &format!("transfer/d{d}")).await {
                if let Some(id) = key.strip_prefix("done/") {
                    assert!(outcomes.insert(id.to_string(), value).is_none(), "{id} recorded by two desks");
                }
            }
        }
        let actors = target.get(&url, "/api/v1/actors").await;
        let pending: u64 = actors.as_array().unwrap().iter().map(|a| a["pending"].as_u64().unwrap()).sum();
        if pending == 0 && acked.iter().all(|id| outcomes.contains_key(id)) {
            let mut balances = BTreeMap::new();
            for a in 0..ACCOUNTS {
                let account = format!("a{a}");
                let balance = state(&target, &url, &format!("account/{account}")).await["balance"].parse::<u64>();
                balances.insert(account, balance.unwrap());
            }
            break (outcomes, balances);
        }
        assert!(tokio::time::Instant::now() < deadline, "transfers did not finish: {pending} pending");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let total: u64 = balances.values().sum();
    assert_eq!(total, OPENING * ACCOUNTS as u64, "money is conserved: {balances:?}");
    // Outcomes are replayed in id order, not in the order they happened, so
    // a balance may dip below zero on the way: signed arithmetic.
    let mut expected: BTreeMap<String, i64> = (0..ACCOUNTS).map(|a| (format!("a{a}"), OPENING as i64)).collect();
    let mut moved = 0;
    for (id, outcome) in &outcomes {
        let n: usize = id.trim_start_matches("op").parse().expect("an id we sent");
        let (_, from, to, amount) = transfer(n);
        let words: Vec<&str> = outcome.split_whitespace().collect();
        match words.as_slice() {
            ["ok", f, t, a] => {
                assert_eq!((*f, *t, a.parse::<u64>().unwrap()), (from.as_str(), to.as_str(), amount), "{id}");
                *expected.get_mut(&from).unwrap() -= amount as i64;
                *expected.get_mut(&to).unwrap() += amount as i64;
                moved += 1;
            }
            ["insufficient", f, _, a, _] => assert_eq!((*f, a.parse::<u64>().unwrap()), (from.as_str(), amount)),
            _ => panic!("unexpected outcome of {id}: {outcome}"),
        }
    }
    let balances: BTreeMap<String, i64> = balances.into_iter().map(|(a, b)| (a, b as i64)).collect();
    assert_eq!(balances, expected, "each recorded transfer moved its money exactly once");
    assert!(moved > TRANSFERS / 4, "most transfers went through ({moved})");
    eprintln!(
        "{TRANSFERS} transfers sent, {} acknowledged, {} recorded ({moved} moved money) across SIGKILLs at {kills:?} acknowledgements",
        acked.len(),
        outcomes.len()
    );
}
