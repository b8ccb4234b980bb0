//! What every contender's bulk workload shares: the data and its checksum.

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::Report;

/// The size of one chunk of a bulk transfer.
pub(super) const CHUNK: usize = 64 * 1024;

/// The stream repeats this many bytes of pseudo-random data.
pub(super) const PATTERN: usize = 16 * CHUNK;

/// The chunks of a transfer of `bytes`, cut from a repeating pattern (the
/// last one may be short). Slices of one buffer: no copy per chunk.
pub(super) fn chunks(bytes: u64) -> impl Iterator<Item = Bytes> {
    blocks(bytes, CHUNK)
}

/// The transfer cut into blocks of `size` bytes, a divisor of the pattern's
/// length (the raw-socket contender writes 1 MiB at a time). The stream of
/// bytes, and so its checksum, is the same whatever the size.
pub(super) fn blocks(bytes: u64, size: usize) -> impl Iterator<Item = Bytes> {
    debug_assert_eq!(PATTERN % size, 0);
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let pattern: Bytes = (0..PATTERN)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect::<Vec<u8>>()
        .into();
    let count = bytes.div_ceil(size as u64);
    (0..count).map(move |index| {
        let start = (index as usize % (PATTERN / size)) * size;
        let remaining = bytes - index * size as u64;
        let len = (remaining as usize).min(size);
        pattern.slice(start..start + len)
    })
}

/// A checksum that depends on every byte and its position, cheap enough
/// not to limit the fastest contender: 64-bit words, each weighted by an
/// odd multiple of its index.
#[derive(Debug, Default)]
pub(super) struct Checksum {
    acc: u64,
    words: u64,
    carry: [u8; 8],
    carried: usize,
    bytes: u64,
}

impl Checksum {
    pub(super) fn update(&mut self, mut data: &[u8]) {
        self.bytes += data.len() as u64;
        if self.carried > 0 {
            let take = (8 - self.carried).min(data.len());
            self.carry[self.carried..self.carried + take].copy_from_slice(&data[..take]);
            self.carried += take;
            data = &data[take..];
            if self.carried < 8 {
                return;
            }
            self.word(u64::from_le_bytes(self.carry));
            self.carried = 0;
        }
        let mut words = data.chunks_exact(8);
        for word in &mut words {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(word);
            self.word(u64::from_le_bytes(bytes));
        }
        let rest = words.remainder();
        self.carry[..rest.len()].copy_from_slice(rest);
        self.carried = rest.len();
    }

    fn word(&mut self, word: u64) {
        self.words += 1;
        let weight = self.words.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        self.acc = self.acc.wrapping_add(word.wrapping_mul(weight));
    }

    /// The checksum of everything so far.
    pub(super) fn value(&self) -> u64 {
        let mut last = [0u8; 8];
        last[..self.carried].copy_from_slice(&self.carry[..self.carried]);
        self.acc ^ u64::from_le_bytes(last).rotate_left(17) ^ self.bytes
    }

    pub(super) fn bytes(&self) -> u64 {
        self.bytes
    }
}

/// The checksum of a whole transfer of `bytes`, as the sender computes it.
pub(super) fn expected(bytes: u64) -> Checksum {
    let mut checksum = Checksum::default();
    for chunk in chunks(bytes) {
        checksum.update(&chunk);
    }
    checksum
}

/// The receiving side of a transfer: checksum, and the time from the first
/// byte to the last.
#[derive(Debug, Default)]
pub(super) struct Received {
    checksum: Checksum,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Received {
    /// Takes in received bytes. The transfer ends at the last of them: how
    /// long the sender then takes to say it is done (a close over a lossy
    /// path, say) is not part of it.
    pub(super) fn add(&mut self, data: &[u8]) {
        let now = Instant::now();
        self.first.get_or_insert(now);
        self.last = Some(now);
        self.checksum.update(data);
    }

    pub(super) fn report(&self) -> Report {
        let elapsed = match (self.first, self.last) {
            (Some(first), Some(last)) => last - first,
            _ => Duration::ZERO,
        };
        Report::Received {
            bytes: self.checksum.bytes(),
            checksum: self.checksum.value(),
            elapsed,
        }
    }
}
