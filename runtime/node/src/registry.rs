//! The actor types this node can run: the store's registry, compiled.
//!
//! Every deployed type is kept here with its compiled component, so a turn
//! never waits for compilation. A redeploy bumps the type's generation;
//! live activations notice it at their next turn and re-instantiate.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use pigeon_host::ActorComponent;
use pigeon_store::{ActorType, Placement};

/// A deployed type, ready to instantiate.
pub(crate) struct LoadedType {
    pub(crate) record: ActorType,
    pub(crate) component: ActorComponent,
    pub(crate) generation: u64,
    /// The nodes its actors live on (empty: this one), as the store has it.
    pub(crate) placement: Placement,
}

/// Name → loaded type. Cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct Registry {
    types: Arc<RwLock<HashMap<String, Arc<LoadedType>>>>,
}

impl Registry {
    pub(crate) fn get(&self, name: &str) -> Option<Arc<LoadedType>> {
        self.types.read().unwrap_or_else(|p| p.into_inner()).get(name).cloned()
    }

    pub(crate) fn insert(&self, record: ActorType, component: ActorComponent, placement: Placement) -> Arc<LoadedType> {
        let mut types = self.types.write().unwrap_or_else(|p| p.into_inner());
        let generation = types.get(&record.name).map_or(1, |t| t.generation + 1);
        let loaded = Arc::new(LoadedType { record, component, generation, placement });
        types.insert(loaded.record.name.clone(), loaded.clone());
        loaded
    }

    /// Gives type `name` another placement; live activations carry on
    /// (the generation stays). Returns whether the type is here.
    pub(crate) fn set_placement(&self, name: &str, placement: Placement) -> bool {
        let mut types = self.types.write().unwrap_or_else(|p| p.into_inner());
        let Some(loaded) = types.get(name) else { return false };
        let changed = Arc::new(LoadedType {
            record: loaded.record.clone(),
            component: loaded.component.clone(),
            generation: loaded.generation,
            placement,
        });
        types.insert(name.to_string(), changed);
        true
    }

    pub(crate) fn remove(&self, name: &str) -> bool {
        self.types.write().unwrap_or_else(|p| p.into_inner()).remove(name).is_some()
    }

    pub(crate) fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.types.read().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect();
        names.sort();
        names
    }
}
