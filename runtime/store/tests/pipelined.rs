//! Turn commits submitted without waiting: applied in submission order, and
//! a commit built on one that did not happen is refused with it.

use pigeon_store::{ActorType, Envelope, MessageKind, Store, StoreError, TurnCommit, TypeLimits, now_ms};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let ty = ActorType {
        name: "counter".into(),
        component_hash: "00".into(),
        component_size: 1,
        limits: TypeLimits::default(),
        deployed_at_ms: now_ms(),
        links: Vec::new(),
    };
    store.put_type(&ty, b"component").unwrap();
    (dir, store)
}

fn write(actor: &str, key: &str, value: &str, depends_on: Option<u64>) -> TurnCommit {
    TurnCommit {
        actor: actor.into(),
        state_writes: vec![(key.into(), Some(value.as_bytes().to_vec()))],
        depends_on,
        ..TurnCommit::default()
    }
}

#[tokio::test]
async fn submitted_commits_are_applied_in_submission_order() {
    let (_dir, store) = store();
    let mut tickets: Vec<_> =
        (0..200).map(|i| store.submit_turn(write("counter/a", "n", &i.to_string(), None))).collect();
    for ticket in &mut tickets {
        ticket.outcome().await.unwrap();
    }
    assert_eq!(store.state_get("counter/a", "n").unwrap(), Some(b"199".to_vec()));
}

#[tokio::test]
async fn a_commit_built_on_a_refused_one_is_refused_and_others_are_not() {
    let (_dir, store) = store();
    store.enqueue(Envelope::new("counter/a", b"inc".to_vec())).await.unwrap();
    let (key, _) = store.next_message("counter/a").unwrap().unwrap();
    store
        .commit_turn(TurnCommit { actor: "counter/a".into(), taken: Some(key), ..TurnCommit::default() })
        .await
        .unwrap();

    // A turn on a message that is gone (refused), then a turn of the same
    // actor built on it, and one of another actor that depends on nothing.
    let gone = TurnCommit { taken: Some(key), ..write("counter/a", "n", "1", None) };
    let mut first = store.submit_turn(gone);
    let mut built_on_it = store.submit_turn(write("counter/a", "n", "2", Some(first.epoch)));
    let mut unrelated = store.submit_turn(write("counter/b", "n", "1", None));
    assert!(matches!(first.outcome().await, Err(StoreError::MessageGone { .. })));
    let lost = built_on_it.outcome().await.unwrap_err();
    assert!(matches!(lost, StoreError::DependencyLost { .. }), "{lost}");
    assert!(lost.to_string().contains("handled again"), "{lost}");
    unrelated.outcome().await.unwrap();
    assert_eq!(store.state_get("counter/a", "n").unwrap(), None);
    assert_eq!(store.state_get("counter/b", "n").unwrap(), Some(b"1".to_vec()));

    // What depends on an epoch after the refusal goes through.
    store.submit_turn(write("counter/a", "n", "3", Some(store.commit_epoch()))).outcome().await.unwrap();
    assert_eq!(store.state_get("counter/a", "n").unwrap(), Some(b"3".to_vec()));
}

#[tokio::test]
async fn a_call_handled_twice_keeps_the_first_answer() {
    let (_dir, store) = store();
    let call = Envelope::new("counter/a", b"inc".to_vec()).with_kind(MessageKind::Call);
    let answer = |value: &str| TurnCommit {
        message_id: Some((call.id, true)),
        reply: Some(value.as_bytes().to_vec()),
        ..write("counter/a", "n", value, None)
    };
    let mut first = store.submit_turn(answer("1"));
    let mut second = store.submit_turn(answer("2"));
    first.outcome().await.unwrap();
    let refused = second.outcome().await.unwrap_err();
    assert!(matches!(refused, StoreError::AlreadyAnswered { .. }), "{refused}");
    assert_eq!(store.reply(call.id).unwrap(), Some(Some(b"1".to_vec())));
    assert_eq!(store.state_get("counter/a", "n").unwrap(), Some(b"1".to_vec()));
}

#[tokio::test]
async fn a_turn_that_writes_nothing_but_depends_waits_for_its_dependency() {
    let (_dir, store) = store();
    let quiet = |depends_on| TurnCommit { actor: "counter/a".into(), depends_on, ..TurnCommit::default() };
    assert!(!store.submit_turn(quiet(None)).is_pending(), "nothing to write, nothing to wait for");
    let epoch = store.commit_epoch();
    let mut waits = store.submit_turn(quiet(Some(epoch)));
    assert!(waits.is_pending());
    waits.outcome().await.unwrap();
    assert_eq!(store.actor_stats("counter/a").unwrap().processed, 0, "a turn that wrote nothing is not counted");
}
