//! The same actor written in Rust, JavaScript (componentize-js) and Python
//! (componentize-py) behaves the same through the real binary: one node,
//! the three `counter`s deployed side by side with default limits, one
//! script of commands, and the same replies, state and guest errors from
//! each. (The SIGKILL test of each language is in `http_crash.rs`.) Also:
//! deploy refusals that name the fix (memory, `wasi:http`), and typed RPC
//! from JavaScript to the Rust `account`.

use std::time::Duration;

use pigeon_tests::process::{PigeonNode, fails, json, ok, start_fresh};
use serde_json::Value;

/// What one counter did with the script: replies, its state, and the
/// errors of the messages it refused.
#[derive(Debug, PartialEq)]
struct Behaviour {
    replies: Vec<String>,
    state: Vec<(String, String)>,
    errors: Vec<String>,
}

fn run_script(node: &PigeonNode, kind: &str) -> Behaviour {
    let actor = format!("{kind}/a");
    let call = |payload: &str| ok(&node.cli(&["call", &actor, payload])).trim().to_string();
    let mut replies = vec![call("inc"), call("add 41")];
    ok(&node.cli(&["send", &actor, "add 8", "-H", "op-id=x1"]));
    // Each command fails on its only attempt and is dead-lettered.
    for bad in ["add lots", "bogus"] {
        ok(&node.cli(&["send", &actor, bad]));
    }
    replies.push(call("get"));

    let deadline = std::time::Instant::now() + pigeon_tests::PATIENCE;
    let detail = loop {
        let detail = json(&ok(&node.cli(&["inspect", &actor, "--json"])));
        if detail["dead_lettered"] == 2 && detail["pending"] == 0 {
            break detail;
        }
        assert!(std::time::Instant::now() < deadline, "{actor} did not dead-letter its two bad messages: {detail}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let state = detail["state"].as_array().expect("state").iter().map(|e| (text(&e["key"]), text(&e["value"]["text"])));
    let dead = json(&ok(&node.cli(&["dlq", "ls", "--json"])));
    let mut errors: Vec<String> = dead
        .as_array()
        .expect("dead letters")
        .iter()
        .filter(|d| d["message"]["to"] == actor.as_str())
        .map(|d| text(&d["error"]))
        .collect();
    errors.sort();
    Behaviour { replies, state: state.collect(), errors }
}

#[test]
fn counter_behaves_alike_in_rust_javascript_and_python() {
    let (_dir, node) = start_fresh();
    let counters = pigeon_tests::counters();
    for (language, path) in &counters {
        // Default limits: a 12–18 MB JS or Python component needs no flags.
        let out = ok(&node.cli(&["deploy", path, "--name", &format!("counter-{language}"), "--max-attempts", "1"]));
        assert!(out.starts_with(&format!("deployed counter-{language} ")), "{out}");
    }

    let expected = Behaviour {
        replies: vec!["1".into(), "42".into(), "50".into()],
        state: vec![("applied/x1".into(), "1 50".into()), ("count".into(), "50".into())],
        errors: vec![
            "handler returned an error: counter: `add` takes a whole number, got `lots`".into(),
            "handler returned an error: counter: unknown command `bogus` (try inc, add N, get)".into(),
        ],
    };
    for (language, _) in &counters {
        assert_eq!(run_script(&node, &format!("counter-{language}")), expected, "the {language} counter");
    }
}

#[test]
fn a_guest_over_its_memory_limit_is_refused_at_deploy_saying_what_to_raise() {
    let Some(&(_, js)) = pigeon_tests::counters().iter().find(|(l, _)| *l == "javascript") else { return };
    let dir = tempfile::tempdir().unwrap();
    let node = PigeonNode::start(&dir.path().join("data"), "127.0.0.1:0", &["--max-memory", "512MiB"]).unwrap();

    // componentize-js starts with ~9 MiB of linear memory.
    let err = fails(&node.cli(&["deploy", js, "--name", "small", "--memory", "4MiB"]));
    assert!(err.contains("needs 9.") && err.contains("over the type's limit of 4 MiB"), "{err}");
    assert!(err.contains("`--memory 32MiB`") && err.contains("[invalid_limits]"), "{err}");
    let err = fails(&node.cli(&["deploy", js, "--name", "huge", "--memory", "600MiB"]));
    assert!(err.contains("maximum of 512 MiB") && err.contains("`pigeon up --max-memory`"), "{err}");
    let listing = json(&ok(&node.cli(&["--json", "ls"])));
    assert_eq!(listing["types"], serde_json::json!([]), "a refused deploy stores nothing");

    // Raised as the error says, it deploys and runs; 300 MiB is above the
    // default node maximum and within this node's.
    ok(&node.cli(&["deploy", js, "--name", "roomy", "--memory", "300MiB"]));
    assert_eq!(ok(&node.cli(&["call", "roomy/a", "inc"])).trim(), "1");
}

/// The JavaScript `teller` calls the Rust `account` through the imported
/// `acme:bank/account`: typed arguments, typed results, and the account's
/// typed error as a JavaScript value.
#[test]
fn javascript_calls_the_rust_account_by_typed_rpc() {
    let Some(teller) = pigeon_tests::artifacts::BANK_TELLER_JS else {
        pigeon_tests::skip("componentize-js is not installed (see the build warning)");
        return;
    };
    let (_dir, node) = start_fresh();
    ok(&node.cli(&["deploy", pigeon_tests::artifacts::BANK_ACCOUNT, "--name", "account"]));
    let out = ok(&node.cli(&["deploy", teller, "--name", "teller", "--link", "acme:bank/account=account"]));
    assert!(out.contains("links   acme:bank/account@0.1.0=account"), "{out}");

    let call = |command: &str| ok(&node.cli(&["call", "teller/desk", command])).trim().to_string();
    assert_eq!(call("deposit alice 100"), "alice: 100");
    assert_eq!(call("withdraw alice 30"), "alice: 70");
    assert_eq!(call("withdraw alice 500"), "refused: insufficient funds (balance 70, requested 500)");
    assert_eq!(call("withdraw alice 0"), "refused: zero is not an amount");
    assert_eq!(call("deposit bob 18446744073709551615"), "bob: 18446744073709551615", "u64 as a BigInt");
    // The account itself, read by the CLI's own typed call.
    assert_eq!(ok(&node.cli(&["call", "account/alice", "account.balance()"])).trim(), "70");
    let err = fails(&node.cli(&["call", "teller/desk", "withdraw alice x", "--timeout", "20s"]));
    assert!(err.contains("teller: amounts are whole numbers, got `x`"), "{err}");
}

/// componentize-js left to its defaults makes a component that imports
/// `wasi:http`: the deploy refuses it, lists what is missing, and names the
/// build option that drops it.
#[test]
fn a_javascript_guest_importing_wasi_http_is_refused_with_the_build_fix() {
    let guests = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-examples");
    if !guests.join("node_modules/@bytecodealliance/componentize-js").exists() {
        pigeon_tests::skip("componentize-js is not installed (`npm ci --prefix guest-examples`)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("counter-http.wasm");
    let built = std::process::Command::new("node")
        .arg(guests.join("js-tools/componentize.mjs"))
        .arg(guests.join("counter-js/counter.js"))
        .arg(&wasm)
        .arg("--with-http")
        .output()
        .expect("node runs");
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));

    let (_data, node) = start_fresh();
    let err = fails(&node.cli(&["deploy", wasm.to_str().unwrap(), "--name", "web"]));
    assert!(err.contains("imports what this node does not provide") && err.contains("`wasi:http/"), "{err}");
    assert!(err.contains("disableFeatures: ['http', 'fetch-event']"), "{err}");
    assert!(err.contains("[world_mismatch]"), "{err}");
    let listing = json(&ok(&node.cli(&["--json", "ls"])));
    assert_eq!(listing["types"], serde_json::json!([]), "nothing was deployed");
}
