//! What a new user meets in the first hour, through the real binary: the
//! CLI tells the truth about addresses and topics whatever characters they
//! hold, pages what is big, cuts what is huge (saying so), does what it can
//! of a partly stale request and says what it could not, and names where it
//! looked for the token.

use pigeon_tests::artifacts;
use pigeon_tests::process::{fails, json, ok, run_cli, start_fresh, wait_until};

/// Keys with every class of character an address allows that means
/// something in a URL, a shell or a terminal.
const KEYS: &[&str] = &[
    "a?b", "a#b", "a%41", "a%2Fb", "a/b", "a/../b", "..", ".", "a+b", "a&b=c", "a;b,c", "a:b@c", "$x!*'()", "[v6]",
    "a\\b", "\"q\"", "<t>", "{c}|^`~", "é", "字", "🐦",
];

/// Topics likewise (`.` and `..` are not topics: they cannot be URL segments).
const TOPICS: &[&str] = &["#", "a?b", "a/b", "a%41", "a+b", "a&b=c", "é/字", "orders:eu@1"];

#[test]
fn every_character_class_survives_every_command() {
    let (_dir, node) = start_fresh();
    ok(&node.cli(&["deploy", artifacts::COUNTER, "--name", "counter"]));
    for key in KEYS {
        let address = format!("counter/{key}");
        assert_eq!(ok(&node.cli(&["call", &address, "inc"])).trim(), "1", "call {address}");
        ok(&node.cli(&["send", &address, "inc", "--wait", "delivered"]));
        wait_until(&format!("{address} to count 2"), || ok(&node.cli(&["call", &address, "get"])).trim() == "2");
        let detail = json(&ok(&node.cli(&["--json", "inspect", &address])));
        assert_eq!(detail["address"], address.as_str(), "inspect {address} showed another actor");
        let count = detail["state"].as_array().and_then(|s| s.iter().find(|e| e["key"] == "count")).cloned();
        assert_eq!(count.map(|c| c["value"]["text"].clone()), Some("2".into()), "inspect {address}");
    }
    let listed = json(&ok(&node.cli(&["--json", "ls"])));
    let actors: Vec<&str> = listed["actors"].as_array().unwrap().iter().filter_map(|a| a["address"].as_str()).collect();
    for key in KEYS {
        assert!(actors.contains(&format!("counter/{key}").as_str()), "ls lacks counter/{key}: {actors:?}");
    }

    for topic in TOPICS {
        let subscriber = "counter/a?b";
        ok(&node.cli(&["subscribe", topic, subscriber]));
        let subs = json(&ok(&node.cli(&["--json", "topics"])));
        let found = subs.as_array().unwrap().iter().any(|s| s["topic"] == *topic && s["subscriber"] == subscriber);
        assert!(found, "topics lacks ({topic}, {subscriber}): {subs}");
        assert_eq!(ok(&node.cli(&["publish", topic, "inc"])).trim(), "delivered to 1 subscriber", "publish {topic}");
        ok(&node.cli(&["unsubscribe", topic, subscriber]));
        assert_eq!(ok(&node.cli(&["publish", topic, "inc"])).trim(), "delivered to 0 subscribers", "{topic}");
    }
    wait_until("the copies", || {
        ok(&node.cli(&["call", "counter/a?b", "get"])).trim() == (2 + TOPICS.len()).to_string()
    });
    for topic in [".", ".."] {
        let err = fails(&node.cli(&["publish", topic, "inc"]));
        assert!(err.contains(&format!("`{topic}` is not a valid name here")), "{err}");
    }
}

#[test]
fn inspect_pages_state_and_cuts_big_values() {
    let (_dir, node) = start_fresh();
    ok(&node.cli(&["deploy", artifacts::GREEDY, "--name", "greedy"]));
    ok(&node.cli(&["call", "greedy/a", "set-many 2500 1"]));
    ok(&node.cli(&["call", "greedy/a", "set-big 1000000"]));

    let first = ok(&node.cli(&["inspect", "greedy/a"]));
    assert!(first.contains("STATE (100 keys, more follow)"), "{first}");
    let next = first.lines().find_map(|l| l.strip_prefix("next page: ")).expect("the next page's command");
    assert!(next.starts_with("pigeon inspect greedy/a --after '"), "{next}");
    assert!(first.contains("(first 4096 of 1000000 bytes) xxx"), "the big value says it is cut: {first}");

    // Paging through --json gives every key once, in order.
    let mut keys: Vec<String> = Vec::new();
    loop {
        let mut args = vec!["--json", "inspect", "greedy/a", "--limit", "1000", "--value-limit", "16"];
        let after = keys.last().cloned();
        if let Some(after) = &after {
            args.extend(["--after", after.as_str()]);
        }
        let out = ok(&node.cli(&args));
        assert!(out.len() < 1 << 20, "a page with values cut at 16 bytes is small: {} bytes", out.len());
        let page = json(&out);
        for entry in page["state"].as_array().unwrap() {
            if entry["key"] == "big" {
                assert_eq!(
                    (entry["value"]["size"].as_u64(), entry["value"]["truncated"].as_bool()),
                    (Some(1_000_000), Some(true))
                );
                assert_eq!(entry["value"]["text"].as_str().map(str::len), Some(16));
            }
            keys.push(entry["key"].as_str().unwrap().to_string());
        }
        if page["state_more"] != true {
            break;
        }
    }
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(keys, sorted, "pages follow each other in key order, without repeats");
    assert_eq!(keys.len(), 2501, "every key: many/0..2499 and big");
}

