//! The dashboard end to end: the real `pigeon up --demo`, a real headless
//! Chromium, and the live feed moving the page without a reload. The test
//! also writes the screenshots shown in the README (`docs/img/`).
//!
//! And `/metrics`: it parses as Prometheus text, and its counters move with
//! traffic.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use pigeon_tests::PATIENCE;
use pigeon_tests::artifacts;
use pigeon_tests::browser::Browser;
use pigeon_tests::process::{PigeonNode, ok};

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/img")
}

/// Evaluates `script` in the page and returns its value.
async fn eval(browser: &Browser, script: &str) -> serde_json::Value {
    browser.client.execute(script, vec![]).await.unwrap_or_else(|e| panic!("script failed: {e}"))
}

/// The JSON of `GET {url}/api/v1{path}`.
async fn get(url: &str, path: &str) -> serde_json::Value {
    reqwest::get(format!("{url}/api/v1{path}")).await.expect("GET").json().await.expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_follows_the_node_live_and_drives_it() {
    let Some(browser) = Browser::start().await else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let mut node = PigeonNode::start(&dir.path().join("data"), "127.0.0.1:0", &["--demo"]).expect("pigeon up --demo");
    // A type whose `loop` turn runs until its 8 s deadline: long enough to
    // see messages wait behind it, and dead-lettered at its first failure.
    ok(&node.cli(&["deploy", artifacts::FAULTY, "--name", "slow", "--deadline", "8s", "--max-attempts", "1"]));
    let shots = screenshots();

    // Overview: the deployed types, over the live feed.
    browser.open(&format!("{}/", node.url)).await;
    browser.wait_text("[data-test=type-counter]", |t| t.contains("counter")).await;
    browser.wait_text("[data-test=connection]", |t| t.contains("live")).await;
    // Everything below happens without a page load: this mark would go.
    eval(&browser, "window.__noReload = 'still here'; return null;").await;

    // Send through the form. The first try has no token: the page asks for
    // it (reads are open on loopback, actions are not), then sends.
    browser.route("#/actors/counter/web").await;
    browser.wait_text("[data-test=processed]", |t| t == "0").await;
    browser.type_into("[data-test=send-payload]", "inc").await;
    browser.click("[data-test=send-submit]").await;
    browser.wait_text("[data-test=token-dialog]", |t| t.contains("missing API token")).await;
    browser.type_into("[data-test=token-input]", &node.token()).await;
    browser.click("[data-test=token-save]").await;
    browser.click("[data-test=send-submit]").await;
    browser.wait_text("[data-test=send-outcome]", |t| t.starts_with("sent ")).await;
    browser.wait_text("[data-test=processed]", |t| t == "1").await;
    browser.click("[data-test=send-submit]").await;
    browser.wait_text("[data-test=processed]", |t| t == "2").await;

    // Mailbox depth: while slow/web spins on `loop`, a message sent through
    // the form waits behind it; once the loop's deadline dead-letters it,
    // the waiting message is processed.
    ok(&node.cli(&["send", "slow/web", "loop"]));
    browser.route("#/actors/slow/web").await;
    browser.wait_text("[data-test=in-flight]", |t| t == "running").await;
    browser.wait_text("[data-test=depth]", |t| t == "1").await;
    browser.type_into("[data-test=send-payload]", "ok").await;
    browser.click("[data-test=send-submit]").await;
    browser.wait_text("[data-test=depth]", |t| t == "2").await;
    browser.wait_text("[data-test=mailbox]", |t| t.contains("loop") && t.contains("ok")).await;
    browser.screenshot(&shots.join("actor.png")).await;
    browser.wait_text("[data-test=processed]", |t| t == "1").await;
    browser.wait_text("[data-test=depth]", |t| t == "0").await;
    browser.wait_text("[data-test=errors]", |t| t.contains("dead letter")).await;

    // Actors: a sortable, filterable table.
    browser.route("#/actors").await;
    browser.wait_text("[data-test='actor-counter/web'] [data-test=processed]", |t| t == "2").await;
    browser.type_into("[data-test=actor-filter]", "slow/").await;
    let table = browser.wait_text("[data-test=actors] tbody", |t| !t.contains("counter/web")).await;
    assert!(table.contains("slow/web"), "the filter kept slow/web: {table}");
    browser.type_into("[data-test=actor-filter]", "").await;
    browser.wait_text("[data-test=actors] tbody", |t| t.contains("counter/web")).await;
    browser.screenshot(&shots.join("actors.png")).await;

    // Routing: exported operations and links.
    browser.route("#/routing").await;
    let transfer = browser.wait_text("[data-test=route-transfer]", |t| t.contains("acme:bank/account")).await;
    assert!(transfer.contains("account"), "{transfer}");
    browser.wait_text("[data-test=route-account]", |t| t.contains("withdraw") && t.contains("transfer")).await;
    browser.screenshot(&shots.join("routing.png")).await;

    // Dead letters: slow/web's loop is there (beside the demo's trap);
    // replay it, after the page's confirmation.
    let dead = get(&node.url, "/dead-letters").await;
    let loop_letter = dead
        .as_array()
        .and_then(|all| all.iter().find(|d| d["message"]["to"] == "slow/web"))
        .unwrap_or_else(|| panic!("slow/web's loop is dead-lettered: {dead}"))
        .clone();
    let (dead_id, message_id) = (loop_letter["id"].as_u64().expect("id"), loop_letter["message"]["id"].clone());
    browser.route("#/dead-letters").await;
    let row = format!("[data-test=dead-{dead_id}]");
    browser.wait_text(&row, |t| t.contains("slow/web") && t.contains("loop")).await;
    browser.screenshot(&shots.join("dead-letters.png")).await;
    browser.click(&format!("{row} [data-test=replay]")).await;
    browser.wait_text("[data-test=confirm]", |t| t.contains(&format!("Replay dead letter #{dead_id}"))).await;
    browser.click("[data-test=confirm-yes]").await;
    browser.wait_text("[data-test=dead-outcome]", |t| t == "Replayed 1 dead letter.").await;
    browser.wait_text("[data-test=dead-letters] tbody", |t| !t.contains("slow/web")).await;
    // The replayed message is back in slow/web's mailbox.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let detail = get(&node.url, "/actors/slow/web").await;
        let mailbox = detail["mailbox"].as_array().cloned().unwrap_or_default();
        if mailbox.iter().any(|m| m["id"] == message_id) {
            break;
        }
        assert!(Instant::now() < deadline, "the replayed message never reached the mailbox: {detail}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Overview again, with traffic on the chart.
    browser.route("#/").await;
    let client = reqwest::Client::new();
    let token = node.token();
    for _ in 0..200 {
        let body = serde_json::json!({ "to": "counter/chart", "payload": "inc" });
        let sent = client.post(format!("{}/api/v1/messages", node.url)).bearer_auth(&token).json(&body).send();
        assert!(sent.await.expect("POST").status().is_success());
    }
    browser.wait_text("[data-test=rate-out]", |t| !t.starts_with("0 ")).await;
    browser.wait_text("[data-test=node-identity]", |t| t.contains("data in")).await;
    browser.screenshot(&shots.join("overview.png")).await;

    // Purge all (the demo's trap is left), after confirmation.
    browser.route("#/dead-letters").await;
    browser.wait_text("[data-test=dead-total]", |t| t != "0").await;
    browser.click("[data-test=purge-all]").await;
    browser.wait_text("[data-test=confirm]", |t| t.contains("This deletes them for good")).await;
    browser.click("[data-test=confirm-yes]").await;
    browser.wait_text("[data-test=dead-total]", |t| t == "0").await;

    // The node restarts on the same address and data: the page notices,
    // reconnects on its own and shows the stored counts again.
    let address = node.url.trim_start_matches("http://").to_string();
    node.terminate();
    browser.wait_text("[data-test=connection]", |t| t.contains("reconnecting")).await;
    let node = PigeonNode::start(&dir.path().join("data"), &address, &[]).expect("pigeon up again");
    browser.wait_text("[data-test=connection]", |t| t.contains("live")).await;
    browser.route("#/actors/counter/web").await;
    browser.wait_text("[data-test=processed]", |t| t == "2").await;
    browser.type_into("[data-test=send-payload]", "inc").await;
    browser.click("[data-test=send-submit]").await;
    browser.wait_text("[data-test=processed]", |t| t == "3").await;
    drop(node);

    let mark = eval(&browser, "return window.__noReload || null;").await;
    assert_eq!(mark, "still here", "the page was reloaded");
    browser.close().await;
}

/// The actor page lists delayed messages and cancels one, purges the
/// mailbox and deletes the state, each after a confirmation in the page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_actor_page_cancels_delayed_messages_purges_and_deletes_state() {
    let Some(browser) = Browser::start().await else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let node = PigeonNode::start(&dir.path().join("data"), "127.0.0.1:0", &[]).expect("pigeon up");
    ok(&node.cli(&["deploy", artifacts::COUNTER, "--name", "counter"]));
    let later = ok(&node.cli(&["send", "counter/t", "inc", "--delay", "1h"])).trim().to_string();
    let kept = ok(&node.cli(&["send", "counter/t", "add 2", "--delay", "2h"])).trim().to_string();

    browser.open(&format!("{}/", node.url)).await;
    let token = serde_json::to_string(&node.token()).expect("JSON text");
    eval(&browser, &format!("localStorage.setItem('pigeon.token', {token}); return null;")).await;
    browser.route("#/actors/counter/t").await;
    browser.wait_text("[data-test=delayed]", |t| t.contains(&later) && t.contains(&kept)).await;
    browser.click(&format!("[data-test=cancel-{later}]")).await;
    browser.wait_text("[data-test=confirm]", |t| t.contains(&format!("Cancel {later}?"))).await;
    browser.click("[data-test=confirm-yes]").await;
    browser.wait_text("[data-test=delayed-outcome]", |t| t == format!("Cancelled {later}.")).await;
    browser.wait_text("[data-test=delayed]", |t| !t.contains(&later) && t.contains(&kept)).await;
    let detail = get(&node.url, "/actors/counter/t").await;
    let ids: Vec<&str> =
        detail["delayed"].as_array().unwrap().iter().filter_map(|d| d["message"]["id"].as_str()).collect();
    assert_eq!(ids, [kept.as_str()], "the node holds only the one kept");

    // Purge the rest and delete the state, each after its confirmation.
    ok(&node.cli(&["call", "counter/t", "inc"]));
    browser.click("[data-test=purge]").await;
    browser.wait_text("[data-test=confirm]", |t| t.contains("Purge mailbox of counter/t?")).await;
    browser.click("[data-test=confirm-yes]").await;
    browser.wait_text("[data-test=clear-outcome]", |t| t == "1 messages purged.").await;
    browser.wait_text("[data-test=delayed]", |t| t.contains("Nothing delayed.")).await;
    browser.click("[data-test=forget]").await;
    browser.wait_text("[data-test=confirm]", |t| t.contains("Delete state of counter/t?")).await;
    browser.click("[data-test=confirm-yes]").await;
    browser.wait_text("[data-test=clear-outcome]", |t| t == "1 state entries deleted.").await;
    browser.wait_text("[data-test=state]", |t| t.contains("No state.")).await;
    assert_eq!(ok(&node.cli(&["call", "counter/t", "get"])).trim(), "0");
    browser.close().await;
}

/// One scrape of `/metrics`, as samples by name and labels.
async fn scrape(url: &str) -> HashMap<String, f64> {
    let accept = "application/openmetrics-text; version=1.0.0, text/plain; version=0.0.4; q=0.5";
    let response = reqwest::Client::new().get(format!("{url}/metrics")).header("accept", accept).send().await;
    let response = response.expect("GET /metrics");
    assert!(response.status().is_success(), "{}", response.status());
    let content_type = response.headers()["content-type"].to_str().unwrap_or_default().to_string();
    assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
    let text = response.text().await.expect("body");
    assert!(text.ends_with("# EOF\n"), "OpenMetrics text ends with # EOF");
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("the metrics parse as Prometheus text");
    let mut samples = HashMap::new();
    for sample in scrape.samples {
        let mut labels: Vec<String> = sample.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        labels.sort();
        let value = match sample.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => v,
            prometheus_parse::Value::Untyped(v) => v,
            prometheus_parse::Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            prometheus_parse::Value::Summary(_) => continue,
        };
        samples.insert(format!("{}{{{}}}", sample.metric, labels.join(",")), value);
    }
    samples
}

