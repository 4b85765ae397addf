//! The node's limits hold for guests as they hold for clients: a guest that
//! asks for more gets an error it can handle, or its turn fails with an
//! error that names the limit — and nothing of the turn lands.

use pigeon_node::NodeError;
use pigeon_node::pigeon_store::{Envelope, TypeLimits};
use pigeon_tests::{PATIENCE, TestNode, artifacts};

/// A node that lets a turn send 500 messages, with `counter` (mailbox
/// bound 100), `roomy` (a counter with the default bound) and `greedy` (one attempt:
/// a failed turn is dead-lettered at once, with its error).
async fn node() -> TestNode {
    let t = TestNode::start_with(|config| config.limits.turn_sends = 500).await;
    t.deploy("counter", artifacts::COUNTER, TypeLimits { mailbox_bound: 100, ..TypeLimits::default() }).await;
    t.deploy("roomy", artifacts::COUNTER, TypeLimits::default()).await;
    t.deploy("greedy", artifacts::GREEDY, TypeLimits { max_attempts: 1, ..TypeLimits::default() }).await;
    t
}

/// The error that dead-lettered a call to `greedy/g`.
async fn failure(t: &TestNode, command: &str) -> String {
    match t.node.call("greedy/g", command.as_bytes().to_vec(), PATIENCE).await {
        Err(NodeError::CallFailed { error, .. }) => error,
        other => panic!("`{command}` should fail its turn, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_cannot_fill_a_mailbox_past_its_bound() {
    let t = node().await;
    // Nothing reaches counter/x before greedy's turn commits: the bound
    // must count the turn's own sends.
    let reply = t.ask("greedy/g", "send-many 150 counter/x").await;
    assert_eq!(reply, "refused after 100: SendError::MailboxFull(\"counter/x\")");
    t.state_becomes("counter/x", "count", "100").await;
    assert_eq!(t.node.store().mailbox_depth("counter/x").unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_that_sends_too_many_messages_fails_naming_the_limit() {
    let t = node().await;
    let error = failure(&t, "send-many 501 roomy/many").await;
    assert!(error.contains("`turn-sends` of 500") && error.contains("--limit turn-sends="), "{error}");
    assert_eq!(t.node.store().mailbox_depth("roomy/many").unwrap(), 0, "nothing of the failed turn was sent");
    assert_eq!(t.ask("greedy/g", "send-many 500 roomy/many").await, "sent 500");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_values_state_per_turn_and_replies_are_bounded() {
    let t = node().await;
    let error = failure(&t, "set-big 2000000").await;
    assert!(
        error.contains("the value of state key `big` is 2000000 bytes") && error.contains("`state-value`"),
        "{error}"
    );
    let error = failure(&t, "set-many 20 1000000").await;
    assert!(error.contains("`turn-state`"), "{error}");
    assert_eq!(t.node.store().state_get("greedy/g", "many/0").unwrap(), None, "the turn's writes did not land");
    let error = failure(&t, "reply-big 2000000").await;
    assert!(error.contains("the reply is 2000000 bytes, over the limit `reply`"), "{error}");
    // Within the limits, the same commands work.
    assert_eq!(t.ask("greedy/g", "set-big 1000000").await, "ok");
    assert_eq!(t.ask("greedy/g", "reply-big 1000").await.len(), 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_and_dedup_keys_are_bounded_for_guests_and_clients() {
    let t = node().await;
    let error = failure(&t, "header-big 20000 counter/h").await;
    assert!(error.contains("`header-bytes` of 16384"), "{error}");
    let error = failure(&t, "dedup-big 2000 counter/h").await;
    assert!(error.contains("`dedup-key` of 1024"), "{error}");
    assert_eq!(t.ask("greedy/g", "header-big 100 counter/h").await, "ok");

    let big_header = Envelope::new("counter/h", b"inc".to_vec()).with_header("big", "x".repeat(20_000));
    let refused = t.node.send(big_header).await.unwrap_err();
    assert!(matches!(refused, NodeError::OverLimit(_)) && refused.to_string().contains("header-bytes"), "{refused}");
    let mut big_key = Envelope::new("counter/h", b"inc".to_vec());
    big_key.dedup_key = Some("k".repeat(2000));
    let refused = t.node.send(big_key).await.unwrap_err();
    assert!(refused.to_string().contains("`dedup-key`"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_too_deep_or_too_wide_is_an_error_not_a_crash() {
    let t = node().await;
    // From a guest's turn (on its fiber's small stack) and from a client.
    let deep = format!("{}a = 1{}", "(".repeat(3000), ")".repeat(3000));
    let nots = format!("{}a = 1", "NOT ".repeat(1000));
    let wide = vec!["a = 1"; 300].join(" OR ");
    for (filter, needle) in
        [(&deep, "bytes long"), (&nots, "deeper than 32 levels"), (&wide, "more than 256 comparisons")]
    {
        let reply = t.ask("greedy/g", &format!("subscribe room {filter}")).await;
        assert!(reply.starts_with("refused: invalid filter at position") && reply.contains(needle), "{reply}");
        let refused = t.node.subscribe("room", "counter/s", filter).await.unwrap_err();
        assert!(refused.to_string().contains(needle), "{refused}");
    }
    let deep = format!("{}a = 1{}", "(".repeat(40), ")".repeat(40));
    let reply = t.ask("greedy/g", &format!("subscribe room {deep}")).await;
    assert!(reply.contains("deeper than 32 levels"), "{reply}");
    // The widest filter allowed is stored and evaluated at every publish.
    let widest = (0..256).map(|i| format!("h{i} = 1")).collect::<Vec<_>>().join(" OR ");
    assert_eq!(t.ask("greedy/g", &format!("subscribe room {widest}")).await, "ok");
    let published = Envelope::new("", b"inc".to_vec()).with_header("h255", "1");
    assert_eq!(t.node.publish("room", published).await.unwrap().copies, 1);
    assert!(t.node.store().subscriptions().unwrap().iter().all(|(_, s, _)| s == "greedy/g"));
}
