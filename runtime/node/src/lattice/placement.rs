//! Changing where a type's actors live, as users ask for it: a new node
//! set for one type (`pigeon placement`), or every type off one node
//! (`pigeon drain`). The moves themselves are `handoff`'s.

use pigeon_store::Placement;

use super::PlacementStatus;
use crate::{Node, NodeError};

impl Node {
    /// Gives type `name` the node set `nodes` (ids of this node or its
    /// peers): the actors whose owner changes move to their new owners.
    /// Returns the new placement; [`Node::placement_status`] tells how far
    /// the moves are. Refused while an earlier change of the type is
    /// still moving actors.
    pub async fn set_placement(&self, name: &str, nodes: Vec<String>) -> Result<Placement, NodeError> {
        let inner = &self.inner;
        if inner.lattice().is_none() {
            return Err(NodeError::NotInLattice("changing a placement"));
        }
        let loaded = inner.registry.get(name).ok_or_else(|| NodeError::UnknownType(name.to_string()))?;
        let asked = inner.placement_for(name, Some(&nodes)).map(|p| p.nodes).or_else(|e| match e {
            // The type's own nodes differ: that is what a change is for.
            NodeError::PlacementConflict(_) => Ok(Placement::new(nodes.clone()).nodes),
            e => Err(e),
        })?;
        let current = loaded.placement.clone();
        if current.nodes == asked {
            return Ok(current);
        }
        // The last change is over once every node it moved actors from
        // says so (this node may not have noticed yet).
        if current.previous.is_some() && !inner.placement_status(name).await?.complete {
            return Err(NodeError::PlacementConflict(format!(
                "`{name}` is still moving actors for its placement change {} (to {}): wait until it is done \
                 (`pigeon placement {name}` shows the moves), then change it again",
                current.epoch,
                current.nodes.join(",")
            )));
        }
        let changed = current.changed_to(asked);
        inner.change_placement(name, changed.clone()).await?;
        Ok(changed)
    }

    /// Moves every actor off node `id`, so it can be stopped for good:
    /// every type placed on it gets a node set without it. Returns the
    /// types changed with their new placements.
    pub async fn drain(&self, id: &str) -> Result<Vec<(String, Placement)>, NodeError> {
        let inner = &self.inner;
        let mut plans = Vec::new();
        for name in inner.registry.names() {
            let Some(loaded) = inner.registry.get(&name) else { continue };
            if !loaded.placement.nodes.iter().any(|n| n == id) {
                continue;
            }
            let rest: Vec<String> = loaded.placement.nodes.iter().filter(|n| *n != id).cloned().collect();
            if rest.is_empty() {
                return Err(NodeError::PlacementConflict(format!(
                    "`{name}` runs on node `{id}` only: its actors would have nowhere to go. Add a node first \
                     (`pigeon placement {name} --nodes {id},OTHER`)"
                )));
            }
            plans.push((name, rest));
        }
        let mut changed = Vec::new();
        for (name, rest) in plans {
            let placement = self.set_placement(&name, rest).await?;
            changed.push((name, placement));
        }
        Ok(changed)
    }

    /// Type `name`'s placement and how far the moves of its last change
    /// are, as each node it moves from reports them.
    pub async fn placement_status(&self, name: &str) -> Result<PlacementStatus, NodeError> {
        self.inner.placement_status(name).await
    }

    /// The placement of every deployed type (empty for a node on its own).
    pub fn placements(&self) -> Vec<(String, Placement)> {
        let registry = &self.inner.registry;
        registry.names().into_iter().filter_map(|n| registry.get(&n).map(|t| (n, t.placement.clone()))).collect()
    }
}