/// `promtool check metrics` on the Prometheus text format that a plain
/// `text/plain` scrape gets: no complaint at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prometheus_text_format_passes_promtool() {
    let Ok(promtool) = which("promtool") else {
        return pigeon_tests::skip("promtool is not installed (apt-get install prometheus)");
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let node = PigeonNode::start(&dir.path().join("data"), "127.0.0.1:0", &[]).expect("pigeon up");
    ok(&node.cli(&["deploy", artifacts::COUNTER, "--name", "counter"]));
    ok(&node.cli(&["call", "counter/a", "inc"]));
    let response = reqwest::Client::new()
        .get(format!("{}/metrics", node.url))
        .header("accept", "text/plain; version=0.0.4")
        .send()
        .await
        .expect("GET /metrics");
    let content_type = response.headers()["content-type"].to_str().unwrap_or_default().to_string();
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    let text = response.text().await.expect("body");
    assert!(text.contains("# TYPE pigeon_turns_total counter"), "a counter is named by its sample:\n{text}");
    let mut check = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs");
    use std::io::Write;
    check.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write to promtool");
    let out = check.wait_with_output().expect("promtool finishes");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "promtool check metrics complained:\n{said}");
}

/// The path of `program` on PATH.
fn which(program: &str) -> Result<std::path::PathBuf, ()> {
    let path = std::env::var_os("PATH").ok_or(())?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| p.is_file()).ok_or(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_move_with_traffic() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = PigeonNode::start(&dir.path().join("data"), "127.0.0.1:0", &[]).expect("pigeon up");
    ok(&node.cli(&["deploy", artifacts::COUNTER, "--name", "counter"]));
    ok(&node.cli(&["deploy", artifacts::FAULTY, "--name", "faulty", "--max-attempts", "1"]));
    let before = scrape(&node.url).await;
    let value = |s: &HashMap<String, f64>, key: &str| s.get(key).copied().unwrap_or(0.0);
    let turns = "pigeon_turns_total{outcome=completed,type=counter}";
    let failed = "pigeon_turns_total{outcome=failed,type=faulty}";
    assert_eq!(value(&before, "pigeon_actor_types{}"), 2.0, "{before:?}");

    for i in 0..25 {
        ok(&node.cli(&["send", &format!("counter/m{}", i % 5), "inc"]));
    }
    ok(&node.cli(&["send", "faulty/m", "err"]));
    let deadline = Instant::now() + PATIENCE;
    let after = loop {
        let now = scrape(&node.url).await;
        // The dead-letter counter comes from the store's commit report,
        // which may land after the failed turn is counted: wait for both.
        let dead = value(&now, "pigeon_dead_lettered_total{}");
        if value(&now, turns) >= 25.0 && value(&now, failed) >= 1.0 && dead >= 1.0 {
            break now;
        }
        assert!(Instant::now() < deadline, "turn counters never reached 25 and 1, dead letters 1: {now:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(value(&after, turns) - value(&before, turns), 25.0);
    assert_eq!(value(&after, failed) - value(&before, failed), 1.0);
    assert_eq!(
        value(&after, "pigeon_messages_accepted_total{}") - value(&before, "pigeon_messages_accepted_total{}"),
        26.0
    );
    assert_eq!(value(&after, "pigeon_dead_lettered_total{}"), 1.0);
    assert_eq!(value(&after, "pigeon_dead_letters{}"), 1.0, "the dead-letter gauge reads the store");
    assert_eq!(value(&after, "pigeon_actors{}"), 6.0, "five counters and one faulty ran turns");
    // Every commit is in the fsync histogram and the batch-size histogram.
    let commits =
        value(&after, "pigeon_commit_duration_seconds{}") - value(&before, "pigeon_commit_duration_seconds{}");
    assert!(commits >= 1.0, "commits were timed: {after:?}");
    let batches = value(&after, "pigeon_commit_batch_requests{}") - value(&before, "pigeon_commit_batch_requests{}");
    assert_eq!(batches, commits, "one batch size and one duration per commit");
    let timed = value(&after, "pigeon_turn_duration_seconds{type=counter}");
    assert_eq!(timed, value(&after, turns), "every committed turn is timed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_loopback_reads_need_the_token_but_the_page_loads() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = PigeonNode::start(&dir.path().join("data"), "0.0.0.0:0", &[]).expect("pigeon up");
    let url = node.url.replace("0.0.0.0", "127.0.0.1");
    let page = reqwest::get(format!("{url}/")).await.expect("GET /");
    assert!(page.status().is_success());
    assert!(page.text().await.expect("body").contains("/ui/app.js"));
    for path in ["/metrics", "/api/v1/events", "/api/v1/actors"] {
        let refused = reqwest::get(format!("{url}{path}")).await.expect("GET");
        assert_eq!(refused.status(), 401, "{path} without the token");
        let body: serde_json::Value = refused.json().await.expect("JSON error");
        assert!(body["error"]["message"].as_str().unwrap_or_default().contains("token"), "{body}");
    }
    let client = reqwest::Client::new();
    let metrics = client.get(format!("{url}/metrics")).bearer_auth(node.token()).send().await.expect("GET");
    assert!(metrics.status().is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_feed_batches_turns_into_ticks() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = PigeonNode::start(&dir.path().join("data"), "127.0.0.1:0", &[]).expect("pigeon up");
    ok(&node.cli(&["deploy", artifacts::COUNTER, "--name", "counter"]));
    ok(&node.cli(&["deploy", artifacts::FAULTY, "--name", "faulty", "--max-attempts", "1"]));
    let mut feed = reqwest::get(format!("{}/api/v1/events", node.url)).await.expect("GET /events");
    assert_eq!(feed.headers()["content-type"], "text/event-stream");
    let client = reqwest::Client::new();
    let token = node.token();
    let messages = std::iter::repeat_n(("counter/feed", "inc"), 300).chain([("faulty/feed", "err")]);
    for (to, payload) in messages {
        let body = serde_json::json!({ "to": to, "payload": payload });
        let sent = client.post(format!("{}/api/v1/messages", node.url)).bearer_auth(&token).json(&body).send();
        assert!(sent.await.expect("POST").status().is_success());
    }
    let (mut buffer, mut ticks) = (String::new(), Vec::new());
    let deadline = Instant::now() + PATIENCE;
    let (mut completed, mut seen_counter, mut failure) = (0, false, None);
    while completed < 300 || !seen_counter || failure.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, feed.chunk()).await.expect("ticks keep coming").expect("stream");
        buffer.push_str(&String::from_utf8_lossy(&chunk.expect("the feed stays open")));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) else { continue };
            let tick: serde_json::Value = serde_json::from_str(data).expect("a tick is JSON");
            completed = tick["counters"]["completed"].as_u64().unwrap_or(0);
            let changed = tick["changed"].as_array().cloned().unwrap_or_default();
            seen_counter |= changed.iter().any(|row| row["address"] == "counter/feed");
            if let Some(f) = tick["failures"].as_array().and_then(|f| f.first()) {
                failure = Some(f.clone());
            }
            ticks.push(tick);
        }
    }
    let failure = failure.expect("a failure was reported");
    assert_eq!(failure["actor"], "faulty/feed");
    assert_eq!(failure["dead"], true, "max-attempts 1: dead at once");
    assert!(failure["error"].as_str().unwrap_or_default().contains("error on command"), "{failure}");
    // Turns arrive summed up in ticks, not one event each.
    let counts: Vec<u64> = ticks.iter().map(|t| t["counters"]["completed"].as_u64().unwrap_or(0)).collect();
    let most = counts.windows(2).map(|w| w[1].saturating_sub(w[0])).max().unwrap_or(0);
    assert!(most > 1, "some tick covers more than one turn: {counts:?}");
    let last = ticks.last().expect("a tick");
    assert_eq!(last["interval_ms"], 500);
    assert_eq!(last["dead_letters"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lattice_page_and_pigeon_nodes_show_a_killed_node_go_down_and_come_back() {
    use pigeon_tests::lattice::{NatsServer, cluster, wait_for_peers};
    use pigeon_tests::process::wait_until;
    let Some(nats) = NatsServer::start() else { return };
    let Some(browser) = Browser::start().await else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let mut nodes = cluster(dir.path(), &nats.url, 2);
    ok(&nodes[0].node.cli(&["deploy", artifacts::COUNTER, "--name", "counter"]));
    let url = nodes[0].url();

    browser.open(&format!("{url}/#/lattice")).await;
    browser.wait_text("[data-test=lattice-connection]", |t| t == "connected").await;
    browser.wait_text("[data-test=node-n1]", |t| t.contains("(this node)") && t.contains("up")).await;
    browser.wait_text("[data-test=node-n2] [data-test=node-state]", |t| t == "up").await;
    // n2 runs the counter once the deploy reached it: the page shows it live.
    browser.wait_text("[data-test=node-n2]", |t| t.contains("counter")).await;
    // A send through n1 to an actor n2 owns waits in n1's outbox while n2 is down.
    let placement = pigeon_node::pigeon_store::Placement::new(["n1".to_string(), "n2".to_string()]);
    let on_n2 = (0..).map(|k| format!("counter/k{k}")).find(|a| placement.owner(a) == Some("n2")).unwrap();

    nodes[1].node.kill();
    browser.wait_text("[data-test=node-n2] [data-test=node-state]", |t| t == "down").await;
    browser.wait_text("[data-test=lattice-badge]", |t| t == "1 down").await;
    wait_until("`pigeon nodes` to show n2 down", || {
        String::from_utf8_lossy(&nodes[0].node.cli(&["nodes"]).stdout)
            .lines()
            .any(|l| l.starts_with("n2 ") && l.contains(" down"))
    });
    ok(&nodes[0].node.cli(&["send", &on_n2, "inc"]));
    browser.wait_text("[data-test=node-n2] [data-test=node-outbox]", |t| t == "1").await;
    browser.screenshot(&screenshots().join("lattice.png")).await;

    nodes[1].restart();
    browser.wait_text("[data-test=node-n2] [data-test=node-state]", |t| t == "up").await;
    browser.wait_text("[data-test=node-n2] [data-test=node-outbox]", |t| t == "0").await;
    wait_for_peers(&nodes[0], 2);
    assert_eq!(ok(&nodes[0].node.cli(&["call", &on_n2, "get"])).trim(), "1", "the send waited for n2 and reached it");

    // The page moves the counters off n2, and shows the move done.
    let row = "[data-test=placement-counter]";
    browser.wait_text(&format!("{row} [data-test=placement-nodes]"), |t| t.starts_with("n1, n2")).await;
    browser.type_into(&format!("{row} [data-test=placement-input]"), "n1").await;
    // The first try has no token: the page asks for it, then it goes.
    browser.click(&format!("{row} [data-test=placement-change]")).await;
    browser.wait_text("[data-test=token-dialog]", |t| t.contains("missing API token")).await;
    browser.type_into("[data-test=token-input]", &nodes[0].node.token()).await;
    browser.click("[data-test=token-save]").await;
    browser.click(&format!("{row} [data-test=placement-change]")).await;
    browser.wait_text(&format!("{row} [data-test=placement-outcome]"), |t| t.contains("now on n1 (epoch 1)")).await;
    browser.wait_text(&format!("{row} [data-test=placement-nodes]"), |t| t == "n1 (epoch 1)").await;
    wait_until("the move to finish", || {
        let status =
            String::from_utf8_lossy(&nodes[0].node.cli(&["placement", "counter", "--json"]).stdout).to_string();
        serde_json::from_str::<serde_json::Value>(&status).is_ok_and(|s| s["complete"] == true)
    });
    assert_eq!(ok(&nodes[0].node.cli(&["call", &on_n2, "get"])).trim(), "1", "the counter moved with its state");
    // Asked through n2, its old owner, the actor is answered by n1.
    let seen = ok(&nodes[1].node.cli(&["inspect", &on_n2]));
    assert!(seen.contains("(on node n1)") && seen.contains("count"), "its owner is n1 now, with its state: {seen}");
    browser.close().await;
}
