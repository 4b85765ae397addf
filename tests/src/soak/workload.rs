//! What the soak sends: seven kinds of traffic, each with ids of its own, and
//! the ledger of what became of every request.
//!
//! Every request carries a unique id that the receiving actor records when
//! it applies it (the counter's `applied/<op-id>`, the caller's `fired`
//! list, the transfer desk's `done/<id>`). Which actor an id goes to, and
//! which subscribers' filters it matches, follow from the id alone, so the
//! verifier needs nothing but the ledger and the actors' state.

use std::collections::BTreeMap;

use rand::Rng;
use serde_json::{Value, json};

/// Actors per kind of traffic (`counter/s0..s3`, `caller/r0..r3`, ...).
pub const ACTORS: usize = 4;
/// Bank accounts, and the balance each opens with.
pub const ACCOUNTS: usize = 10;
pub const OPENING: u64 = 1_000;
/// The topic the publishes go to.
pub const TOPIC: &str = "soak";
/// The longest delay of a delayed send or a reminder.
pub const MAX_DELAY_MS: u64 = 3_000;

/// One kind of traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A persistent send to a counter, at a random priority.
    Send,
    /// A persistent send delivered after a random delay (a timer).
    Delayed,
    /// A call through the API that waits for the counter's reply.
    Call,
    /// A transient send: at most once, never more.
    Transient,
    /// A publish, copied to every subscriber whose filter matches.
    Publish,
    /// A send to a `caller` that sets a reminder (a guest's own timer).
    Reminder,
    /// A transfer: a desk's turn makes two typed RPC calls to accounts.
    Transfer,
}

impl Kind {
    pub const ALL: [Kind; 7] =
        [Kind::Send, Kind::Delayed, Kind::Call, Kind::Transient, Kind::Publish, Kind::Reminder, Kind::Transfer];

    /// The first letter of this kind's ids.
    pub fn prefix(self) -> char {
        match self {
            Kind::Send => 's',
            Kind::Delayed => 'd',
            Kind::Call => 'c',
            Kind::Transient => 'x',
            Kind::Publish => 'p',
            Kind::Reminder => 'r',
            Kind::Transfer => 't',
        }
    }

    pub fn of_prefix(prefix: char) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.prefix() == prefix)
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Send => "send",
            Kind::Delayed => "delayed send",
            Kind::Call => "call (wait replied)",
            Kind::Transient => "transient send",
            Kind::Publish => "publish",
            Kind::Reminder => "guest timer",
            Kind::Transfer => "transfer (2 RPCs)",
        }
    }

    /// How often a client picks this kind, relative to the others.
    fn weight(self) -> u32 {
        match self {
            Kind::Send | Kind::Call | Kind::Transfer => 3,
            Kind::Delayed | Kind::Publish | Kind::Reminder => 2,
            Kind::Transient => 1,
        }
    }

    /// A kind at random, by weight.
    pub fn pick(rng: &mut impl Rng) -> Kind {
        let total: u32 = Kind::ALL.iter().map(|k| k.weight()).sum();
        let mut at = rng.random_range(0..total);
        for kind in Kind::ALL {
            if at < kind.weight() {
                return kind;
            }
            at -= kind.weight();
        }
        Kind::Send
    }

    /// The type of the actors this kind of traffic goes to.
    pub fn actor_type(self) -> &'static str {
        match self {
            Kind::Reminder => "caller",
            Kind::Transfer => "transfer",
            _ => "counter",
        }
    }

    /// Actor `k` of this kind (publishes go to their subscribers instead).
    pub fn actor(self, k: usize) -> String {
        format!("{}/{}{k}", self.actor_type(), self.prefix())
    }
}

/// The id of request `n` of `kind`: fixed width, so the caller's `fired`
/// list (names concatenated) splits back into ids.
pub fn op_id(kind: Kind, n: usize) -> String {
    format!("{}{n:07}", kind.prefix())
}

/// The width of every id.
pub const ID_WIDTH: usize = 8;

/// `(kind, n)` of an id, if it is one.
pub fn parse_id(id: &str) -> Option<(Kind, usize)> {
    let mut chars = id.chars();
    let kind = Kind::of_prefix(chars.next()?)?;
    let n = chars.as_str();
    (n.len() == ID_WIDTH - 1).then(|| n.parse().ok()).flatten().map(|n| (kind, n))
}

