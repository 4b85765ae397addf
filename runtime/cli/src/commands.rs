//! The commands that drive a node through its API: each builds a request,
//! sends it, and prints the answer as a table (or JSON with `--json`).

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use base64::Engine as _;
use pigeon_api::model::*;

use crate::client::{Client, segment};
use crate::table;
use crate::{Selection, SendArgs, WaitLevel};

/// Limits and links given to `pigeon deploy`.
pub struct DeployOptions {
    pub max_attempts: Option<u32>,
    pub memory: Option<u64>,
    pub deadline: Option<Duration>,
    pub mailbox_bound: Option<u64>,
    pub links: Vec<String>,
    pub env: Vec<(String, String)>,
    pub nodes: Option<Vec<String>>,
}

fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Text for a body: its text, or `<N bytes>` when binary; a cut one says so.
fn show(body: &Body) -> String {
    match (&body.text, body.truncated) {
        (Some(text), false) => text.clone(),
        (Some(text), true) => format!("(first {} of {} bytes) {text}", text.len(), body.size),
        (None, _) => format!("<{} bytes>", body.size),
    }
}

pub async fn deploy(client: &Client, file: &Path, name: &str, limits: DeployOptions, json: bool) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut query = vec![];
    if let Some(n) = limits.max_attempts {
        query.push(format!("max_attempts={n}"));
    }
    if let Some(m) = limits.memory {
        query.push(format!("memory_bytes={m}"));
    }
    if let Some(d) = limits.deadline {
        query.push(format!("deadline_ms={}", d.as_millis()));
    }
    if let Some(b) = limits.mailbox_bound {
        query.push(format!("mailbox_bound={b}"));
    }
    if !limits.links.is_empty() {
        query.push(format!("links={}", crate::client::encode_query(&limits.links.join(","))));
    }
    if !limits.env.is_empty() {
        let mut env = std::collections::BTreeMap::new();
        for (name, value) in &limits.env {
            if env.insert(name.as_str(), value.as_str()).is_some() {
                anyhow::bail!("`--env {name}=...` is given twice: give each variable once");
            }
        }
        query.push(format!("env={}", crate::client::encode_query(&serde_json::to_string(&env)?)));
    }
    if let Some(nodes) = &limits.nodes {
        query.push(format!("nodes={}", crate::client::encode_query(&nodes.join(","))));
    }
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_message(format!("uploading and compiling {} ({} KiB)", file.display(), bytes.len() / 1024));
    spinner.enable_steady_tick(Duration::from_millis(100));
    let path = format!("/types/{}?{}", segment(name)?, query.join("&"));
    let result: anyhow::Result<TypeInfo> = client.put_bytes(&path, bytes).await;
    spinner.finish_and_clear();
    let ty = result.with_context(|| format!("cannot deploy {}", file.display()))?;
    if json {
        return print_json(&ty);
    }
    println!("deployed {} (version {}, {} KiB)", ty.name, &ty.version[..12.min(ty.version.len())], ty.size / 1024);
    print!("{}", type_rpc(&ty));
    Ok(())
}

/// The operations and links of a type, one per line, indented.
fn type_rpc(ty: &TypeInfo) -> String {
    let mut text = String::new();
    for op in &ty.operations {
        text.push_str(&format!("  exports {}.{}: {}\n", op.interface, op.function, op.signature));
    }
    for link in &ty.links {
        text.push_str(&format!("  links   {link}\n"));
    }
    if !ty.env.is_empty() {
        text.push_str(&format!("  env     {}\n", ty.env.join(", ")));
    }
    text
}

/// Whether a `call` payload is written as a typed call, `NAME(ARGS)`: a
/// name of interface characters right before the first `(`. (A payload
/// that starts so but is not a valid call gets the parser's error rather
/// than being sent as bytes; `--raw` sends it as bytes.)
pub fn looks_like_call(payload: &str) -> bool {
    let Some((name, _)) = payload.trim().split_once('(') else { return false };
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "-:/@.".contains(c))
}

pub async fn undeploy(client: &Client, name: &str) -> anyhow::Result<()> {
    client.delete(&format!("/types/{}", segment(name)?)).await?;
    println!("undeployed {name} (its mailboxes and state are kept)");
    Ok(())
}

