//! The live directory: every peer heard on the lattice, and whether it is
//! up. A peer is up while its heartbeats arrive, down once it has missed
//! them for the lattice's `down_after`, and up again when it returns.
//! A peer whose announcement the node refuses (a new incarnation under an
//! old id) is kept as refused, with the reason, and nothing is sent to it.
//!
//! Liveness only gates sending and fast errors; it never moves an actor
//! (placement decides ownership, see `pigeon-store`'s `placement`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

use crate::wire::Member;

/// What a node thinks of a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerState {
    Up,
    Down,
    /// Its announcement was refused (see [`Peer::refusal`]).
    Refused,
}

/// A peer as the directory knows it.
#[derive(Clone, Debug)]
pub struct Peer {
    /// Its last announcement.
    pub member: Member,
    pub state: PeerState,
    /// Why it was refused, for [`PeerState::Refused`].
    pub refusal: Option<String>,
    /// How long ago its last heartbeat arrived.
    pub silent_for: Duration,
    /// Messages it forwarded per second, between its last two heartbeats.
    pub forwarded_per_sec: f64,
}

struct Entry {
    peer: Peer,
    seen: Instant,
}

/// The peers, by id.
pub(crate) struct Directory {
    peers: Mutex<HashMap<String, Entry>>,
    /// Bumped on every change of a peer's state: forwarders wait on it.
    version: watch::Sender<u64>,
}

impl Directory {
    pub(crate) fn new() -> Self {
        Self { peers: Mutex::default(), version: watch::channel(0).0 }
    }

    fn peers(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn watch(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    fn bump(&self) {
        self.version.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// A heartbeat from `member`, admitted or refused by the node. Returns
    /// the peer's state before, if it changed.
    pub(crate) fn heard(&self, member: Member, admitted: Result<(), String>) -> Option<Option<PeerState>> {
        let now = Instant::now();
        let (state, refusal) = match admitted {
            Ok(()) => (PeerState::Up, None),
            Err(reason) => (PeerState::Refused, Some(reason)),
        };
        let mut peers = self.peers();
        let before = peers.get(&member.id).map(|e| e.peer.state);
        let previous = peers.get(&member.id).map(|e| (e.seen, e.peer.member.forwarded));
        let rate = match previous {
            Some((at, count)) if member.forwarded >= count => {
                let secs = now.duration_since(at).as_secs_f64();
                if secs > 0.0 { (member.forwarded - count) as f64 / secs } else { 0.0 }
            }
            _ => 0.0,
        };
        let id = member.id.clone();
        let peer = Peer { member, state, refusal, silent_for: Duration::ZERO, forwarded_per_sec: rate };
        peers.insert(id, Entry { peer, seen: now });
        drop(peers);
        if before != Some(state) {
            self.bump();
            return Some(before);
        }
        None
    }

    /// Marks peers silent for `down_after` as down; returns their ids.
    pub(crate) fn sweep(&self, down_after: Duration) -> Vec<String> {
        let now = Instant::now();
        let mut down = Vec::new();
        for (id, entry) in self.peers().iter_mut() {
            if entry.peer.state == PeerState::Up && now.duration_since(entry.seen) >= down_after {
                entry.peer.state = PeerState::Down;
                entry.peer.forwarded_per_sec = 0.0;
                down.push(id.clone());
            }
        }
        if !down.is_empty() {
            self.bump();
        }
        down
    }

    /// Every peer, by id, as of now.
    pub(crate) fn list(&self) -> Vec<Peer> {
        let now = Instant::now();
        let mut list: Vec<Peer> =
            self.peers().values().map(|e| Peer { silent_for: now.duration_since(e.seen), ..e.peer.clone() }).collect();
        list.sort_by(|a, b| a.member.id.cmp(&b.member.id));
        list
    }

    pub(crate) fn get(&self, id: &str) -> Option<Peer> {
        let now = Instant::now();
        self.peers().get(id).map(|e| Peer { silent_for: now.duration_since(e.seen), ..e.peer.clone() })
    }

    pub(crate) fn state(&self, id: &str) -> Option<PeerState> {
        self.peers().get(id).map(|e| e.peer.state)
    }

    /// Forgets everything heard of `id` (a peer whose refusal was lifted).
    pub(crate) fn forget(&self, id: &str) {
        if self.peers().remove(id).is_some() {
            self.bump();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, forwarded: u64) -> Member {
        Member { id: id.into(), incarnation: "1".into(), forwarded, ..Member::default() }
    }

    #[test]
    fn a_silent_peer_goes_down_and_comes_back_up() {
        let directory = Directory::new();
        assert_eq!(directory.heard(member("a", 0), Ok(())), Some(None));
        assert_eq!(directory.heard(member("a", 0), Ok(())), None, "no change, no news");
        assert!(directory.sweep(Duration::from_secs(3600)).is_empty());
        assert_eq!(directory.sweep(Duration::ZERO), vec!["a".to_string()]);
        assert_eq!(directory.state("a"), Some(PeerState::Down));
        assert_eq!(directory.heard(member("a", 0), Ok(())), Some(Some(PeerState::Down)));
        assert_eq!(directory.state("a"), Some(PeerState::Up));
    }

    #[test]
    fn a_refused_peer_keeps_its_reason_and_is_never_swept_up() {
        let directory = Directory::new();
        directory.heard(member("a", 0), Err("new incarnation".into()));
        let peer = directory.get("a").unwrap();
        assert_eq!(peer.state, PeerState::Refused);
        assert_eq!(peer.refusal.as_deref(), Some("new incarnation"));
        assert!(directory.sweep(Duration::ZERO).is_empty());
    }
}
