//! `pigeon`: the command line of the Pigeon actor runtime.
//!
//! `pigeon up` runs a node; every other command talks to a node through its
//! HTTP API (the same one the dashboard uses). This is the binary's edge:
//! errors become one line on stderr and a non-zero exit.

/// mimalloc rather than glibc's malloc: a turn allocates and frees a
/// handful of small buffers (envelope, reply, commit request) on one
/// worker thread and the committer frees some of them on another, and
/// glibc's allocator was the largest single item in the profile of
/// durable processing (~13% of the samples); with mimalloc the bench's
/// processing row rose by 12–25% (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod client;
mod commands;
mod guest_build;
mod nodes;
mod placement;
mod scaffold;
mod table;
mod units;
mod up;

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand};

/// Pigeon: actors compiled to WebAssembly components, with durable mailboxes.
///
/// Start a node with `pigeon up`, then deploy components and send messages
/// to actors (`type/key`) from another terminal.
#[derive(Parser)]
#[command(version, propagate_version = true, after_help = EXAMPLES)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

const EXAMPLES: &str = "Examples:
  pigeon up --demo                                  start a node with example actors
  pigeon deploy counter.wasm --name counter         deploy a component
  pigeon send counter/alice inc                     send a message
  pigeon call counter/alice get                     send and wait for the reply
  pigeon deploy transfer.wasm --name transfer --link acme:bank/account=account
  pigeon call account/alice 'account.deposit(100)'  typed RPC call, arguments in WAVE
  pigeon inspect counter/alice                      mailbox, state and errors of one actor
  pigeon subscribe orders shop/eu --filter \"amount > 100\"
  pigeon publish orders hello -H amount=250           fan out to matching subscribers
  pigeon dlq ls                                     dead letters
  pigeon new js greeter                             a new actor project (rust, js, python)
  pigeon build                                      build it into greeter.wasm";

