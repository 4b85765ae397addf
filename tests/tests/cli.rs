//! End to end through the real binaries: `pigeon up` on a free port and a
//! temporary data directory, driven by the real `pigeon` CLI with the real
//! guest components.

use std::time::Duration;

use pigeon_tests::artifacts;
use pigeon_tests::process::{PigeonNode, fails, json, ok, run_cli, start_fresh};
use serde_json::Value;

/// Polls `check` every 20 ms until it holds, for at most a minute.
fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + pigeon_tests::PATIENCE;
    while !check() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn deploy_send_call_inspect_and_list() {
    let (_dir, node) = start_fresh();
    let out = ok(&node.cli(&["deploy", artifacts::COUNTER, "--name", "counter", "--max-attempts", "3"]));
    assert!(out.starts_with("deployed counter (version "), "{out}");

    assert_eq!(ok(&node.cli(&["call", "counter/a", "inc"])).trim(), "1");
    let id = ok(&node.cli(&["send", "counter/a", "add 4", "--priority", "7", "-H", "op-id=x1"]));
    assert_eq!(id.trim().len(), 26, "a ULID: {id}");
    assert_eq!(ok(&node.cli(&["call", "counter/a", "get"])).trim(), "5");

    let table = ok(&node.cli(&["inspect", "counter/a"]));
    assert!(table.contains("processed  3"), "{table}");
    assert!(table.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["count", "5"]), "{table}");
    let detail = json(&ok(&node.cli(&["inspect", "counter/a", "--json"])));
    assert_eq!(detail["processed"], 3);
    assert_eq!(detail["pending"], 0);
    let state = detail["state"].as_array().unwrap();
    let count = state.iter().find(|e| e["key"] == "count").expect("count key");
    assert_eq!(count["value"]["text"], "5");
    assert!(state.iter().any(|e| e["key"] == "applied/x1"), "the header reached the actor: {state:?}");

    let listing = json(&ok(&node.cli(&["--json", "ls"])));
    assert_eq!(listing["types"][0]["name"], "counter");
    assert_eq!(listing["types"][0]["max_attempts"], 3);
    assert_eq!(listing["actors"][0]["address"], "counter/a");
    assert_eq!(listing["actors"][0]["processed"], 3);
    let table = ok(&node.cli(&["ls"]));
    assert!(table.contains("TYPE") && table.contains("ACTOR") && table.contains("counter/a"), "{table}");

    ok(&node.cli(&["undeploy", "counter"]));
    let err = fails(&node.cli(&["send", "counter/a", "inc"]));
    assert!(err.contains("unknown actor type `counter`"), "{err}");
}

#[test]
fn mailbox_depths_by_priority_show_in_ls_and_inspect() {
    let (_dir, node) = start_fresh();
    ok(&node.cli(&["deploy", artifacts::FAULTY, "--name", "faulty", "--deadline", "20s", "--max-attempts", "1"]));
    // A looping turn keeps faulty/q busy; what comes next waits in its mailbox.
    let looping = ok(&node.cli(&["send", "faulty/q", "loop"])).trim().to_string();
    wait_until("the loop to start", || {
        json(&ok(&node.cli(&["inspect", "faulty/q", "--json"])))["in_flight"] == looping.as_str()
    });
    for p in ["9", "9", "2"] {
        ok(&node.cli(&["send", "faulty/q", "ok", "--priority", p]));
    }
    let detail = json(&ok(&node.cli(&["inspect", "faulty/q", "--json"])));
    // The looping message stays in the mailbox until its turn ends.
    assert_eq!(detail["pending"], 4, "{detail}");
    let depth = |p: usize| detail["depths"][p].as_u64().unwrap();
    assert_eq!((depth(9), depth(4), depth(2)), (2, 1, 1));
    let priorities: Vec<u64> =
        detail["mailbox"].as_array().unwrap().iter().map(|m| m["priority"].as_u64().unwrap()).collect();
    assert_eq!(priorities, [9, 9, 4, 2], "mailbox peek in delivery order");
    let table = ok(&node.cli(&["ls"]));
    let row = table.lines().find(|l| l.starts_with("faulty/q")).expect("faulty/q listed");
    assert!(row.contains("p9:2 p4:1 p2:1"), "{table}");
    let shown = ok(&node.cli(&["inspect", "faulty/q"]));
    assert!(shown.contains(&format!("handling   {looping}")), "{shown}");
}

