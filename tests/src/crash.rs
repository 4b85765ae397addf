//! The crash-test driver shared by the core and end-to-end crash tests.
//!
//! Clients send messages with unique ids (`op00000`, ...) while the node is
//! SIGKILLed at random numbers of acknowledgements and started again. A send
//! whose acknowledgement was cut by a kill may be applied once or not at
//! all; [`verify`] checks that every acknowledged one was applied exactly
//! once, and that nothing was applied twice.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rand::Rng;
use tokio::sync::watch;

use crate::{PATIENCE, eventually};

/// What became of one send.
pub enum Outcome {
    /// The node acknowledged it.
    Acked,
    /// The node went away before answering.
    Cut,
}

/// What a POST came back with.
pub enum Answer {
    /// A success status and its JSON body (`null` when there was none).
    Ok(serde_json::Value),
    /// No answer: the node went away.
    Cut,
    /// An error status and the error's code.
    Refused(u16, String),
}

/// The id of message `n`.
pub fn op_id(n: usize) -> String {
    format!("op{n:05}")
}

/// Sends `messages` messages from `clients` concurrent tasks to the node at
/// `endpoint` (with `send`), calling `restart` (kill, then start again; it
/// returns the new endpoint) at `kills` random points of the load. Returns
/// the acknowledged ids, the kill points, and the last endpoint.
pub async fn drive<E, S, SF, R, RF>(
    messages: usize,
    clients: usize,
    kills: usize,
    endpoint: E,
    send: S,
    restart: R,
) -> (BTreeSet<String>, Vec<usize>, E)
where
    E: Clone + Send + Sync + 'static,
    S: Fn(E, String) -> SF + Clone + Send + Sync + 'static,
    SF: Future<Output = Outcome> + Send,
    R: FnMut() -> RF,
    RF: Future<Output = E>,
{
    let mut points: Vec<usize> =
        (0..kills).map(|_| rand::rng().random_range(messages / 10..messages * 8 / 10)).collect();
    points.sort();
    run(messages, clients, Schedule::At(points), endpoint, send, restart).await
}

/// [`drive`] for disturbances that take a while (a node joins, actors
/// move): `steps` calls of `disturb`, the first after `gap`
/// acknowledgements and each next one `gap` acknowledgements after the
/// previous one returned, while the load goes on; the load stops `gap`
/// acknowledgements after the last one (or after `messages`). So every
/// disturbance happens under load, however long it takes. Returns the
/// acknowledged ids, the acknowledgements at each step, and the last
/// endpoint.
pub async fn drive_through<E, S, SF, R, RF>(
    messages: usize,
    clients: usize,
    steps: usize,
    gap: usize,
    endpoint: E,
    send: S,
    disturb: R,
) -> (BTreeSet<String>, Vec<usize>, E)
where
    E: Clone + Send + Sync + 'static,
    S: Fn(E, String) -> SF + Clone + Send + Sync + 'static,
    SF: Future<Output = Outcome> + Send,
    R: FnMut() -> RF,
    RF: Future<Output = E>,
{
    run(messages, clients, Schedule::Through { steps, gap }, endpoint, send, disturb).await
}

