//! Store and forward between two stores, without a network: what the
//! outbox holds and in which order, how the receiver takes a batch in once
//! however often it comes, and how a deferred message comes again.

use pigeon_store::{
    ActorType, Envelope, InboundBatch, InboundOutcome, Placement, Store, StoreError, StoreOptions, TurnCommit,
    TypeLimits, now_ms,
};

fn counter_type() -> ActorType {
    ActorType {
        name: "counter".into(),
        component_hash: "00".into(),
        component_size: 1,
        limits: TypeLimits { mailbox_bound: 3, ..TypeLimits::default() },
        deployed_at_ms: now_ms(),
        links: Vec::new(),
    }
}

async fn node(id: &str, dir: &tempfile::TempDir, options: StoreOptions) -> Store {
    let store = Store::open_with(dir.path(), StoreOptions { node_id: Some(id.into()), ..options }).unwrap();
    store.put_type(&counter_type(), b"component").unwrap();
    store.put_placement("counter", &Placement::new(["a".to_string(), "b".to_string()])).await.unwrap();
    store
}

/// An actor of `counter` that node `owner` owns.
fn owned_by(owner: &str, n: usize) -> Vec<String> {
    let placement = Placement::new(["a".to_string(), "b".to_string()]);
    (0..).map(|i| format!("counter/{i}")).filter(|a| placement.owner(a) == Some(owner)).take(n).collect()
}

fn batch_for(from: &Store, to: &str) -> InboundBatch {
    let out = from.outbox_batch(to, 100, 1 << 20).unwrap();
    InboundBatch {
        source: from.identity().node_id.clone(),
        incarnation: from.identity().incarnation.clone(),
        watermark: out.watermark,
        items: out.items,
    }
}

fn accepted(outcomes: &[InboundOutcome]) -> Vec<u64> {
    outcomes.iter().filter_map(|o| if let InboundOutcome::Accepted(seq) = o { Some(*seq) } else { None }).collect()
}

#[tokio::test]
async fn a_message_for_another_owner_waits_in_the_outbox_in_priority_order() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (node("a", &da, StoreOptions::default()).await, node("b", &db, StoreOptions::default()).await);
    let remote = owned_by("b", 1).remove(0);
    let local = owned_by("a", 1).remove(0);
    assert_eq!(a.placement("counter").unwrap().owner(&remote), Some("b"));
    for (payload, priority) in [("low", 1u8), ("high", 8), ("mid", 4)] {
        a.enqueue(Envelope::new(&remote, payload).with_priority(priority)).await.unwrap();
    }
    a.enqueue(Envelope::new(&local, "here")).await.unwrap();
    assert_eq!(a.mailbox_depth(&remote).unwrap(), 0, "nothing for b's actor is queued on a");
    assert_eq!(a.mailbox_depth(&local).unwrap(), 1);
    assert_eq!(a.outbox_depths().unwrap(), vec![("b".to_string(), 3)]);

    let batch = batch_for(&a, "b");
    let payloads: Vec<Vec<u8>> =
        batch.items.iter().map(|(_, bytes)| Envelope::decode(bytes, "t").unwrap().payload).collect();
    assert_eq!(payloads, [b"high".to_vec(), b"mid".to_vec(), b"low".to_vec()]);
    assert_eq!(batch.watermark, batch.items.iter().map(|(seq, _)| *seq).min().unwrap());

    let outcomes = b.accept_inbound(batch.clone()).await.unwrap();
    assert_eq!(accepted(&outcomes).len(), 3);
    assert_eq!(b.mailbox_depth(&remote).unwrap(), 3);
    // The acknowledgement was lost: the same batch again changes nothing.
    let again = b.accept_inbound(batch).await.unwrap();
    assert_eq!(accepted(&again).len(), 3);
    assert_eq!(b.mailbox_depth(&remote).unwrap(), 3, "a retransmission is not stored twice");

    assert_eq!(a.forwarded("b", accepted(&outcomes)).await.unwrap(), 3);
    assert!(a.outbox_depths().unwrap().is_empty());
    assert!(a.outbox_batch("b", 100, 1 << 20).unwrap().items.is_empty());
}