#[test]
fn dead_letters_are_listed_replayed_and_purged() {
    let (_dir, node) = start_fresh();
    ok(&node.cli(&["deploy", artifacts::FAULTY, "--name", "faulty", "--max-attempts", "1"]));
    ok(&node.cli(&["send", "faulty/x", "trap"]));
    let mut listed = Value::Null;
    wait_until("a dead letter", || {
        listed = json(&ok(&node.cli(&["dlq", "ls", "--json"])));
        listed.as_array().is_some_and(|a| a.len() == 1)
    });
    let dead = &listed[0];
    assert_eq!(dead["reason"], "failed");
    assert_eq!(dead["message"]["to"], "faulty/x");
    assert!(dead["error"].as_str().unwrap().contains("faulty: trap on command"), "{dead}");
    let table = ok(&node.cli(&["dlq", "ls"]));
    assert!(table.contains("faulty/x") && table.contains("trap"), "{table}");

    let id = dead["id"].as_u64().unwrap().to_string();
    assert_eq!(ok(&node.cli(&["dlq", "replay", &id])).trim(), "replayed 1 dead letter");
    // It traps again and comes back under a new id.
    wait_until("the replayed message to be dead again", || {
        let listed = json(&ok(&node.cli(&["dlq", "ls", "--json"])));
        listed.as_array().is_some_and(|a| a.len() == 1 && a[0]["id"].as_u64().unwrap().to_string() != id)
    });
    let stats = json(&ok(&node.cli(&["inspect", "faulty/x", "--json"])));
    assert_eq!(stats["failed"], 2, "the replay ran the turn again");
    assert_eq!(ok(&node.cli(&["dlq", "purge", "--all"])).trim(), "purged 1 dead letter");
    assert_eq!(json(&ok(&node.cli(&["dlq", "ls", "--json"]))), Value::Array(vec![]));
}

#[test]
fn bad_inputs_get_clear_errors() {
    let (dir, node) = start_fresh();
    ok(&node.cli(&["deploy", artifacts::COUNTER, "--name", "counter"]));

    // No token: a CLI run from elsewhere, without --token or PIGEON_TOKEN.
    let elsewhere = dir.path().join("elsewhere");
    let err = fails(&run_cli(
        &["--node", &node.url, "--data", elsewhere.to_str().unwrap()],
        &["send", "counter/a", "inc"],
        &[],
    ));
    assert!(err.contains("wants its API token, and none was given") && err.contains("[unauthorized]"), "{err}");
    let err = fails(&node.cli(&["--token", "not-the-token", "send", "counter/a", "inc"]));
    assert!(err.contains("wrong API token"), "{err}");

    let err = fails(&node.cli(&["send", "nobody/a", "inc"]));
    assert!(err.contains("unknown actor type `nobody`") && err.contains("[unknown_type]"), "{err}");
    let err = fails(&node.cli(&["send", "counter", "inc"]));
    assert!(err.contains("no `/` between type and key") && err.contains("[invalid_address]"), "{err}");
    let big = vec![b'x'; 1_100_000];
    let err = fails(&node.cli_with_stdin(&["send", "counter/a", "--stdin"], &big));
    assert!(err.contains("over the limit of 1048576 bytes") && err.contains("[payload_too_large]"), "{err}");

    let text_file = dir.path().join("notes.txt");
    std::fs::write(&text_file, "not a component").unwrap();
    let err = fails(&node.cli(&["deploy", text_file.to_str().unwrap(), "--name", "notes"]));
    assert!(err.contains("not a WebAssembly file") && err.contains("[invalid_component]"), "{err}");
    let http = dir.path().join("http.wasm");
    std::fs::write(&http, wat::parse_str(r#"(component (import "wasi:http/types@0.2.0" (instance)))"#).unwrap())
        .unwrap();
    let err = fails(&node.cli(&["deploy", http.to_str().unwrap(), "--name", "web"]));
    assert!(err.contains("`wasi:http/types@0.2.0`") && err.contains("[world_mismatch]"), "{err}");
    let err = fails(&node.cli(&["deploy", artifacts::COUNTER, "--name", "Counter!"]));
    assert!(err.contains("must start with a lowercase letter") || err.contains("contains"), "{err}");

    let err = fails(&node.cli(&["dlq", "replay", "424242"]));
    assert!(err.contains("no dead letter with id 424242") && err.contains("[unknown_dead_letter]"), "{err}");
    let err = fails(&node.cli(&["send", "counter/a", "inc", "--priority", "12"]));
    assert!(err.contains("invalid priority 12"), "{err}");
    let err = fails(&node.cli(&["deploy", artifacts::COUNTER, "--name", "c2", "--memory", "lots"]));
    assert!(err.contains("not a size"), "{err}");

    // A node that is not there.
    let err = fails(&run_cli(&["--node", "http://127.0.0.1:9", "--token", "t"], &["ls"], &[]));
    assert!(err.contains("cannot reach the node at http://127.0.0.1:9"), "{err}");
}

#[test]
fn a_node_refuses_a_busy_port_and_an_unusable_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let printed = PigeonNode::start(&dir.path().join("data"), &addr, &[]).err().expect("a busy port is refused");
    assert!(printed.contains(&format!("cannot listen on {addr}")) && printed.contains("--listen"), "{printed}");

    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let printed = PigeonNode::start(&file.join("data"), "127.0.0.1:0", &[]).err().expect("a bad data dir is refused");
    assert!(printed.contains("cannot use the data directory"), "{printed}");

    // Two nodes on one data directory: the second is told why it cannot start.
    let first = PigeonNode::start(&dir.path().join("shared"), "127.0.0.1:0", &[]).unwrap();
    let printed = PigeonNode::start(&dir.path().join("shared"), "127.0.0.1:0", &[]).err().expect("refused");
    assert!(printed.contains("in use by another Pigeon node"), "{printed}");
    drop(first);
}

#[test]
fn the_api_demands_the_token_and_describes_itself() {
    let (_dir, node) = start_fresh();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let http = reqwest::Client::new();
        let url = |path: &str| format!("{}/api/v1{path}", node.url);
        let response = http.post(url("/messages")).json(&serde_json::json!({"to": "counter/a"})).send().await.unwrap();
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
        // The token file is private to the node's user.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(node.data.join("token")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "token file mode {mode:o}");
        // Reads are open on loopback.
        assert_eq!(http.get(url("/health")).send().await.unwrap().status(), 200);
        // A body over the request limit is refused (before it is read)
        // with a JSON error too.
        let (status, body) = raw_post_headers(&node.url, "/api/v1/messages", &node.token(), 5 << 20).await;
        assert_eq!(status, 413, "{body}");
        assert!(body.contains("request_too_large"), "{body}");

        let spec: Value = http.get(url("/openapi.json")).send().await.unwrap().json().await.unwrap();
        assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
        for path in
            ["/api/v1/messages", "/api/v1/types/{name}", "/api/v1/actors/{type}/{key}", "/api/v1/dead-letters/replay"]
        {
            assert!(spec["paths"][path].is_object(), "{path} missing from the OpenAPI document");
        }
    });
}