/// Counts a client out when its task ends, however it ends.
struct Finished(Arc<AtomicUsize>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// When [`run`] disturbs the load.
enum Schedule {
    /// At these acknowledgement counts (sorted).
    At(Vec<usize>),
    /// See [`drive_through`].
    Through { steps: usize, gap: usize },
}

async fn run<E, S, SF, R, RF>(
    messages: usize,
    clients: usize,
    schedule: Schedule,
    endpoint: E,
    send: S,
    mut restart: R,
) -> (BTreeSet<String>, Vec<usize>, E)
where
    E: Clone + Send + Sync + 'static,
    S: Fn(E, String) -> SF + Clone + Send + Sync + 'static,
    SF: Future<Output = Outcome> + Send,
    R: FnMut() -> RF,
    RF: Future<Output = E>,
{
    // (generation, endpoint): clients retarget when the generation moves.
    let (current, _) = watch::channel((0u64, endpoint));
    let current = Arc::new(current);
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let ack_count = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Clients that have sent all they had: the load is over.
    let finished = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (current, acked, ack_count, send) = (current.clone(), acked.clone(), ack_count.clone(), send.clone());
        let (stop, finished) = (stop.clone(), finished.clone());
        tasks.push(tokio::spawn(async move {
            let _finished = Finished(finished);
            let mut rx = current.subscribe();
            for n in (client..messages).step_by(clients) {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let (generation, endpoint) = rx.borrow_and_update().clone();
                match send(endpoint, op_id(n)).await {
                    Outcome::Acked => {
                        acked.lock().unwrap().insert(op_id(n));
                        ack_count.fetch_add(1, Ordering::SeqCst);
                    }
                    // Cut by a kill: wait for the next incarnation, move on.
                    Outcome::Cut => {
                        rx.wait_for(|(g, _)| *g > generation).await.unwrap();
                    }
                }
            }
        }));
    }
    let reach = |threshold: usize| {
        let (acks, finished) = (ack_count.clone(), finished.clone());
        eventually("acknowledgements to reach the next disturbance", move || {
            let (acks, finished) = (acks.clone(), finished.clone());
            let over = move || finished.load(Ordering::SeqCst) == clients;
            async move { (acks.load(Ordering::SeqCst) >= threshold || over()).then_some(()) }
        })
    };
    let mut points = Vec::new();
    let (count, gap) = match &schedule {
        Schedule::At(at) => (at.len(), 0),
        Schedule::Through { steps, gap } => (*steps, *gap),
    };
    for generation in 0..count {
        let threshold = match &schedule {
            Schedule::At(at) => at[generation],
            Schedule::Through { .. } => (ack_count.load(Ordering::SeqCst) + gap).min(messages),
        };
        reach(threshold).await;
        points.push(ack_count.load(Ordering::SeqCst));
        let endpoint = restart().await;
        current.send_replace((generation as u64 + 1, endpoint));
    }
    if gap > 0 {
        reach((ack_count.load(Ordering::SeqCst) + gap).min(messages)).await;
        stop.store(true, Ordering::SeqCst);
    }
    for task in tasks {
        tokio::time::timeout(PATIENCE * 5, task).await.expect("clients finish").expect("client ok");
    }
    let acked = acked.lock().unwrap().clone();
    let endpoint = current.borrow().1.clone();
    (acked, points, endpoint)
}

/// Checks the counter's state after a crash test: `applied` maps
/// `applied/<id>` to `"TIMES ORDER"`, `count` is the counter.
pub fn verify(applied: &BTreeMap<String, String>, count: usize, acked: &BTreeSet<String>, messages: usize) {
    let mut orders = BTreeSet::new();
    for (key, value) in applied {
        let id = key.trim_start_matches("applied/");
        let (times, order) = value.split_once(' ').expect("`TIMES ORDER`");
        assert_eq!(times, "1", "{id} was applied {times} times");
        let n: usize = id.trim_start_matches("op").parse().expect("an id we sent");
        assert!(n < messages, "{id} was never sent");
        orders.insert(order.parse::<usize>().unwrap());
    }
    let lost: Vec<&String> = acked.iter().filter(|id| !applied.contains_key(&format!("applied/{id}"))).collect();
    assert!(lost.is_empty(), "{} acknowledged sends were lost, e.g. {:?}", lost.len(), &lost[..lost.len().min(5)]);
    assert_eq!(count, applied.len(), "the count equals the number of distinct ids applied");
    assert_eq!(orders, (1..=count).collect(), "each application moved the counter by exactly one");
}

/// A `pigeon up` under a crash test: SIGKILLed and started again on its
/// data directory, and driven over HTTP with its token.
#[derive(Clone)]
pub struct CrashTarget {
    node: Arc<Mutex<crate::process::PigeonNode>>,
    http: reqwest::Client,
    token: String,
}

