//! The disk's ceilings, measured in the same run as Pigeon: the physical
//! floor of one durable commit (`fdatasync` of 4 KiB), redb with one durable
//! commit per message (a store without group commit), and redb with 1,000
//! messages per commit (the batching ceiling). And a commit shaped like a
//! counter's turn made durable by redb alone, as the store did before its
//! commit log (the store's own turn commit is measured beside it, in
//! `accept`).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redb::{Database, Durability, TableDefinition};

const RAW: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("raw");
const STATE: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("state");
const STATS: TableDefinition<&str, &[u8]> = TableDefinition::new("stats");

/// Writes 4 KiB and `fdatasync`s it, `n` times: durable commits per second.
pub fn fsync_floor(dir: &Path, n: usize) -> anyhow::Result<(usize, Duration)> {
    use std::io::{Seek, SeekFrom, Write};
    let mut file = std::fs::OpenOptions::new().create(true).truncate(true).write(true).open(dir.join("fsync"))?;
    let block = [1u8; 4096];
    let started = Instant::now();
    for _ in 0..n {
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&block)?;
        file.sync_data()?;
    }
    Ok((n, started.elapsed()))
}

/// `threads` writers each make `commits` durable commits of `per_commit`
/// 64-byte messages to a raw redb table.
pub fn redb_commits(
    dir: &Path,
    threads: usize,
    per_commit: usize,
    commits: usize,
) -> anyhow::Result<(usize, Duration)> {
    let path = dir.join("raw.redb");
    let _ = std::fs::remove_file(&path);
    let db = Arc::new(Database::create(&path)?);
    let started = Instant::now();
    std::thread::scope(|s| -> anyhow::Result<()> {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let db = db.clone();
                s.spawn(move || -> anyhow::Result<()> {
                    for c in 0..commits {
                        let mut txn = db.begin_write()?;
                        txn.set_durability(Durability::Immediate)?;
                        {
                            let mut table = txn.open_table(RAW)?;
                            for i in 0..per_commit {
                                table.insert((t as u64, (c * per_commit + i) as u64), super::PAYLOAD.as_slice())?;
                            }
                        }
                        txn.commit()?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("writer panicked"))??;
        }
        Ok(())
    })?;
    Ok((threads * commits * per_commit, started.elapsed()))
}

/// Actors the turn-shaped commits go round.
pub const ACTORS: usize = 1_000;

/// `n` commits shaped like a counter's turn — its state row and its stats
/// row, for one of [`ACTORS`] in turn — each made durable by redb
/// (`Durability::Immediate`) before the next; each commit's latency.
pub fn turn_commits(dir: &Path, n: usize) -> anyhow::Result<Vec<Duration>> {
    let path = dir.join("turns.redb");
    let _ = std::fs::remove_file(&path);
    let db = Database::create(&path)?;
    let actors: Vec<String> = (0..ACTORS).map(|a| format!("counter/a{a}")).collect();
    let txn = db.begin_write()?;
    {
        let (mut state, mut stats) = (txn.open_table(STATE)?, txn.open_table(STATS)?);
        for actor in &actors {
            state.insert((actor.as_str(), "count"), [0u8; 8].as_slice())?;
            stats.insert(actor.as_str(), [0u8; 24].as_slice())?;
        }
    }
    txn.commit()?;
    let mut latencies = Vec::with_capacity(n);
    for i in 0..n {
        let actor = actors[i % ACTORS].as_str();
        let count = (i as u64).to_le_bytes();
        let started = Instant::now();
        let txn = db.begin_write()?;
        {
            txn.open_table(STATE)?.insert((actor, "count"), count.as_slice())?;
            txn.open_table(STATS)?.insert(actor, [1u8; 24].as_slice())?;
        }
        txn.commit()?;
        latencies.push(started.elapsed());
    }
    Ok(latencies)
}
