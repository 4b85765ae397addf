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

    let count = |h: &'static [(&str, &str)]| async move { n.publish("orders", publication(h)).await.unwrap() };
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
