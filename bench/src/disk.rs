//! The disk's ceilings, measured in the same run as Pigeon: the physical
//! floor of one durable commit (`fdatasync` of 4 KiB), redb with one durable
//! commit per message (a store without group commit), and redb with 1,000
//! messages per commit (the batching ceiling). And a turn's commit through
//! an append-only log (the shape of the store's commit log,
//! docs/design/commit-log.md) next to the same commit made durable by redb
//! alone, as the store did before it.

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

/// How a turn-shaped commit is made durable (see [`turn_commits`]).
#[derive(Clone, Copy)]
pub enum TurnDurability {
    /// By redb: `Durability::Immediate`, what the committer does today.
    Redb,
    /// By a log: the commit's writes appended as one frame to a
    /// preallocated file and `fdatasync`ed, then redb committed with
    /// `Durability::None`, and a durable redb commit (a checkpoint) every
    /// 100 ms.
    Log,
}

/// Preallocated size of the prototype's log file (written, not sparse,
/// so that an append allocates nothing and its sync writes no metadata).
const LOG_BYTES: u64 = 16 << 20;

/// `n` commits shaped like a counter's turn — its state row and its stats
/// row, for one of 1,000 actors in turn — made durable one at a time as
/// `how` says; each commit's latency.
pub fn turn_commits(dir: &Path, n: usize, how: TurnDurability) -> anyhow::Result<Vec<Duration>> {
    use std::os::unix::fs::FileExt;
    const ACTORS: usize = 1_000;
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
    let log = match how {
        TurnDurability::Log => Some(preallocated_log(&dir.join("turns.log"))?),
        TurnDurability::Redb => None,
    };
    let (mut offset, mut checkpointed) = (0u64, Instant::now());
    let mut latencies = Vec::with_capacity(n);
    for i in 0..n {
        let actor = actors[i % ACTORS].as_str();
        let count = (i as u64).to_le_bytes();
        let started = Instant::now();
        let mut txn = db.begin_write()?;
        {
            txn.open_table(STATE)?.insert((actor, "count"), count.as_slice())?;
            txn.open_table(STATS)?.insert(actor, [1u8; 24].as_slice())?;
        }
        if let Some(log) = log.as_ref().filter(|_| checkpointed.elapsed() < Duration::from_millis(100)) {
            // The frame: what a physical record of these two writes holds.
            let mut frame = vec![0u8; 4];
            for part in [actor.as_bytes(), b"count", &count, actor.as_bytes(), &[1u8; 24]] {
                frame.extend_from_slice(&(part.len() as u32).to_le_bytes());
                frame.extend_from_slice(part);
            }
            let len = (frame.len() - 4) as u32;
            frame[..4].copy_from_slice(&len.to_le_bytes());
            if offset + frame.len() as u64 > LOG_BYTES {
                offset = 0;
            }
            log.write_all_at(&frame, offset)?;
            log.sync_data()?;
            offset += frame.len() as u64;
            txn.set_durability(Durability::None)?;
        } else {
            checkpointed = Instant::now();
            txn.set_durability(Durability::Immediate)?;
        }
        txn.commit()?;
        latencies.push(started.elapsed());
    }
    Ok(latencies)
}

/// The prototype's log file, [`LOG_BYTES`] of zeros written and synced.
fn preallocated_log(path: &Path) -> anyhow::Result<std::fs::File> {
    use std::io::Write;
    let mut log = std::fs::OpenOptions::new().create(true).truncate(true).write(true).open(path)?;
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..LOG_BYTES / zeros.len() as u64 {
        log.write_all(&zeros)?;
    }
    log.sync_all()?;
    Ok(log)
}
