//! The store on its own: ordering, atomic turns, group commit, recovery,
//! and turn commits submitted without waiting (applied in submission order;
//! a commit built on one that did not happen is refused with it).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use pigeon_store::Clear;
use pigeon_store::{
    ActorType, DeadReason, Disposition, Envelope, MessageKind, Store, StoreError, TopicEffect, TurnCommit, TurnFailure,
    TypeLimits, now_ms,
};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    deploy(&store, "counter", TypeLimits::default());
    (dir, store)
}

fn deploy(store: &Store, name: &str, limits: TypeLimits) {
    let ty = ActorType {
        name: name.into(),
        component_hash: "00".into(),
        component_size: 1,
        limits,
        deployed_at_ms: now_ms(),
        links: Vec::new(),
    };
    store.put_type(&ty, b"component").unwrap();
}

#[tokio::test]
async fn next_message_is_highest_priority_then_oldest() {
    let (_dir, store) = store();
    for (i, p) in [2u8, 7, 2, 9, 0, 7].iter().enumerate() {
        store.enqueue(Envelope::new("counter/a", vec![i as u8]).with_priority(*p)).await.unwrap();
    }
    store.enqueue(Envelope::new("counter/other", b"x".to_vec()).with_priority(9)).await.unwrap();
    let order: Vec<u8> = store.peek_mailbox("counter/a", 100).unwrap().iter().map(|e| e.payload[0]).collect();
    assert_eq!(order, vec![3, 1, 5, 0, 2, 4]);
    let (_, first) = store.next_message("counter/a").unwrap().unwrap();
    assert_eq!(first.payload, vec![3]);
    assert_eq!(store.mailbox_depth("counter/a").unwrap(), 6);
    assert_eq!(store.mailbox_depth("counter/idle").unwrap(), 0);
}

#[tokio::test]
async fn a_turn_commits_removal_state_sends_and_reply_together() {
    let (_dir, store) = store();
    let call = Envelope::new("counter/a", b"inc".to_vec()).with_kind(MessageKind::Call);
    store.enqueue(call.clone()).await.unwrap();
    let (key, taken) = store.next_message("counter/a").unwrap().unwrap();
    let commit = TurnCommit {
        actor: "counter/a".into(),
        taken: Some(key),
        message_id: Some((taken.id, true)),
        state_writes: vec![("count".into(), Some(b"1".to_vec())), ("gone".into(), None)],
        sends: vec![Envelope::new("counter/b", b"inc".to_vec())],
        reply: Some(b"1".to_vec()),
        topics: vec![TopicEffect::Subscribe { topic: "news".into(), filter: "kind = 'x'".into() }],
        cancels: Vec::new(),
        depends_on: None,
        arrived: false,
    };
    store.commit_turn(commit).await.unwrap();
    assert_eq!(
        store.subscriptions().unwrap(),
        [("news".to_string(), "counter/a".to_string(), "kind = 'x'".to_string())]
    );
    assert!(store.next_message("counter/a").unwrap().is_none());
    assert_eq!(store.state_get("counter/a", "count").unwrap(), Some(b"1".to_vec()));
    assert_eq!(store.state_page("counter/a", "", None, 0).unwrap(), []);
    assert_eq!(store.state_page("counter/a", "", None, 5).unwrap(), [("count".to_string(), b"1".to_vec())]);
    assert_eq!(store.state_page("counter/a", "", Some("count"), 5).unwrap(), []);
    assert_eq!(store.state_page("counter/a", "c", Some("a"), 5).unwrap(), [("count".to_string(), b"1".to_vec())]);
    assert_eq!(store.mailbox_depth("counter/b").unwrap(), 1);
    assert_eq!(store.reply(call.id).unwrap(), Some(Ok(Some(b"1".to_vec()))));
    assert_eq!(store.actor_stats("counter/a").unwrap().processed, 1);
    assert_eq!(store.pending_actors(None, 10).unwrap(), vec![("counter/b".to_string(), 1)]);
    let b = store.actor_summary("counter/b").unwrap();
    assert_eq!(
        (b.address.as_str(), b.depths, b.stats.processed),
        ("counter/b", store.mailbox_depths("counter/b").unwrap(), 0)
    );
    assert_eq!(store.actor_summary("counter/a").unwrap().stats, store.actor_stats("counter/a").unwrap());
    let totals = store.totals().unwrap();
    assert_eq!((totals.actors, totals.pending_actors, totals.queued.iter().sum::<u64>()), (1, 1, 1));

    // Committing the same message again is refused and changes nothing.
    let again = TurnCommit {
        actor: "counter/a".into(),
        taken: Some(key),
        state_writes: vec![("count".into(), Some(b"2".to_vec()))],
        ..TurnCommit::default()
    };
    let err = store.commit_turn(again).await.unwrap_err();
    assert!(matches!(err, StoreError::MessageGone { .. }), "{err}");
    assert_eq!(store.state_get("counter/a", "count").unwrap(), Some(b"1".to_vec()));
}