#[tokio::test]
async fn a_full_mailbox_defers_and_a_retransmission_is_taken_once() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (node("a", &da, StoreOptions::default()).await, node("b", &db, StoreOptions::default()).await);
    let remote = owned_by("b", 1).remove(0);
    for i in 0..4 {
        a.enqueue(Envelope::new(&remote, format!("m{i}"))).await.unwrap();
    }
    let outcomes = b.accept_inbound(batch_for(&a, "b")).await.unwrap();
    let taken = accepted(&outcomes);
    assert_eq!(taken.len(), 3, "the bound of 3 holds for forwarded messages too");
    assert!(
        outcomes.iter().any(|o| matches!(o, InboundOutcome::Deferred { reason, .. } if reason.contains("full"))),
        "{outcomes:?}"
    );
    a.forwarded("b", taken).await.unwrap();
    // The receiver's turn takes a message: room for the deferred one.
    let (key, _) = b.next_message(&remote).unwrap().unwrap();
    b.commit_turn(TurnCommit { actor: remote.clone(), taken: Some(key), ..TurnCommit::default() }).await.unwrap();
    let retry = batch_for(&a, "b");
    assert_eq!(retry.items.len(), 1);
    let seq = retry.items[0].0;
    assert_eq!(retry.watermark, seq, "only the deferred message is left in the outbox");
    assert_eq!(accepted(&b.accept_inbound(retry.clone()).await.unwrap()), vec![seq]);
    assert_eq!(b.mailbox_depth(&remote).unwrap(), 3);
    // Sent again after a lost ack: still once.
    b.accept_inbound(retry).await.unwrap();
    assert_eq!(b.mailbox_depth(&remote).unwrap(), 3);
}

#[tokio::test]
async fn outbox_bound_and_lattice_message_size_refuse_with_clear_errors() {
    let (da, _db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a =
        node("a", &da, StoreOptions { outbox_bound: 2, remote_message_bytes: 512, ..StoreOptions::default() }).await;
    let remote = owned_by("b", 1).remove(0);
    let err = a.enqueue(Envelope::new(&remote, vec![0u8; 1000])).await.unwrap_err();
    assert!(matches!(err, StoreError::TooLargeForLattice { .. }), "{err}");
    a.enqueue(Envelope::new(&remote, "1")).await.unwrap();
    a.enqueue(Envelope::new(&remote, "2")).await.unwrap();
    let err = a.enqueue(Envelope::new(&remote, "3")).await.unwrap_err();
    assert!(err.to_string().contains("outbox towards node `b`"), "{err}");
    // A local actor is not affected.
    a.enqueue(Envelope::new(owned_by("a", 1).remove(0), "x")).await.unwrap();
}

#[tokio::test]
async fn identity_is_kept_and_a_different_node_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = Store::open(dir.path()).unwrap().identity().clone();
    let again = reopen(&dir, StoreOptions::default()).unwrap().identity().clone();
    assert_eq!(first, again);
    let wrong = reopen(&dir, StoreOptions { node_id: Some("other".into()), ..StoreOptions::default() });
    let err = wrong.err().unwrap().to_string();
    assert!(err.contains(&first.node_id) && err.contains("other"), "{err}");
    let bad = tempfile::tempdir().unwrap();
    let err = Store::open_with(bad.path(), StoreOptions { node_id: Some("No.Dots".into()), ..StoreOptions::default() });
    assert!(err.err().unwrap().to_string().contains("node id"));
}

/// Opens the store in `dir` again once the previous handle's committer has
/// let go of the file (it stops shortly after the handle is dropped).
fn reopen(dir: &tempfile::TempDir, options: StoreOptions) -> Result<Store, StoreError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        match Store::open_with(dir.path(), options.clone()) {
            Err(StoreError::InUse(_)) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            other => return other,
        }
    }
}