pub async fn send(client: &Client, args: SendArgs, reply_within: Option<Duration>, json: bool) -> anyhow::Result<()> {
    let typed = !args.raw && !args.stdin && args.payload.as_deref().is_some_and(looks_like_call);
    let invoke = if typed { args.payload.clone() } else { None };
    let payload = if typed {
        Vec::new()
    } else if args.stdin {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes).context("cannot read the payload from standard input")?;
        bytes
    } else {
        args.payload.unwrap_or_default().into_bytes()
    };
    let (payload, payload_base64) = match String::from_utf8(payload) {
        Ok(_) if typed => (None, None),
        Ok(text) => (Some(text), None),
        Err(e) => (None, Some(base64::engine::general_purpose::STANDARD.encode(e.as_bytes()))),
    };
    let request = SendRequest {
        to: args.address,
        invoke,
        message: Outgoing {
            payload,
            payload_base64,
            priority: Some(args.priority),
            headers: args.headers.into_iter().collect(),
        },
        transient: args.transient,
        delay_ms: args.delay.map(|d| d.as_millis() as u64),
        ttl_ms: args.ttl.map(|d| d.as_millis() as u64),
        dedup_key: args.dedup_key,
        wait: match (reply_within, args.wait) {
            (Some(_), _) => Wait::Replied,
            (None, WaitLevel::Accepted) => Wait::Accepted,
            (None, WaitLevel::Delivered) => Wait::Delivered,
        },
        timeout_ms: reply_within.map(|d| d.as_millis() as u64),
    };
    let answer: SendResponse = client.post("/messages", &request).await?;
    if json {
        return print_json(&answer);
    }
    match (reply_within, answer.reply, answer.result) {
        (None, ..) if answer.duplicate => println!("{} (duplicate: already accepted, not delivered again)", answer.id),
        (None, ..) => println!("{}", answer.id),
        (Some(_), _, Some(result)) => println!("{result}"),
        (Some(_), Some(reply), None) => println!("{}", show(&reply)),
        (Some(_), None, None) => println!("(no reply)"),
    }
    Ok(())
}

pub async fn ls(client: &Client, json: bool) -> anyhow::Result<()> {
    let types: Vec<TypeInfo> = client.get("/types").await?;
    let per_node: Vec<(String, Vec<ActorInfo>)> = crate::nodes::each_node(client, "/actors").await?;
    let in_lattice = per_node.iter().any(|(node, _)| !node.is_empty());
    if json {
        let actors: Vec<serde_json::Value> = per_node
            .iter()
            .flat_map(|(node, actors)| actors.iter().map(move |a| crate::nodes::with_node(a, node)))
            .collect();
        return print_json(&serde_json::json!({ "types": types, "actors": actors }));
    }
    let rows: Vec<Vec<String>> = types
        .iter()
        .map(|t| {
            vec![
                t.name.clone(),
                t.version[..12.min(t.version.len())].to_string(),
                format!("{} KiB", t.size / 1024),
                t.max_attempts.to_string(),
                format!("{} MiB", t.memory_bytes >> 20),
                format!("{} ms", t.deadline_ms),
            ]
        })
        .collect();
    print!("{}", table::render(&["TYPE", "VERSION", "SIZE", "ATTEMPTS", "MEMORY", "DEADLINE"], &rows));
    for ty in types.iter().filter(|t| !t.operations.is_empty() || !t.links.is_empty() || !t.env.is_empty()) {
        print!("\n{}\n{}", ty.name, type_rpc(ty));
    }
    println!();
    let rows: Vec<Vec<String>> = per_node
        .iter()
        .flat_map(|(node, actors)| {
            actors.iter().map(move |a| {
                let row = vec![
                    a.address.clone(),
                    a.pending.to_string(),
                    by_priority(&a.depths),
                    a.processed.to_string(),
                    a.failed.to_string(),
                    a.dead_lettered.to_string(),
                ];
                if in_lattice { [vec![node.clone()], row].concat() } else { row }
            })
        })
        .collect();
    let columns = ["ACTOR", "PENDING", "BY PRIORITY", "PROCESSED", "FAILED", "DEAD"];
    let columns: Vec<&str> = if in_lattice { [&["NODE"][..], &columns].concat() } else { columns.to_vec() };
    print!("{}", table::render(&columns, &rows));
    Ok(())
}

/// `p9:1 p4:2`: the non-empty priorities, highest first.
fn by_priority(depths: &[u64]) -> String {
    let parts: Vec<String> =
        depths.iter().enumerate().rev().filter(|(_, n)| **n > 0).map(|(p, n)| format!("p{p}:{n}")).collect();
    if parts.is_empty() { "-".into() } else { parts.join(" ") }
}

/// Which page of an actor's state `inspect` shows, and how much of each value.
pub struct StatePage {
    pub after: Option<String>,
    pub limit: usize,
    pub value_limit: u64,
}

