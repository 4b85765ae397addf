//! `pigeon nodes`: the lattice as the node the CLI talks to sees it, and
//! `pigeon nodes forget ID` to admit a node that lost its store.

use pigeon_api::nodes::{Forgotten, NodeList};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::client::{Client, segment};
use crate::table;

/// `GET path` on every node of the lattice that is up, as `(node id,
/// answer)`; on a node outside a lattice, or with `--on`, just that
/// node's answer under the id `""`. Nodes that are not up are named on
/// stderr: what they hold is missing.
pub async fn each_node<T: DeserializeOwned>(client: &Client, path: &str) -> anyhow::Result<Vec<(String, T)>> {
    let list: NodeList = match client.target() {
        Some(_) => NodeList { lattice: None, nodes: Vec::new() },
        None => client.get("/nodes").await?,
    };
    if list.lattice.is_none() {
        return Ok(vec![(String::new(), client.get(path).await?)]);
    }
    let mut answers = Vec::new();
    for node in &list.nodes {
        if node.state != "up" {
            eprintln!("warning: node {} is {}: what it holds is not listed", node.id, node.state);
            continue;
        }
        let answer = client.on(Some(node.id.clone())).get(path).await;
        match answer {
            Ok(answer) => answers.push((node.id.clone(), answer)),
            Err(e) => eprintln!("warning: node {} did not answer ({e:#}): what it holds is not listed", node.id),
        }
    }
    Ok(answers)
}

/// `value` as JSON with a `node` field (when `node` is not `""`).
pub fn with_node<T: Serialize>(value: &T, node: &str) -> serde_json::Value {
    let mut json = serde_json::to_value(value).unwrap_or_default();
    if let (Some(object), false) = (json.as_object_mut(), node.is_empty()) {
        object.insert("node".into(), node.into());
    }
    json
}

pub async fn list(client: &Client, json: bool) -> anyhow::Result<()> {
    let list: NodeList = client.get("/nodes").await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    match &list.lattice {
        Some(l) => println!(
            "lattice `{}`: {} (this node: {})",
            l.name,
            if l.connected { "connected" } else { "disconnected (serving local actors, retrying NATS)" },
            l.node_id
        ),
        None => println!("not in a lattice (start the node with `pigeon up --nats URL` to join one)"),
    }
    let rows: Vec<Vec<String>> = list
        .nodes
        .iter()
        .map(|n| {
            vec![
                if n.this_node { format!("{} *", n.id) } else { n.id.clone() },
                n.state.clone(),
                n.api.clone(),
                n.types.join(","),
                n.active_actors.to_string(),
                if n.this_node { "-".into() } else { n.outbox_to.to_string() },
                format!("{:.0}", n.forwarded_per_sec),
                if n.this_node { "-".into() } else { format!("{:.1}s", n.silent_ms as f64 / 1000.0) },
            ]
        })
        .collect();
    print!("{}", table::render(&["NODE", "STATE", "API", "TYPES", "ACTIVE", "OUTBOX", "FWD/S", "SILENT"], &rows));
    for n in list.nodes.iter().filter(|n| n.refusal.is_some()) {
        println!("{} refused: {}", n.id, n.refusal.as_deref().unwrap_or_default());
    }
    Ok(())
}

pub async fn forget(client: &Client, id: &str) -> anyhow::Result<()> {
    // An unknown id is an error of the API (404).
    let done: Forgotten = client.post(&format!("/nodes/{}/forget", segment(id)?), &serde_json::json!({})).await?;
    println!("forgot node {}: its next heartbeat is admitted with whatever incarnation it has", done.id);
    Ok(())
}
