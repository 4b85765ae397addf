//! The commit log's on-disk format: one frame per batch, holding the
//! batch's writes as raw key and value bytes.
//!
//! ```text
//! frame  = len: u32 LE | generation: u64 LE | crc32: u32 LE | payload (len bytes)
//! payload = write*
//! write  = table: u8 | key_len: u32 LE | key | 0 (removed)
//!        | table: u8 | key_len: u32 LE | key | 1 | value_len: u32 LE | value
//! ```
//!
//! The checksum covers the generation and the payload, so a frame torn by
//! a crash mid-write, or the remains of an older generation further into
//! the reused file, ends the replay instead of being applied.

/// Bytes before a frame's payload.
pub(crate) const HEADER: usize = 16;

/// A frame being built: the header's room first, then the writes.
pub(crate) struct FrameBuf {
    bytes: Vec<u8>,
    /// The writes so far, had they all been kept: past [`FrameBuf::cap`]
    /// they are only counted, because such a frame is never written (its
    /// batch becomes a checkpoint), and a batch of big messages should not
    /// hold a second copy of them.
    len: usize,
    cap: usize,
}

impl Default for FrameBuf {
    fn default() -> Self {
        Self::with_cap(super::LOG_BYTES as usize)
    }
}

impl FrameBuf {
    /// A frame that keeps its writes while it is at most `cap` bytes long.
    pub(crate) fn with_cap(cap: usize) -> Self {
        Self { bytes: vec![0; HEADER], len: HEADER, cap }
    }

    /// Forgets the writes, keeping the allocation.
    pub(crate) fn clear(&mut self) {
        self.bytes.truncate(HEADER);
        self.len = HEADER;
    }

    /// Whether no write was recorded.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == HEADER
    }

    /// The frame's length on disk, header included (what it would be, past
    /// the cap).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Records that `key` of `table` now holds `value` (or nothing).
    pub(crate) fn put(&mut self, table: u8, key: &[u8], value: Option<&[u8]>) {
        self.len += 1 + 4 + key.len() + 1 + value.map_or(0, |v| 4 + v.len());
        if self.len > self.cap {
            return;
        }
        self.bytes.push(table);
        push_bytes(&mut self.bytes, key);
        match value {
            Some(value) => {
                self.bytes.push(1);
                push_bytes(&mut self.bytes, value);
            }
            None => self.bytes.push(0),
        }
    }

    /// The finished frame of `generation`, ready to append. A frame past
    /// its cap is never sealed (see `len`).
    pub(crate) fn seal(&mut self, generation: u64) -> &[u8] {
        debug_assert!(self.len <= self.cap, "a frame past its cap is never written");
        let len = (self.bytes.len() - HEADER) as u32;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&generation.to_le_bytes());
        crc.update(&self.bytes[HEADER..]);
        self.bytes[0..4].copy_from_slice(&len.to_le_bytes());
        self.bytes[4..12].copy_from_slice(&generation.to_le_bytes());
        self.bytes[12..16].copy_from_slice(&crc.finalize().to_le_bytes());
        &self.bytes
    }
}

fn push_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    // redb refuses keys and values over 3 GiB, so a length fits in a u32.
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// The payloads of the valid frames of `generation` at the start of
/// `log`, in order. Stops at the first frame that is short, fails its
/// checksum or belongs to another generation: nothing after it was
/// acknowledged in this generation (each frame is synced before the next
/// is written).
pub(crate) fn frames(log: &[u8], generation: u64) -> Frames<'_> {
    Frames { rest: log, generation }
}

pub(crate) struct Frames<'a> {
    rest: &'a [u8],
    generation: u64,
}

/// The generation a frame's header names.
pub(crate) fn generation_of(header: &[u8; HEADER]) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&header[4..12]);
    u64::from_le_bytes(bytes)
}

impl<'a> Iterator for Frames<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let header: &[u8; HEADER] = self.rest.get(..HEADER)?.try_into().ok()?;
        let len = u32::from_le_bytes(header[0..4].try_into().ok()?) as usize;
        let generation = generation_of(header);
        let crc = u32::from_le_bytes(header[12..16].try_into().ok()?);
        if generation != self.generation {
            return None;
        }
        let payload = self.rest.get(HEADER..HEADER.checked_add(len)?)?;
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&generation.to_le_bytes());
        hasher.update(payload);
        if hasher.finalize() != crc {
            return None;
        }
        self.rest = &self.rest[HEADER + len..];
        Some(payload)
    }
}

/// One write of a frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Write<'a> {
    pub(crate) table: u8,
    pub(crate) key: &'a [u8],
    pub(crate) value: Option<&'a [u8]>,
}

