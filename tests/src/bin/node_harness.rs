//! A node core in a child process, driven over a line protocol on TCP, for
//! the crash tests: the test kills this process with SIGKILL mid-load and
//! starts it again on the same data directory.
//!
//! Usage: `pigeon-node-harness DATA_DIR COUNTER_WASM`. Prints
//! `listening PORT` once ready. Requests, one per line, one answer each:
//! - `send ADDR OP_ID PAYLOAD...` → `ok` once durable, or `err TEXT`;
//! - `depth ADDR` → `depth N` (mailbox plus delayed messages);
//! - `state ADDR PREFIX` → `entry KEY VALUE` lines, then `end`.

use std::sync::Arc;

use anyhow::Context;
use pigeon_node::pigeon_store::{Envelope, TypeLimits};
use pigeon_node::{Node, NodeConfig};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter("warn").init();
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(wasm)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: pigeon-node-harness DATA_DIR COUNTER_WASM");
    };
    let node = Node::start(NodeConfig::new(&dir)).await?;
    if !node.type_names().iter().any(|n| n == "counter") {
        let bytes = std::fs::read(&wasm).with_context(|| format!("reading {wasm}"))?;
        node.deploy("counter", bytes, TypeLimits::default(), Vec::new()).await?;
    }
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("listening {}", listener.local_addr()?.port());
    let node = Arc::new(node);
    loop {
        let (socket, _) = listener.accept().await?;
        tokio::spawn(serve(node.clone(), socket));
    }
}

async fn serve(node: Arc<Node>, socket: TcpStream) -> anyhow::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Some(line) = lines.next_line().await? {
        let answer = answer(&node, &line).await;
        write.write_all(answer.as_bytes()).await?;
    }
    Ok(())
}

async fn answer(node: &Node, line: &str) -> String {
    let words: Vec<&str> = line.splitn(4, ' ').collect();
    match words.as_slice() {
        ["send", addr, op, payload] => {
            let envelope = Envelope::new(*addr, payload.as_bytes().to_vec()).with_header("op-id", *op);
            match node.send(envelope).await {
                Ok(_) => "ok\n".into(),
                Err(e) => format!("err {e}\n"),
            }
        }
        ["depth", addr] => {
            let store = node.store();
            let delayed = store.delayed_of(addr, usize::MAX).map(|d| d.len());
            match (store.mailbox_depth(addr), delayed) {
                (Ok(depth), Ok(delayed)) => format!("depth {}\n", depth + delayed as u64),
                (Err(e), _) | (_, Err(e)) => format!("err {e}\n"),
            }
        }
        ["state", addr, prefix] => match node.store().state_scan(addr, prefix) {
            Ok(entries) => {
                let mut out = String::new();
                for (key, value) in entries {
                    out.push_str(&format!("entry {key} {}\n", String::from_utf8_lossy(&value)));
                }
                out + "end\n"
            }
            Err(e) => format!("err {e}\n"),
        },
        _ => format!("err unknown request `{line}`\n"),
    }
}
