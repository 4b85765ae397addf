//! A redb table that records every write it makes into the batch's
//! commit-log frame (see the store's `log` module).
//!
//! The committer's tables are opened through [`Logged`]: an insert, a
//! remove or a range taken out goes to redb and, as raw key and value
//! bytes, into the frame, so the frame holds exactly what the batch
//! changed. Reads pass through to the table (`Deref`), which exposes
//! only `&self` methods: nothing can write past the log. The tables the
//! committer must not write (`types`, `peers`: written durably outside
//! it) are opened as [`ReadOnly`].

use std::borrow::Borrow;
use std::cell::RefCell;
use std::ops::{Deref, RangeBounds};

use redb::{AccessGuard, Key, StorageError, Table, TableDefinition, TableHandle, Value, WriteTransaction};

use crate::error::StoreError;
use crate::log::{FrameBuf, table_id};

pub(super) struct Logged<'t, K: Key + 'static, V: Value + 'static> {
    table: Table<'t, K, V>,
    id: u8,
    frame: &'t RefCell<FrameBuf>,
}

impl<'t, K: Key + 'static, V: Value + 'static> Logged<'t, K, V> {
    pub(super) fn open(
        txn: &'t WriteTransaction,
        def: TableDefinition<K, V>,
        frame: &'t RefCell<FrameBuf>,
    ) -> Result<Self, StoreError> {
        let id = table_id(def.name()).ok_or_else(|| {
            StoreError::Storage(format!("table `{}` is written by the committer but not in the commit log", def.name()))
        })?;
        Ok(Self { table: txn.open_table(def)?, id, frame })
    }

    pub(super) fn insert<'k, 'v>(
        &mut self,
        key: impl Borrow<K::SelfType<'k>>,
        value: impl Borrow<V::SelfType<'v>>,
    ) -> Result<Option<AccessGuard<'_, V>>, StorageError> {
        let (key, value) = (key.borrow(), value.borrow());
        let old = self.table.insert(key, value)?;
        self.frame.borrow_mut().put(self.id, K::as_bytes(key).as_ref(), Some(V::as_bytes(value).as_ref()));
        Ok(old)
    }

    pub(super) fn remove<'k>(
        &mut self,
        key: impl Borrow<K::SelfType<'k>>,
    ) -> Result<Option<AccessGuard<'_, V>>, StorageError> {
        let key = key.borrow();
        let old = self.table.remove(key)?;
        if old.is_some() {
            self.frame.borrow_mut().put(self.id, K::as_bytes(key).as_ref(), None);
        }
        Ok(old)
    }

    /// Removes every entry in `range`; returns their values' bytes, in key
    /// order.
    pub(super) fn take_range<'a, KR>(&mut self, range: impl RangeBounds<KR> + 'a) -> Result<Vec<Vec<u8>>, StoreError>
    where
        KR: Borrow<K::SelfType<'a>> + 'a,
    {
        let mut taken = Vec::new();
        let mut frame = self.frame.borrow_mut();
        for entry in self.table.extract_from_if(range, |_, _| true)? {
            let (key, value) = entry?;
            frame.put(self.id, K::as_bytes(&key.value()).as_ref(), None);
            taken.push(V::as_bytes(&value.value()).as_ref().to_vec());
        }
        Ok(taken)
    }
}

impl<'t, K: Key + 'static, V: Value + 'static> Deref for Logged<'t, K, V> {
    type Target = Table<'t, K, V>;

    fn deref(&self) -> &Self::Target {
        &self.table
    }
}

/// A table the committer reads and never writes.
pub(super) struct ReadOnly<'t, K: Key + 'static, V: Value + 'static>(Table<'t, K, V>);

impl<'t, K: Key + 'static, V: Value + 'static> ReadOnly<'t, K, V> {
    pub(super) fn open(txn: &'t WriteTransaction, def: TableDefinition<K, V>) -> Result<Self, StoreError> {
        Ok(Self(txn.open_table(def)?))
    }
}

impl<'t, K: Key + 'static, V: Value + 'static> Deref for ReadOnly<'t, K, V> {
    type Target = Table<'t, K, V>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}