#[test]
fn dlq_purge_does_what_it_can_and_names_the_rest() {
    let (_dir, node) = start_fresh();
    ok(&node.cli(&["deploy", artifacts::FAULTY, "--name", "faulty", "--max-attempts", "1"]));
    for key in ["a", "b", "c"] {
        ok(&node.cli(&["send", &format!("faulty/{key}"), "trap"]));
    }
    let ids = || -> Vec<String> {
        let dead = json(&ok(&node.cli(&["--json", "dlq", "ls"])));
        dead.as_array().unwrap().iter().map(|d| d["id"].to_string()).collect()
    };
    wait_until("three dead letters", || ids().len() == 3);
    let ids = ids();
    ok(&node.cli(&["dlq", "purge", &ids[0]]));

    let out = node.cli(&["dlq", "purge", &ids[0], &ids[1], &ids[2]]);
    let err = fails(&out);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "purged 2 dead letters");
    assert!(err.contains(&format!("no dead letter with id {}", ids[0])), "{err}");
    assert!(json(&ok(&node.cli(&["--json", "dlq", "ls"]))).as_array().unwrap().is_empty(), "the others went");
}

#[test]
fn the_missing_token_error_names_where_it_looked() {
    let (_dir, node) = start_fresh();
    let elsewhere = tempfile::tempdir().unwrap();
    let data = elsewhere.path().join("not-the-node");
    let out = run_cli(&["--node", &node.url, "--data", &data.display().to_string()], &["dlq", "purge", "--all"], &[]);
    let err = fails(&out);
    let looked = data.join("token");
    assert!(err.contains(&format!("no file {}", looked.display())), "{err}");
    assert!(err.contains("--token") && err.contains("[unauthorized]"), "{err}");
}

#[test]
fn wildcard_subscriptions_get_one_copy_of_each_matching_publish() {
    let (_dir, node) = start_fresh();
    ok(&node.cli(&["deploy", artifacts::COUNTER, "--name", "counter"]));
    ok(&node.cli(&["subscribe", "orders.>", "counter/audit"]));
    ok(&node.cli(&["subscribe", "orders.eu.paid", "counter/audit"]));
    ok(&node.cli(&["subscribe", "orders.*.paid", "counter/billing", "--filter", "amount > 100"]));
    ok(&node.cli(&["subscribe", "orders.*", "counter/regions"]));
    let publish =
        |topic: &str, amount: &str| ok(&node.cli(&["publish", topic, "inc", "-H", &format!("amount={amount}")]));
    // audit twice over (one copy), billing; not regions (three tokens).
    assert_eq!(publish("orders.eu.paid", "250").trim(), "delivered to 2 subscribers");
    // billing's filter fails.
    assert_eq!(publish("orders.us.paid", "50").trim(), "delivered to 1 subscriber");
    // audit and regions.
    assert_eq!(publish("orders.eu", "1").trim(), "delivered to 2 subscribers");
    // `orders.>` needs one more token; nothing else matches.
    assert_eq!(publish("orders", "1").trim(), "delivered to 0 subscribers");
    wait_until("the copies", || ok(&node.cli(&["call", "counter/audit", "get"])).trim() == "3");
    assert_eq!(ok(&node.cli(&["call", "counter/billing", "get"])).trim(), "1");
    assert_eq!(ok(&node.cli(&["call", "counter/regions", "get"])).trim(), "1");

    let err = fails(&node.cli(&["publish", "orders.*", "inc"]));
    assert!(err.contains("publish to a concrete topic") && err.contains("[invalid_topic]"), "{err}");
    let err = fails(&node.cli(&["subscribe", "orders.>.eu", "counter/x"]));
    assert!(err.contains("`>` may only be the last token"), "{err}");
    let err = fails(&node.cli(&["subscribe", "orders..eu", "counter/x"]));
    assert!(err.contains("tokens between `.` must not be empty"), "{err}");
}