/// The writes of a frame's payload. A payload that passed its checksum
/// but does not parse was written by another version: an error, never
/// a guess.
pub(crate) fn writes(payload: &[u8]) -> impl Iterator<Item = Result<Write<'_>, String>> {
    let mut rest = payload;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let write = next_write(&mut rest);
        if write.is_err() {
            rest = &[];
        }
        Some(write)
    })
}

fn next_write<'a>(rest: &mut &'a [u8]) -> Result<Write<'a>, String> {
    let table = take(rest, 1)?[0];
    let key = take_bytes(rest)?;
    let value = match take(rest, 1)?[0] {
        0 => None,
        1 => Some(take_bytes(rest)?),
        other => return Err(format!("a write of table #{table} is marked {other}, neither removed (0) nor set (1)")),
    };
    Ok(Write { table, key, value })
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if rest.len() < n {
        return Err(format!("a write ends {} bytes early", n - rest.len()));
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Ok(head)
}

fn take_bytes<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8], String> {
    let len = u32::from_le_bytes(take(rest, 4)?.try_into().map_err(|_| "a length is short".to_string())?);
    take(rest, len as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(generation: u64, writes: &[Write<'_>]) -> Vec<u8> {
        let mut buf = FrameBuf::default();
        for write in writes {
            buf.put(write.table, write.key, write.value);
        }
        buf.seal(generation).to_vec()
    }

    #[test]
    fn frames_round_trip_their_writes_in_order() {
        let mut log = frame(
            7,
            &[Write { table: 1, key: b"k1", value: Some(b"v1") }, Write { table: 2, key: b"k2", value: None }],
        );
        log.extend(frame(7, &[Write { table: 3, key: b"", value: Some(b"") }]));
        log.extend(vec![0; 64]);
        let payloads: Vec<_> = frames(&log, 7).collect();
        assert_eq!(payloads.len(), 2);
        let first: Vec<_> = writes(payloads[0]).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            first,
            vec![Write { table: 1, key: b"k1", value: Some(b"v1") }, Write { table: 2, key: b"k2", value: None }]
        );
        let second: Vec<_> = writes(payloads[1]).collect::<Result<_, _>>().unwrap();
        assert_eq!(second, vec![Write { table: 3, key: b"", value: Some(b"") }]);
    }

    #[test]
    fn a_frame_past_its_cap_counts_its_writes_without_keeping_them() {
        let mut buf = FrameBuf::with_cap(64);
        buf.put(1, b"k", Some(&[7; 30]));
        let kept = buf.len();
        assert_eq!(kept, HEADER + 1 + 4 + 1 + 1 + 4 + 30);
        buf.put(1, b"k", Some(&[7; 30]));
        assert_eq!(buf.len(), kept + 41, "the length counts every write");
        assert_eq!(buf.bytes.len(), kept, "the bytes past the cap are not kept");
        buf.clear();
        assert!(buf.is_empty());
    }

    #[test]
    fn a_torn_frame_ends_the_replay() {
        let mut log = frame(1, &[Write { table: 1, key: b"a", value: Some(b"1") }]);
        let second = frame(1, &[Write { table: 1, key: b"b", value: Some(b"2") }]);
        // The second frame's last byte never reached the disk.
        log.extend(&second[..second.len() - 1]);
        log.push(second[second.len() - 1] ^ 0xff);
        log.extend(frame(1, &[Write { table: 1, key: b"c", value: Some(b"3") }]));
        assert_eq!(frames(&log, 1).count(), 1);
        // Cut short: the header promises more than the file holds.
        let short = &second[..second.len() - 1];
        assert_eq!(frames(short, 1).count(), 0);
    }

    #[test]
    fn frames_of_another_generation_are_not_replayed() {
        // Generation 3 was written over the start of generation 2's frames.
        let mut log = frame(3, &[Write { table: 1, key: b"new", value: Some(b"x") }]);
        log.extend(frame(2, &[Write { table: 1, key: b"old", value: Some(b"y") }]));
        assert_eq!(frames(&log, 3).count(), 1);
        assert_eq!(frames(&log, 2).count(), 0);
        assert_eq!(frames(&log, 4).count(), 0);
    }

    #[test]
    fn a_payload_that_does_not_parse_is_an_error() {
        let mut buf = FrameBuf::default();
        buf.put(1, b"k", Some(b"v"));
        let mut bytes = buf.seal(1)[HEADER..].to_vec();
        bytes.truncate(bytes.len() - 1);
        let parsed: Vec<_> = writes(&bytes).collect();
        assert_eq!(parsed.len(), 1);
        assert!(parsed[0].as_ref().is_err_and(|e| e.contains("ends 1 bytes early")), "{parsed:?}");
        let bad_mark = [1u8, 1, 0, 0, 0, b'k', 9];
        assert!(writes(&bad_mark).next().is_some_and(|w| w.is_err()));
    }
}
