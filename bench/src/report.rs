//! The one table of a bench run: a row per scenario with Pigeon's figure,
//! each peer's figure measured in the same run, and Pigeon's ratio to them;
//! then the aims, each met or missed. Printed on stdout and written, with
//! the machine's description, into `docs/benchmarks.md` between two marker
//! comments (the prose around them is kept).

use std::fmt::Write as _;
use std::path::Path;

/// The peers' columns, in order.
pub const PEERS: [&str; 8] = [
    "fdatasync 4 KiB",
    "redb 1 commit/msg",
    "redb batched",
    "RabbitMQ",
    "JetStream",
    "one node",
    "NATS request–reply",
    "no rebalance",
];

/// One measured figure, already formatted (`36,204/s ±4%`, `p50 9 µs`).
#[derive(Clone, Debug)]
pub struct Cell {
    pub text: String,
    /// The number ratios are taken of (a rate, a latency…).
    pub value: f64,
}

/// A peer's column in a row.
#[derive(Clone, Debug)]
pub enum Peer {
    Measured(Cell),
    /// The peer's program is missing: how to install it.
    NotInstalled(&'static str),
    /// The peer has no figure for this scenario.
    None,
}

pub struct Row {
    pub scenario: String,
    pub pigeon: Cell,
    pub peers: [Peer; PEERS.len()],
    /// Whether a larger value is better (rates) or worse (latencies).
    pub higher_is_better: bool,
    /// A rate row's latency, for the aims that read it.
    pub latency: Option<std::time::Duration>,
}

impl Row {
    pub fn new(scenario: impl Into<String>, pigeon: Cell, higher_is_better: bool) -> Self {
        Self {
            scenario: scenario.into(),
            pigeon,
            peers: std::array::from_fn(|_| Peer::None),
            higher_is_better,
            latency: None,
        }
    }

    pub fn with_latency(mut self, latency: std::time::Duration) -> Self {
        self.latency = Some(latency);
        self
    }

    pub fn with(mut self, column: usize, peer: Peer) -> Self {
        self.peers[column] = peer;
        self
    }

    /// Pigeon ÷ each measured peer ("better" above 1 either way).
    fn ratios(&self) -> String {
        let mut out = Vec::new();
        for (name, peer) in PEERS.iter().zip(&self.peers) {
            if let Peer::Measured(cell) = peer {
                let ratio = if self.higher_is_better {
                    self.pigeon.value / cell.value.max(f64::MIN_POSITIVE)
                } else {
                    cell.value / self.pigeon.value.max(f64::MIN_POSITIVE)
                };
                out.push(format!("{} {}", format_ratio(ratio), short(name)));
            }
        }
        out.join(", ")
    }
}

fn format_ratio(ratio: f64) -> String {
    if ratio >= 10.0 { format!("{ratio:.0}×") } else { format!("{ratio:.2}×") }
}

fn short(peer: &str) -> &str {
    match peer {
        "fdatasync 4 KiB" => "fsync",
        "redb 1 commit/msg" => "redb-1",
        "redb batched" => "redb-batched",
        "one node" => "one node",
        "NATS request–reply" => "NATS",
        other => other,
    }
}

/// An aim of the issue, and whether this run met it.
pub struct Aim {
    pub aim: String,
    pub measured: String,
    pub met: bool,
}

#[derive(Default)]
pub struct Report {
    pub rows: Vec<Row>,
    pub aims: Vec<Aim>,
    /// Lines printed under the table (what was measured along the way).
    pub notes: Vec<String>,
}

impl Report {
    pub fn row(&mut self, row: Row) {
        let peers: Vec<String> = PEERS
            .iter()
            .zip(&row.peers)
            .filter_map(|(name, peer)| match peer {
                Peer::Measured(cell) => Some(format!("{name} {}", cell.text)),
                _ => None,
            })
            .collect();
        match peers.is_empty() {
            true => println!("  {} — {}", row.scenario, row.pigeon.text),
            false => println!("  {} — {} (vs {}: {})", row.scenario, row.pigeon.text, peers.join(", "), row.ratios()),
        }
        self.rows.push(row);
    }