#[tokio::test]
async fn a_publication_reaches_the_subscribers_of_every_node_once_with_their_filters() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (node("a", &da, StoreOptions::default()).await, node("b", &db, StoreOptions::default()).await);
    a.remember_peer("b", &b.identity().incarnation).unwrap();
    b.remember_peer("a", &a.identity().incarnation).unwrap();
    let (on_a, on_b) = (owned_by("a", 1).remove(0), owned_by("b", 2));
    // Each subscription lives with its subscriber's owner.
    a.subscribe("orders.*", &on_a, "").await.unwrap();
    b.subscribe("orders.eu", &on_b[0], "amount > 100").await.unwrap();
    b.subscribe("orders.>", &on_b[1], "").await.unwrap();
    b.subscribe("orders.eu", &on_b[1], "").await.unwrap();

    let published = a.publish("orders.eu", Envelope::new("", "big").with_header("amount", "250")).await.unwrap();
    assert_eq!((published.copies, published.relayed_to.clone()), (1, vec!["b".to_string()]));
    a.publish("orders.eu", Envelope::new("", "small").with_header("amount", "5")).await.unwrap();
    assert_eq!(a.mailbox_depth(&on_a).unwrap(), 2);
    assert_eq!(a.outbox_depths().unwrap(), vec![("b".to_string(), 2)], "one relay per publication and node");

    let batch = batch_for(&a, "b");
    assert_eq!(accepted(&b.accept_inbound(batch.clone()).await.unwrap()).len(), 2);
    assert_eq!(b.mailbox_depth(&on_b[0]).unwrap(), 1, "the filter keeps the small one out");
    assert_eq!(b.mailbox_depth(&on_b[1]).unwrap(), 2, "two matching subscriptions, one copy each");
    // The acknowledgement was lost: the relays come again and copy nothing more.
    b.accept_inbound(batch).await.unwrap();
    assert_eq!((b.mailbox_depth(&on_b[0]).unwrap(), b.mailbox_depth(&on_b[1]).unwrap()), (1, 2));
    assert!(b.outbox_depths().unwrap().is_empty(), "a relay is relayed no further");
    let copy = b.peek_mailbox(&on_b[1], 10).unwrap().remove(0);
    assert_eq!((copy.kind, copy.header("topic")), (pigeon_store::MessageKind::Publish, Some("orders.eu")));
}

#[tokio::test]
async fn a_publication_is_refused_whole_when_a_nodes_outbox_is_full() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = node("a", &da, StoreOptions { outbox_bound: 1, ..StoreOptions::default() }).await;
    let b = node("b", &db, StoreOptions::default()).await;
    a.remember_peer("b", &b.identity().incarnation).unwrap();
    let on_a = owned_by("a", 1).remove(0);
    a.subscribe("t", &on_a, "").await.unwrap();
    a.publish("t", Envelope::new("", "1")).await.unwrap();
    let err = a.publish("t", Envelope::new("", "2")).await.unwrap_err();
    assert!(matches!(err, StoreError::OutboxFull { ref peer, .. } if peer == "b"), "{err}");
    assert_eq!(a.mailbox_depth(&on_a).unwrap(), 1, "no local copy of a refused publication");
}

#[tokio::test]
async fn an_undeploy_leaves_a_tombstone_until_the_type_is_deployed_again() {
    let dir = tempfile::tempdir().unwrap();
    let a = node("a", &dir, StoreOptions::default()).await;
    assert!(a.remove_type("counter", 200).unwrap());
    assert!(!a.remove_type("counter", 100).unwrap(), "already gone");
    assert_eq!(a.removed_types().unwrap(), vec![("counter".to_string(), 200)], "the latest undeploy wins");
    assert!(!a.remove_type("never", 50).unwrap());
    assert_eq!(a.removed_at("never").unwrap(), Some(50), "a peer's undeploy is remembered even here");
    assert!(a.list_types().unwrap().is_empty());
    a.put_type(&counter_type(), b"component").unwrap();
    assert_eq!(a.removed_at("counter").unwrap(), None, "deploying it again clears its tombstone");
}