impl CrashTarget {
    pub fn new(node: crate::process::PigeonNode) -> Self {
        let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30)).build().expect("HTTP client");
        Self { token: node.token(), node: Arc::new(Mutex::new(node)), http }
    }

    /// The current incarnation's URL.
    pub fn url(&self) -> String {
        self.node.lock().unwrap().url.clone()
    }

    /// SIGKILL, then start again on the same data directory; returns the new URL.
    pub async fn restart(&self) -> String {
        self.restart_timed().await.0
    }

    /// [`CrashTarget::restart`], also saying how long the new process took
    /// from its start to listening (its recovery).
    pub async fn restart_timed(&self) -> (String, std::time::Duration) {
        let node = self.node.clone();
        tokio::task::spawn_blocking(move || {
            let mut node = node.lock().unwrap();
            node.kill();
            let data = node.data.clone();
            let started = std::time::Instant::now();
            *node = crate::process::PigeonNode::start(&data, "127.0.0.1:0", &[]).expect("pigeon up again");
            (node.url.clone(), started.elapsed())
        })
        .await
        .expect("restart")
    }

    /// POSTs `body` to `url` + `path`: acknowledged, cut by a kill, or (a
    /// failure of the test) refused.
    pub async fn post(&self, url: &str, path: &str, body: serde_json::Value) -> Outcome {
        match self.answer(url, path, &body).await {
            Answer::Ok(_) => Outcome::Acked,
            Answer::Cut => Outcome::Cut,
            Answer::Refused(status, error) => panic!("{path} refused {body}: {status} {error}"),
        }
    }

    /// POSTs `body` to `url` + `path` and says what came back.
    pub async fn answer(&self, url: &str, path: &str, body: &serde_json::Value) -> Answer {
        let response = match self.http.post(format!("{url}{path}")).bearer_auth(&self.token).json(body).send().await {
            Ok(response) => response,
            Err(_) => return Answer::Cut,
        };
        let status = response.status();
        // A body cut off by the kill is a cut, whatever the status said.
        let Ok(text) = response.text().await else { return Answer::Cut };
        let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        if status.is_success() {
            Answer::Ok(json)
        } else {
            let code = json["error"]["code"].as_str().map_or_else(|| text.clone(), str::to_string);
            Answer::Refused(status.as_u16(), code)
        }
    }

    /// Runs [`drive`] against this node: `messages` POSTs of
    /// `(path, body(id))` from `clients` concurrent clients, with `kills`
    /// SIGKILLs and restarts. Returns the acknowledged ids, the kill points
    /// and the last URL.
    pub async fn drive<B>(
        &self,
        messages: usize,
        clients: usize,
        kills: usize,
        request: B,
    ) -> (BTreeSet<String>, Vec<usize>, String)
    where
        B: Fn(&str) -> (&'static str, serde_json::Value) + Clone + Send + Sync + 'static,
    {
        let send = {
            let target = self.clone();
            move |url: String, id: String| {
                let (target, request) = (target.clone(), request.clone());
                async move {
                    let (path, body) = request(&id);
                    target.post(&url, path, body).await
                }
            }
        };
        let restart = || {
            let target = self.clone();
            async move { target.restart().await }
        };
        drive(messages, clients, kills, self.url(), send, restart).await
    }

    /// All of `actor`'s state as text, read a page at a time.
    pub async fn state(&self, url: &str, actor: &str) -> BTreeMap<String, String> {
        let mut state = BTreeMap::<String, String>::new();
        loop {
            let mut query = vec![("limit", "10000".to_string())];
            if let Some(last) = state.keys().next_back() {
                query.push(("after", last.clone()));
            }
            let request = self.http.get(format!("{url}/api/v1/state/{actor}")).query(&query);
            let page: serde_json::Value = request.send().await.expect("GET state").json().await.expect("JSON state");
            let page = page.as_array().unwrap_or_else(|| panic!("state of {actor}: {page}"));
            for entry in page {
                let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
                state.insert(text(&entry["key"]), text(&entry["value"]["text"]));
            }
            if page.len() < 10_000 {
                return state;
            }
        }
    }

    /// GETs `url` + `path` as JSON.
    pub async fn get(&self, url: &str, path: &str) -> serde_json::Value {
        let response = self.http.get(format!("{url}{path}")).send().await.expect("GET");
        response.json().await.expect("a JSON answer")
    }
}
