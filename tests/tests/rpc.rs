//! Typed RPC from WIT, end to end through the real binaries: the bank
//! example (`account` exports `acme:bank/account`, `transfer` imports it)
//! deployed and driven with the `pigeon` CLI. Every deploy-time link error,
//! WAVE errors, typed errors crossing the boundary, and runtime failures
//! trapping the caller's turn.

use std::time::Duration;

use pigeon_tests::process::{fails, json, ok, start_fresh};
use pigeon_tests::{TestNode, artifacts, eventually};

const ACCOUNT: &str = "acme:bank/account";

fn link(target: &str) -> String {
    format!("{ACCOUNT}={target}")
}

#[test]
fn deploy_checks_every_link_and_names_what_is_wrong() {
    let (_dir, node) = start_fresh();
    ok(&node.cli(&["deploy", artifacts::BANK_ACCOUNT, "--name", "account"]));
    ok(&node.cli(&["deploy", artifacts::COUNTER, "--name", "counter"]));

    // No link for an imported interface: the import is named, with the fix.
    let err = fails(&node.cli(&["deploy", artifacts::BANK_TRANSFER, "--name", "transfer"]));
    assert!(err.contains("`acme:bank/account@0.1.0`") && err.contains("--link acme:bank/account=TYPE"), "{err}");
    assert!(err.contains("[link_error]"), "{err}");

    // The target type does not export the interface.
    let err = fails(&node.cli(&["deploy", artifacts::BANK_TRANSFER, "--name", "transfer", "--link", &link("counter")]));
    assert!(err.contains("actor type `counter` does not export `acme:bank/account@0.1.0`"), "{err}");

    // The target exports it with other signatures: the function and both
    // signatures are named.
    let err = fails(&node.cli(&["deploy", artifacts::BANK_OLD_TELLER, "--name", "teller", "--link", &link("account")]));
    assert!(err.contains("`deposit` does not match"), "{err}");
    assert!(err.contains("func(amount: u64) -> result<u64, string>"), "what the caller imports: {err}");
    assert!(err.contains("func(amount: u64) -> result<u64, variant { insufficient-funds("), "what is exported: {err}");

    // The target type is not deployed; a link nothing imports; a link
    // written wrong.
    let err = fails(&node.cli(&["deploy", artifacts::BANK_TRANSFER, "--name", "transfer", "--link", &link("vault")]));
    assert!(err.contains("names actor type `vault`, which is not deployed"), "{err}");
    let err = fails(&node.cli(&["deploy", artifacts::COUNTER, "--name", "counter", "--link", &link("account")]));
    assert!(err.contains("the link for `acme:bank/account` is not used"), "{err}");
    let err = fails(&node.cli(&["deploy", artifacts::BANK_TRANSFER, "--name", "transfer", "--link", ACCOUNT]));
    assert!(err.contains("bad link `acme:bank/account`: no `=`"), "{err}");

    // None of the refusals left a type behind.
    let types = json(&ok(&node.cli(&["--json", "ls"])))["types"].clone();
    let names: Vec<&str> = types.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["account", "counter"]);

    // The right link deploys; `ls` lists operations and links.
    let out =
        ok(&node.cli(&["deploy", artifacts::BANK_TRANSFER, "--name", "transfer", "--link", &link("account/main")]));
    assert!(out.contains("links   acme:bank/account@0.1.0=account/main"), "{out}");
    let table = ok(&node.cli(&["ls"]));
    assert!(table.contains("exports acme:bank/account@0.1.0.balance: func() -> u64"), "{table}");
    let listing = json(&ok(&node.cli(&["--json", "ls"])));
    let account = &listing["types"][0];
    let ops: Vec<&str> =
        account["operations"].as_array().unwrap().iter().map(|o| o["function"].as_str().unwrap()).collect();
    assert_eq!(ops, ["deposit", "withdraw", "balance"]);

    // Others' links hold the target in place: no undeploy, no redeploy
    // that drops the interface.
    let err = fails(&node.cli(&["undeploy", "account"]));
    assert!(err.contains("actor type `transfer` links `acme:bank/account@0.1.0` to `account`"), "{err}");
    let err = fails(&node.cli(&["deploy", artifacts::COUNTER, "--name", "account"]));
    assert!(err.contains("the new `account` would break it"), "{err}");
    ok(&node.cli(&["deploy", artifacts::BANK_ACCOUNT, "--name", "account"]));
}

