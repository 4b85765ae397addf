//! The soak's invariants, checked against the actors' state once every
//! queue has drained.
//!
//! For every kind of traffic, each request the node applied left one mark in
//! the state of the actor it went to (see [`super::workload`]). From the
//! marks and the ledger:
//! - every acknowledged request is applied, at every actor it was meant for
//!   (transient sends excepted: they may be dropped);
//! - no request is applied twice, or at an actor it was not meant for, or
//!   at all if it was refused or never sent;
//! - each counter moved by exactly one per application, and a call's reply
//!   is the count its one application produced;
//! - the bank's money is conserved, and each balance is what the recorded
//!   transfer outcomes imply;
//! - there are no dead letters.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::workload::{self, ACCOUNTS, ACTORS, Fate, ID_WIDTH, Kind, Ledger, OPENING};
use crate::crash::CrashTarget;

/// What the node holds after the soak, read through its API.
pub struct Snapshot {
    /// Messages still in mailboxes, delayed ones included.
    pub pending: u64,
    /// Turns running now.
    pub in_flight: usize,
    /// Every soak actor's state, as text.
    pub state: BTreeMap<String, BTreeMap<String, String>>,
    pub dead_letters: Vec<Value>,
}

impl Snapshot {
    /// Reads the queues, then the state of every actor the soak uses.
    pub async fn take(target: &CrashTarget, url: &str) -> Self {
        let (pending, in_flight) = queues(target, url).await;
        let mut actors: Vec<String> = Kind::ALL.iter().flat_map(|kind| (0..ACTORS).map(|k| kind.actor(k))).collect();
        actors.extend((0..ACCOUNTS).map(|a| format!("account/a{a}")));
        let mut state = BTreeMap::new();
        for actor in actors {
            let entries = target.state(url, &actor).await;
            state.insert(actor, entries);
        }
        let dead_letters = target.get(url, "/api/v1/dead-letters?limit=100").await;
        Self { pending, in_flight, state, dead_letters: dead_letters.as_array().cloned().unwrap_or_default() }
    }

    fn of(&self, actor: &str) -> BTreeMap<String, String> {
        self.state.get(actor).cloned().unwrap_or_default()
    }
}

/// Messages pending and turns in flight over all actors.
pub async fn queues(target: &CrashTarget, url: &str) -> (u64, usize) {
    let actors = target.get(url, "/api/v1/actors").await;
    let actors = actors.as_array().cloned().unwrap_or_default();
    let pending = actors.iter().filter_map(|a| a["pending"].as_u64()).sum();
    let in_flight = actors.iter().filter(|a| !a["in_flight"].is_null()).count();
    (pending, in_flight)
}

/// One application of a request, as an actor's state shows it.
struct Mark {
    n: usize,
    /// The index of the actor that holds it.
    at: usize,
    times: u64,
    /// A counter's count right after it (counters only).
    order: Option<u64>,
    /// A transfer's recorded outcome (transfers only).
    outcome: Option<String>,
}

/// The actors request `n` of `kind` is meant for.
fn meant_for(kind: Kind, n: usize) -> Vec<usize> {
    match kind {
        Kind::Publish => {
            let headers = workload::publish_headers(n);
            (0..ACTORS).filter(|s| (workload::subscriber_filter(*s).1)(&headers)).collect()
        }
        _ => vec![workload::actor_of(n)],
    }
}

/// The marks of `kind` in the snapshot; what does not parse goes to `problems`.
fn marks(kind: Kind, snapshot: &Snapshot, problems: &mut Vec<String>) -> Vec<Mark> {
    let mut marks = Vec::new();
    for at in 0..ACTORS {
        let actor = kind.actor(at);
        let state = snapshot.of(&actor);
        let mut mark = |id: &str, times: u64, order: Option<u64>, outcome: Option<String>| match workload::parse_id(id)
        {
            Some((k, n)) if k == kind => marks.push(Mark { n, at, times, order, outcome }),
            _ => problems.push(format!("{actor} applied `{id}`, which the soak never sent it")),
        };
        match kind {
            Kind::Reminder => {
                let fired = state.get("fired").cloned().unwrap_or_default();
                let mut times: BTreeMap<&str, u64> = BTreeMap::new();
                for chunk in fired.as_bytes().chunks(ID_WIDTH) {
                    *times.entry(std::str::from_utf8(chunk).unwrap_or("?")).or_default() += 1;
                }
                times.into_iter().for_each(|(id, times)| mark(id, times, None, None));
            }
            Kind::Transfer => {
                for (key, outcome) in &state {
                    if let Some(id) = key.strip_prefix("done/") {
                        mark(id, 1, None, Some(outcome.clone()));
                    }
                }
            }
            _ => {
                for (key, value) in &state {
                    let Some(id) = key.strip_prefix("applied/") else { continue };
                    let (times, order) = value.split_once(' ').unwrap_or((value, ""));
                    mark(id, times.parse().unwrap_or(0), order.parse().ok(), None);
                }
            }
        }
    }
    marks
}

/// How many acknowledged effects the snapshot does not show yet.
pub fn missing(ledger: &Ledger, snapshot: &Snapshot) -> usize {
    let mut ignored = Vec::new();
    Kind::ALL.iter().map(|kind| lost(*kind, ledger, &marks(*kind, snapshot, &mut ignored)).len()).sum()
}