#[tokio::test]
async fn refuses_unknown_types_and_full_mailboxes_without_side_effects() {
    let (_dir, store) = store();
    deploy(&store, "small", TypeLimits { mailbox_bound: 2, ..TypeLimits::default() });
    let err = store.enqueue(Envelope::new("nobody/a", b"x".to_vec())).await.unwrap_err();
    assert!(err.to_string().contains("unknown actor type `nobody`"), "{err}");
    store.enqueue(Envelope::new("small/a", b"1".to_vec())).await.unwrap();
    store.enqueue(Envelope::new("small/a", b"2".to_vec())).await.unwrap();
    let err = store.enqueue(Envelope::new("small/a", b"3".to_vec())).await.unwrap_err();
    assert!(err.to_string().contains("mailbox of `small/a` is full (2 pending messages)"), "{err}");
    assert_eq!(store.mailbox_depth("small/a").unwrap(), 2);
}

#[tokio::test]
async fn failures_go_to_backoff_keeping_their_place_then_to_dead_letters() {
    let (_dir, store) = store();
    store.enqueue(Envelope::new("counter/a", b"first".to_vec())).await.unwrap();
    store.enqueue(Envelope::new("counter/a", b"second".to_vec())).await.unwrap();
    let (key, mut env) = store.next_message("counter/a").unwrap().unwrap();
    env.failures = 1;
    env.last_error = Some("boom".into());
    let due = now_ms() + 60_000;
    let failure = TurnFailure {
        actor: "counter/a".into(),
        taken: Some(key),
        envelope: env,
        disposition: Disposition::RetryAt { due_ms: due },
        arrived: false,
    };
    store.fail_turn(failure).await.unwrap();
    assert_eq!(store.next_message("counter/a").unwrap().unwrap().1.payload, b"second");
    assert_eq!(store.next_due().unwrap(), Some(due));
    assert_eq!(store.promote_due(due - 1).await.unwrap(), 0);
    assert_eq!(store.promote_due(due).await.unwrap(), 1);
    // Back at its original place: ahead of the later message.
    let (key, mut env) = store.next_message("counter/a").unwrap().unwrap();
    assert_eq!((env.payload.as_slice(), env.failures), (&b"first"[..], 1));

    env.failures = 2;
    env.last_error = Some("boom again".into());
    let failure = TurnFailure {
        actor: "counter/a".into(),
        taken: Some(key),
        envelope: env,
        disposition: Disposition::DeadLetter { reason: DeadReason::Failed },
        arrived: false,
    };
    store.fail_turn(failure).await.unwrap();
    let dead = store.dead_letters(10).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].error.as_str(), dead[0].envelope.payload.as_slice()), ("boom again", &b"first"[..]));
    let stats = store.actor_stats("counter/a").unwrap();
    assert_eq!((stats.failed, stats.dead_lettered), (2, 1));
}

