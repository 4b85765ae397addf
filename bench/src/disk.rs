//! The disk's ceilings, measured in the same run as Pigeon: the physical
//! floor of one durable commit (`fdatasync` of 4 KiB), redb with one durable
//! commit per message (a store without group commit), and redb with 1,000
//! messages per commit (the batching ceiling).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redb::{Database, Durability, TableDefinition};

const RAW: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("raw");

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
