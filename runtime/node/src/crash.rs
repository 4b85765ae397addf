//! Crash quarantine: a message that kills the node cannot keep killing it.
//!
//! Turns are transactions, so a node that dies mid-turn loses nothing: the
//! message is still in its mailbox and runs again at the next start. That
//! is right for a power cut and wrong for a message that *causes* the death
//! (a host bug it triggers, say): it would kill every restart. So the node
//! remembers what it was doing when it died:
//!
//! - the **journal** (`<data>/crash-journal`) is a small memory-mapped file
//!   with one slot per turn that can run at once; a persistent message's id
//!   is written into a slot while its turn runs and cleared after. The
//!   writes are plain memory stores — no syscall, no fsync — and survive the
//!   death of the process because the kernel owns the mapped pages. A send
//!   handed to its actor before it was stored (`direct`) is written into
//!   its slot whole, since no mailbox holds it: after a crash it is stored
//!   as the suspect it is, so a message that kills the node is quarantined
//!   whichever way it came in;
//! - a **fatal-signal handler** (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT:
//!   stack overflows, aborts, wild accesses) sets the journal's *crashed*
//!   flag before the process dies as it would have. Faults that wasmtime
//!   handles itself (a guest's out-of-bounds access) never reach it.
//!
//! At start, if the flag is set, each message in a slot gets one more crash
//! counted durably in the store. A message with crashes on record is a
//! *suspect*: suspects run one at a time, so a second crash names the guilty
//! one alone; a message that reaches `quarantine_after` crashes (default 2)
//! goes to the dead letters with reason `crashed` instead of running, and
//! the log says so. It can be inspected and replayed once the cause is fixed.
//!
//! A death by SIGKILL (an operator, the OOM killer) or a power cut sets no
//! flag and counts against nothing: an innocent message in flight during an
//! unlucky `kill -9` is never quarantined.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use ulid::Ulid;

/// Name of the journal in the data directory.
pub const JOURNAL_FILE: &str = "crash-journal";

/// First word of the file: "pigeonC2" — refuses to read anything else
/// (but the ids of a "pigeonC1" journal, which had no arrivals).
const MAGIC: u64 = u64::from_le_bytes(*b"pigeonC2");
const MAGIC_V1: u64 = u64::from_le_bytes(*b"pigeonC1");
/// Header words: the magic, the crashed flag, the number of slots.
const HEADER_WORDS: usize = 3;
const CRASHED: u64 = 1;
/// Words of a slot's arrival: its length in bytes, then the bytes.
const ARRIVAL_WORDS: usize = 256;
/// Longest encoded envelope a slot holds whole (a send that does not fit
/// takes the mailbox instead).
pub(crate) const MAX_ARRIVAL_BYTES: usize = (ARRIVAL_WORDS - 1) * 8;

/// A message in flight when the node crashed, and its envelope when no
/// mailbox holds it (see `direct`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Suspect {
    pub(crate) id: Ulid,
    pub(crate) arrived: Option<Vec<u8>>,
}

/// Where the signal handler sets the crashed flag (null: no journal).
static FLAG: AtomicPtr<AtomicU64> = AtomicPtr::new(std::ptr::null_mut());

/// The memory-mapped journal of the turns in flight.
pub(crate) struct Journal {
    map: memmap2::MmapRaw,
    slots: usize,
    free: Mutex<Vec<usize>>,
}

/// A turn's entry in the journal, cleared when dropped.
pub(crate) struct Mark<'j> {
    journal: &'j Journal,
    slot: usize,
}