#[test]
fn calls_from_the_cli_are_typed_in_wave_with_positioned_errors() {
    let (_dir, node) = start_fresh();
    ok(&node.cli(&["deploy", artifacts::BANK_ACCOUNT, "--name", "account"]));

    assert_eq!(ok(&node.cli(&["call", "account/alice", "acme:bank/account.deposit(100)"])).trim(), "ok(100)");
    assert_eq!(ok(&node.cli(&["call", "account/alice", "account.withdraw(30)"])).trim(), "ok(70)");
    assert_eq!(ok(&node.cli(&["call", "account/alice", "acme:bank/account@0.1.0.balance()"])).trim(), "70");
    let answer = json(&ok(&node.cli(&["--json", "call", "account/alice", "balance()"])));
    assert_eq!(answer["result"], "70");

    // The callee's typed error arrives as its WAVE value.
    let out = ok(&node.cli(&["call", "account/alice", "withdraw(500)"]));
    assert_eq!(out.trim(), "err(insufficient-funds({balance: 70, requested: 500}))");

    // A value of the wrong type: the position, the argument, its type.
    let err = fails(&node.cli(&["call", "account/alice", "account.withdraw(-5)"]));
    assert!(err.contains("argument `amount` must be a u64"), "{err}");
    assert!(err.contains("at column 18"), "{err}");
    assert!(err.contains("\n    account.withdraw(-5)\n                     ^^\n"), "a caret under `-5`: {err}");
    assert!(err.contains("expected acme:bank/account@0.1.0.withdraw: func(amount: u64)"), "{err}");
    assert!(err.contains("[invalid_call]"), "{err}");
    let err = fails(&node.cli(&["call", "account/alice", "withdraw(\"ten\")"]));
    assert!(err.contains("argument `amount` must be a u64; invalid value type"), "{err}");
    let err = fails(&node.cli(&["call", "account/alice", "withdraw()"]));
    assert!(err.contains("no params provided, but 1 required"), "{err}");
    let err = fails(&node.cli(&["call", "account/alice", "withdraw(5"]));
    assert!(err.contains("is not a function call: it does not end with `)`"), "{err}");
    let err = fails(&node.cli(&["call", "account/alice", "account.close()"]));
    assert!(err.contains("actor type `account` has no operation `account.close`"), "{err}");
    assert!(err.contains("acme:bank/account@0.1.0.deposit"), "the operations are listed: {err}");

    // None of the bad calls reached the actor.
    assert_eq!(ok(&node.cli(&["call", "account/alice", "balance()"])).trim(), "70");
    let detail = json(&ok(&node.cli(&["--json", "inspect", "account/alice"])));
    assert_eq!(detail["processed"], 6, "deposit, withdraw, 3 balances and the refused withdrawal: {detail}");

    // `send` takes a typed call too, one way: it prints the message id.
    let id = ok(&node.cli(&["send", "account/alice", "account.deposit(5)"]));
    assert_eq!(id.trim().len(), 26, "a ULID: {id}");
    let deadline = std::time::Instant::now() + pigeon_tests::PATIENCE;
    while ok(&node.cli(&["call", "account/alice", "balance()"])).trim() != "75" {
        assert!(std::time::Instant::now() < deadline, "the sent deposit was not applied");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_typed_error_reaches_the_calling_actor_as_its_type() {
    let (_dir, node) = start_fresh();
    ok(&node.cli(&["deploy", artifacts::BANK_ACCOUNT, "--name", "account"]));
    ok(&node.cli(&["deploy", artifacts::BANK_TRANSFER, "--name", "transfer", "--link", &link("account")]));
    ok(&node.cli(&["call", "account/a", "deposit(10)"]));

    // `transfer` matches on `AccountError::InsufficientFunds(shortfall)`
    // and records the balance the shortfall carried.
    assert_eq!(ok(&node.cli(&["call", "transfer/desk", "t1 a b 25"])).trim(), "insufficient a b 25 10");
    assert_eq!(ok(&node.cli(&["call", "transfer/desk", "t2 a b 4"])).trim(), "ok a b 4");
    assert_eq!(ok(&node.cli(&["call", "account/a", "balance()"])).trim(), "6");
    assert_eq!(ok(&node.cli(&["call", "account/b", "balance()"])).trim(), "4");
    // Sent again, a transfer reports its outcome and moves nothing.
    assert_eq!(ok(&node.cli(&["call", "transfer/desk", "t2 a b 4"])).trim(), "ok a b 4");
    assert_eq!(ok(&node.cli(&["call", "account/b", "balance()"])).trim(), "4");
}

#[test]
fn a_call_that_brings_no_reply_traps_the_callers_turn_with_the_reason() {
    let (_dir, node) = start_fresh();
    // account/b holds u64::MAX: the deposit into it traps on the overflow,
    // every time, and is dead-lettered after its one attempt.
    ok(&node.cli(&["deploy", artifacts::BANK_ACCOUNT, "--name", "account", "--max-attempts", "1"]));
    ok(&node.cli(&["call", "account/a", "account.deposit(5)"]));
    ok(&node.cli(&["call", "account/b", &format!("account.deposit({})", u64::MAX)]));
    let links = link("account");
    ok(&node.cli(&["deploy", artifacts::BANK_TRANSFER, "--name", "transfer", "--link", &links, "--max-attempts", "1"]));
    ok(&node.cli(&["send", "transfer/desk", "t1 a b 5"]));

    let mut dead = Vec::new();
    let deadline = std::time::Instant::now() + pigeon_tests::PATIENCE;
    while dead.len() < 2 {
        assert!(std::time::Instant::now() < deadline, "expected two dead letters, got {dead:?}");
        std::thread::sleep(Duration::from_millis(20));
        dead = json(&ok(&node.cli(&["--json", "dlq", "ls"]))).as_array().unwrap().clone();
    }
    let of = |actor: &str| dead.iter().find(|d| d["message"]["to"] == actor).unwrap_or_else(|| panic!("{dead:?}"));
    let callee = of("account/b")["error"].as_str().unwrap();
    assert!(callee.contains("the balance would overflow"), "{callee}");
    // A dead-lettered RPC call is shown as the call it was, in WAVE.
    assert_eq!(of("account/b")["message"]["call"], "acme:bank/account@0.1.0.deposit(5)");
    let caller = of("transfer/desk")["error"].as_str().unwrap();
    assert!(
        caller.starts_with("RPC call failed: acme:bank/account.deposit on account/b failed and was dead-lettered"),
        "{caller}"
    );
    assert!(caller.contains("the balance would overflow"), "the callee's error is passed on: {caller}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_of_a_function_the_type_does_not_export_is_rejected_without_retries() {
    let t = TestNode::start().await;
    t.deploy("account", artifacts::BANK_ACCOUNT, pigeon_tests::quick_limits()).await;
    let mut call = pigeon_node::pigeon_store::Envelope::new("account/a", vec![1, 2, 3])
        .with_kind(pigeon_node::pigeon_store::MessageKind::Call);
    call.operation = Some("acme:bank/account@0.1.0#close".into());
    t.node.send(call).await.unwrap();
    let mut bad_args = pigeon_node::pigeon_store::Envelope::new("account/b", vec![0xff; 11])
        .with_kind(pigeon_node::pigeon_store::MessageKind::Call);
    bad_args.operation = Some("acme:bank/account@0.1.0#deposit".into());
    t.node.send(bad_args).await.unwrap();

    let store = t.node.store().clone();
    let dead = eventually("two dead letters", || {
        let store = store.clone();
        async move { Some(store.dead_letters(10).unwrap()).filter(|d| d.len() == 2) }
    })
    .await;
    for letter in &dead {
        assert_eq!(letter.reason, pigeon_node::pigeon_store::DeadReason::Rejected);
        assert_eq!(letter.envelope.failures, 1, "no retries: {letter:?}");
    }
    let error = |to: &str| dead.iter().find(|d| d.envelope.to == to).unwrap().error.clone();
    assert!(error("account/a").contains("does not export `acme:bank/account@0.1.0.close`"), "{}", error("account/a"));
    assert!(error("account/b").contains("the arguments of `deposit` do not decode"), "{}", error("account/b"));
}