    pub fn aim(&mut self, aim: impl Into<String>, measured: impl Into<String>, met: bool) {
        let (aim, measured) = (aim.into(), measured.into());
        println!("  aim: {aim} — {measured}, {}", if met { "met" } else { "missed" });
        self.aims.push(Aim { aim, measured, met });
    }

    pub fn note(&mut self, note: impl Into<String>) {
        let note = note.into();
        println!("  {note}");
        self.notes.push(note);
    }

    /// The whole report as Markdown: the machine, the table, the aims.
    pub fn markdown(&self, machine: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{machine}\n");
        let _ = writeln!(out, "| scenario | Pigeon | {} | Pigeon vs peer |", PEERS.join(" | "));
        let _ = writeln!(out, "|---|---|{}---|", "---|".repeat(PEERS.len()));
        for row in &self.rows {
            let peers: Vec<String> = row
                .peers
                .iter()
                .map(|p| match p {
                    Peer::Measured(cell) => cell.text.clone(),
                    Peer::NotInstalled(install) => format!("not installed (`{install}`)"),
                    Peer::None => "—".into(),
                })
                .collect();
            let _ =
                writeln!(out, "| {} | {} | {} | {} |", row.scenario, row.pigeon.text, peers.join(" | "), row.ratios());
        }
        let _ = writeln!(out, "\n| aim | this run | |\n|---|---|---|");
        for aim in &self.aims {
            let _ =
                writeln!(out, "| {} | {} | {} |", aim.aim, aim.measured, if aim.met { "met" } else { "**missed**" });
        }
        if !self.notes.is_empty() {
            let _ = writeln!(out);
            for note in &self.notes {
                let _ = writeln!(out, "- {note}");
            }
        }
        out
    }
}

const BEGIN: &str = "<!-- bench:begin (written by `just bench`) -->";
const END: &str = "<!-- bench:end -->";

/// Replaces the text between the markers of `doc` with `body` (appending
/// the markers when the page has none yet).
pub fn write_into(doc: &Path, body: &str) -> anyhow::Result<()> {
    let page = std::fs::read_to_string(doc).unwrap_or_default();
    let block = format!("{BEGIN}\n{body}{END}");
    let page = match (page.find(BEGIN), page.find(END)) {
        (Some(start), Some(end)) if end > start => format!("{}{block}{}", &page[..start], &page[end + END.len()..]),
        _ => format!("{page}\n{block}\n"),
    };
    std::fs::write(doc, page)?;
    Ok(())
}

/// One paragraph on where this run ran: CPU, cores, memory, kernel, the
/// disk under the scratch directory, the date and the peers' versions.
pub fn machine(scratch: &Path, peers: &[String]) -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split(':').nth(1)))
        .map_or("unknown CPU".to_string(), |m| m.trim().to_string());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let date = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let mut text = format!(
        "Run of {} on {cores} cores of {cpu}, {:.0} GiB of memory, Linux {}, scratch on {}. Release build, \
         64-byte payloads, a warm-up then the median of {} repetitions (± spread = (max − min) / median) \
         unless a row says otherwise.",
        &date[..10],
        memory_kib as f64 / 1024.0 / 1024.0,
        kernel.trim(),
        filesystem(scratch),
        super::REPS,
    );
    if !peers.is_empty() {
        let _ = write!(text, " Peers: {}.", peers.join(", "));
    }
    text
}

/// The device and filesystem type holding `path` (longest mount prefix).
fn filesystem(path: &Path) -> String {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?, f.next()?, f.next()?))
        })
        .filter(|(_, at, _)| path.starts_with(at))
        .max_by_key(|(_, at, _)| at.len())
        .map_or("an unknown filesystem".into(), |(dev, _, fs)| format!("{fs} on {dev}"))
}