impl Journal {
    /// Opens the journal in `dir` with room for `slots` turns at once, and
    /// returns the messages that were in flight if the last run crashed.
    pub(crate) fn open(dir: &Path, slots: usize) -> std::io::Result<(Journal, Vec<Suspect>)> {
        let path = dir.join(JOURNAL_FILE);
        let suspects = match read_if_crashed(&path) {
            Ok(bytes) => crashed_in_flight(&bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let slots = slots.max(1);
        let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path)?;
        // Sparse: only the slots turns use are ever written.
        file.set_len((words_for(slots) * 8) as u64)?;
        let map = memmap2::MmapOptions::new().map_raw(&file)?;
        let journal = Journal { map, slots, free: Mutex::new((0..slots).rev().collect()) };
        journal.word(0).store(MAGIC, Ordering::Relaxed);
        journal.word(2).store(slots as u64, Ordering::Relaxed);
        FLAG.store(std::ptr::from_ref(journal.word(1)).cast_mut(), Ordering::SeqCst);
        install_handlers();
        Ok((journal, suspects))
    }

    /// Word `i` of the mapping.
    fn word(&self, i: usize) -> &AtomicU64 {
        assert!(i < words_for(self.slots), "journal word {i} out of range");
        // SAFETY: the mapping is page-aligned, at least this long (set_len
        // above), lives as long as `self`, and is only ever accessed
        // through atomics.
        unsafe { &*self.map.as_mut_ptr().cast::<AtomicU64>().add(i) }
    }

    /// Notes that `message`'s turn is running until the mark is dropped,
    /// with its encoded envelope when no mailbox holds it (`arrived`, at
    /// most [`MAX_ARRIVAL_BYTES`]). With every slot taken (more turns than
    /// the journal was sized for), the turn runs unrecorded.
    pub(crate) fn mark(&self, message: Ulid, arrived: Option<&[u8]>) -> Option<Mark<'_>> {
        let slot = self.free.lock().unwrap_or_else(|p| p.into_inner()).pop()?;
        let arrival = self.arrival_base(slot);
        let bytes = arrived.filter(|b| b.len() <= MAX_ARRIVAL_BYTES).unwrap_or_default();
        for (i, chunk) in bytes.chunks(8).enumerate() {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.word(arrival + 1 + i).store(u64::from_le_bytes(word), Ordering::Relaxed);
        }
        self.word(arrival).store(bytes.len() as u64, Ordering::Relaxed);
        // The id last: a slot with an id is complete.
        let (high, low) = ((message.0 >> 64) as u64, message.0 as u64);
        let base = HEADER_WORDS + 2 * slot;
        self.word(base + 1).store(low, Ordering::Relaxed);
        self.word(base).store(high, Ordering::Release);
        Some(Mark { journal: self, slot })
    }
}

impl Drop for Mark<'_> {
    fn drop(&mut self) {
        let base = HEADER_WORDS + 2 * self.slot;
        self.journal.word(base).store(0, Ordering::Release);
        self.journal.word(base + 1).store(0, Ordering::Relaxed);
        self.journal.word(self.journal.arrival_base(self.slot)).store(0, Ordering::Relaxed);
        self.journal.free.lock().unwrap_or_else(|p| p.into_inner()).push(self.slot);
    }
}

impl Journal {
    /// The first word of slot `slot`'s arrival.
    fn arrival_base(&self, slot: usize) -> usize {
        HEADER_WORDS + 2 * self.slots + ARRIVAL_WORDS * slot
    }
}

/// Words of a journal with `slots` slots.
fn words_for(slots: usize) -> usize {
    HEADER_WORDS + 2 * slots + ARRIVAL_WORDS * slots
}

/// The journal's bytes if its crashed flag is set (a clean one is not
/// worth reading: it names no suspects).
fn read_if_crashed(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut header = [0u8; 16];
    let mut file = std::fs::File::open(path)?;
    if file.read_exact(&mut header).is_err() || header[8..16] != CRASHED.to_le_bytes() {
        return Ok(Vec::new());
    }
    std::fs::read(path)
}

impl Drop for Journal {
    fn drop(&mut self) {
        let mine = std::ptr::from_ref(self.word(1)).cast_mut();
        let _ = FLAG.compare_exchange(mine, std::ptr::null_mut(), Ordering::SeqCst, Ordering::SeqCst);
    }
}