#[test]
fn sigterm_stops_the_node_cleanly_and_it_resumes_from_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut node = PigeonNode::start(&data, "127.0.0.1:0", &["--demo"]).unwrap();
    ok(&node.cli(&["call", "counter/demo", "inc"]));
    let status = node.terminate();
    assert!(status.success(), "clean exit after SIGTERM: {status:?}");
    let node = PigeonNode::start(&data, "127.0.0.1:0", &[]).unwrap();
    let listing = json(&ok(&node.cli(&["--json", "ls"])));
    let names: Vec<&str> = listing["types"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["account", "counter", "faulty", "forwarder", "transfer"]);
    // The demo's `inc`, its forwarded `add 10`, and ours: 12.
    wait_until("the demo's forwarded message", || ok(&node.cli(&["call", "counter/demo", "get"])).trim() == "12");
    // The demo's transfer moved 20 from alice (100 - 30 - 20) to bob, by typed RPC.
    assert_eq!(ok(&node.cli(&["call", "account/alice", "account.balance()"])).trim(), "50");
    assert_eq!(ok(&node.cli(&["call", "account/bob", "account.balance()"])).trim(), "20");
}

/// Sends only the headers of a POST announcing `length` bytes, and returns
/// the status and body of the answer.
async fn raw_post_headers(base: &str, path: &str, token: &str, length: usize) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(host).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(pigeon_tests::PATIENCE, socket.read_to_end(&mut answer)).await;
    read.expect("the node answers without waiting for the body").unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, answer)
}

#[test]
fn completions_and_help_teach_the_commands() {
    for shell in ["bash", "zsh", "fish"] {
        let script = ok(&run_cli(&[], &["completions", shell], &[]));
        assert!(script.contains("pigeon") && script.contains("deploy") && script.contains("dlq"), "{shell}");
    }
    let help = ok(&run_cli(&[], &["--help"], &[]));
    for command in ["up", "deploy", "send", "call", "ls", "inspect", "dlq", "undeploy", "completions", "Examples:"] {
        assert!(help.contains(command), "--help lacks {command}: {help}");
    }
    let err = fails(&run_cli(&[], &["dlq", "replay"], &[]));
    assert!(err.contains("--all"), "replay needs ids or --all: {err}");
}