/// A message handed to its actor before it was stored (the node's direct
/// delivery) arrives with its turn's record: a failed turn keeps it for its
/// retry, where an in-memory message's failure keeps nothing.
#[tokio::test]
async fn a_message_that_arrives_with_its_failed_turn_is_kept_for_the_retry() {
    let (_dir, store) = store();
    let failed = |payload: &[u8], arrived: bool, due_ms: u64| {
        let mut envelope = Envelope::new("counter/a", payload.to_vec());
        envelope.failures = 1;
        envelope.last_error = Some("boom".into());
        let disposition = Disposition::RetryAt { due_ms };
        TurnFailure { actor: "counter/a".into(), taken: None, envelope, disposition, arrived }
    };
    let due = now_ms() + 60_000;
    store.fail_turn(failed(b"in memory", false, due)).await.unwrap();
    assert_eq!(store.next_due().unwrap(), None);
    store.fail_turn(failed(b"arrived", true, due)).await.unwrap();
    assert_eq!(store.next_due().unwrap(), Some(due));
    assert_eq!(store.promote_due(due).await.unwrap(), 1);
    let (_, retried) = store.next_message("counter/a").unwrap().unwrap();
    assert_eq!((retried.payload.as_slice(), retried.failures), (&b"arrived"[..], 1));
    assert_eq!(store.actor_stats("counter/a").unwrap().failed, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_share_commits() {
    let (_dir, store) = store();
    let store = Arc::new(store);
    let before = store.commit_stats().batches.load(Ordering::Relaxed);
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                for j in 0..20 {
                    store.enqueue(Envelope::new(format!("counter/{i}"), vec![j])).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let batches = store.commit_stats().batches.load(Ordering::Relaxed) - before;
    assert_eq!(store.pending_actors(None, 100).unwrap().len(), 64);
    assert!(batches < 64 * 20, "1,280 enqueues took {batches} commits: no grouping happened");
}

/// Many requests for one actor in the same batches: the bound holds
/// exactly, and depths and counters add up once the batches are written.
#[tokio::test]
async fn sends_and_turns_batched_together_keep_bounds_depths_and_counters_exact() {
    let (_dir, store) = store();
    deploy(&store, "small", TypeLimits { mailbox_bound: 10, ..TypeLimits::default() });
    let store = Arc::new(store);
    let send = |store: &Arc<Store>| {
        let store = store.clone();
        tokio::spawn(async move { store.enqueue(Envelope::new("small/a", b"x".to_vec())).await.is_ok() })
    };
    let sends: Vec<_> = (0..64).map(|_| send(&store)).collect();
    let mut accepted = 0;
    for s in sends {
        accepted += usize::from(s.await.unwrap());
    }
    assert_eq!(accepted, 10, "the bound of 10 let {accepted} of 64 concurrent sends in");

    // Every held message's turn and five new sends, all at once.
    let mut turns = Vec::new();
    for (key, _) in store.next_messages("small/a", 100).unwrap() {
        let store = store.clone();
        let commit = TurnCommit { actor: "small/a".into(), taken: Some(key), ..TurnCommit::default() };
        turns.push(tokio::spawn(async move { store.commit_turn(commit).await.is_ok() }));
    }
    let more: Vec<_> = (0..5).map(|_| send(&store)).collect();
    for t in turns.into_iter().chain(more) {
        assert!(t.await.unwrap());
    }
    assert_eq!(store.mailbox_depth("small/a").unwrap(), 5);
    assert_eq!(store.actor_stats("small/a").unwrap().processed, 10);
    assert_eq!(store.pending_actors(None, 10).unwrap(), [("small/a".to_string(), 5)]);

    for (key, _) in store.next_messages("small/a", 100).unwrap() {
        let commit = TurnCommit { actor: "small/a".into(), taken: Some(key), ..TurnCommit::default() };
        store.commit_turn(commit).await.unwrap();
    }
    assert!(store.pending_actors(None, 10).unwrap().is_empty(), "an emptied mailbox leaves the pending index");
    assert_eq!(store.actor_stats("small/a").unwrap().processed, 15);
}

#[tokio::test]
async fn everything_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        deploy(&store, "counter", TypeLimits::default());
        for i in 0..3 {
            store.enqueue(Envelope::new(format!("counter/{i}"), b"x".to_vec())).await.unwrap();
        }
    }
    let store = eventually_open(dir.path());
    assert_eq!(store.list_types().unwrap().len(), 1);
    assert_eq!(store.component("00").unwrap(), Some(b"component".to_vec()));
    let pending: Vec<String> = store.pending_actors(None, 10).unwrap().into_iter().map(|(a, _)| a).collect();
    assert_eq!(pending, ["counter/0", "counter/1", "counter/2"]);
    assert_eq!(store.pending_actors(Some("counter/0"), 1).unwrap()[0].0, "counter/1");
    // New sequence numbers continue after the old ones: order is kept.
    store.enqueue(Envelope::new("counter/0", b"y".to_vec())).await.unwrap();
    let payloads: Vec<Vec<u8>> = store.peek_mailbox("counter/0", 10).unwrap().into_iter().map(|e| e.payload).collect();
    assert_eq!(payloads, vec![b"x".to_vec(), b"y".to_vec()]);
}

/// The committer thread releases the database when its last handle goes;
/// reopening waits for that.
fn eventually_open(dir: &std::path::Path) -> Store {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match Store::open(dir) {
            Ok(store) => return store,
            Err(_) if std::time::Instant::now() < deadline => std::thread::sleep(std::time::Duration::from_millis(5)),
            Err(e) => panic!("cannot reopen the store: {e}"),
        }
    }
}