/// The messages in the slots of a journal whose crashed flag is set.
fn crashed_in_flight(bytes: &[u8]) -> Vec<Suspect> {
    let words: Vec<u64> = bytes.chunks_exact(8).map(|w| u64::from_le_bytes(w.try_into().unwrap_or_default())).collect();
    let id = |pair: &[u64]| Ulid((u128::from(pair[0]) << 64) | u128::from(pair[1]));
    match words.as_slice() {
        [MAGIC_V1, CRASHED, ids @ ..] => {
            ids.chunks_exact(2).map(id).filter(|id| id.0 != 0).map(|id| Suspect { id, arrived: None }).collect()
        }
        [MAGIC, CRASHED, slots, rest @ ..] => {
            let slots = usize::try_from(*slots).unwrap_or(0).min(rest.len() / 2);
            let (ids, arrivals) = rest.split_at(2 * slots);
            let arrival = |slot: usize| {
                let words = arrivals.get(slot * ARRIVAL_WORDS..(slot + 1) * ARRIVAL_WORDS)?;
                let len = usize::try_from(words[0]).ok().filter(|l| *l > 0 && *l <= MAX_ARRIVAL_BYTES)?;
                let bytes: Vec<u8> = words[1..].iter().flat_map(|w| w.to_le_bytes()).take(len).collect();
                Some(bytes)
            };
            ids.chunks_exact(2)
                .enumerate()
                .map(|(slot, pair)| Suspect { id: id(pair), arrived: arrival(slot) })
                .filter(|s| s.id.0 != 0)
                .collect()
        }
        _ => Vec::new(),
    }
}

/// What the node knows of crashes: the journal, the counts on record, and
/// the gate suspects pass one at a time.
pub(crate) struct Crashes {
    pub(crate) journal: Journal,
    counts: Mutex<HashMap<Ulid, u64>>,
    /// Whether `counts` has any entry: almost always not, and then no turn
    /// takes the lock.
    any: std::sync::atomic::AtomicBool,
    pub(crate) quarantine_after: u64,
    pub(crate) gate: tokio::sync::Mutex<()>,
}

impl Crashes {
    pub(crate) fn new(journal: Journal, counts: Vec<(Ulid, u64)>, quarantine_after: u64) -> Self {
        let any = std::sync::atomic::AtomicBool::new(!counts.is_empty());
        let counts = Mutex::new(counts.into_iter().collect());
        Self { any, journal, counts, quarantine_after: quarantine_after.max(1), gate: tokio::sync::Mutex::new(()) }
    }

    /// How many times the node died while handling `message`.
    pub(crate) fn count(&self, message: Ulid) -> u64 {
        if !self.any.load(Ordering::Relaxed) {
            return 0;
        }
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.get(&message).copied().unwrap_or(0)
    }

    /// `message` was quarantined: a replay of it starts with a clean record
    /// (the store forgets its count with the dead-lettering).
    pub(crate) fn forget(&self, message: Ulid) {
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).remove(&message);
    }
}

/// Stores the suspects that no mailbox held (sends handed to their actor
/// before they were stored), so that they run again — alone, as suspects —
/// and are quarantined if they crash the node once more. Returns every
/// suspect's id. One that cannot be read back or stored (its type gone, its
/// mailbox full, the disk failing) is named in the log and dropped: it was
/// never acknowledged, and a record must not keep the node from starting.
pub(crate) async fn store_arrivals(store: &pigeon_store::Store, suspects: Vec<Suspect>) -> Vec<Ulid> {
    let mut ids = Vec::with_capacity(suspects.len());
    for suspect in suspects {
        if let Some(bytes) = suspect.arrived {
            let stored = match pigeon_store::Envelope::decode(&bytes, "crash-journal") {
                Ok(envelope) => store.enqueue(envelope).await.map(drop),
                Err(e) => Err(e),
            };
            if let Err(e) = stored {
                tracing::error!(msg = %suspect.id, "a message in flight at the crash cannot be stored again: {e}");
                continue;
            }
        }
        ids.push(suspect.id);
    }
    ids
}

#[cfg(unix)]
const FATAL: [libc::c_int; 5] = [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE, libc::SIGABRT];