/// Options of every command that talks to a node.
#[derive(Args)]
pub struct Global {
    /// The node's API.
    #[arg(long, global = true, env = "PIGEON_NODE", default_value = "http://127.0.0.1:7070")]
    node: String,
    /// The API token (default: read from `<data>/token`).
    #[arg(long, global = true, env = "PIGEON_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The node's data directory: where `up` keeps its store, and where
    /// other commands find the token.
    #[arg(long, global = true, env = "PIGEON_DATA", default_value = ".pigeon")]
    data: PathBuf,
    /// Print JSON instead of tables (read commands).
    #[arg(long, global = true)]
    json: bool,
    /// In a lattice: run the command on node ID, through the node --node
    /// names (e.g. `pigeon --on n2 dlq replay 3`). Without it, `ls` and
    /// `dlq ls` list every node's, and commands about one actor go to its
    /// owner by themselves.
    #[arg(long, global = true, value_name = "ID")]
    on: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Starts a node and its HTTP API; runs until Ctrl-C.
    ///
    /// Messages and state live in the data directory: stop the node, start it
    /// again, and its actors carry on where they were. The same address serves
    /// the live dashboard (`/`) and Prometheus metrics (`/metrics`).
    Up(up::UpOptions),
    /// Deploys a component as an actor type (replacing any older version).
    Deploy {
        /// The `.wasm` component.
        file: PathBuf,
        /// The type name messages address (`NAME/key`).
        #[arg(long)]
        name: String,
        /// Failed turns before a message is dead-lettered.
        #[arg(long)]
        max_attempts: Option<u32>,
        /// Memory limit of one instance, e.g. 64MiB.
        #[arg(long, value_parser = units::parse_size)]
        memory: Option<u64>,
        /// Time limit of one turn, e.g. 5s.
        #[arg(long, value_parser = units::parse_duration)]
        deadline: Option<Duration>,
        /// Pending messages a mailbox accepts before refusing sends.
        #[arg(long)]
        mailbox_bound: Option<u64>,
        /// Which actor type serves an interface the component imports
        /// (repeatable): `acme:bank/account=account` (the turn picks the key
        /// with `rpc.set-target`) or `acme:bank/account=account/main` (calls
        /// go to `account/main` unless the turn picks another).
        #[arg(long = "link", value_name = "INTERFACE=TYPE[/KEY]")]
        links: Vec<String>,
        /// An environment variable the guest sees (repeatable), e.g.
        /// `--env GREETING=hello`. Guests get none unless granted here;
        /// `pigeon ls` shows the names, never the values.
        #[arg(long = "env", value_name = "NAME=VALUE", value_parser = units::parse_env)]
        env: Vec<(String, String)>,
        /// In a lattice: the nodes its actors live on, e.g. `--nodes a,b`
        /// (default: every node that is up). Every node gets the type.
        #[arg(long, value_delimiter = ',')]
        nodes: Option<Vec<String>>,
    },
    /// Removes an actor type; its mailboxes and state are kept.
    Undeploy { name: String },
    /// Sends a message to an actor; prints its id once it is accepted.
    ///
    /// A payload written as a function call, `INTERFACE.FUNCTION(ARGS)`, is
    /// a typed RPC call sent one way (see `pigeon call --help`).
    Send(SendArgs),
    /// Sends a message and waits for the actor's reply; prints the reply.
    ///
    /// A payload written as a function call, `INTERFACE.FUNCTION(ARGS)`, is
    /// a typed RPC call of a function the actor's type exports: the
    /// arguments are WAVE values checked against its signature
    /// (`pigeon ls` lists them), and the result is printed as WAVE. E.g.
    ///
    /// pigeon call account/alice 'acme:bank/account.withdraw(30)'
    ///
    /// pigeon call account/alice 'account.balance()'
    Call {
        #[command(flatten)]
        send: SendArgs,
        /// How long to wait for the reply.
        #[arg(long, default_value = "30s", value_parser = units::parse_duration)]
        timeout: Duration,
    },
    /// Lists actor types and actors, with mailbox depths and counters.
    Ls,
    /// Shows one actor: mailbox, a page of its state, counters and errors.
    ///
    /// State is shown a page at a time, in key order: when more keys
    /// follow, the last line says the `--after` that shows the next page.
    /// Values and payloads longer than --value-limit are cut, saying so.
    Inspect {
        /// `type/key`.
        address: String,
        /// Show state keys after this one.
        #[arg(long)]
        after: Option<String>,
        /// State keys on the page (0 to 10000).
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Bytes shown of each state value and payload, e.g. 1KiB.
        #[arg(long, default_value = "4KiB", value_parser = units::parse_size)]
        value_limit: u64,
    },
    /// Empties an actor's mailbox: pending, delayed and transient messages.
    ///
    /// The messages are gone for good (not dead-lettered). It runs between
    /// the actor's turns: a turn already running finishes first.
    Purge {
        /// `type/key`.
        address: String,
    },
    /// Deletes every state entry of an actor; its next turn starts empty.
    ///
    /// Runs between the actor's turns, like `purge`.
    Forget {
        /// `type/key`.
        address: String,
    },
    /// Cancels a delayed message (a timer, a send with --delay, a retry in
    /// backoff) so it is never delivered; `pigeon inspect ADDR` lists them.
    Cancel {
        /// The message id.
        id: String,
    },
    /// Dead letters: list, replay or purge them.
    #[command(subcommand)]
    Dlq(Dlq),
    /// Subscribes an actor to a topic or a pattern, optionally with a filter
    /// over headers.
    ///
    /// Topics are tokens separated by `.`; a pattern uses `*` for one token
    /// and `>` for the rest: `orders.*` matches `orders.eu`, `orders.>`
    /// matches `orders.eu` and `orders.eu.paid`.
    ///
    /// Filter example: `kind = 'order' AND amount > 100` (=, !=, <, >, <=, >=,
    /// AND, OR, NOT, parentheses, EXISTS header; numbers compare as numbers).
    Subscribe {
        topic: String,
        /// The subscribing actor, `type/key`.
        subscriber: String,
        #[arg(long, default_value = "")]
        filter: String,
    },
    /// Ends a subscription.
    Unsubscribe { topic: String, subscriber: String },
    /// Publishes to a topic (no wildcards): a copy to every subscriber
    /// whose topic or pattern, and filter, match.
    Publish {
        topic: String,
        payload: String,
        #[arg(long, short, default_value_t = 4)]
        priority: u8,
        /// A header, `name=value` (repeatable); filters see these.
        #[arg(long = "header", short = 'H', value_parser = units::parse_header)]
        headers: Vec<(String, String)>,
    },
    /// Lists subscriptions.
    Topics,
    /// Lists the lattice's nodes: up or down, what they run, and what
    /// waits in this node's outbox for each.
    Nodes {
        #[command(subcommand)]
        action: Option<NodesAction>,
    },
    /// Shows or changes the nodes an actor type lives on.
    ///
    /// With --nodes, the actors whose owner changes move to their new
    /// owner with their state, mailbox, timers and dedup keys, while they
    /// keep taking messages; the command follows the moves with a progress
    /// bar until every actor has arrived. Adding a node moves actors only
    /// to it. E.g. `pigeon placement counter --nodes a,b,c`.
    Placement {
        /// The actor type.
        name: String,
        /// The node ids it is to live on, comma-separated.
        #[arg(long, value_delimiter = ',')]
        nodes: Option<Vec<String>>,
        /// Return once the change is made, without following the moves.
        #[arg(long)]
        no_wait: bool,
    },
    /// Moves every actor off a node, so it can be stopped for good.
    ///
    /// Every type placed on the node gets a node set without it, and its
    /// actors move to the other nodes with their state and mailboxes
    /// (progress bar until done). Stop the node once this returns.
    Drain {
        /// The node's id (`pigeon nodes` lists them).
        #[arg(value_name = "NODE")]
        id: String,
        /// Return once the changes are made, without following the moves.
        #[arg(long)]
        no_wait: bool,
    },
    /// Writes a new actor project: its WIT, a handler that echoes, the build
    /// set-up and a README.
    ///
    /// The handler replies with the payload it gets and counts its messages
    /// in its state; it deploys without edits:
    ///
    /// pigeon new python hello && cd hello && pigeon build && pigeon deploy hello.wasm --name hello
    New {
        /// The project's language.
        #[arg(value_enum)]
        language: scaffold::Language,
        /// The project's directory, and the actor type's name (`greeter`).
        name: String,
    },
    /// Builds the actor project in the current directory (or DIR) into
    /// `<project>.wasm`, with that language's toolchain.
    ///
    /// Rust: cargo for wasm32-wasip2; JavaScript: componentize-js (npm
    /// install on the first build); Python: componentize-py.
    Build {
        /// The project (default: the current directory).
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Prints shell completions: `pigeon completions bash > /etc/bash_completion.d/pigeon`.
    Completions { shell: clap_complete::Shell },
}

/// What to send.
#[derive(Args)]
pub struct SendArgs {
    /// `type/key`.
    address: String,
    /// The payload (text); see --stdin.
    payload: Option<String>,
    /// 0 (lowest) to 9 (highest).
    #[arg(long, short, default_value_t = 4)]
    priority: u8,
    /// In memory only: lost if the node stops first.
    #[arg(long)]
    transient: bool,
    /// A header, `name=value` (repeatable).
    #[arg(long = "header", short = 'H', value_parser = units::parse_header)]
    headers: Vec<(String, String)>,
    /// Deliver no earlier than this from now, e.g. 10s.
    #[arg(long, value_parser = units::parse_duration)]
    delay: Option<Duration>,
    /// Read the payload (any bytes) from standard input.
    #[arg(long, conflicts_with = "payload")]
    stdin: bool,
    /// Send the payload as plain bytes even if it looks like a typed call.
    #[arg(long)]
    raw: bool,
    /// Dead-letter it (reason `expired`) if not handled within this, e.g. 30s.
    #[arg(long, value_parser = units::parse_duration)]
    ttl: Option<Duration>,
    /// Deliver at most once per key and actor within the node's retention window.
    #[arg(long)]
    dedup_key: Option<String>,
    /// `send` only: return once the message is stored (`accepted`) or once the
    /// receiver's turn for it has started (`delivered`).
    #[arg(long, value_enum, default_value_t = WaitLevel::Accepted)]
    wait: WaitLevel,
}

/// Where `pigeon send` unblocks.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum WaitLevel {
    Accepted,
    Delivered,
}

