//! The tables whose writes the commit log carries, each under a one-byte
//! id, and the replay of one logged write into its table.
//!
//! Every table the group committer writes is here. The tables written
//! outside it — the registry (`types`, `components`, `removed_types`),
//! `peers` and `identity` — are not: they commit durably on their own,
//! and a replayed older write must never land on top of theirs. The
//! committer opens `types` and `peers` read-only for the same reason.
//!
//! An id is part of the file format: a log written by one version is
//! replayed by the next after an upgrade, so ids are never reused or
//! renumbered, only added.

use redb::{Key, TableDefinition, TableHandle, Value, WriteTransaction};

use super::frame::Write;
use crate::schema::*;

macro_rules! logged_tables {
    ($($def:ident = $id:literal),* $(,)?) => {
        /// The log's id of the table called `name`, if the log carries it.
        pub(crate) fn table_id(name: &str) -> Option<u8> {
            $(if name == $def.name() { return Some($id); })*
            None
        }

        /// Applies one logged write to its table.
        pub(super) fn apply(txn: &WriteTransaction, write: &Write<'_>) -> Result<(), ReplayError> {
            match write.table {
                $($id => put(txn, $def, write),)*
                other => Err(ReplayError::UnknownTable(other)),
            }
        }
    };
}

logged_tables! {
    MAILBOX = 1,
    PENDING = 2,
    DELAYED = 3,
    DELAYED_BY_ACTOR = 4,
    STATE = 5,
    DEAD = 6,
    REPLIES = 7,
    STATS = 8,
    META = 9,
    DEDUP = 10,
    SUBSCRIPTIONS = 11,
    SUBSCRIPTION_PATTERNS = 12,
    TIMERS = 13,
    CRASHES = 14,
    PLACEMENTS = 15,
    OUTBOX = 16,
    OUTBOX_ORDER = 17,
    OUTBOX_DEPTH = 18,
    INBOUND = 19,
    HANDOFFS = 20,
    REPLIES_BY_ACTOR = 21,
    REPLY_OWNERS = 22,
    MOVED_ACTORS = 23,
    HANDOFFS_DONE = 24,
}

/// Why a logged write could not be replayed.
#[derive(Debug)]
pub(super) enum ReplayError {
    /// The id names no table of this version (a newer version wrote it).
    UnknownTable(u8),
    /// redb failed underneath.
    Storage(redb::Error),
}

impl<E: Into<redb::Error>> From<E> for ReplayError {
    fn from(e: E) -> Self {
        Self::Storage(e.into())
    }
}

/// Sets (or removes) the logged key of `def` to the logged value. The
/// bytes are the ones redb encoded when the batch wrote them, so decoding
/// them with the same types gives back the same row.
fn put<K: Key + 'static, V: Value + 'static>(
    txn: &WriteTransaction,
    def: TableDefinition<K, V>,
    write: &Write<'_>,
) -> Result<(), ReplayError> {
    let mut table = txn.open_table(def)?;
    let key = K::from_bytes(write.key);
    match write.value {
        Some(value) => {
            table.insert(key, V::from_bytes(value))?;
        }
        None => {
            table.remove(key)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // That every table the committer writes has an id is checked where it
    // opens them (`Logged::open` refuses one without), and two tables under
    // one id would be an unreachable arm of `apply`, which the lints refuse.
    #[test]
    fn the_tables_written_outside_the_committer_are_not_logged() {
        assert_eq!(table_id(STATE.name()), Some(5));
        for outside in [TYPES.name(), COMPONENTS.name(), REMOVED_TYPES.name(), PEERS.name(), IDENTITY.name()] {
            assert_eq!(table_id(outside), None, "{outside} is written outside the committer");
        }
    }
}