#[test]
fn environment_variables_granted_at_deploy_reach_the_guest_and_only_those() {
    let (_dir, node) = start_fresh();
    ok(&node.cli(&["deploy", artifacts::GREEDY, "--name", "plain"]));
    assert_eq!(ok(&node.cli(&["call", "plain/a", "env"])).trim(), "", "no environment unless granted");

    let out = ok(&node.cli(&[
        "deploy",
        artifacts::GREEDY,
        "--name",
        "greedy",
        "--env",
        "GREETING=hi there",
        "--env",
        "MODE=a=b",
    ]));
    assert!(out.contains("env     GREETING, MODE") || out.contains("env     MODE, GREETING"), "{out}");
    let seen = ok(&node.cli(&["call", "greedy/a", "env"]));
    let mut seen: Vec<&str> = seen.lines().filter(|l| !l.is_empty()).collect();
    seen.sort();
    assert_eq!(seen, ["GREETING=hi there", "MODE=a=b"]);
    let listed = json(&ok(&node.cli(&["--json", "ls"])));
    let ty = listed["types"].as_array().unwrap().iter().find(|t| t["name"] == "greedy").cloned().unwrap();
    assert!(!ty.to_string().contains("hi there"), "values are not shown: {ty}");

    let err = fails(&node.cli(&["deploy", artifacts::GREEDY, "--name", "bad", "--env", "A=1", "--env", "A=2"]));
    assert!(err.contains("`--env A=...` is given twice"), "{err}");
    let err = fails(&node.cli(&["deploy", artifacts::GREEDY, "--name", "bad", "--env", "NOEQUALS"]));
    assert!(err.contains("is not an environment variable: write NAME=VALUE"), "{err}");
    let too_many: Vec<String> = (0..65).map(|i| format!("V{i}=x")).collect();
    let mut args = vec!["deploy", artifacts::GREEDY, "--name", "bad"];
    for var in &too_many {
        args.extend(["--env", var.as_str()]);
    }
    let err = fails(&node.cli(&args));
    assert!(err.contains("65 environment variables; at most 64") && err.contains("[invalid_limits]"), "{err}");
}

#[test]
fn timers_and_delayed_messages_are_listed_and_cancelled() {
    let (_dir, node) = start_fresh();
    ok(&node.cli(&["deploy", artifacts::COUNTER, "--name", "counter"]));
    ok(&node.cli(&["deploy", artifacts::CALLER, "--name", "caller"]));
    let id = ok(&node.cli(&["send", "counter/t", "inc", "--delay", "1h"])).trim().to_string();
    ok(&node.cli(&["send", "caller/r", "remind 3600000 nap", "--wait", "delivered"]));

    let detail = json(&ok(&node.cli(&["--json", "inspect", "counter/t"])));
    let delayed = detail["delayed"].as_array().unwrap();
    assert_eq!(delayed.len(), 1, "{detail}");
    assert_eq!(delayed[0]["message"]["id"], id.as_str());
    assert!(delayed[0]["due_ms"].as_u64().unwrap() > pigeon_node::pigeon_store::now_ms() + 3_000_000);
    let table = ok(&node.cli(&["inspect", "counter/t"]));
    assert!(table.contains("DELAYED (1 shown"), "{table}");
    let row = table.lines().find(|l| l.contains(&id)).unwrap_or_else(|| panic!("no row for {id}: {table}"));
    let due = row.split_whitespace().skip_while(|w| *w != "in").nth(1).unwrap_or_default();
    assert!(due.ends_with('m'), "the row says in how many minutes it is due: {row}");
    // A guest's own timer shows on the actor it is for.
    wait_until("the reminder to be set", || {
        let detail = json(&ok(&node.cli(&["--json", "inspect", "caller/r"])));
        detail["delayed"].as_array().is_some_and(|d| d.iter().any(|m| m["message"]["payload"]["text"] == "fired nap"))
    });

    assert_eq!(ok(&node.cli(&["cancel", &id])).trim(), format!("cancelled {id}: it will not be delivered"));
    let detail = json(&ok(&node.cli(&["--json", "inspect", "counter/t"])));
    assert!(detail["delayed"].as_array().unwrap().is_empty(), "{detail}");
    let err = fails(&node.cli(&["cancel", &id]));
    assert!(err.contains("[unknown_delayed]") && err.contains("delivered or cancelled already"), "{err}");
    let err = fails(&node.cli(&["cancel", "not-an-id"]));
    assert!(err.contains("[invalid_id]"), "{err}");
}

#[test]
fn purge_and_forget_clear_an_actor_between_its_turns() {
    let (_dir, node) = start_fresh();
    ok(&node.cli(&["deploy", artifacts::COUNTER, "--name", "counter"]));
    for _ in 0..3 {
        ok(&node.cli(&["call", "counter/p", "inc"]));
    }
    for _ in 0..4 {
        ok(&node.cli(&["send", "counter/p", "inc", "--delay", "1h"]));
    }
    assert_eq!(ok(&node.cli(&["purge", "counter/p"])).trim(), "4 messages purged from counter/p");
    let detail = json(&ok(&node.cli(&["--json", "inspect", "counter/p"])));
    assert!(detail["delayed"].as_array().unwrap().is_empty() && detail["pending"] == 0, "{detail}");
    assert_eq!(ok(&node.cli(&["call", "counter/p", "get"])).trim(), "3", "a purge leaves the state");

    // The counter's activation is live and caches `count = 3`: after the
    // deletion its next turn must see empty state, not the cache.
    assert_eq!(ok(&node.cli(&["forget", "counter/p"])).trim(), "1 state entries deleted from counter/p");
    assert_eq!(ok(&node.cli(&["call", "counter/p", "inc"])).trim(), "1", "the next turn starts from empty state");
    let err = fails(&node.cli(&["purge", "no-slash"]));
    assert!(err.contains("[invalid_address]") || err.contains("no `/`"), "{err}");
}