#[derive(Subcommand)]
enum NodesAction {
    /// Admits a node again that came back with a new incarnation (its
    /// store was lost): run it on every node once the loss is accepted.
    Forget { id: String },
}

#[derive(Subcommand)]
enum Dlq {
    /// Lists dead letters with their reason and last error.
    Ls,
    /// Puts dead letters back into their mailboxes.
    Replay(Selection),
    /// Deletes dead letters.
    Purge(Selection),
}

/// Which dead letters.
#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct Selection {
    /// Dead-letter ids (from `pigeon dlq ls`).
    ids: Vec<u64>,
    /// All of them.
    #[arg(long)]
    all: bool,
}

fn main() {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Up(_)) {
        restore_sigpipe();
    }
    let filter = tracing_subscriber::EnvFilter::try_from_env("PIGEON_LOG")
        .unwrap_or_else(|_| "info,wasmtime=warn,cranelift=warn".into());
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal();
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
    let result =
        tokio::runtime::Runtime::new().map_err(anyhow::Error::from).and_then(|runtime| runtime.block_on(run(cli)));
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let g = cli.global;
    let client = || client::Client::new(&g.node, g.token.clone(), &g.data).on(g.on.clone());
    match cli.command {
        Command::Up(options) => up::up(&g.data, options).await,
        Command::Deploy { file, name, max_attempts, memory, deadline, mailbox_bound, links, env, nodes } => {
            let limits = commands::DeployOptions { max_attempts, memory, deadline, mailbox_bound, links, env, nodes };
            commands::deploy(&client(), &file, &name, limits, g.json).await
        }
        Command::Undeploy { name } => commands::undeploy(&client(), &name).await,
        Command::Send(args) => commands::send(&client(), args, None, g.json).await,
        Command::Call { send, timeout } => commands::send(&client(), send, Some(timeout), g.json).await,
        Command::Ls => commands::ls(&client(), g.json).await,
        Command::Inspect { address, after, limit, value_limit } => {
            let page = commands::StatePage { after, limit, value_limit };
            commands::inspect(&client(), &address, page, g.json).await
        }
        Command::Cancel { id } => commands::cancel(&client(), &id).await,
        Command::Purge { address } => commands::clear(&client(), "/mailboxes", &address, "messages purged from").await,
        Command::Forget { address } => {
            commands::clear(&client(), "/state", &address, "state entries deleted from").await
        }
        Command::Dlq(Dlq::Ls) => commands::dlq_ls(&client(), g.json).await,
        Command::Dlq(Dlq::Replay(s)) => commands::dlq_change(&client(), "replay", s).await,
        Command::Dlq(Dlq::Purge(s)) => commands::dlq_change(&client(), "purge", s).await,
        Command::Subscribe { topic, subscriber, filter } => {
            commands::subscribe(&client(), &topic, &subscriber, &filter).await
        }
        Command::Unsubscribe { topic, subscriber } => commands::unsubscribe(&client(), &topic, &subscriber).await,
        Command::Publish { topic, payload, priority, headers } => {
            commands::publish(&client(), &topic, payload, priority, headers, g.json).await
        }
        Command::Topics => commands::topics(&client(), g.json).await,
        Command::Nodes { action: None } => nodes::list(&client(), g.json).await,
        Command::Nodes { action: Some(NodesAction::Forget { id }) } => nodes::forget(&client(), &id).await,
        Command::Placement { name, nodes: None, .. } => placement::show(&client(), &name, g.json).await,
        Command::Placement { name, nodes: Some(nodes), no_wait } => {
            placement::change(&client(), &name, nodes, !no_wait, g.json).await
        }
        Command::Drain { id, no_wait } => placement::drain(&client(), &id, !no_wait, g.json).await,
        Command::New { language, name } => {
            let files = scaffold::new(language, &name, Path::new("."))?;
            print_created(language, &name, &files, g.json)
        }
        Command::Build { dir } => {
            let built = guest_build::build(&dir)?;
            print_built(&built, g.json)
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "pigeon", &mut std::io::stdout());
            Ok(())
        }
    }
}