#[tokio::test]
async fn lists_actors_with_depths_by_priority_and_counters() {
    let (_dir, store) = store();
    for p in [1u8, 1, 9] {
        store.enqueue(Envelope::new("counter/b", b"x".to_vec()).with_priority(p)).await.unwrap();
    }
    store.enqueue(Envelope::new("counter/a", b"x".to_vec())).await.unwrap();
    let (key, _) = store.next_message("counter/a").unwrap().unwrap();
    let commit = TurnCommit { actor: "counter/a".into(), taken: Some(key), ..TurnCommit::default() };
    store.commit_turn(commit).await.unwrap();

    let actors = store.list_actors(None, 10).unwrap();
    let names: Vec<&str> = actors.iter().map(|a| a.address.as_str()).collect();
    assert_eq!(names, ["counter/a", "counter/b"], "idle actors that ran are listed too");
    assert_eq!(actors[0].depths, [0; 10]);
    assert_eq!(actors[0].stats.processed, 1);
    assert_eq!((actors[1].depths[1], actors[1].depths[9], actors[1].depths.iter().sum::<u64>()), (2, 1, 3));
    let page = store.list_actors(Some("counter/a"), 10).unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(store.list_actors(None, 1).unwrap()[0].address, "counter/a");
}

#[tokio::test]
async fn dead_letters_are_replayed_or_purged_by_id_or_all() {
    let (_dir, store) = store();
    for payload in [b"a", b"b", b"c"] {
        store.enqueue(Envelope::new("counter/d", payload.to_vec()).with_priority(7)).await.unwrap();
        let (key, mut env) = store.next_message("counter/d").unwrap().unwrap();
        env.failures = 5;
        env.last_error = Some("boom".into());
        let disposition = Disposition::DeadLetter { reason: DeadReason::Failed };
        let failure =
            TurnFailure { actor: "counter/d".into(), taken: Some(key), envelope: env, disposition, arrived: false };
        store.fail_turn(failure).await.unwrap();
    }
    let dead = store.dead_letters(10).unwrap();
    assert_eq!(dead.len(), 3);
    assert_eq!(store.dead_letters_of("counter/d", 2).unwrap().len(), 2, "bounded by the limit");
    assert!(store.dead_letters_of("counter/other", 10).unwrap().is_empty());
    // What can be done is done; what cannot is named.
    let selected = store.replay_dead_letters(Some(vec![dead[0].id, 999_999, dead[0].id])).await.unwrap();
    assert_eq!((selected.done, selected.missing), (vec![dead[0].id], vec![999_999]));
    let (_, replayed) = store.next_message("counter/d").unwrap().unwrap();
    assert_eq!((replayed.payload.as_slice(), replayed.failures, replayed.priority), (&b"a"[..], 0, 7));
    let selected = store.purge_dead_letters(Some(vec![dead[1].id, dead[0].id])).await.unwrap();
    assert_eq!((selected.done, selected.missing), (vec![dead[1].id], vec![dead[0].id]), "replayed is gone");
    assert!(store.dead_letter(dead[1].id).is_err());
    assert_eq!(store.replay_dead_letters(None).await.unwrap().done.len(), 1);
    assert_eq!(store.mailbox_depth("counter/d").unwrap(), 2);
    assert!(store.dead_letters(10).unwrap().is_empty());
    assert!(store.purge_dead_letters(None).await.unwrap().done.is_empty());
}

