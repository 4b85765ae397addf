//! Topics: a publish copies the message, in one transaction, into the
//! mailbox of every subscriber whose filter matches its headers.

use pigeon_node::pigeon_store::{Envelope, TypeLimits};
use pigeon_tests::{TestNode, artifacts};

fn publication(headers: &[(&str, &str)]) -> Envelope {
    headers.iter().fold(Envelope::new("", b"inc".to_vec()), |e, (n, v)| e.with_header(*n, *v))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_reaches_exactly_the_subscribers_whose_filter_matches() {
    let t = TestNode::start().await;
    t.deploy("counter", artifacts::COUNTER, TypeLimits::default()).await;
    let n = &t.node;
    n.subscribe("orders", "counter/all", "").await.unwrap();
    n.subscribe("orders", "counter/big", "amount > 100").await.unwrap();
    n.subscribe("orders", "counter/eu", "region = 'eu' AND NOT EXISTS test").await.unwrap();
    n.subscribe("other", "counter/elsewhere", "").await.unwrap();

    let count = |h: &'static [(&str, &str)]| async move { n.publish("orders", publication(h)).await.unwrap().copies };
    assert_eq!(count(&[("amount", "250"), ("region", "eu")]).await, 3);
    assert_eq!(count(&[("amount", "99"), ("region", "eu")]).await, 2);
    assert_eq!(count(&[("amount", "1000"), ("region", "eu"), ("test", "1")]).await, 2);
    assert_eq!(count(&[("amount", "5")]).await, 1);

    t.state_becomes("counter/all", "count", "4").await;
    t.state_becomes("counter/big", "count", "2").await;
    t.state_becomes("counter/eu", "count", "2").await;
    assert_eq!(n.store().state_get("counter/elsewhere", "count").unwrap(), None);

    // Unsubscribing stops the copies; the others still get theirs.
    assert!(n.unsubscribe("orders", "counter/all").await.unwrap());
    assert!(!n.unsubscribe("orders", "counter/all").await.unwrap());
    assert_eq!(count(&[("amount", "500")]).await, 1);
    t.state_becomes("counter/big", "count", "3").await;
    assert_eq!(n.store().state_get("counter/all", "count").unwrap(), Some(b"4".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_filter_or_topic_is_refused_at_subscribe_time() {
    let t = TestNode::start().await;
    let err = t.node.subscribe("orders", "counter/a", "amount >").await.unwrap_err().to_string();
    assert!(err.contains("invalid filter at position 8"), "{err}");
    let err = t.node.subscribe("orders", "counter/a", "kind = 'x' AND (amount > 1").await.unwrap_err().to_string();
    assert!(err.contains("position 26") && err.contains("expected `)`, found the end"), "{err}");
    let err = t.node.subscribe("my orders", "counter/a", "").await.unwrap_err().to_string();
    assert!(err.contains("invalid topic `my orders`"), "{err}");
    let err = t.node.subscribe("orders", "counter", "").await.unwrap_err().to_string();
    assert!(err.contains("no `/`"), "{err}");
    assert!(t.node.store().subscriptions().unwrap().is_empty(), "nothing was subscribed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_join_rooms_and_hear_what_matches_their_filter() {
    let t = TestNode::start().await;
    t.deploy("chat-room", artifacts::CHAT_ROOM, TypeLimits::default()).await;
    t.tell("chat-room/alice", "join lobby").await;
    t.tell("chat-room/bob", "join lobby").await;
    t.tell("chat-room/claire", "join lobby lang = 'fr'").await;
    let err = t.node.call("chat-room/dan", b"join lobby lang =".to_vec(), pigeon_tests::PATIENCE).await.unwrap_err();
    assert!(err.to_string().contains("invalid filter at position"), "a bad filter fails the guest's turn: {err}");
    t.dead_letter().await;
    let subscribers = || async {
        let subs = t.node.store().subscriptions().unwrap();
        subs.into_iter().map(|(_, s, _)| s).collect::<Vec<_>>()
    };
    pigeon_tests::eventually("three members subscribed", || async { (subscribers().await.len() == 3).then_some(()) })
        .await;

    t.tell("chat-room/alice", "say lobby hello").await;
    // Alice's publish commits before Bob speaks: two `say` turns of two
    // actors run in parallel, and the order of their copies would be the
    // order of their commits.
    t.state_becomes("chat-room/alice", "heard", "chat-room/alice: hello\n").await;
    t.tell("chat-room/bob", "say lobby fr bonjour").await;
    t.state_becomes("chat-room/alice", "heard", "chat-room/alice: hello\nchat-room/bob: bonjour\n").await;
    t.state_becomes("chat-room/bob", "heard", "chat-room/alice: hello\nchat-room/bob: bonjour\n").await;
    t.state_becomes("chat-room/claire", "heard", "chat-room/bob: bonjour\n").await;

    t.tell("chat-room/bob", "leave lobby").await;
    pigeon_tests::eventually("bob to leave", || async { (subscribers().await.len() == 2).then_some(()) }).await;
    t.tell("chat-room/alice", "say lobby fr salut").await;
    t.state_becomes("chat-room/claire", "heard", "chat-room/bob: bonjour\nchat-room/alice: salut\n").await;
    assert_eq!(
        t.node.store().state_get("chat-room/bob", "heard").unwrap(),
        Some(b"chat-room/alice: hello\nchat-room/bob: bonjour\n".to_vec()),
        "bob left before the last message"
    );
}
