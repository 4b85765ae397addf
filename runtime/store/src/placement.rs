//! Who owns an actor when nodes form a lattice.
//!
//! Every deployed type may carry a *placement*: the ids of the nodes its
//! actors live on. The owner of `type/key` is the node of that set with the
//! highest rendezvous score (highest random weight hashing): every node
//! computes the same owner from the same set, without talking to anyone,
//! and changing the set moves only the actors whose winner changed.
//!
//! The set is what was decided at deploy time, not the nodes that happen
//! to be up: a node that blips must not move actors away from their state.
//! Messages for an owner that is down wait in the senders' outboxes.
//!
//! A type without a placement (deployed on a node outside any lattice) is
//! owned by the node that has it.
//!
//! Changing a type's node set is a *placement change* (see
//! `docs/design/handoff.md`): it makes the next epoch and keeps the
//! node set it replaces as `previous` until every actor that changed
//! owner has been handed off, so that every node can tell, for any actor,
//! where its state is until then.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The nodes a type's actors live on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// Node ids, sorted, each once. Empty: the local node owns every actor.
    pub nodes: Vec<String>,
    /// Placement changes so far: the highest epoch wins everywhere.
    pub epoch: u64,
    /// The node set this epoch replaced, while actors are still moving
    /// from it (`None` once every move of the change is done).
    pub previous: Option<Vec<String>>,
}

/// A placement as the first lattice release stored it.
#[derive(Deserialize)]
struct FirstPlacement {
    nodes: Vec<String>,
}

impl Placement {
    /// A placement over `nodes` (sorted and deduplicated here), at epoch 0.
    pub fn new(nodes: impl IntoIterator<Item = String>) -> Self {
        Self { nodes: sorted(nodes), epoch: 0, previous: None }
    }

    /// The placement that replaces this one with `nodes`: the next epoch,
    /// with this node set as `previous`.
    pub fn changed_to(&self, nodes: impl IntoIterator<Item = String>) -> Self {
        Self { nodes: sorted(nodes), epoch: self.epoch + 1, previous: Some(self.nodes.clone()) }
    }

    /// The owner of `actor` (`type/key`), or `None` for an empty placement.
    pub fn owner(&self, actor: &str) -> Option<&str> {
        rendezvous(&self.nodes, actor)
    }

    /// Where `actor`'s state was before this epoch, while the change that
    /// made it is still moving actors.
    pub fn previous_owner(&self, actor: &str) -> Option<&str> {
        rendezvous(self.previous.as_deref()?, actor)
    }

    /// `(from, to)` when `actor` changes owner in the change still under
    /// way, `None` when it stays (or nothing is moving).
    pub fn moving(&self, actor: &str) -> Option<(&str, &str)> {
        let (from, to) = (self.previous_owner(actor)?, self.owner(actor)?);
        (from != to).then_some((from, to))
    }

    /// Every node of this epoch and of the one it replaces.
    pub fn all_nodes(&self) -> Vec<String> {
        sorted(self.nodes.iter().chain(self.previous.iter().flatten()).cloned())
    }

    /// Decodes a stored placement, whichever release wrote it.
    pub fn decode(bytes: &[u8]) -> Result<Self, crate::StoreError> {
        crate::decode_record::<Placement>(bytes, "placements").or_else(|e| {
            crate::decode_record::<FirstPlacement>(bytes, "placements").map(|p| Self::new(p.nodes)).map_err(|_| e)
        })
    }
}

fn sorted(nodes: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut nodes: Vec<String> = nodes.into_iter().collect();
    nodes.sort();
    nodes.dedup();
    nodes
}

/// The node of `nodes` with the highest score for `actor`.
fn rendezvous<'a>(nodes: &'a [String], actor: &str) -> Option<&'a str> {
    nodes
        .iter()
        .map(|node| (score(node, actor), node))
        // Ties (astronomically unlikely) go to the smaller id, so that
        // every node still agrees.
        .max_by(|(a, na), (b, nb)| a.cmp(b).then_with(|| nb.cmp(na)))
        .map(|(_, node)| node.as_str())
}

/// The rendezvous score of `node` for `actor`: the first eight bytes of
/// SHA-256 over both. A cryptographic hash is stable across platforms and
/// releases (std's hasher is not), and costs well under a microsecond here.
fn score(node: &str, actor: &str) -> u64 {
    let mut hash = Sha256::new();
    hash.update(node.as_bytes());
    hash.update([0]);
    hash.update(actor.as_bytes());
    let digest = hash.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(ids: &[&str]) -> Placement {
        Placement::new(ids.iter().map(|s| s.to_string()))
    }

    #[test]
    fn empty_placement_has_no_owner() {
        assert_eq!(Placement::default().owner("counter/a"), None);
    }

    #[test]
    fn every_order_of_the_same_set_agrees() {
        let a = nodes(&["n1", "n2", "n3"]);
        let b = nodes(&["n3", "n1", "n2", "n1"]);
        for i in 0..200 {
            let actor = format!("counter/{i}");
            assert_eq!(a.owner(&actor), b.owner(&actor));
        }
    }

    #[test]
    fn actors_spread_and_adding_a_node_moves_only_to_it() {
        let three = nodes(&["n1", "n2", "n3"]);
        let four = nodes(&["n1", "n2", "n3", "n4"]);
        let mut per_node = std::collections::HashMap::new();
        let mut moved = 0;
        for i in 0..3000 {
            let actor = format!("counter/{i}");
            let before = three.owner(&actor).unwrap();
            let after = four.owner(&actor).unwrap();
            *per_node.entry(before).or_insert(0) += 1;
            if before != after {
                assert_eq!(after, "n4", "{actor} moved between old nodes");
                moved += 1;
            }
        }
        for (node, count) in per_node {
            assert!((700..1300).contains(&count), "{node} owns {count} of 3000");
        }
        assert!((500..1000).contains(&moved), "{moved} of 3000 moved to the new node");
    }

    #[test]
    fn a_change_knows_where_each_moving_actor_comes_from() {
        let two = nodes(&["n1", "n2"]);
        let three = two.changed_to(["n1", "n2", "n3"].map(String::from));
        assert_eq!((three.epoch, three.previous.as_deref()), (1, Some(&two.nodes[..])));
        for i in 0..500 {
            let actor = format!("counter/{i}");
            match three.moving(&actor) {
                Some((from, to)) => assert_eq!((Some(from), to), (two.owner(&actor), "n3")),
                None => assert_eq!(three.owner(&actor), two.owner(&actor)),
            }
        }
    }

    #[test]
    fn placements_stored_before_epochs_still_decode() {
        #[derive(Serialize)]
        struct First {
            nodes: Vec<String>,
        }
        let old = crate::encode_record(&First { nodes: vec!["a".into(), "b".into()] });
        assert_eq!(Placement::decode(&old).unwrap(), nodes(&["a", "b"]));
        let new = crate::encode_record(&nodes(&["a"]).changed_to(["b".to_string()]));
        assert_eq!(Placement::decode(&new).unwrap().previous, Some(vec!["a".to_string()]));
    }
}
