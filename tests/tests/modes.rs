//! Communication modes, each by its observable behaviour: where a send
//! unblocks, expiry, deduplication, transient versus persistent delivery.

use std::time::{Duration, Instant};

use pigeon_node::pigeon_store::{DeadReason, Delivery, Envelope, StoreOptions, TypeLimits, now_ms};
use pigeon_node::{Node, NodeConfig, NodeError, NodeEvent};
use pigeon_tests::{PATIENCE, TestNode, artifacts, eventually, next_event, quick_limits};

fn looping_limits() -> TypeLimits {
    TypeLimits { max_attempts: 1, deadline_ms: 3_000, ..quick_limits() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivered_send_returns_when_the_turn_starts_not_when_it_ends() {
    let t = TestNode::start().await;
    t.deploy("faulty", artifacts::FAULTY, looping_limits()).await;
    let mut events = t.node.events();
    let looping = Envelope::new("faulty/d", b"loop".to_vec());
    let id = looping.id;
    let sent = t.node.send_delivered(looping, PATIENCE).await.unwrap();
    assert_eq!(sent.id, id);
    // The handler is still running: it has started and not yet failed.
    assert_eq!(t.node.in_flight("faulty/d"), Some(id));
    while let Ok(event) = events.try_recv() {
        assert!(!matches!(event, NodeEvent::TurnFailed { .. }), "the turn ended before the send returned");
    }
    // A second one queues behind the loop: its wait times out (and it stays queued).
    let started = Instant::now();
    let queued = Envelope::new("faulty/d", b"ok".to_vec());
    let err = t.node.send_delivered(queued, Duration::from_millis(200)).await.unwrap_err();
    assert!(matches!(err, NodeError::Timeout { .. }), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(200));
    next_event(&mut events, "the loop's deadline", |e| matches!(e, NodeEvent::TurnFailed { .. })).await;
    t.state_becomes("faulty/d", "ok", "1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_message_is_dead_lettered_instead_of_handled() {
    let t = TestNode::start().await;
    t.deploy("counter", artifacts::COUNTER, TypeLimits::default()).await;
    let mut late = Envelope::new("counter/e", b"inc".to_vec());
    late.not_before_ms = Some(now_ms() + 600);
    late.expires_at_ms = Some(now_ms() + 300);
    let id = t.node.send(late).await.unwrap().id;
    let dead = t.dead_letter().await;
    assert_eq!((dead.envelope.id, dead.reason), (id, DeadReason::Expired));
    assert!(dead.error.contains("expired"), "{}", dead.error);
    assert_eq!(t.node.store().state_get("counter/e", "count").unwrap(), None, "never handled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dedup_key_is_accepted_once_within_the_window_and_again_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let window = Duration::from_millis(500);
    let config = NodeConfig {
        store: StoreOptions { dedup_retention_ms: 500, ..StoreOptions::default() },
        ..NodeConfig::new(dir.path())
    };
    let node = Node::start(config).await.unwrap();
    node.deploy("counter", artifacts::read(artifacts::COUNTER), TypeLimits::default(), Vec::new()).await.unwrap();
    let inc = || {
        let mut env = Envelope::new("counter/k", b"inc".to_vec());
        env.dedup_key = Some("order-17".into());
        env
    };
    let first_at = Instant::now();
    assert!(!node.send(inc()).await.unwrap().duplicate);
    assert!(node.send(inc()).await.unwrap().duplicate, "same key within the window");
    // Another actor has its own keys.
    let mut other = inc();
    other.to = "counter/other".into();
    assert!(!node.send(other).await.unwrap().duplicate);

    let store = node.store().clone();
    let again = eventually("the key to be accepted again after the window", || {
        let node = node.clone();
        async move { (!node.send(inc()).await.unwrap().duplicate).then(Instant::now) }
    })
    .await;
    assert!(again - first_at >= window, "accepted again after {:?}", again - first_at);
    eventually("both accepted increments", || {
        let store = store.clone();
        async move { (store.state_get("counter/k", "count").unwrap() == Some(b"2".to_vec())).then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_messages_are_lost_with_the_node_while_persistent_ones_survive() {
    let t = TestNode::start().await;
    t.deploy("faulty", artifacts::FAULTY, TypeLimits { deadline_ms: 1_000, ..looping_limits() }).await;
    let mut events = t.node.events();
    // Keep faulty/t busy, then queue one transient and one persistent `ok`.
    t.tell("faulty/t", "loop").await;
    next_event(&mut events, "the loop to start", |e| matches!(e, NodeEvent::TurnStarted { .. })).await;
    let mut transient = Envelope::new("faulty/t", b"ok".to_vec());
    transient.delivery = Delivery::Transient;
    t.node.send(transient).await.unwrap();
    t.tell("faulty/t", "ok").await;

    let t = t.restart().await;
    t.state_becomes("faulty/t", "ok", "1").await;
    eventually("the mailbox to drain", || {
        let store = t.node.store().clone();
        async move { (store.mailbox_depth("faulty/t").unwrap() == 0).then_some(()) }
    })
    .await;
    // Only the persistent one was handled, across both incarnations.
    let stats = t.node.store().actor_stats("faulty/t").unwrap();
    assert_eq!(stats.processed, 1, "{stats:?}");
    assert_eq!(t.node.store().state_get("faulty/t", "ok").unwrap(), Some(b"1".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_times_out_instead_of_hanging_and_the_message_stays_queued() {
    let t = TestNode::start().await;
    t.deploy("faulty", artifacts::FAULTY, looping_limits()).await;
    t.tell("faulty/c", "loop").await;
    let err = t.node.call("faulty/c", b"ok".to_vec(), Duration::from_millis(300)).await.unwrap_err();
    assert!(matches!(err, NodeError::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("will still be handled"), "{err}");
    t.state_becomes("faulty/c", "ok", "1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_messages_over_the_bound_are_dropped_and_counted() {
    let t = TestNode::start().await;
    t.deploy("faulty", artifacts::FAULTY, TypeLimits { mailbox_bound: 2, ..looping_limits() }).await;
    let mut events = t.node.events();
    t.tell("faulty/b", "loop").await;
    next_event(&mut events, "the loop to start", |e| matches!(e, NodeEvent::TurnStarted { .. })).await;
    for _ in 0..3 {
        let mut env = Envelope::new("faulty/b", b"ok".to_vec());
        env.delivery = Delivery::Transient;
        t.node.send(env).await.unwrap();
    }
    assert_eq!(t.node.dropped("faulty/b"), 1, "the third is over the bound of 2");
    t.state_becomes("faulty/b", "ok", "2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_call_to_a_full_mailbox_waits_for_room_instead_of_failing() {
    let t = TestNode::start().await;
    t.deploy("faulty", artifacts::FAULTY, TypeLimits { mailbox_bound: 1, deadline_ms: 1_000, ..looping_limits() })
        .await;
    t.deploy("caller", artifacts::CALLER, TypeLimits { deadline_ms: 20_000, ..quick_limits() }).await;
    let mut events = t.node.events();
    // faulty/w's mailbox (bound 1) is full while its looping message is there.
    t.tell("faulty/w", "loop").await;
    next_event(&mut events, "the loop to start", |e| matches!(e, NodeEvent::TurnStarted { .. })).await;
    let err = t.node.send(Envelope::new("faulty/w", b"ok".to_vec())).await.unwrap_err();
    assert!(err.to_string().contains("is full"), "a user's send is refused at once: {err}");
    // A guest's call waits until the loop is stopped and there is room.
    assert_eq!(t.ask("caller/w", "call faulty/w ok").await, "ok:");
    assert_eq!(t.node.store().state_get("faulty/w", "ok").unwrap(), Some(b"1".to_vec()));
}
