//! The log's recovery against a real redb file. A crash is the state the
//! log finds after one: redb as of its last checkpoint, the log holding
//! the frames synced since (a non-durable commit never reaches the file
//! on its own, and closing a redb `Database` would make it durable).

use std::collections::BTreeMap;

use proptest::prelude::*;
use redb::{Database, ReadableDatabase, ReadableTable, Value};

use super::frame::frames;
use super::*;
use crate::schema::STATE;

fn state_id() -> u8 {
    table_id("state").expect("state is logged")
}

/// A frame of writes to the `state` table: `(key, Some(value) | None)`.
fn frame(writes: &[(&str, Option<&[u8]>)]) -> FrameBuf {
    let mut buf = FrameBuf::default();
    for (key, value) in writes {
        let key = <(&str, &str)>::as_bytes(&("counter/a", *key));
        buf.put(state_id(), &key, *value);
    }
    buf
}

fn rows(db: &Database) -> BTreeMap<String, Vec<u8>> {
    let txn = db.begin_read().expect("read");
    let table = txn.open_table(STATE).expect("state table");
    table
        .iter()
        .expect("iter")
        .map(|e| {
            let (k, v) = e.expect("row");
            (k.value().1.to_string(), v.value().to_vec())
        })
        .collect()
}

/// Applies `frame` to redb durably, as a checkpoint that lags the log
/// would have it (a durable write outside the committer persists the
/// committer's earlier commits).
fn persist(db: &Database, frame: &mut FrameBuf) {
    let bytes = frame.seal(1).to_vec();
    let payload = frames(&bytes, 1).next().expect("a frame");
    let txn = db.begin_write().expect("write");
    for write in frame::writes(payload) {
        tables::apply(&txn, &write.expect("parses")).expect("applies");
    }
    txn.commit().expect("commit");
}

/// A redb file with the store's tables.
fn store_db(dir: &std::path::Path) -> Database {
    let db = Database::create(dir.join(crate::DB_FILE)).expect("db");
    crate::schema::create_tables(&db).expect("tables");
    db
}

#[test]
fn frames_synced_after_the_checkpoint_are_replayed_and_a_torn_one_is_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = store_db(dir.path());
    let (mut log, found) = CommitLog::recover(&db, dir.path(), CHECKPOINT_EVERY).expect("recovers");
    assert_eq!(found, Recovered::default());
    let generation = log.generation();
    log.append(frame(&[("n", Some(b"1")), ("gone", Some(b"x"))]).seal(generation)).expect("append");
    log.append(frame(&[("n", Some(b"2")), ("gone", None)]).seal(generation)).expect("append");
    // The third frame was being written when the node died.
    let mut torn = frame(&[("n", Some(b"3"))]).seal(generation).to_vec();
    torn.truncate(torn.len() - 1);
    log.file.write_all_at(&torn, log.offset).expect("torn write");
    drop(log);
    assert!(rows(&db).is_empty(), "redb holds none of it: it is as of its checkpoint");

    let (log, found) = CommitLog::recover(&db, dir.path(), CHECKPOINT_EVERY).expect("recovers");
    assert_eq!(found, Recovered { frames: 2, writes: 4 });
    assert_eq!(rows(&db), BTreeMap::from([("n".to_string(), b"2".to_vec())]));
    assert_ne!(log.generation(), generation, "the replay checkpointed into a new generation");

    // The replayed frames are still in the file, but of a dead generation.
    drop(log);
    let (_, found) = CommitLog::recover(&db, dir.path(), CHECKPOINT_EVERY).expect("recovers");
    assert_eq!(found, Recovered::default());
}

#[test]
fn the_log_is_created_at_its_full_size_and_a_missing_one_is_recreated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = store_db(dir.path());
    drop(CommitLog::recover(&db, dir.path(), CHECKPOINT_EVERY).expect("recovers"));
    let path = dir.path().join(LOG_FILE);
    assert_eq!(std::fs::metadata(&path).expect("log file").len(), LOG_BYTES);
    std::fs::remove_file(&path).expect("removed");
    drop(CommitLog::recover(&db, dir.path(), CHECKPOINT_EVERY).expect("recovers without it"));
    assert_eq!(std::fs::metadata(&path).expect("log file").len(), LOG_BYTES);
}

