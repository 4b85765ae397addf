//! The node core with real guest components: replies, priorities, retries,
//! dead letters, deadlines, memory limits, rollback, and bad components.

use std::time::Duration;

use pigeon_node::pigeon_store::{DeadReason, Envelope, TypeLimits, now_ms};
use pigeon_node::{NodeError, NodeEvent};
use pigeon_tests::{TestNode, artifacts, eventually, next_event, quick_limits};

const CALL: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_counts_and_replies() {
    let t = TestNode::start().await;
    t.deploy("counter", artifacts::COUNTER, TypeLimits::default()).await;
    for expected in 1..=3 {
        assert_eq!(t.ask("counter/a", "inc").await, expected.to_string());
    }
    t.ask("counter/a", "add 39").await;
    assert_eq!(t.ask("counter/a", "get").await, "42");
    // Another key is another actor, with its own state.
    assert_eq!(t.ask("counter/b", "get").await, "0");
    assert_eq!(t.node.store().state_get("counter/a", "count").unwrap(), Some(b"42".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_sent_by_a_turn_are_delivered() {
    let t = TestNode::start().await;
    t.deploy("counter", artifacts::COUNTER, TypeLimits::default()).await;
    t.deploy("forwarder", artifacts::FORWARDER, TypeLimits::default()).await;
    for _ in 0..5 {
        let env = Envelope::new("forwarder/f", b"inc".to_vec()).with_header("forward-to", "counter/x");
        t.node.send(env).await.unwrap();
    }
    t.state_becomes("counter/x", "count", "5").await;
}

/// Messages that become due together enter the mailbox in one transaction;
/// the actor must then take them by priority (highest first), then arrival.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailbox_yields_highest_priority_first() {
    let t = TestNode::start().await;
    t.deploy("counter", artifacts::COUNTER, TypeLimits::default()).await;
    let due = now_ms() + 2_000;
    let priorities = [3u8, 9, 0, 5, 9, 3, 7, 1, 5, 0];
    for (i, p) in priorities.iter().enumerate() {
        let mut env =
            Envelope::new("counter/p", b"inc".to_vec()).with_priority(*p).with_header("op-id", format!("m{i}"));
        env.not_before_ms = Some(due);
        t.node.send(env).await.unwrap();
    }
    assert!(now_ms() < due, "sending took longer than the delay: the test cannot check the order");
    let store = t.node.store().clone();
    let applied = eventually("all ten messages handled", || {
        let store = store.clone();
        async move {
            let applied = store.state_scan("counter/p", "applied/").unwrap();
            (applied.len() == priorities.len()).then_some(applied)
        }
    })
    .await;
    // `applied/mI` = "1 ORDER": recover the handling order.
    let mut handled: Vec<(u64, usize)> = applied
        .iter()
        .map(|(key, value)| {
            let order = String::from_utf8_lossy(value).split(' ').nth(1).unwrap().parse().unwrap();
            (order, key.trim_start_matches("applied/m").parse().unwrap())
        })
        .collect();
    handled.sort();
    let got: Vec<usize> = handled.into_iter().map(|(_, i)| i).collect();
    let mut expected: Vec<usize> = (0..priorities.len()).collect();
    expected.sort_by_key(|&i| (std::cmp::Reverse(priorities[i]), i));
    assert_eq!(got, expected, "handled in this order (by message index)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_turns_are_retried_with_exponential_backoff() {
    let t = TestNode::start().await;
    let limits = TypeLimits { backoff_base_ms: 100, backoff_max_ms: 10_000, ..TypeLimits::default() };
    t.deploy("faulty", artifacts::FAULTY, limits).await;
    let mut events = t.node.events();
    t.tell("faulty/r", "fail-until 3").await;

    // Collect this actor's turn events until it succeeds.
    let mut history = Vec::new();
    loop {
        let event = next_event(&mut events, "faulty/r's turns", |e| match e {
            NodeEvent::TurnStarted { actor, .. }
            | NodeEvent::TurnFailed { actor, .. }
            | NodeEvent::TurnCompleted { actor, .. } => actor == "faulty/r",
            _ => false,
        })
        .await;
        let done = matches!(event, NodeEvent::TurnCompleted { .. });
        history.push(event);
        if done {
            break;
        }
    }
    // started 1, failed 1, started 2, failed 2, started 3, completed 3.
    assert_eq!(history.len(), 6, "{history:#?}");
    for (i, attempt) in [(1usize, 1u32), (3, 2)] {
        let NodeEvent::TurnFailed { attempt: a, retry_in_ms, at: failed_at, error, .. } = &history[i] else {
            panic!("expected a failure at {i}: {history:#?}")
        };
        assert_eq!(*a, attempt);
        assert_eq!(*retry_in_ms, Some(100 << (attempt - 1)), "backoff doubles");
        assert!(error.contains(&format!("failing attempt {attempt} of 3")), "{error}");
        let NodeEvent::TurnStarted { at: retried_at, attempt: next, .. } = &history[i + 1] else {
            panic!("expected a retry at {}: {history:#?}", i + 1)
        };
        assert_eq!(*next, attempt + 1);
        // The retry starts no sooner than its backoff.
        let waited = retried_at.duration_since(*failed_at).unwrap_or_default();
        assert!(waited >= Duration::from_millis(100 << (attempt - 1)), "retried after {waited:?}");
    }
    assert!(matches!(history[5], NodeEvent::TurnCompleted { attempt: 3, .. }), "{history:#?}");
    assert_eq!(t.node.store().state_get("faulty/r", "succeeded-at").unwrap(), Some(b"3".to_vec()));
    assert!(t.node.store().dead_letters(10).unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_keeps_failing_is_dead_lettered_with_its_error() {
    let t = TestNode::start().await;
    t.deploy("faulty", artifacts::FAULTY, TypeLimits { max_attempts: 3, ..quick_limits() }).await;
    let id = t.tell("faulty/d", "trap").await;
    let store = t.node.store().clone();
    let dead = t.dead_letter().await;
    assert_eq!(dead.envelope.id, id);
    assert_eq!(dead.reason, DeadReason::Failed);
    assert_eq!(dead.envelope.failures, 3, "max-attempts turns were made");
    assert!(dead.error.contains("faulty: trap on command"), "the guest's panic message is kept: {}", dead.error);
    assert_eq!(store.mailbox_depth("faulty/d").unwrap(), 0);
    let stats = store.actor_stats("faulty/d").unwrap();
    assert_eq!((stats.failed, stats.dead_lettered, stats.processed), (3, 1, 0));
    // A call whose message is dead-lettered fails instead of hanging.
    let err = t.node.call("faulty/d", b"err".to_vec(), CALL).await.unwrap_err();
    assert!(matches!(err, NodeError::CallFailed { .. }), "{err}");
    assert!(err.to_string().contains("faulty: error on command"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_stops_an_infinite_loop_while_other_actors_keep_serving() {
    let t = TestNode::start().await;
    t.deploy("faulty", artifacts::FAULTY, TypeLimits { max_attempts: 1, deadline_ms: 3_000, ..quick_limits() }).await;
    t.deploy("counter", artifacts::COUNTER, TypeLimits::default()).await;
    let mut events = t.node.events();
    t.tell("faulty/spin", "loop").await;
    next_event(
        &mut events,
        "the loop to start",
        |e| matches!(e, NodeEvent::TurnStarted { actor, .. } if actor == "faulty/spin"),
    )
    .await;

    for expected in 1..=20 {
        assert_eq!(t.ask("counter/b", "inc").await, expected.to_string());
    }
    // All of those were served while the loop was still running.
    let mut seen = t.node.events();
    let still_looping = loop {
        match seen.try_recv() {
            Ok(NodeEvent::TurnFailed { actor, .. }) if actor == "faulty/spin" => break false,
            Ok(_) => {}
            Err(_) => break true,
        }
    };
    assert!(
        still_looping && t.node.store().dead_letters(1).unwrap().is_empty(),
        "counter/b was served only after the loop ended"
    );

    let failed = next_event(
        &mut events,
        "the deadline",
        |e| matches!(e, NodeEvent::TurnFailed { actor, .. } if actor == "faulty/spin"),
    )
    .await;
    let NodeEvent::TurnFailed { error, retry_in_ms, .. } = failed else { unreachable!() };
    assert!(error.contains("deadline"), "{error}");
    assert_eq!(retry_in_ms, None, "max-attempts 1: dead-lettered");
    assert_eq!(t.node.store().dead_letters(10).unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_limit_stops_a_memory_bomb() {
    let t = TestNode::start().await;
    let limits = TypeLimits { max_attempts: 1, memory_bytes: 16 << 20, ..quick_limits() };
    t.deploy("faulty", artifacts::FAULTY, limits).await;
    t.tell("faulty/bomb", "bomb").await;
    let dead = t.dead_letter().await;
    assert!(dead.error.contains("memory limit of 16777216 bytes"), "{}", dead.error);
    // The actor is usable again afterwards, in a fresh instance.
    t.tell("faulty/bomb", "ok").await;
    t.state_becomes("faulty/bomb", "ok", "1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapped_turn_leaves_no_trace_of_its_writes_or_sends() {
    let t = TestNode::start().await;
    t.deploy("faulty", artifacts::FAULTY, TypeLimits { max_attempts: 2, ..quick_limits() }).await;
    t.deploy("counter", artifacts::COUNTER, TypeLimits::default()).await;
    let mut events = t.node.events();
    t.tell("faulty/w", "write-then-trap counter/c").await;
    let store = t.node.store().clone();
    t.dead_letter().await;
    assert_eq!(store.state_get("faulty/w", "dirty").unwrap(), None, "state write rolled back");
    assert_eq!(store.mailbox_depth("counter/c").unwrap(), 0, "send rolled back");
    assert!(store.delayed(100).unwrap().is_empty());
    assert_eq!(store.state_get("counter/c", "count").unwrap(), None);
    // counter/c never ran a turn.
    while let Ok(event) = events.try_recv() {
        assert!(!matches!(event, NodeEvent::TurnStarted { ref actor, .. } if actor == "counter/c"), "{event:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_components_are_refused_with_the_reason() {
    let t = TestNode::start().await;
    let deploy = |bytes: Vec<u8>| {
        let node = t.node.clone();
        async move { node.deploy("bad", bytes, TypeLimits::default(), Vec::new()).await.unwrap_err().to_string() }
    };
    let err = deploy(b"hello, I am not wasm".to_vec()).await;
    assert!(err.contains("not a WebAssembly file"), "{err}");

    let core = wat::parse_str("(module (func (export \"f\")))").unwrap();
    let err = deploy(core).await;
    assert!(err.contains("core WebAssembly module, not a component"), "{err}");

    let empty = wat::parse_str("(component)").unwrap();
    let err = deploy(empty).await;
    assert!(err.contains("does not export `pigeon:actor/handler@0.1.0`"), "{err}");

    // Host-namespace imports the node does not provide are listed; an
    // interface of another namespace is another actor's (typed RPC, linked
    // at deploy), not a missing import.
    let foreign = wat::parse_str(
        r#"(component
             (import "acme:bank/account@1.0.0" (instance))
             (import "wasi:http/types@0.2.0" (instance))
             (import "wasi:http/outgoing-handler@0.2.0" (instance)))"#,
    )
    .unwrap();
    let err = deploy(foreign).await;
    assert!(err.contains("`wasi:http/types@0.2.0`, `wasi:http/outgoing-handler@0.2.0`"), "{err}");
    assert!(err.contains("disableFeatures: ['http', 'fetch-event']"), "names how to build without it: {err}");
    assert!(!err.contains("acme:bank"), "{err}");

    let mut truncated = artifacts::read(artifacts::COUNTER);
    truncated.truncate(truncated.len() / 2);
    let err = deploy(truncated).await;
    assert!(err.contains("invalid component"), "{err}");

    let err = t
        .node
        .deploy("Bad Name", artifacts::read(artifacts::COUNTER), TypeLimits::default(), Vec::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("lowercase"), "{err}");
    assert!(t.node.type_names().is_empty(), "nothing was deployed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sends_are_refused_with_the_reason() {
    let t = TestNode::start().await;
    t.deploy("counter", artifacts::COUNTER, TypeLimits::default()).await;
    let send = |to: &str, payload: Vec<u8>, priority: u8| {
        let node = t.node.clone();
        let env = Envelope::new(to, payload).with_priority(priority);
        async move { node.send(env).await.unwrap_err().to_string() }
    };
    assert!(send("counter", b"inc".to_vec(), 4).await.contains("no `/`"));
    assert!(send("nobody/x", b"inc".to_vec(), 4).await.contains("unknown actor type `nobody`"));
    assert!(send("counter/a", b"inc".to_vec(), 10).await.contains("invalid priority 10"));
    assert!(send("counter/a", vec![0; 2 << 20], 4).await.contains("over the limit"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_keeps_types_state_and_pending_messages() {
    let t = TestNode::start().await;
    t.deploy("counter", artifacts::COUNTER, TypeLimits::default()).await;
    t.ask("counter/a", "add 5").await;
    let cached: Vec<_> = std::fs::read_dir(t.dir.path().join("cache")).unwrap().collect();
    assert_eq!(cached.len(), 1, "the compiled component is cached on disk");
    // A message due after the restart must still be delivered.
    let mut later = Envelope::new("counter/a", b"inc".to_vec());
    later.not_before_ms = Some(now_ms() + 500);
    t.node.send(later).await.unwrap();

    let t = t.restart().await;
    assert_eq!(t.node.type_names(), ["counter"]);
    t.state_becomes("counter/a", "count", "6").await;
    assert_eq!(t.ask("counter/a", "get").await, "6");
}
