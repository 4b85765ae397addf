//! The registry of deployed actor types and their component bytes.
//!
//! Component bytes are stored by content hash, so redeploying the same
//! component under another name stores it once, and a node restarts with
//! everything it needs from its data directory alone. Registry writes are
//! rare and go straight to a write transaction (redb serialises them with the
//! group committer's).

use redb::ReadableTable;

use crate::envelope::{decode_record, encode_record};
use crate::schema::{ActorType, COMPONENTS, TYPES};
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

    /// Removes the type `name`; returns whether it existed. Its actors'
    /// mailboxes and state stay until it is deployed again.
    pub fn remove_type(&self, name: &str) -> Result<bool, StoreError> {
        let txn = self.inner.db.get()?.begin_write()?;
        let existed = txn.open_table(TYPES)?.remove(name)?.is_some();
        txn.commit()?;
        self.types_changed();
        Ok(existed)
    }

    pub(crate) fn types_changed(&self) {
        self.inner.types_version.fetch_add(1, std::sync::atomic::Ordering::Release);
    }
}
