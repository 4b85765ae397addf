//! `pigeon nodes`: the lattice as the node the CLI talks to sees it, and
//! `pigeon nodes forget ID` to admit a node that lost its store.

use pigeon_api::nodes::{Forgotten, NodeList};

use crate::client::{Client, segment};
use crate::table;

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
