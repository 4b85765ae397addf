//! Calls made by guests inside their turns: typed replies, exactly-once
//! effects across a retried turn, and deadlock detection along the chain.

use pigeon_node::pigeon_store::TypeLimits;
use pigeon_tests::{TestNode, artifacts, quick_limits};

async fn node() -> TestNode {
    let t = TestNode::start().await;
    t.deploy("counter", artifacts::COUNTER, TypeLimits::default()).await;
    t.deploy("caller", artifacts::CALLER, quick_limits()).await;
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_calls_another_actor_and_gets_its_reply() {
    let t = node().await;
    assert_eq!(t.ask("caller/a", "call counter/x add 5").await, "ok:5");
    assert_eq!(t.ask("caller/a", "call counter/x get").await, "ok:5");
    let unknown = t.ask("caller/a", "call nobody/x hi").await;
    assert!(unknown.starts_with("error:CallError::Refused(SendError::UnknownType(\"nobody\")"), "{unknown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_turn_gets_its_call_answered_from_the_stored_reply() {
    let t = node().await;
    // Attempt 1 calls counter/y (count → 1) and traps; attempt 2 makes the
    // same call, which must be answered without running counter/y again.
    assert_eq!(t.ask("caller/r", "call-then-trap counter/y inc").await, "ok:1");
    let counter = t.node.store().actor_stats("counter/y").unwrap();
    assert_eq!(t.node.store().state_get("counter/y", "count").unwrap(), Some(b"1".to_vec()), "moved once");
    let caller = t.node.store().actor_stats("caller/r").unwrap();
    assert_eq!((caller.failed, caller.processed), (1, 1), "the caller's turn was retried once");
    assert_eq!(counter.processed, 1, "the repeated call was answered from the stored reply: counter/y ran one turn");
}

/// A callee that fails for good fails a retried caller at once: the callee
/// runs its own attempts once, not once per attempt of the caller, and each
/// of the two failures leaves one dead letter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callee_that_dead_letters_is_not_run_again_by_the_callers_retries() {
    let t = TestNode::start().await;
    let limits = || TypeLimits { max_attempts: 3, ..quick_limits() };
    t.deploy("faulty", artifacts::FAULTY, limits()).await;
    t.deploy("caller", artifacts::CALLER, limits()).await;
    t.tell("caller/a", "call-or-fail faulty/x trap").await;
    let store = t.node.store().clone();
    pigeon_tests::eventually("both dead letters", || {
        let store = store.clone();
        async move { (store.dead_letters(10).unwrap().len() == 2).then_some(()) }
    })
    .await;
    let callee = t.node.store().actor_stats("faulty/x").unwrap();
    let caller = t.node.store().actor_stats("caller/a").unwrap();
    assert_eq!((callee.failed, callee.dead_lettered), (3, 1), "the callee ran its 3 attempts once (not 3 × 3)");
    assert_eq!((caller.failed, caller.dead_lettered), (3, 1), "the caller ran its 3 attempts");
    let dead = t.node.store().dead_letters(10).unwrap();
    let to: Vec<&str> = dead.iter().map(|d| d.envelope.to.as_str()).collect();
    assert_eq!(to, ["faulty/x", "caller/a"], "one dead letter per failure, the callee's first");
    assert!(
        dead[1].error.contains("faulty: trap on command"),
        "the caller's error carries the callee's: {}",
        dead[1].error
    );

    // Replaying the callee's dead letter runs it afresh (its stored failure goes).
    t.node.store().replay_dead_letters(Some(vec![dead[0].id])).await.unwrap();
    pigeon_tests::eventually("the replay to fail again", || {
        let store = store.clone();
        async move { (store.actor_stats("faulty/x").unwrap().failed == 6).then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_back_into_the_chain_fails_at_once_with_deadlock() {
    let t = node().await;
    // caller/a → caller/b → caller/a would wait forever.
    let answer = t.ask("caller/a", "call caller/b call caller/a call counter/z inc").await;
    assert!(answer.starts_with("ok:error:CallError::Deadlock(\"caller/a → caller/b → caller/a\")"), "{answer}");
    // Calling oneself is the shortest cycle.
    let answer = t.ask("caller/s", "call caller/s get").await;
    assert!(answer.contains("Deadlock(\"caller/s → caller/s\")"), "{answer}");
    assert_eq!(t.node.store().state_get("counter/z", "count").unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_cancels_its_reminder_and_it_never_fires() {
    let t = node().await;
    // `early` is due in an hour: however slow the machine, the cancel comes
    // first. The only way a delayed message fires is by leaving the delayed
    // queue, so once it is gone from there (and stays gone across a
    // restart) it never fires.
    t.tell("caller/t", "remind 3600000 early").await;
    t.tell("caller/t", "remind 20 late").await;
    assert_eq!(t.ask("caller/t", "cancel early").await, "true");
    t.state_becomes("caller/t", "fired", "late").await;
    assert_eq!(t.ask("caller/t", "cancel late").await, "false", "a fired reminder is no longer pending");
    assert_eq!(t.ask("caller/t", "cancel early").await, "false", "a cancelled reminder is no longer pending");
    assert!(t.node.store().delayed(10).unwrap().is_empty(), "the cancelled reminder left the delayed queue");
    let t = t.restart().await;
    assert!(t.node.store().delayed(10).unwrap().is_empty());
    assert_eq!(t.node.store().state_get("caller/t", "fired").unwrap(), Some(b"late".to_vec()));
}

/// A transient call to `to`, answered as text.
async fn ask_transient(t: &TestNode, to: &str, payload: &str) -> String {
    use pigeon_node::pigeon_store::{Delivery, Envelope, MessageKind};
    let mut envelope = Envelope::new(to, payload.as_bytes().to_vec()).with_kind(MessageKind::Call);
    envelope.delivery = Delivery::Transient;
    let reply = t.node.request(envelope, pigeon_tests::PATIENCE).await.expect("a transient call is answered");
    String::from_utf8(reply.unwrap_or_default()).expect("a UTF-8 reply")
}

fn batches(t: &TestNode) -> u64 {
    t.node.store().commit_stats().batches.load(std::sync::atomic::Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_turns_that_write_nothing_commit_nothing_and_their_calls_stay_in_memory() {
    let t = node().await;
    assert_eq!(t.ask("counter/x", "add 5").await, "5");
    assert_eq!(ask_transient(&t, "caller/a", "call counter/x get").await, "ok:5", "warm: both actors active");
    let before = batches(&t);
    // A transient read, and a transient turn whose call (inherited delivery)
    // is transient too: no store write, so no commit at all.
    for _ in 0..20 {
        assert_eq!(ask_transient(&t, "counter/x", "get").await, "5");
        assert_eq!(ask_transient(&t, "caller/a", "call counter/x get").await, "ok:5");
    }
    assert_eq!(batches(&t), before, "transient turns without durable effects committed nothing");
    // A transient call that cannot be queued is refused, not left to time out.
    let unknown = ask_transient(&t, "caller/a", "call nobody/x hi").await;
    assert!(unknown.starts_with("error:CallError::Refused(SendError::UnknownType(\"nobody\")"), "{unknown}");
    // What a transient turn writes is still durable: it commits.
    assert_eq!(ask_transient(&t, "caller/a", "call counter/x inc").await, "ok:6");
    assert!(batches(&t) > before, "the transient turn's state write was committed");
    let t = t.restart().await;
    assert_eq!(t.node.store().state_get("counter/x", "count").unwrap(), Some(b"6".to_vec()));
}

/// An actor kept busy by transient calls still takes every persistent
/// message stored meanwhile: a turn skips the store read only while no
/// persistent message can be waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_messages_reach_an_actor_busy_with_transient_calls() {
    let t = node().await;
    assert_eq!(ask_transient(&t, "counter/busy", "get").await, "0", "live, its mailbox read and found empty");
    let node = t.node.clone();
    let reads = tokio::spawn(async move {
        use pigeon_node::pigeon_store::{Delivery, Envelope, MessageKind};
        for _ in 0..300 {
            let mut envelope = Envelope::new("counter/busy", &b"get"[..]).with_kind(MessageKind::Call);
            envelope.delivery = Delivery::Transient;
            node.request(envelope, pigeon_tests::PATIENCE).await.expect("a transient call is answered");
        }
    });
    for _ in 0..300 {
        t.tell("counter/busy", "inc").await;
    }
    reads.await.expect("the transient calls ran");
    pigeon_tests::eventually("all 300 persistent incs to be handled", || async {
        (ask_transient(&t, "counter/busy", "get").await == "300").then_some(())
    })
    .await;
}