#[test]
fn a_frame_this_version_cannot_apply_is_an_error_that_names_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = store_db(dir.path());
    let (mut log, _) = CommitLog::recover(&db, dir.path(), CHECKPOINT_EVERY).expect("recovers");
    let mut unknown = FrameBuf::default();
    unknown.put(250, b"k", Some(b"v"));
    log.append(unknown.seal(log.generation())).expect("append");
    drop(log);
    let error = CommitLog::recover(&db, dir.path(), CHECKPOINT_EVERY).err().expect("refused").to_string();
    assert!(error.contains("frame 0 of the commit log") && error.contains("table #250"), "{error}");
}

#[test]
fn a_failed_frame_makes_the_next_batch_a_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = store_db(dir.path());
    let (mut log, _) = CommitLog::recover(&db, dir.path(), CHECKPOINT_EVERY).expect("recovers");
    assert!(!log.wants_checkpoint(100) || log.last_checkpoint.elapsed() >= log.interval);
    let mut withdrawn = frame(&[("n", Some(b"1"))]);
    let len = withdrawn.len();
    log.append(withdrawn.seal(log.generation())).expect("append");
    log.withdraw(len);
    assert!(log.wants_checkpoint(0));
    drop(log);
    // Its header is gone, so a crash before that checkpoint replays nothing.
    let (_, found) = CommitLog::recover(&db, dir.path(), CHECKPOINT_EVERY).expect("recovers");
    assert_eq!(found.frames, 0);
    assert!(rows(&db).is_empty());
}

#[test]
fn a_frame_that_does_not_fit_what_is_left_of_the_log_asks_for_a_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = store_db(dir.path());
    let (log, _) = CommitLog::recover(&db, dir.path(), CHECKPOINT_EVERY).expect("recovers");
    assert!(log.wants_checkpoint(LOG_BYTES as usize + 1));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Whatever prefix of the log the checkpoint already holds, the replay
    /// ends in the state of the whole log (writes are blind).
    #[test]
    fn replay_onto_a_lagging_checkpoint_gives_the_state_of_the_whole_log(
        batches in prop::collection::vec(
            prop::collection::vec((0u8..6, prop::option::of(prop::collection::vec(any::<u8>(), 0..8))), 1..6),
            1..8,
        ),
        persisted in 0usize..8,
    ) {
        let key = |k: u8| format!("k{k}");
        let dir = tempfile::tempdir().expect("tempdir");
        let db = store_db(dir.path());
        let (mut log, _) = CommitLog::recover(&db, dir.path(), CHECKPOINT_EVERY).expect("recovers");
        let mut expected = BTreeMap::new();
        let mut built = Vec::new();
        for batch in &batches {
            let keys: Vec<String> = batch.iter().map(|(k, _)| key(*k)).collect();
            let writes: Vec<(&str, Option<&[u8]>)> =
                keys.iter().zip(batch).map(|(k, (_, v))| (k.as_str(), v.as_deref())).collect();
            for (k, v) in &writes {
                match v {
                    Some(v) => expected.insert(k.to_string(), v.to_vec()),
                    None => expected.remove(*k),
                };
            }
            let mut buf = frame(&writes);
            log.append(buf.seal(log.generation())).expect("append");
            built.push(frame(&writes));
        }
        for buf in built.iter_mut().take(persisted) {
            persist(&db, buf);
        }
        drop(log);
        let (_, found) = CommitLog::recover(&db, dir.path(), CHECKPOINT_EVERY).expect("recovers");
        prop_assert_eq!(found.frames, batches.len());
        prop_assert_eq!(rows(&db), expected);
    }
}