#[test]
fn a_full_mailbox_refuses_persistent_sends_and_counts_them() {
    let (_dir, node) = start_fresh();
    let limits = ["--deadline", "20s", "--max-attempts", "1", "--mailbox-bound", "2"];
    ok(&node.cli(&[&["deploy", artifacts::FAULTY, "--name", "faulty"][..], &limits[..]].concat()));
    let looping = ok(&node.cli(&["send", "faulty/f", "loop"])).trim().to_string();
    wait_until("the loop to start", || {
        json(&ok(&node.cli(&["inspect", "faulty/f", "--json"])))["in_flight"] == looping.as_str()
    });
    ok(&node.cli(&["send", "faulty/f", "ok"]));
    let err = fails(&node.cli(&["send", "faulty/f", "ok"]));
    assert!(
        err.contains("mailbox of `faulty/f` is full (2 pending messages)") && err.contains("[mailbox_full]"),
        "{err}"
    );
    fails(&node.cli(&["send", "faulty/f", "ok"]));
    let detail = json(&ok(&node.cli(&["inspect", "faulty/f", "--json"])));
    assert_eq!((detail["pending"].as_u64(), detail["refused"].as_u64()), (Some(2), Some(2)), "{detail}");
    // Transient messages are not bounded by the persistent mailbox.
    ok(&node.cli(&["send", "faulty/f", "ok", "--transient"]));
}

#[test]
fn topics_dedup_and_wait_levels_through_the_cli() {
    let (_dir, node) = start_fresh();
    ok(&node.cli(&["deploy", artifacts::COUNTER, "--name", "counter"]));
    ok(&node.cli(&["subscribe", "ticks", "counter/big", "--filter", "amount > 10"]));
    ok(&node.cli(&["subscribe", "ticks", "counter/all"]));
    let err = fails(&node.cli(&["subscribe", "ticks", "counter/bad", "--filter", "amount >"]));
    assert!(err.contains("invalid filter at position 8") && err.contains("[invalid_filter]"), "{err}");
    let listed = ok(&node.cli(&["topics"]));
    assert!(
        listed.contains("counter/big") && listed.contains("amount > 10") && !listed.contains("counter/bad"),
        "{listed}"
    );

    assert_eq!(ok(&node.cli(&["publish", "ticks", "inc", "-H", "amount=50"])).trim(), "delivered to 2 subscribers");
    assert_eq!(ok(&node.cli(&["publish", "ticks", "inc", "-H", "amount=5"])).trim(), "delivered to 1 subscriber");
    wait_until("the copies", || ok(&node.cli(&["call", "counter/all", "get"])).trim() == "2");
    assert_eq!(ok(&node.cli(&["call", "counter/big", "get"])).trim(), "1");
    ok(&node.cli(&["unsubscribe", "ticks", "counter/all"]));
    assert_eq!(ok(&node.cli(&["publish", "ticks", "inc", "-H", "amount=50"])).trim(), "delivered to 1 subscriber");

    let first = ok(&node.cli(&["send", "counter/d", "inc", "--dedup-key", "order-1"]));
    let again = ok(&node.cli(&["send", "counter/d", "inc", "--dedup-key", "order-1"]));
    assert!(!first.contains("duplicate") && again.contains("duplicate"), "{first} / {again}");
    ok(&node.cli(&["send", "counter/d", "inc", "--wait", "delivered", "--ttl", "1m"]));
    wait_until("both increments", || ok(&node.cli(&["call", "counter/d", "get"])).trim() == "2");
}

/// A node writes to sockets with `writev`, which raises SIGPIPE when the
/// peer has reset the connection (a client gone mid-response, a
/// nats-server killed): the node must take it as an error, not die of it.
/// (It did: a lattice node died silently when its nats-server was killed
/// under load.) The signal is sent directly, so no race decides the test.
#[test]
fn a_node_survives_sigpipe() {
    let (_dir, mut node) = start_fresh();
    let sent = std::process::Command::new("kill").args(["-PIPE", &node.pid().to_string()]).status().unwrap();
    assert!(sent.success());
    // A signal that kills the process starts its exit within the `kill`
    // call, and one it ignores is dropped there: either way it is settled
    // before the node is asked, and a node that died cannot answer.
    let out = node.cli(&["ls"]);
    assert_eq!(node.exited(), None, "the node died of SIGPIPE: {}", String::from_utf8_lossy(&out.stderr));
    ok(&out);
}

#[test]
fn a_closed_pipe_ends_the_cli_quietly() {
    let (_dir, node) = start_fresh();
    // `pigeon ls | head -0`: the reader is gone before the CLI writes (it
    // asks the node first), so its write meets a closed pipe.
    let mut child = std::process::Command::new(pigeon_tests::process::pigeon_bin())
        .args(["--node", &node.url, "--data"])
        .arg(&node.data)
        .args(["--json", "ls"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(13), "ended by SIGPIPE like any Unix tool: {:?}", out.status);
}
