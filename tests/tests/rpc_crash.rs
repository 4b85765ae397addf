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

use pigeon_tests::artifacts;
use pigeon_tests::bank::{ACCOUNTS, OPENING, check, settle, transfer_message};
use pigeon_tests::crash::CrashTarget;
use pigeon_tests::process::{PigeonNode, ok};

const TRANSFERS: usize = 500;

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
    let (acked, kills, url) = target.drive(TRANSFERS, 8, 2, |id| ("/api/v1/messages", transfer_message(id))).await;

    let get = |path: String| {
        let (target, url) = (&target, &url);
        async move { target.get(url, &path).await }
    };
    let pending = || async {
        let actors = target.get(&url, "/api/v1/actors").await;
        actors.as_array().unwrap().iter().map(|a| a["pending"].as_u64().unwrap()).sum::<u64>()
    };
    let (outcomes, balances) = settle(get, pending, &acked).await;
    let moved = check(&outcomes, &balances, TRANSFERS);
    assert!(moved > TRANSFERS / 4, "most transfers went through ({moved})");
    eprintln!(
        "{TRANSFERS} transfers sent, {} acknowledged, {} recorded ({moved} moved money) across SIGKILLs at {kills:?} acknowledgements",
        acked.len(),
        outcomes.len()
    );
}