pub async fn inspect(client: &Client, address: &str, page: StatePage, json: bool) -> anyhow::Result<()> {
    let mut path = format!("/actors/{}?state_limit={}&value_limit={}", segment(address)?, page.limit, page.value_limit);
    if let Some(after) = &page.after {
        path.push_str(&format!("&state_after={}", crate::client::encode_query(after)));
    }
    let (detail, answered_by): (ActorDetail, _) =
        client.get_with_header(&path, pigeon_api::forward::ANSWERED_BY).await?;
    if json {
        return print_json(&detail);
    }
    let a = &detail.info;
    match answered_by {
        Some(node) => println!("{}  (on node {node})", a.address),
        None => println!("{}", a.address),
    }
    let ty = a.address.split('/').next().unwrap_or_default();
    let types: Vec<TypeInfo> = client.get("/types").await?;
    if let Some(ty) = types.iter().find(|t| t.name == ty) {
        print!("{}", type_rpc(ty));
    }
    println!("  pending    {} ({})", a.pending, by_priority(&a.depths));
    println!("  processed  {}", a.processed);
    println!("  failed     {} (dead-lettered {})", a.failed, a.dead_lettered);
    println!("  dropped    {} transient", detail.dropped);
    println!("  refused    {} (mailbox full)", detail.refused);
    if let Some(id) = &detail.info.in_flight {
        println!("  handling   {id}");
    }
    if let Some(error) = &a.last_error {
        println!("  last error {error}");
    }
    println!("\nMAILBOX ({} shown)", detail.mailbox.len());
    let rows: Vec<Vec<String>> = detail
        .mailbox
        .iter()
        .map(|m| {
            let payload = m.call.clone().unwrap_or_else(|| show(&m.payload));
            vec![m.id.clone(), m.priority.to_string(), m.failures.to_string(), payload]
        })
        .collect();
    print!("{}", table::render(&["ID", "PRIORITY", "FAILURES", "PAYLOAD"], &rows));
    if !detail.delayed.is_empty() {
        println!("\nDELAYED ({} shown; `pigeon cancel ID` cancels one)", detail.delayed.len());
        let now = pigeon_node::pigeon_store::now_ms();
        let rows: Vec<Vec<String>> = detail
            .delayed
            .iter()
            .map(|d| {
                let m = &d.message;
                let due = humantime::format_duration(Duration::from_millis(d.due_ms.saturating_sub(now) / 1000 * 1000));
                let payload = m.call.clone().unwrap_or_else(|| show(&m.payload));
                vec![m.id.clone(), format!("in {due}"), m.priority.to_string(), m.failures.to_string(), payload]
            })
            .collect();
        print!("{}", table::render(&["ID", "DUE", "PRIORITY", "FAILURES", "PAYLOAD"], &rows));
    }
    let from = page.after.as_ref().map(|a| format!(" after `{a}`")).unwrap_or_default();
    let more = if detail.state_more { ", more follow" } else { "" };
    println!("\nSTATE ({} keys{from}{more})", detail.state.len());
    let rows: Vec<Vec<String>> = detail.state.iter().map(|e| vec![e.key.clone(), show(&e.value)]).collect();
    print!("{}", table::render(&["KEY", "VALUE"], &rows));
    if let (true, Some(last)) = (detail.state_more, detail.state.last()) {
        println!("next page: pigeon inspect {address} --after '{}' --limit {}", last.key, page.limit);
    }
    if !detail.dead_letters.is_empty() {
        println!("\nDEAD LETTERS");
        print!("{}", dead_letter_table(&[(String::new(), detail.dead_letters)]));
    }
    Ok(())
}

/// Dead letters by node (`""`: a node on its own, no NODE column).
fn dead_letter_table(per_node: &[(String, Vec<DeadLetterView>)]) -> String {
    let in_lattice = per_node.iter().any(|(node, _)| !node.is_empty());
    let rows: Vec<Vec<String>> = per_node
        .iter()
        .flat_map(|(node, dead)| {
            dead.iter().map(move |d| {
                let row = vec![
                    d.id.to_string(),
                    d.message.to.clone(),
                    d.reason.clone(),
                    d.message.failures.to_string(),
                    d.message.call.clone().unwrap_or_else(|| show(&d.message.payload)),
                    d.error.clone(),
                ];
                if in_lattice { [vec![node.clone()], row].concat() } else { row }
            })
        })
        .collect();
    let columns = ["ID", "ACTOR", "REASON", "ATTEMPTS", "PAYLOAD", "ERROR"];
    let columns: Vec<&str> = if in_lattice { [&["NODE"][..], &columns].concat() } else { columns.to_vec() };
    table::render(&columns, &rows)
}