fn print_created(language: scaffold::Language, name: &str, files: &[&str], json: bool) -> anyhow::Result<()> {
    if json {
        let value =
            serde_json::json!({ "name": name, "language": format!("{language:?}").to_lowercase(), "files": files });
        println!("{value:#}");
        return Ok(());
    }
    println!("created {name}/: {}", files.join(", "));
    println!(
        "next:\n  cd {name}\n  pigeon build\n  pigeon deploy {name}.wasm --name {name}\n  pigeon call {name}/alice hello"
    );
    Ok(())
}

fn print_built(built: &guest_build::Built, json: bool) -> anyhow::Result<()> {
    if json {
        let value = serde_json::json!({ "component": built.component, "bytes": built.bytes, "name": built.name });
        println!("{value:#}");
        return Ok(());
    }
    println!("built {} ({} KiB)", built.component.display(), built.bytes / 1024);
    println!("deploy it: pigeon deploy {}.wasm --name {}", built.name, built.name);
    Ok(())
}

/// Dies quietly on a closed pipe (`pigeon ls | head`), as command-line tools
/// do: Rust ignores SIGPIPE, which turns every later `println!` into a panic.
///
/// Never for `pigeon up`: a node writes to sockets with `writev` (hyper's
/// responses, the NATS client's publishes), which unlike `send` raises
/// SIGPIPE when the peer has reset the connection — a client that hangs
/// up mid-response, or a nats-server that dies, would kill the node
/// without a word. The node keeps Rust's default (ignored), and gets
/// `EPIPE` as an error instead.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called in `main` before any other thread exists (parsing the
    // command line starts none); SIG_DFL is a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
