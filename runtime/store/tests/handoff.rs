//! Moving an actor between two stores, without a network: what moves with
//! it, that the new owner takes a handoff in once however often it comes,
//! and that the old owner keeps nothing of the actor but where it went.

use pigeon_store::handoff::HandoffOutcome;
use pigeon_store::ulid::Ulid;
use pigeon_store::{
    ActorType, Enqueued, Envelope, Placement, Store, StoreError, StoreOptions, TurnCommit, TypeLimits, now_ms,
};

/// A store outside any lattice (its node id does not matter).
fn store(dir: &tempfile::TempDir) -> Store {
    node("local", dir)
}

/// `counter/x` with state, the stored reply of a call it answered, messages
/// of three priorities, a delayed one and a dedup key; returns the call's id.
async fn busy_actor(store: &Store) -> Ulid {
    let state_writes = vec![("count".into(), Some(b"7".to_vec())), ("name".into(), Some(b"x".to_vec()))];
    let call = Ulid::new();
    let turn = TurnCommit {
        actor: "counter/x".into(),
        state_writes,
        message_id: Some((call, true)),
        reply: Some(b"42".to_vec()),
        ..TurnCommit::default()
    };
    store.commit_turn(turn).await.unwrap();
    for (payload, priority) in [("low", 1u8), ("high", 8), ("mid", 4), ("mid-2", 4)] {
        store.enqueue(Envelope::new("counter/x", payload).with_priority(priority)).await.unwrap();
    }
    let mut later = Envelope::new("counter/x", "later");
    later.not_before_ms = Some(now_ms() + 3_600_000);
    store.enqueue(later).await.unwrap();
    let mut keyed = Envelope::new("counter/x", "keyed");
    keyed.dedup_key = Some("order-1".into());
    store.enqueue(keyed).await.unwrap();
    // Another actor's rows stay where they are.
    store.enqueue(Envelope::new("counter/xy", "not me")).await.unwrap();
    call
}

fn payloads(envelopes: &[Envelope]) -> Vec<String> {
    envelopes.iter().map(|e| String::from_utf8_lossy(&e.payload).into_owned()).collect()
}

#[tokio::test]
async fn an_actor_moves_with_state_mailbox_delayed_messages_and_dedup_keys_once() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (old, new) = (store(&da), store(&db));
    let call = busy_actor(&old).await;
    let rows = old.actor_rows("counter/x").unwrap();
    assert_eq!(rows.replies.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [call.0]);
    assert_eq!(rows.state, vec![("count".into(), b"7".to_vec()), ("name".into(), b"x".to_vec())]);
    assert_eq!(payloads(&rows.mailbox), ["high", "mid", "mid-2", "keyed", "low"], "handling order");
    assert_eq!(payloads(&rows.delayed.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>()), ["later"]);
    assert_eq!(rows.dedup.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["order-1"]);
    assert_eq!(rows.stats.as_ref().map(|s| s.processed), Some(1), "its counters move too");

    // The new owner ran one turn of it during an earlier stay (a store
    // written before counters moved keeps them): the two add up.
    let state_writes = vec![("seen".into(), Some(b"1".to_vec()))];
    new.commit_turn(TurnCommit { actor: "counter/x".into(), state_writes, ..TurnCommit::default() }).await.unwrap();
    assert_eq!(new.accept_handoff(rows.clone(), 2).await.unwrap(), HandoffOutcome::Applied);
    assert_eq!(new.actor_stats("counter/x").unwrap().processed, 2, "its counters go on where they were");
    let arrived = new.peek_mailbox("counter/x", 100).unwrap();
    assert_eq!(payloads(&arrived), payloads(&rows.mailbox), "the mailbox keeps its order");
    assert_eq!(new.state_get("counter/x", "count").unwrap(), Some(b"7".to_vec()));
    assert_eq!(payloads(&new.delayed(10).unwrap().into_iter().map(|(_, e)| e).collect::<Vec<_>>()), ["later"]);
    let mut again = Envelope::new("counter/x", "keyed again");
    again.dedup_key = Some("order-1".into());
    assert_eq!(new.enqueue(again).await.unwrap(), Enqueued::Duplicate, "the dedup key moved with the actor");
    assert_eq!(new.reply(call).unwrap(), Some(Ok(Some(b"42".to_vec()))), "a retried caller gets the same answer");

    // The acknowledgement was lost: the same handoff again changes nothing,
    // not even state the new owner has written since.
    let state_writes = vec![("count".into(), Some(b"8".to_vec()))];
    new.commit_turn(TurnCommit { actor: "counter/x".into(), state_writes, ..TurnCommit::default() }).await.unwrap();
    assert_eq!(new.accept_handoff(rows, 2).await.unwrap(), HandoffOutcome::AlreadyHad);
    assert_eq!(new.state_get("counter/x", "count").unwrap(), Some(b"8".to_vec()), "state never goes back");
    assert_eq!(new.actor_stats("counter/x").unwrap().processed, 3, "its counters are added once");
    assert_eq!(new.mailbox_depth("counter/x").unwrap(), 5);

    // The old owner lets go: nothing of the actor stays but where it went.
    assert!(old.release_actor("counter/x", "n2", 2).await.unwrap() >= 10);
    let left = old.actor_rows("counter/x").unwrap();
    assert_eq!(left, pigeon_store::handoff::ActorRows { actor: "counter/x".into(), ..Default::default() });
    assert_eq!(old.reply(call).unwrap(), None, "its replies went with it");
    assert_eq!(old.mailbox_depth("counter/x").unwrap(), 0);
    assert_eq!(old.moved_to("counter/x").unwrap(), Some(("n2".to_string(), 2)));
    let listed: Vec<String> = old.list_actors(None, 100).unwrap().into_iter().map(|a| a.address).collect();
    assert!(!listed.contains(&"counter/x".to_string()), "the old owner lists it no more: {listed:?}");
    assert_eq!(old.mailbox_depth("counter/xy").unwrap(), 1, "an actor whose name extends it stays");
}