/// The handlers that were in place before ours, by index in [`FATAL`].
#[cfg(unix)]
static PREVIOUS: std::sync::OnceLock<[libc::sigaction; 5]> = std::sync::OnceLock::new();

/// Installs the fatal-signal handler once per process. Called before the
/// node creates its wasmtime engine, so wasmtime's own handler (installed
/// with the first engine) comes first and passes on only the faults that
/// are not a guest's.
pub(crate) fn install_handlers() {
    #[cfg(unix)]
    PREVIOUS.get_or_init(|| {
        // SAFETY: plain sigaction calls with a handler that only does
        // async-signal-safe work (an atomic store, sigaction, raise, and
        // calling the previous handler).
        unsafe {
            let mut previous: [libc::sigaction; 5] = std::mem::zeroed();
            for (i, signal) in FATAL.iter().enumerate() {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_fatal_signal as *const () as usize;
                action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(*signal, &action, &mut previous[i]);
            }
            previous
        }
    });
}

/// Sets the crashed flag, then lets the signal do what it did before.
#[cfg(unix)]
extern "C" fn on_fatal_signal(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let flag = FLAG.load(Ordering::SeqCst);
    if !flag.is_null() {
        // SAFETY: the flag points into a live journal's mapping (cleared
        // before the journal is dropped).
        unsafe { (*flag).store(CRASHED, Ordering::SeqCst) };
    }
    let previous = FATAL.iter().position(|s| *s == signal).and_then(|i| PREVIOUS.get().map(|p| p[i]));
    // SAFETY: calling or restoring the handler that was installed before
    // ours, as it expects to be called.
    unsafe {
        match previous {
            Some(p) if p.sa_sigaction == libc::SIG_DFL || p.sa_sigaction == libc::SIG_IGN => {
                libc::sigaction(signal, &p, std::ptr::null_mut());
                libc::raise(signal);
            }
            Some(p) if p.sa_flags & libc::SA_SIGINFO != 0 => {
                let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    std::mem::transmute(p.sa_sigaction);
                handler(signal, info, context);
            }
            Some(p) => {
                let handler: extern "C" fn(libc::c_int) = std::mem::transmute(p.sa_sigaction);
                handler(signal);
            }
            None => {
                libc::signal(signal, libc::SIG_DFL);
                libc::raise(signal);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slots_of_a_crashed_run_are_its_suspects_and_a_clean_run_has_none() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, suspects) = Journal::open(dir.path(), 4).unwrap();
        assert!(suspects.is_empty());
        let (a, b) = (Ulid::new(), Ulid::new());
        let mark_a = journal.mark(a, None).unwrap();
        let mark_b = journal.mark(b, Some(b"the envelope")).unwrap();
        drop(mark_a);
        let bytes = std::fs::read(dir.path().join(JOURNAL_FILE)).unwrap();
        assert!(crashed_in_flight(&bytes).is_empty(), "no crash flag: no suspects");
        journal.word(1).store(CRASHED, Ordering::SeqCst);
        let bytes = std::fs::read(dir.path().join(JOURNAL_FILE)).unwrap();
        let running = Suspect { id: b, arrived: Some(b"the envelope".to_vec()) };
        assert_eq!(crashed_in_flight(&bytes), vec![running], "only the turn still running, with its arrival");
        drop(mark_b);
        drop(journal);
        // The next open reads what the mapping held, then starts clean.
        let (journal, _) = Journal::open(dir.path(), 4).unwrap();
        assert_eq!(journal.word(1).load(Ordering::SeqCst), 0);
        assert!(crashed_in_flight(b"not a journal").is_empty());
    }

    #[test]
    fn a_full_journal_lets_turns_run_unrecorded() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = Journal::open(dir.path(), 1).unwrap();
        let first = journal.mark(Ulid::new(), None);
        assert!(first.is_some());
        assert!(journal.mark(Ulid::new(), None).is_none());
        drop(first);
        assert!(journal.mark(Ulid::new(), None).is_some(), "a freed slot is taken again");
    }
}
