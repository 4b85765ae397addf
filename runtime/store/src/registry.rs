//! The registry of deployed actor types and their component bytes.
//!
//! Component bytes are stored by content hash, so redeploying the same
//! component under another name stores it once, and a node restarts with
//! everything it needs from its data directory alone. Registry writes are
//! rare and go straight to a write transaction (redb serialises them with the
//! group committer's).

use redb::ReadableTable;

use crate::envelope::{decode_record, encode_record};
use crate::schema::{ActorType, COMPONENTS, REMOVED_TYPES, TYPES};
use crate::{Store, StoreError};

impl Store {
    /// Records `ty` and its component bytes, replacing any type of that name.
    pub fn put_type(&self, ty: &ActorType, component: &[u8]) -> Result<(), StoreError> {
        self.inner.disk.check_room()?;
        let txn = self.inner.db.get()?.begin_write()?;
        {
            let mut components = txn.open_table(COMPONENTS)?;
            if components.get(ty.component_hash.as_str())?.is_none() {
                components.insert(ty.component_hash.as_str(), component)?;
            }
            txn.open_table(TYPES)?.insert(ty.name.as_str(), encode_record(ty).as_slice())?;
            txn.open_table(REMOVED_TYPES)?.remove(ty.name.as_str())?;
        }
        txn.commit()?;
        self.types_changed();
        Ok(())
    }

    /// The type called `name`, if deployed.
    pub fn get_type(&self, name: &str) -> Result<Option<ActorType>, StoreError> {
        let table = self.read()?.open_table(TYPES)?;
        table.get(name)?.map(|v| decode_record(v.value(), "types")).transpose()
    }

    /// Every deployed type, by name.
    pub fn list_types(&self) -> Result<Vec<ActorType>, StoreError> {
        let table = self.read()?.open_table(TYPES)?;
        table.iter()?.map(|entry| decode_record(entry?.1.value(), "types")).collect()
    }

    /// The component bytes with this content hash.
    pub fn component(&self, hash: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let table = self.read()?.open_table(COMPONENTS)?;
        Ok(table.get(hash)?.map(|v| v.value().to_vec()))
    }

    /// Removes the type `name`, undeployed at `at_ms`, and remembers when
    /// (the latest time wins); returns whether it existed. Its actors'
    /// mailboxes and state stay until it is deployed again.
    pub fn remove_type(&self, name: &str, at_ms: u64) -> Result<bool, StoreError> {
        let txn = self.inner.db.get()?.begin_write()?;
        let existed = txn.open_table(TYPES)?.remove(name)?.is_some();
        {
            let mut removed = txn.open_table(REMOVED_TYPES)?;
            let known = removed.get(name)?.map_or(0, |v| v.value());
            removed.insert(name, at_ms.max(known))?;
        }
        txn.commit()?;
        self.types_changed();
        Ok(existed)
    }

    /// The types undeployed and not deployed since, with when, by name.
    pub fn removed_types(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let table = self.read()?.open_table(REMOVED_TYPES)?;
        table
            .iter()?
            .map(|entry| {
                let (name, at) = entry?;
                Ok((name.value().to_string(), at.value()))
            })
            .collect()
    }

    /// When type `name` was last undeployed, unless deployed since.
    pub fn removed_at(&self, name: &str) -> Result<Option<u64>, StoreError> {
        let table = self.read()?.open_table(REMOVED_TYPES)?;
        Ok(table.get(name)?.map(|v| v.value()))
    }

    pub(crate) fn types_changed(&self) {
        self.inner.types_version.fetch_add(1, std::sync::atomic::Ordering::Release);
    }
}