/// The actor index request `n` goes to.
pub fn actor_of(n: usize) -> usize {
    n % ACTORS
}

/// A publish's headers.
pub type Headers = BTreeMap<String, String>;

/// The headers of publish `n`.
pub fn publish_headers(n: usize) -> Headers {
    let mut headers = BTreeMap::from([
        ("op-id".to_string(), op_id(Kind::Publish, n)),
        ("amount".to_string(), ((n * 37) % 300).to_string()),
        ("kind".to_string(), if n.is_multiple_of(2) { "even" } else { "odd" }.to_string()),
    ]);
    if n.is_multiple_of(7) {
        headers.insert("vip".into(), "yes".into());
    }
    headers
}

/// Subscriber `s`'s filter, and the same rule in Rust.
pub fn subscriber_filter(s: usize) -> (&'static str, fn(&Headers) -> bool) {
    fn amount(h: &Headers) -> u32 {
        h.get("amount").and_then(|a| a.parse().ok()).unwrap_or(0)
    }
    match s % ACTORS {
        0 => ("", |_| true),
        1 => ("amount > 150", |h| amount(h) > 150),
        2 => ("kind = 'even' AND amount <= 200", |h| h.get("kind").is_some_and(|k| k == "even") && amount(h) <= 200),
        _ => ("NOT (amount >= 100) OR EXISTS vip", |h| amount(h) < 100 || h.contains_key("vip")),
    }
}

/// Transfer `n`: (desk index, from account, to account, amount).
pub fn transfer(n: usize) -> (usize, String, String, u64) {
    let from = n % ACCOUNTS;
    let to = (from + 1 + (n / ACCOUNTS) % (ACCOUNTS - 1)) % ACCOUNTS;
    (actor_of(n), format!("a{from}"), format!("a{to}"), 1 + (n as u64 * 37) % 300)
}

/// The API request for request `n` of `kind`: path and body. `rng` picks
/// what the verifier does not need to know (priorities, delays).
pub fn request(kind: Kind, n: usize, rng: &mut impl Rng) -> (&'static str, Value) {
    let id = op_id(kind, n);
    let to = kind.actor(actor_of(n));
    let messages = "/api/v1/messages";
    let inc = |extra: Value| {
        let mut body = json!({ "to": to, "payload": "inc", "headers": { "op-id": id } });
        if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
            body.extend(extra);
        }
        body
    };
    match kind {
        Kind::Send => (messages, inc(json!({ "priority": rng.random_range(0..=9) }))),
        Kind::Delayed => (messages, inc(json!({ "delay_ms": rng.random_range(0..=MAX_DELAY_MS) }))),
        Kind::Call => (messages, inc(json!({ "wait": "replied", "timeout_ms": 20_000 }))),
        Kind::Transient => (messages, inc(json!({ "transient": true }))),
        Kind::Publish => ("/api/v1/topics/soak/messages", json!({ "payload": "inc", "headers": publish_headers(n) })),
        Kind::Reminder => {
            let delay = rng.random_range(0..=MAX_DELAY_MS);
            (messages, json!({ "to": to, "payload": format!("remind {delay} {id}") }))
        }
        Kind::Transfer => {
            let (_, from, to_account, amount) = transfer(n);
            (messages, json!({ "to": to, "payload": format!("{id} {from} {to_account} {amount}") }))
        }
    }
}

/// What became of one request.
#[derive(Clone, Debug)]
pub enum Fate {
    /// Acknowledged; for a call, the reply's text.
    Acked(Option<String>),
    /// The node went away before answering (or a call's wait ran out):
    /// applied once or not at all.
    Cut,
    /// Refused with this status and error code: never applied.
    Refused(u16, String),
}

/// Every request the soak made, by id.
#[derive(Default)]
pub struct Ledger {
    pub fates: BTreeMap<String, Fate>,
}

impl Ledger {
    pub fn record(&mut self, id: String, fate: Fate) {
        self.fates.insert(id, fate);
    }

    /// The ids and fates of one kind.
    pub fn of(&self, kind: Kind) -> impl Iterator<Item = (usize, &Fate)> {
        self.fates.iter().filter_map(move |(id, fate)| match parse_id(id) {
            Some((k, n)) if k == kind => Some((n, fate)),
            _ => None,
        })
    }

    pub fn fate(&self, kind: Kind, n: usize) -> Option<&Fate> {
        self.fates.get(&op_id(kind, n))
    }
}
