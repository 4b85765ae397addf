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

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The nodes a type's actors live on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// Node ids, sorted, each once. Empty: the local node owns every actor.
    pub nodes: Vec<String>,
}

impl Placement {
    /// A placement over `nodes` (sorted and deduplicated here).
    pub fn new(nodes: impl IntoIterator<Item = String>) -> Self {
        let mut nodes: Vec<String> = nodes.into_iter().collect();
        nodes.sort();
        nodes.dedup();
        Self { nodes }
    }

    /// The owner of `actor` (`type/key`), or `None` for an empty placement.
    pub fn owner(&self, actor: &str) -> Option<&str> {
        self.nodes
            .iter()
            .map(|node| (score(node, actor), node))
            // Ties (astronomically unlikely) go to the smaller id, so that
            // every node still agrees.
            .max_by(|(a, na), (b, nb)| a.cmp(b).then_with(|| nb.cmp(na)))
            .map(|(_, node)| node.as_str())
    }
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
}