#[tokio::test]
async fn the_sweep_forgets_dedup_keys_and_replies_past_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let window = 60_000;
    let store =
        Store::open_with(dir.path(), pigeon_store::StoreOptions { dedup_retention_ms: window, ..Default::default() })
            .unwrap();
    deploy(&store, "counter", TypeLimits::default());
    let mut keyed = Envelope::new("counter/a", b"x".to_vec());
    keyed.dedup_key = Some("k".into());
    store.enqueue(keyed.clone()).await.unwrap();
    let call = Envelope::new("counter/a", b"get".to_vec()).with_kind(MessageKind::Call);
    store.enqueue(call.clone()).await.unwrap();
    for _ in 0..2 {
        let (key, env) = store.next_message("counter/a").unwrap().unwrap();
        let commit = TurnCommit {
            actor: "counter/a".into(),
            taken: Some(key),
            message_id: Some((env.id, env.kind == MessageKind::Call)),
            ..TurnCommit::default()
        };
        store.commit_turn(commit).await.unwrap();
    }
    assert_eq!(store.reply(call.id).unwrap(), Some(Ok(None)), "an empty reply is stored too");

    // Within the window nothing goes, and the key still deduplicates.
    assert_eq!(store.sweep(now_ms()).await.unwrap(), 0);
    assert_eq!(store.enqueue(keyed.clone()).await.unwrap(), pigeon_store::Enqueued::Duplicate);
    // Past it, both go.
    assert_eq!(store.sweep(now_ms() + window + 1).await.unwrap(), 2);
    assert_eq!(store.reply(call.id).unwrap(), None);
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
    assert_eq!(store.reply(call.id).unwrap(), Some(Ok(Some(b"1".to_vec()))));
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

#[tokio::test]
async fn clearing_an_actor_takes_its_mailbox_delayed_messages_or_state_and_nothing_else() {
    let (_dir, store) = store();
    for p in [1u8, 5, 9] {
        store.enqueue(Envelope::new("counter/a", b"m".to_vec()).with_priority(p)).await.unwrap();
    }
    let mut later = Envelope::new("counter/a", b"later".to_vec());
    later.not_before_ms = Some(now_ms() + 3_600_000);
    store.enqueue(later).await.unwrap();
    store.enqueue(Envelope::new("counter/b", b"other".to_vec())).await.unwrap();
    let (key, taken) = store.next_message("counter/b").unwrap().unwrap();
    let commit = TurnCommit {
        actor: "counter/b".into(),
        taken: Some(key),
        message_id: Some((taken.id, false)),
        state_writes: vec![("k".into(), Some(b"v".to_vec()))],
        ..TurnCommit::default()
    };
    store.commit_turn(commit).await.unwrap();
    store.enqueue(Envelope::new("counter/b", b"kept".to_vec())).await.unwrap();
    assert_eq!(store.delayed_of("counter/a", 10).unwrap().len(), 1);

    assert_eq!(store.clear("counter/a", Clear::Mailbox).await.unwrap(), 4, "three queued and one delayed");
    assert_eq!(store.mailbox_depth("counter/a").unwrap(), 0);
    assert!(store.next_message("counter/a").unwrap().is_none());
    assert!(store.delayed_of("counter/a", 10).unwrap().is_empty());
    assert_eq!(store.actor_summary("counter/a").unwrap().depths, [0; 10], "the pending index is zero too");
    assert_eq!(store.mailbox_depth("counter/b").unwrap(), 1, "another actor's mailbox stays");

    // An actor whose address extends counter/b's keeps its state.
    let neighbour = TurnCommit {
        actor: "counter/b2".into(),
        state_writes: vec![("k".into(), Some(b"w".to_vec()))],
        ..TurnCommit::default()
    };
    store.commit_turn(neighbour).await.unwrap();
    assert_eq!(store.clear("counter/b", Clear::State).await.unwrap(), 1);
    assert_eq!(store.state_get("counter/b", "k").unwrap(), None);
    assert_eq!(store.state_get("counter/b2", "k").unwrap(), Some(b"w".to_vec()), "the neighbour's state stays");
    assert_eq!(store.mailbox_depth("counter/b").unwrap(), 1, "deleting state leaves the mailbox");
}

/// A batch too big for what is left of the commit log is a checkpoint
/// instead (written to redb durably), and is there after a reopen like
/// every other.
#[tokio::test]
async fn batches_bigger_than_the_commit_log_are_checkpoints() {
    let (dir, store) = store();
    let before = store.commit_stats().checkpoints.load(Ordering::Relaxed);
    // 12 messages of 1 MiB, one at a time: more than the 8 MiB log holds.
    for i in 0..12u8 {
        store.enqueue(Envelope::new("counter/big", vec![i; 1 << 20])).await.unwrap();
    }
    let checkpoints = store.commit_stats().checkpoints.load(Ordering::Relaxed) - before;
    assert!(checkpoints >= 1, "12 MiB went through an 8 MiB log without a checkpoint");
    drop(store);
    let store = eventually_open(dir.path());
    let payloads: Vec<u8> = store.peek_mailbox("counter/big", 100).unwrap().iter().map(|e| e.payload[0]).collect();
    assert_eq!(payloads, (0..12).collect::<Vec<u8>>());
}
