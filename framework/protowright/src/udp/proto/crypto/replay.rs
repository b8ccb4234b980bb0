//! The replay window: which recent packet numbers have been accepted.
//!
//! A packet that authenticates may still be a copy an attacker recorded
//! and sends again; acting on it twice (an ack, a close) is what this
//! window prevents. Numbers more than [`WINDOW`] below the largest seen are
//! refused outright, so the memory is a fixed 128 bytes per connection.
//! A number implausibly far above the largest is refused too, so a peer
//! (or a bug) cannot push the window, and with it the genuine numbers,
//! out of reach.

/// How far below the largest accepted number a packet may still arrive.
pub(crate) const WINDOW: u64 = 1024;

/// How far above the largest accepted number a packet may jump. A sender
/// that lost contact only probes, at backed-off intervals, so genuine
/// numbers never leap this far.
pub(crate) const MAX_AHEAD: u64 = 1 << 20;

const WORDS: usize = (WINDOW / 64) as usize;

/// Why a packet number was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejected {
    /// Accepted before.
    Replay,
    /// Below the window.
    TooOld,
    /// Implausibly far above the largest accepted number.
    TooFarAhead,
}

/// Accepted packet numbers near the largest.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReplayWindow {
    largest: Option<u64>,
    bits: [u64; WORDS],
}

impl ReplayWindow {
    /// Whether `number` may be accepted; checked before the (costlier)
    /// decryption, and [`accept`](Self::accept)ed only after it.
    pub(crate) fn check(&self, number: u64) -> Result<(), Rejected> {
        let Some(largest) = self.largest else {
            return if number < MAX_AHEAD {
                Ok(())
            } else {
                Err(Rejected::TooFarAhead)
            };
        };
        if number > largest {
            return if number - largest <= MAX_AHEAD {
                Ok(())
            } else {
                Err(Rejected::TooFarAhead)
            };
        }
        if largest - number >= WINDOW {
            return Err(Rejected::TooOld);
        }
        if self.is_set(number) {
            Err(Rejected::Replay)
        } else {
            Ok(())
        }
    }

    /// Records `number` as accepted.
    pub(crate) fn accept(&mut self, number: u64) {
        match self.largest {
            Some(largest) if number <= largest => {}
            Some(largest) if number - largest < WINDOW => {
                for cleared in largest + 1..number {
                    self.clear(cleared);
                }
                self.largest = Some(number);
            }
            _ => {
                self.bits = [0; WORDS];
                self.largest = Some(number);
            }
        }
        self.set(number);
    }

    fn index(number: u64) -> (usize, u64) {
        let bit = number % WINDOW;
        ((bit / 64) as usize, 1 << (bit % 64))
    }

    fn is_set(&self, number: u64) -> bool {
        let (word, mask) = Self::index(number);
        self.bits[word] & mask != 0
    }

    fn set(&mut self, number: u64) {
        let (word, mask) = Self::index(number);
        self.bits[word] |= mask;
    }

    fn clear(&mut self, number: u64) {
        let (word, mask) = Self::index(number);
        self.bits[word] &= !mask;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_number_is_accepted_once() {
        let mut window = ReplayWindow::default();
        for n in [0, 5, 3, 4, 1000] {
            assert_eq!(window.check(n), Ok(()));
            window.accept(n);
            assert_eq!(window.check(n), Err(Rejected::Replay));
        }
        assert_eq!(
            window.check(2),
            Ok(()),
            "a gap below the largest stays open"
        );
    }

    #[test]
    fn old_and_far_ahead_numbers_are_refused() {
        let mut window = ReplayWindow::default();
        window.accept(5000);
        assert_eq!(window.check(5000 - WINDOW), Err(Rejected::TooOld));
        assert_eq!(window.check(5001 - WINDOW), Ok(()));
        assert_eq!(
            window.check(5000 + MAX_AHEAD + 1),
            Err(Rejected::TooFarAhead)
        );
        assert_eq!(window.check(5000 + MAX_AHEAD), Ok(()));
        assert_eq!(
            ReplayWindow::default().check(MAX_AHEAD),
            Err(Rejected::TooFarAhead)
        );
    }

    proptest! {
        /// Against a set of everything accepted: the window never accepts
        /// a number twice and never refuses a fresh one inside it.
        #[test]
        fn matches_a_plain_set(steps in proptest::collection::vec(0u64..3000, 1..400)) {
            let mut window = ReplayWindow::default();
            let mut seen = std::collections::BTreeSet::new();
            for n in steps {
                let largest = seen.iter().next_back().copied();
                let verdict = window.check(n);
                let expected = match largest {
                    Some(l) if n <= l && l - n >= WINDOW => Err(Rejected::TooOld),
                    _ if seen.contains(&n) => Err(Rejected::Replay),
                    _ => Ok(()),
                };
                prop_assert_eq!(verdict, expected, "number {}", n);
                if verdict.is_ok() {
                    window.accept(n);
                    seen.insert(n);
                }
            }
        }
    }
}