pub async fn dlq_ls(client: &Client, json: bool) -> anyhow::Result<()> {
    let per_node: Vec<(String, Vec<DeadLetterView>)> = crate::nodes::each_node(client, "/dead-letters").await?;
    if json {
        let dead: Vec<serde_json::Value> = per_node
            .iter()
            .flat_map(|(node, dead)| dead.iter().map(move |d| crate::nodes::with_node(d, node)))
            .collect();
        return print_json(&dead);
    }
    print!("{}", dead_letter_table(&per_node));
    if per_node.iter().filter(|(_, dead)| !dead.is_empty()).any(|(node, _)| !node.is_empty()) {
        println!("ids are per node: `pigeon --on NODE dlq replay ID` replays one where it is");
    }
    Ok(())
}

/// `replay` or `purge` the selected dead letters.
pub async fn dlq_change(client: &Client, action: &str, selection: Selection) -> anyhow::Result<()> {
    let body = DeadLetterSelection { ids: (!selection.all).then_some(selection.ids) };
    let handled: DeadLettersHandled = client.post(&format!("/dead-letters/{action}"), &body).await?;
    let done = if action == "replay" { "replayed" } else { "purged" };
    println!("{done} {} dead letter{}", handled.count, if handled.count == 1 { "" } else { "s" });
    if !handled.missing.is_empty() {
        let ids: Vec<String> = handled.missing.iter().map(u64::to_string).collect();
        anyhow::bail!(
            "no dead letter with id {} (already replayed or purged? `pigeon dlq ls` lists them) [unknown_dead_letter]",
            ids.join(", ")
        );
    }
    Ok(())
}

/// `DELETE {collection}/{address}`: a purge or a state deletion.
pub async fn clear(client: &Client, collection: &str, address: &str, done: &str) -> anyhow::Result<()> {
    let count: Count = client.delete_json(&format!("{collection}/{}", segment(address)?)).await?;
    println!("{} {done} {address}", count.count);
    Ok(())
}

pub async fn cancel(client: &Client, id: &str) -> anyhow::Result<()> {
    client.delete(&format!("/delayed/{}", segment(id)?)).await?;
    println!("cancelled {id}: it will not be delivered");
    Ok(())
}

pub async fn subscribe(client: &Client, topic: &str, subscriber: &str, filter: &str) -> anyhow::Result<()> {
    let body = Subscription { topic: topic.into(), subscriber: subscriber.into(), filter: filter.into() };
    client.post::<_, serde_json::Value>(&format!("/topics/{}/subscriptions", segment(topic)?), &body).await?;
    println!("{subscriber} subscribed to {topic}");
    Ok(())
}

pub async fn unsubscribe(client: &Client, topic: &str, subscriber: &str) -> anyhow::Result<()> {
    client.delete(&format!("/topics/{}/subscriptions/{}", segment(topic)?, segment(subscriber)?)).await?;
    println!("{subscriber} unsubscribed from {topic}");
    Ok(())
}

pub async fn publish(
    client: &Client,
    topic: &str,
    payload: String,
    priority: u8,
    headers: Vec<(String, String)>,
    json: bool,
) -> anyhow::Result<()> {
    let body = Outgoing {
        payload: Some(payload),
        priority: Some(priority),
        headers: headers.into_iter().collect(),
        ..Default::default()
    };
    let published: Published = client.post(&format!("/topics/{}/messages", segment(topic)?), &body).await?;
    if json {
        return print_json(&published);
    }
    let count = published.count;
    let subscribers = format!("{count} subscriber{}", if count == 1 { "" } else { "s" });
    match published.relayed_to.as_slice() {
        [] => println!("delivered to {subscribers}"),
        nodes => println!("delivered to {subscribers} here, relayed to {} for theirs", nodes.join(", ")),
    }
    Ok(())
}

pub async fn topics(client: &Client, json: bool) -> anyhow::Result<()> {
    let (subs, unreachable): (Vec<Subscription>, _) = client.get_with_header("/topics", UNREACHABLE).await?;
    if let Some(nodes) = unreachable {
        eprintln!("warning: nodes {nodes} did not answer: their subscriptions are not listed");
    }
    if json {
        return print_json(&subs);
    }
    let rows: Vec<Vec<String>> =
        subs.iter().map(|s| vec![s.topic.clone(), s.subscriber.clone(), s.filter.clone()]).collect();
    print!("{}", table::render(&["TOPIC", "SUBSCRIBER", "FILTER"], &rows));
    Ok(())
}
