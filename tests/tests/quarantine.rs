//! A message that kills the node cannot kill it forever: after a crash its
//! message runs alone, and after `--quarantine-after` crashes it goes to the
//! dead letters (reason `crashed`) instead of running. A SIGKILL is not a
//! crash of the node's making and counts against nothing.
//!
//! The crash is real: the debug build's test hook (`PIGEON_TEST_ABORT_ON`)
//! aborts the process when a turn starts on a message with that payload.

use std::os::unix::process::ExitStatusExt;

use pigeon_tests::artifacts;
use pigeon_tests::process::{PigeonNode, json, ok};

const POISON: &str = "poison";

fn start(data: &std::path::Path, extra: &[&str]) -> PigeonNode {
    PigeonNode::start_with_env(data, "127.0.0.1:0", extra, &[("PIGEON_TEST_ABORT_ON", POISON)])
        .unwrap_or_else(|log| panic!("pigeon up starts:\n{log}"))
}

/// Whether any slot of the crash journal holds a running turn.
fn journal_shows_a_turn(data: &std::path::Path) -> bool {
    let bytes = std::fs::read(data.join("crash-journal")).unwrap_or_default();
    bytes.get(16..).is_some_and(|slots| slots.iter().any(|b| *b != 0))
}

#[test]
fn a_message_that_crashes_the_node_is_quarantined_after_two_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut node = start(&data, &[]);
    ok(&node.cli(&["deploy", artifacts::COUNTER, "--name", "counter", "--max-attempts", "1"]));
    ok(&node.cli(&["send", "counter/a", "inc"]));
    assert_eq!(ok(&node.cli(&["call", "counter/a", "get"])).trim(), "1");
    // Durable, then its turn kills the node: the turn may start before the
    // acknowledgement is written, so the send may see the node go instead.
    let sent = node.cli(&["send", "counter/a", POISON]);
    let said = String::from_utf8_lossy(&sent.stderr).into_owned();
    assert!(sent.status.success() || said.contains("error sending request"), "{said}");
    let status = node.wait_exit();
    assert_eq!(status.signal(), Some(SIGABRT), "the node died of the abort: {status:?}");

    // First restart: the poison is a suspect, runs alone, and kills it
    // again — maybe before the node has said it is listening.
    let env = [("PIGEON_TEST_ABORT_ON", POISON)];
    let log = match PigeonNode::start_with_env(&data, "127.0.0.1:0", &[], &env) {
        Ok(mut node) => {
            let status = node.wait_exit();
            assert_eq!(status.signal(), Some(SIGABRT), "{status:?}");
            node.log_text()
        }
        Err(log) => log,
    };
    assert!(log.contains("the node crashed while handling these messages"), "{log}");
    assert!(log.contains("aborting the node mid-turn"), "{log}");

    // Second restart: quarantined instead of run; the node stays up.
    let node = start(&data, &[]);
    let dead = json(&ok(&node.cli(&["dlq", "ls", "--json"])));
    let letters = dead.as_array().expect("a list of dead letters");
    assert_eq!(letters.len(), 1, "{dead}");
    assert_eq!(letters[0]["reason"], "crashed");
    let error = letters[0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("the node crashed 2 times while handling this message"), "{error}");
    assert!(node.log_text().contains("message quarantined to the dead letters"), "{}", node.log_text());
    // Nothing else was lost or applied twice.
    assert_eq!(ok(&node.cli(&["call", "counter/a", "inc"])).trim(), "2");

    // Once the cause is gone (no hook), a replay starts with a clean record:
    // the counter refuses the unknown command, and the letter comes back
    // as `failed`, not quarantined again.
    let mut node = node;
    node.terminate();
    let node = PigeonNode::start(&data, "127.0.0.1:0", &[]).expect("pigeon up starts");
    let id = letters[0]["id"].to_string();
    ok(&node.cli(&["dlq", "replay", &id]));
    pigeon_tests::process::wait_until("the replayed message to fail as the counter's turn", || {
        let dead = json(&ok(&node.cli(&["dlq", "ls", "--json"])));
        dead.as_array().is_some_and(|l| l.len() == 1 && l[0]["reason"] == "failed")
    });
}

#[test]
fn a_sigkill_during_a_turn_counts_against_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // One crash would be enough to quarantine: a SIGKILL must not be one.
    let mut node = start(&data, &["--quarantine-after", "1"]);
    ok(&node.cli(&["deploy", artifacts::FAULTY, "--name", "faulty", "--deadline", "10min"]));
    ok(&node.cli(&["send", "faulty/k", "loop"]));
    pigeon_tests::process::wait_until("the loop's turn in the crash journal", || journal_shows_a_turn(&data));
    node.kill();

    let node = start(&data, &["--quarantine-after", "1"]);
    // The loop runs again (it was not quarantined) ...
    pigeon_tests::process::wait_until("the loop running again", || journal_shows_a_turn(&data));
    let dead = json(&ok(&node.cli(&["dlq", "ls", "--json"])));
    assert_eq!(dead.as_array().map(Vec::len), Some(0), "{dead}");
    // ... and the restart saw no crash.
    assert!(!node.log_text().contains("crashed while handling"), "{}", node.log_text());
}

/// The signal `abort()` raises.
const SIGABRT: i32 = 6;