fn node(id: &str, dir: &tempfile::TempDir) -> Store {
    let store = Store::open_with(dir.path(), StoreOptions { node_id: Some(id.into()), ..StoreOptions::default() });
    let store = store.unwrap();
    let ty = ActorType {
        name: "counter".into(),
        component_hash: "00".into(),
        component_size: 1,
        limits: TypeLimits::default(),
        deployed_at_ms: now_ms(),
        links: Vec::new(),
    };
    store.put_type(&ty, b"component").unwrap();
    store
}

fn count(store: &Store, actor: &str) -> Result<(), StoreError> {
    let state_writes = vec![("count".into(), Some(b"1".to_vec()))];
    let turn = TurnCommit { actor: actor.into(), state_writes, ..TurnCommit::default() };
    block_on(store.commit_turn(turn))
}

/// Runs a store future to completion on the test's runtime.
fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_placement_change_fences_the_old_owner_and_holds_the_new_one_until_the_state_arrives() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (node("a", &da), node("b", &db));
    let before = Placement::new(["a".to_string()]);
    let after = before.changed_to(["b".to_string()]);
    for store in [&a, &b] {
        store.put_placement("counter", &before).await.unwrap();
    }
    count(&a, "counter/x").unwrap();
    a.enqueue(Envelope::new("counter/x", "first")).await.unwrap();
    a.subscribe("news", "counter/x", "").await.unwrap();
    assert_eq!(a.actors_of("counter").unwrap(), ["counter/x"]);

    for store in [&a, &b] {
        store.put_placement("counter", &after).await.unwrap();
    }
    // The old owner runs no turn for it any more; the new one none yet.
    assert!(matches!(count(&a, "counter/x"), Err(StoreError::ActorElsewhere { owner, .. }) if owner == "b"));
    b.enqueue(Envelope::new("counter/x", "held")).await.unwrap();
    assert_eq!(b.held_from("counter/x").unwrap().as_deref(), Some("a"));
    assert!(matches!(count(&b, "counter/x"), Err(StoreError::ActorHeld { from, .. }) if from == "a"));

    let rows = a.actor_rows("counter/x").unwrap();
    assert_eq!(rows.subscriptions, [("news".to_string(), String::new())]);
    assert_eq!(b.accept_handoff(rows, after.epoch).await.unwrap(), HandoffOutcome::Applied);
    assert_eq!(b.held_from("counter/x").unwrap(), None);
    let queued = b.peek_mailbox("counter/x", 10).unwrap();
    assert_eq!(payloads(&queued), ["first", "held"], "what the old owner had comes first");
    assert_eq!(b.subscriptions().unwrap(), [("news".to_string(), "counter/x".to_string(), String::new())]);
    count(&b, "counter/x").unwrap();
    a.release_actor("counter/x", "b", after.epoch).await.unwrap();
    assert!(a.actors_of("counter").unwrap().is_empty(), "the old owner keeps nothing of it");
    assert!(a.subscriptions().unwrap().is_empty());

    // An actor the old owner had nothing of is released by its word.
    let other = (0..).map(|i| format!("counter/{i}")).find(|x| after.moving(x).is_some()).unwrap();
    assert_eq!(b.held_from(&other).unwrap().as_deref(), Some("a"));
    b.mark_handoffs_done("counter", after.epoch, "a").await.unwrap();
    assert_eq!(b.held_from(&other).unwrap(), None);
}
