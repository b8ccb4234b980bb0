//! One message being reassembled. Its buffer grows as data arrives
//! (doubling, up to the announced length) instead of being allocated at
//! the announced length on the first fragment, so a peer that announces
//! large messages and sends little of them costs what it sent. The runs
//! of bytes it holds are bounded too: a fragment that would add a run
//! beyond [`MAX_RUNS`] is refused.

use bytes::Bytes;

use super::super::frame::Fragment;
use super::super::ranges::RangeSet;

/// What a partial message costs its account besides its buffer: the map
/// entry, the record of which bytes arrived and their allocations
/// (measured at about 300 bytes with a counting allocator).
pub(crate) const PARTIAL_OVERHEAD: u64 = 384;

/// The most separate runs of bytes a partial message holds. An honest
/// sender leaves a gap only where a fragment was lost, and a resend that
/// fills a gap always adjoins a run, so a refused fragment only waits for
/// its resend.
pub(crate) const MAX_RUNS: usize = 1024;

#[derive(Debug)]
pub(super) struct Partial {
    buf: Vec<u8>,
    have: RangeSet,
    total: u64,
}

impl Partial {
    pub(super) fn new(total: u64) -> Self {
        Self {
            buf: Vec::new(),
            have: RangeSet::default(),
            total,
        }
    }

    /// Whether taking `fragment` would leave more than [`MAX_RUNS`] runs.
    pub(super) fn would_scatter(&self, fragment: &Fragment<'_>) -> bool {
        let range = fragment.offset..fragment.offset + fragment.data.len() as u64;
        self.have.len() >= MAX_RUNS && !self.have.touches(range)
    }

    /// Copies `fragment` in. Returns how many bytes were new and how many
    /// bytes the buffer grew by. The caller checked that the fragment lies
    /// within [`total`](Self::total) (the frame decoder does).
    pub(super) fn fill(&mut self, fragment: &Fragment<'_>) -> (u64, u64) {
        let start = fragment.offset as usize;
        let end = start + fragment.data.len();
        let before = self.buf.capacity();
        if end > self.buf.len() {
            if end > before {
                let target = (before * 2).max(end).min(self.total as usize);
                self.buf.reserve_exact(target - self.buf.len());
            }
            self.buf.resize(end, 0);
        }
        self.buf[start..end].copy_from_slice(fragment.data);
        let fresh = self.have.insert(fragment.offset..end as u64);
        (fresh, (self.buf.capacity() - before) as u64)
    }

    pub(super) fn is_complete(&self) -> bool {
        self.have.covers(0..self.total)
    }

    /// The announced length.
    pub(super) fn total(&self) -> u64 {
        self.total
    }

    /// Bytes of buffer it holds now.
    pub(super) fn buffered(&self) -> u64 {
        self.buf.capacity() as u64
    }

    /// What it costs its account: buffer and bookkeeping.
    pub(super) fn cost(&self) -> u64 {
        self.buffered() + PARTIAL_OVERHEAD
    }

    /// The message, once complete.
    pub(super) fn into_bytes(self) -> Bytes {
        Bytes::from(self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::udp::proto::frame::Lane;

    fn piece(total: u64, offset: u64, data: &[u8]) -> Fragment<'_> {
        Fragment {
            lane: Lane::ReliableOrdered,
            channel: 0,
            sequence: 0,
            total,
            offset,
            data,
        }
    }

    #[test]
    fn the_buffer_grows_with_the_data_not_with_the_announced_length() {
        let mut partial = Partial::new(1 << 30);
        let (fresh, grown) = partial.fill(&piece(1 << 30, 0, &[1; 1000]));
        assert_eq!((fresh, grown), (1000, 1000));
        partial.fill(&piece(1 << 30, 1000, &[2; 1000]));
        assert_eq!(partial.buffered(), 2000);
        assert!(!partial.is_complete());

        let mut small = Partial::new(2500);
        for offset in (0..2500).step_by(500) {
            small.fill(&piece(2500, offset, &[3; 500]));
        }
        assert!(small.is_complete());
        assert_eq!(small.buffered(), 2500, "never past the announced length");
        assert_eq!(small.into_bytes().len(), 2500);
    }

    #[test]
    fn a_fragment_that_would_scatter_the_message_past_its_runs_is_refused() {
        let total = 4 * MAX_RUNS as u64;
        let mut partial = Partial::new(total);
        for run in 0..MAX_RUNS as u64 {
            let fragment = piece(total, run * 2, &[1]);
            assert!(!partial.would_scatter(&fragment));
            partial.fill(&fragment);
        }
        assert!(partial.would_scatter(&piece(total, total - 1, &[1])));
        // Filling a gap joins runs: always taken.
        assert!(!partial.would_scatter(&piece(total, 1, &[1])));
    }
}
