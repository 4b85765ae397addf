//! `pigeon-soak`: the chaos soak from the command line (`just soak`).
//!
//! Runs every kind of traffic against a real `pigeon up` for a while,
//! SIGKILLs the node at random moments, then checks that every
//! acknowledged effect was applied exactly once, money was conserved and
//! the queues drained. Prints the figures; exits 1 (keeping the data
//! directory) if any invariant broke. See `pigeon_tests::soak`.

use std::time::Duration;

use clap::Parser;
use pigeon_tests::soak::{self, Config};

/// The chaos soak: mixed load while the node is SIGKILLed at random moments.
#[derive(Parser)]
struct Args {
    /// How long the clients send (kills included), e.g. `10m`, `90s`.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// How many SIGKILLs, at moments drawn uniformly over the duration.
    #[arg(long, default_value_t = 100)]
    kills: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Seeds the kill moments and the clients' choices (random if not given;
    /// printed either way, so a failing run can be repeated).
    #[arg(long)]
    seed: Option<u64>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(rand::random);
    eprintln!(
        "soaking for {:?} with {} SIGKILLs and {} clients (seed {seed})...",
        args.duration, args.kills, args.clients
    );
    let report = soak::run(Config { duration: args.duration, kills: args.kills, clients: args.clients, seed }).await;
    println!("{}", report.table());
    for (refusal, count) in report.refusals() {
        println!("refused {count}× with {refusal}");
    }
    if report.violations.is_empty() {
        println!("every invariant held");
        return std::process::ExitCode::SUCCESS;
    }
    println!("{} invariants broke:", report.violations.len());
    for violation in report.violations.iter().take(50) {
        println!("  - {violation}");
    }
    if let Some(data) = &report.data {
        println!("the node's data directory is kept at {}", data.display());
    }
    std::process::ExitCode::FAILURE
}
