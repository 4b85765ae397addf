//! Direct delivery (`pigeon_node`'s `direct` module): a persistent send to
//! a live actor with nothing queued is handed to it before it is stored and
//! accepted with its turn's commit — one durable commit per message —
//! and is never lost, whatever its turn does.

use std::sync::atomic::Ordering;

use pigeon_node::pigeon_store::TypeLimits;
use pigeon_tests::{TestNode, artifacts, eventually};

/// Commit requests the store has applied (enqueues, turn commits, …).
fn commit_requests(t: &TestNode) -> u64 {
    t.node.store().commit_stats().requests.load(Ordering::SeqCst)
}

/// Sends `payload` to `to` until one send is handed over directly: the
/// actor is live and knows of no queued work. Returns how many were sent.
async fn until_direct(t: &TestNode, to: &str, payload: &str) -> u64 {
    let mut sent = 0;
    eventually(&format!("a send to {to} to be handed over directly"), || {
        sent += 1;
        async {
            let before = t.node.counters().direct;
            t.tell(to, payload).await;
            (t.node.counters().direct > before).then_some(())
        }
    })
    .await;
    sent
}

/// Waits until the node has counted `n` messages as accepted in all (each
/// once: the count would pass `n` otherwise).
async fn accepted_becomes(t: &TestNode, n: u64) {
    eventually(&format!("{n} messages counted as accepted"), || async {
        let accepted = t.node.counters().accepted;
        assert!(accepted <= n, "{accepted} messages counted as accepted, {n} sent");
        (accepted == n).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_senders_messages_to_a_live_actor_take_one_commit_each() {
    const N: u64 = 50;
    let t = TestNode::start().await;
    t.deploy("counter", artifacts::COUNTER, TypeLimits::default()).await;
    let warm_up = until_direct(&t, "counter/d", "inc").await;
    // A batch's messages are counted as accepted just after its waiters
    // are released: wait for the warm-up's to be.
    accepted_becomes(&t, warm_up).await;
    let (requests, direct) = (commit_requests(&t), t.node.counters().direct);
    for i in 1..=N {
        t.tell("counter/d", "inc").await;
        // Accepted means handled: the turn's commit is the acceptance.
        let count = t.node.store().state_get("counter/d", "count").unwrap();
        assert_eq!(count, Some((warm_up + i).to_string().into_bytes()), "send {i} was accepted before its turn");
    }
    // Each send waits for its acceptance, and the actor is idle again by
    // then: every one is handed over, and costs one commit, not an enqueue
    // and a commit.
    let counters = t.node.counters();
    assert_eq!(counters.direct - direct, N, "every send after the first direct one is handed over");
    // The node's own periodic work (the retention sweep every minute) may
    // add a request or two; one more per message is what the mailbox costs.
    let used = commit_requests(&t) - requests;
    assert!((N..=N + 2).contains(&used), "{N} sends took {used} commit requests: one per message was the aim");
    accepted_becomes(&t, warm_up + N).await;
    let t = t.restart().await;
    assert_eq!(t.ask("counter/d", "get").await, (warm_up + N).to_string(), "every accepted send is durable, once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_handed_to_a_failing_turn_is_stored_for_its_retry() {
    let t = TestNode::start().await;
    // A retry far enough away that it can only happen after the restart.
    let limits = TypeLimits { backoff_base_ms: 1_000, backoff_max_ms: 1_000, ..TypeLimits::default() };
    t.deploy("faulty", artifacts::FAULTY, limits).await;
    until_direct(&t, "faulty/f", "ok").await;
    let direct = t.node.counters().direct;
    t.tell("faulty/f", "fail-until 2").await;
    assert_eq!(t.node.counters().direct, direct + 1, "the failing message was handed over");
    // Its first attempt failed before `tell` returned; only the store knows
    // of the retry now.
    let t = t.restart().await;
    t.state_becomes("faulty/f", "succeeded-at", "2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handed_over_turn_that_calls_runs_again_from_the_mailbox_and_its_call_counts_once() {
    let t = TestNode::start().await;
    t.deploy("counter", artifacts::COUNTER, TypeLimits::default()).await;
    t.deploy("caller", artifacts::CALLER, TypeLimits::default()).await;
    until_direct(&t, "caller/k", "fired warm-up").await;
    let direct = t.node.counters().direct;
    // Handed over, it reaches the call: a callee commits on its own, so the
    // message must be stored first. The attempt is void, and the stored
    // message runs again from the mailbox.
    t.tell("caller/k", "call counter/c inc").await;
    assert_eq!(t.node.counters().direct, direct, "a turn that calls is not accepted directly");
    t.state_becomes("counter/c", "count", "1").await;
    eventually("the caller's mailbox to drain", || async {
        (t.node.store().mailbox_depth("caller/k").unwrap() == 0 && t.node.in_flight("caller/k").is_none()).then_some(())
    })
    .await;
    assert_eq!(t.ask("counter/c", "get").await, "1", "the call was made once");
    // The actor is known to call now: its next sends take the mailbox.
    t.tell("caller/k", "fired later").await;
    assert_eq!(t.node.counters().direct, direct, "an actor that calls gets no direct sends");
}
