//! `pigeon placement TYPE [--nodes a,b,c]` shows or changes the nodes a
//! type's actors live on, and `pigeon drain NODE` moves every actor off a
//! node. A change answers at once; the CLI then follows the moves with a
//! progress bar (actors and bytes moved) until every actor has arrived,
//! unless `--no-wait`.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use pigeon_api::placement::{Drained, PlacementInfo, PlacementRequest};

use crate::client::{Client, segment};
use crate::table;

/// How often the moves are looked at.
const POLL: Duration = Duration::from_millis(250);

pub async fn show(client: &Client, name: &str, json: bool) -> anyhow::Result<()> {
    let info: PlacementInfo = client.get(&path(name)?).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&info)?);
        return Ok(());
    }
    print!("{}", describe(&info));
    Ok(())
}

pub async fn change(client: &Client, name: &str, nodes: Vec<String>, wait: bool, json: bool) -> anyhow::Result<()> {
    let changed: PlacementInfo = client.put(&path(name)?, &PlacementRequest { nodes }).await?;
    if !json {
        println!("`{name}` now lives on {} (placement epoch {})", changed.nodes.join(", "), changed.epoch);
    }
    let last = if wait { follow(client, name, json).await? } else { changed };
    if json {
        println!("{}", serde_json::to_string_pretty(&last)?);
    }
    Ok(())
}

pub async fn drain(client: &Client, node: &str, wait: bool, json: bool) -> anyhow::Result<()> {
    let drained: Drained = client.post(&format!("/nodes/{}/drain", segment(node)?), &serde_json::json!({})).await?;
    if !json {
        match drained.changed.len() {
            0 => println!("no type is placed on node {node}: nothing to move"),
            _ => {
                for info in &drained.changed {
                    println!(
                        "`{}` now lives on {} (placement epoch {})",
                        info.r#type,
                        info.nodes.join(", "),
                        info.epoch
                    );
                }
            }
        }
    }
    let mut last = Vec::new();
    for info in &drained.changed {
        last.push(if wait { follow(client, &info.r#type, json).await? } else { info.clone() });
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&Drained { node: drained.node, changed: last })?);
    } else if wait {
        println!("node {node} holds no actors now: it can be stopped");
    }
    Ok(())
}

fn path(name: &str) -> anyhow::Result<String> {
    Ok(format!("/types/{}/placement", segment(name)?))
}

/// Follows `name`'s moves until they are complete, with a progress bar
/// (hidden with `--json` or off a terminal); returns the last status.
async fn follow(client: &Client, name: &str, json: bool) -> anyhow::Result<PlacementInfo> {
    let bar = if json { ProgressBar::hidden() } else { ProgressBar::new(0) };
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} actors, {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("moving {name}"));
    let mut told = None;
    loop {
        let info: PlacementInfo = client.get(&path(name)?).await?;
        let (moved, remaining, bytes) =
            info.moves.iter().fold((0, 0, 0), |(m, r, b), mv| (m + mv.moved, r + mv.remaining, b + mv.bytes));
        bar.set_length(moved + remaining);
        bar.set_position(moved);
        bar.set_message(indicatif::HumanBytes(bytes).to_string());
        // Each new reason once, not every poll.
        let stuck = info.moves.iter().find_map(|mv| mv.error.as_ref().map(|e| (mv.from.clone(), e.clone())));
        if stuck.is_some() && stuck != told {
            if let Some((from, why)) = &stuck {
                bar.println(format!("waiting for node {from}: {why}"));
            }
            told = stuck;
        }
        if info.complete {
            bar.finish_and_clear();
            if !json {
                println!("moved {moved} actors of `{name}` ({})", indicatif::HumanBytes(bytes));
            }
            return Ok(info);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A placement as text: the nodes, and the moves of its last change.
fn describe(info: &PlacementInfo) -> String {
    let mut text = match info.nodes.is_empty() {
        true => format!("`{}` runs on this node only (not in a lattice)\n", info.r#type),
        false => format!("`{}` lives on {} (placement epoch {})\n", info.r#type, info.nodes.join(", "), info.epoch),
    };
    if let Some(previous) = &info.previous {
        text.push_str(&format!("moving from {}:\n", previous.join(", ")));
        let rows: Vec<Vec<String>> = info
            .moves
            .iter()
            .map(|mv| {
                vec![
                    mv.from.clone(),
                    mv.moved.to_string(),
                    mv.remaining.to_string(),
                    indicatif::HumanBytes(mv.bytes).to_string(),
                    if mv.done { "done".into() } else { mv.error.clone().unwrap_or_else(|| "moving".into()) },
                ]
            })
            .collect();
        text.push_str(&table::render(&["FROM", "MOVED", "LEFT", "BYTES", "STATE"], &rows));
    }
    text
}