/// The acknowledged `(n, actor)` effects of `kind` that have no mark.
fn lost(kind: Kind, ledger: &Ledger, marks: &[Mark]) -> Vec<(usize, usize)> {
    if kind == Kind::Transient {
        return Vec::new();
    }
    let seen: BTreeSet<(usize, usize)> = marks.iter().map(|m| (m.n, m.at)).collect();
    ledger
        .of(kind)
        .filter(|(_, fate)| matches!(fate, Fate::Acked(_)))
        .flat_map(|(n, _)| meant_for(kind, n).into_iter().map(move |at| (n, at)))
        .filter(|effect| !seen.contains(effect))
        .collect()
}

/// Checks every invariant; returns the effects checked per kind and the
/// violations found.
pub fn verify(ledger: &Ledger, snapshot: &Snapshot) -> (Vec<(Kind, usize)>, Vec<String>) {
    let mut problems = Vec::new();
    let mut checked = Vec::new();
    for kind in Kind::ALL {
        let marks = marks(kind, snapshot, &mut problems);
        check_marks(kind, ledger, &marks, &mut problems);
        match kind {
            Kind::Reminder => {}
            Kind::Transfer => check_bank(snapshot, &marks, &mut problems),
            _ => check_counters(kind, ledger, snapshot, &marks, &mut problems),
        }
        for (n, at) in lost(kind, ledger, &marks) {
            problems.push(format!("{} was acknowledged and lost at {}", workload::op_id(kind, n), kind.actor(at)));
        }
        checked.push((kind, marks.len()));
    }
    for dead in &snapshot.dead_letters {
        problems.push(format!(
            "a dead letter for {}: {} ({})",
            dead["message"]["to"].as_str().unwrap_or("?"),
            dead["reason"].as_str().unwrap_or("?"),
            dead["error"].as_str().unwrap_or("?")
        ));
    }
    (checked, problems)
}

/// Each mark: applied once, where it was meant to go, and sent and not refused.
fn check_marks(kind: Kind, ledger: &Ledger, marks: &[Mark], problems: &mut Vec<String>) {
    for mark in marks {
        let (id, actor) = (workload::op_id(kind, mark.n), kind.actor(mark.at));
        if mark.times != 1 {
            problems.push(format!("{id} was applied {} times at {actor}", mark.times));
        }
        if !meant_for(kind, mark.n).contains(&mark.at) {
            problems.push(format!("{id} was applied at {actor}, which it was not meant for"));
        }
        match ledger.fate(kind, mark.n) {
            None => problems.push(format!("{id} was applied at {actor} but never sent")),
            Some(Fate::Refused(status, code)) => {
                problems.push(format!("{id} was refused ({status} {code}) and applied anyway at {actor}"))
            }
            Some(_) => {}
        }
    }
}

/// Each counter moved by one per application; each call's reply is the
/// count its application produced.
fn check_counters(kind: Kind, ledger: &Ledger, snapshot: &Snapshot, marks: &[Mark], problems: &mut Vec<String>) {
    for at in 0..ACTORS {
        let actor = kind.actor(at);
        let count: u64 = snapshot.of(&actor).get("count").and_then(|c| c.parse().ok()).unwrap_or(0);
        let orders: BTreeSet<u64> = marks.iter().filter(|m| m.at == at).filter_map(|m| m.order).collect();
        if orders != (1..=count).collect() {
            problems.push(format!("{actor} counts {count} but its {} applications have other orders", orders.len()));
        }
    }
    for mark in marks {
        if let Some(Fate::Acked(Some(reply))) = ledger.fate(kind, mark.n)
            && mark.order.map(|o| o.to_string()).as_deref() != Some(reply.as_str())
        {
            let id = workload::op_id(kind, mark.n);
            problems.push(format!("{id}'s reply was {reply}, but it was applied as number {:?}", mark.order));
        }
    }
}

/// Money is conserved; each balance is what the recorded outcomes imply.
fn check_bank(snapshot: &Snapshot, marks: &[Mark], problems: &mut Vec<String>) {
    let mut expected: BTreeMap<String, i64> = (0..ACCOUNTS).map(|a| (format!("a{a}"), OPENING as i64)).collect();
    for mark in marks {
        let (_, from, to, amount) = workload::transfer(mark.n);
        let id = workload::op_id(Kind::Transfer, mark.n);
        let outcome = mark.outcome.clone().unwrap_or_default();
        let words: Vec<&str> = outcome.split_whitespace().collect();
        match words.as_slice() {
            ["ok", f, t, a] if (*f, *t, a.parse().ok()) == (from.as_str(), to.as_str(), Some(amount)) => {
                // Outcomes are replayed in id order, not as they happened:
                // a balance may dip below zero on the way.
                *expected.entry(from).or_default() -= amount as i64;
                *expected.entry(to).or_default() += amount as i64;
            }
            ["insufficient", f, _, a, _] if (*f, a.parse().ok()) == (from.as_str(), Some(amount)) => {}
            _ => problems.push(format!("{id} recorded `{outcome}`, which is not what it asked for")),
        }
    }
    let balances: BTreeMap<String, i64> = (0..ACCOUNTS)
        .map(|a| {
            let balance = snapshot.of(&format!("account/a{a}")).get("balance").and_then(|b| b.parse().ok());
            (format!("a{a}"), balance.unwrap_or(-1))
        })
        .collect();
    let total: i64 = balances.values().sum();
    if total != (OPENING * ACCOUNTS as u64) as i64 {
        problems.push(format!("money is not conserved: the accounts hold {total} in all: {balances:?}"));
    }
    if balances != expected {
        problems.push(format!("the balances {balances:?} are not what the outcomes imply: {expected:?}"));
    }
}
