//! Where a process's resident memory is, read from `/proc/self/smaps`: the
//! profile behind scenario 5's live-actor figure. Mappings are grouped by
//! what they are (a named mapping by its name, an anonymous one by its
//! size, which tells the instance pool's memories, tables and stacks
//! apart), and each group's resident, proportional and private-dirty
//! sizes are summed. Printed by the `active` child when
//! `PIGEON_BENCH_SMAPS` is set.

use std::collections::HashMap;

/// One group of mappings.
#[derive(Default)]
struct Group {
    mappings: usize,
    rss: u64,
    pss: u64,
    private_dirty: u64,
}

/// This process's mappings, grouped, largest resident first (sizes in KiB).
fn groups() -> std::io::Result<Vec<(String, Group)>> {
    let text = std::fs::read_to_string("/proc/self/smaps")?;
    let mut groups: HashMap<String, Group> = HashMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(key) = header(line) {
            groups.entry(key.clone()).or_default().mappings += 1;
            current = Some(key);
            continue;
        }
        let (Some(key), Some((field, value))) = (&current, line.split_once(':')) else { continue };
        let kib: u64 = value.split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(0);
        let group = groups.entry(key.clone()).or_default();
        match field {
            "Rss" => group.rss += kib,
            "Pss" => group.pss += kib,
            "Private_Dirty" => group.private_dirty += kib,
            _ => {}
        }
    }
    let mut sorted: Vec<_> = groups.into_iter().collect();
    sorted.sort_by_key(|(_, g)| std::cmp::Reverse(g.rss));
    Ok(sorted)
}

/// The group of a mapping's header line (`start-end perms offset dev inode
/// [name]`), or `None` for a field line.
fn header(line: &str) -> Option<String> {
    let mut parts = line.split_whitespace();
    let range = parts.next()?;
    let (start, end) = range.split_once('-')?;
    let (start, end) = (u64::from_str_radix(start, 16).ok()?, u64::from_str_radix(end, 16).ok()?);
    let perms = parts.next()?;
    let name: Vec<&str> = parts.skip(3).collect();
    Some(if name.is_empty() {
        format!("anon {perms} {} KiB", (end - start) >> 10)
    } else {
        format!("{} {perms}", name.join(" "))
    })
}

/// Prints the `top` largest groups to stderr.
pub fn print(top: usize) {
    match groups() {
        Ok(groups) => {
            eprintln!("{:>48} {:>8} {:>10} {:>10} {:>10}", "mapping", "count", "rss KiB", "pss KiB", "dirty KiB");
            for (key, g) in groups.iter().take(top) {
                eprintln!("{key:>48} {:>8} {:>10} {:>10} {:>10}", g.mappings, g.rss, g.pss, g.private_dirty);
            }
        }
        Err(e) => eprintln!("smaps: {e}"),
    }
}
