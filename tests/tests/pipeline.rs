//! Turns pipelined over their commits: an actor takes its next message
//! while the last turn's commit is on its way to disk, and a caller goes on
//! with a callee's reply before the callee's commit is durable — without
//! losing or repeating anything.

use std::sync::atomic::Ordering;

use pigeon_node::pigeon_store::{Envelope, MessageKind, TypeLimits};
use pigeon_tests::{TestNode, artifacts, quick_limits};

fn batches(t: &TestNode) -> u64 {
    t.node.store().commit_stats().batches.load(Ordering::SeqCst)
}

/// A node with the counter deployed and `messages` already in its store:
/// stored while the node was stopping, so that the restarted node finds
/// them as one backlog.
async fn backlog(messages: Vec<Envelope>) -> TestNode {
    let t = TestNode::start().await;
    t.deploy("counter", artifacts::COUNTER, TypeLimits::default()).await;
    t.node.shutdown(std::time::Duration::from_secs(10)).await;
    for message in messages {
        t.node.store().enqueue(message).await.expect("stored");
    }
    t.restart().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_is_handled_in_order_without_a_commit_per_turn() {
    const N: usize = 400;
    let incs = (0..N).map(|_| Envelope::new("counter/p", &b"inc"[..])).collect();
    let t = backlog(incs).await;
    t.state_becomes("counter/p", "count", &N.to_string()).await;
    // One turn at a time waiting for its own commit takes a batch per turn;
    // pipelined, the turns' commits share them.
    let used = batches(&t);
    assert!(used < N as u64, "{N} turns took {used} durable commits: each waited for its own");
    assert_eq!(t.node.store().actor_stats("counter/p").unwrap().processed, N as u64);
    let t = t.restart().await;
    assert_eq!(t.ask("counter/p", "get").await, N.to_string(), "every turn is durable, once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_delivered_twice_counts_once_even_while_the_first_commit_is_in_flight() {
    // Two deliveries of one call (a retried sender), then another message.
    let call = Envelope::new("counter/d", &b"inc"[..]).with_kind(MessageKind::Call);
    let t = backlog(vec![call.clone(), call.clone(), Envelope::new("counter/d", &b"add 10"[..])]).await;
    pigeon_tests::eventually("the backlog to be handled", || async {
        (t.node.store().mailbox_depth("counter/d").unwrap() == 0).then_some(())
    })
    .await;
    assert_eq!(t.node.store().state_get("counter/d", "count").unwrap(), Some(b"11".to_vec()));
    assert_eq!(t.node.store().reply(call.id).unwrap(), Some(Ok(Some(b"1".to_vec()))), "the first answer stands");
    // The second delivery ran on top of the first one's commit before it
    // was durable; its commit was refused, and so was the one built on it.
    assert!(t.node.store().commit_epoch() >= 1, "the refused commits advance the epoch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_calls_between_actors_do_not_wait_for_the_callees_commits() {
    const CALLS: usize = 50;
    let t = TestNode::start().await;
    t.deploy("counter", artifacts::COUNTER, TypeLimits::default()).await;
    t.deploy("caller", artifacts::CALLER, quick_limits()).await;
    assert_eq!(t.ask("caller/c", "call counter/q get").await, "ok:0", "both actors live");
    let before = batches(&t);
    let times = t.ask("caller/c", &format!("time-calls {CALLS} counter/q inc")).await;
    assert_eq!(times.split(' ').count(), CALLS);
    // Stored before the callee ran and answered once durable, each call
    // cost two commits; now the callee's commits follow one another to disk
    // while the caller goes on.
    let used = batches(&t) - before;
    assert!(used < CALLS as u64, "{CALLS} persistent calls took {used} durable commits");
    let t = t.restart().await;
    assert_eq!(t.ask("counter/q", "get").await, CALLS.to_string(), "every call took effect once, durably");
}
