//! A set of `u64` values kept as disjoint half-open ranges: received packet
//! numbers, acknowledged bytes of a message, bytes of a message being
//! reassembled, delivered message sequences.

use std::collections::BTreeMap;
use std::ops::Range;

/// Disjoint, non-adjacent half-open ranges, keyed by start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RangeSet {
    ranges: BTreeMap<u64, u64>,
}

impl RangeSet {
    /// Adds `range`, merging with its neighbours. Returns how many values
    /// were new.
    pub(crate) fn insert(&mut self, range: Range<u64>) -> u64 {
        if range.start >= range.end {
            return 0;
        }
        let (mut start, mut end) = (range.start, range.end);
        let mut covered = 0;
        // A range starting at or before `start` that reaches it.
        if let Some((&s, &e)) = self.ranges.range(..=start).next_back() {
            if e >= start {
                if e >= end {
                    return 0;
                }
                covered += e - start;
                start = s;
                self.ranges.remove(&s);
            }
        }
        // Ranges starting inside the new one.
        while let Some((&s, &e)) = self.ranges.range(start..=end).next() {
            self.ranges.remove(&s);
            let overlap_start = s.max(range.start);
            let overlap_end = e.min(range.end);
            if overlap_end > overlap_start {
                covered += overlap_end - overlap_start;
            }
            end = end.max(e);
        }
        self.ranges.insert(start, end);
        (range.end - range.start) - covered
    }

    /// Whether `value` is in the set.
    pub(crate) fn contains(&self, value: u64) -> bool {
        self.ranges
            .range(..=value)
            .next_back()
            .is_some_and(|(_, &end)| value < end)
    }

    /// The first value at or after `value` that is not in the set.
    pub(crate) fn first_gap_from(&self, value: u64) -> u64 {
        match self.ranges.range(..=value).next_back() {
            Some((_, &end)) if value < end => end,
            _ => value,
        }
    }

    /// Whether every value of `range` is in the set.
    pub(crate) fn covers(&self, range: Range<u64>) -> bool {
        range.is_empty()
            || self
                .ranges
                .range(..=range.start)
                .next_back()
                .is_some_and(|(_, &end)| range.end <= end)
    }

    /// Whether `range` overlaps or adjoins a range of the set, so that
    /// inserting it adds no new range.
    pub(crate) fn touches(&self, range: Range<u64>) -> bool {
        self.ranges
            .range(..=range.end)
            .next_back()
            .is_some_and(|(_, &end)| end >= range.start)
    }

    /// The number of disjoint ranges.
    pub(crate) fn len(&self) -> usize {
        self.ranges.len()
    }

    /// The smallest value, if any.
    pub(crate) fn min(&self) -> Option<u64> {
        self.ranges.keys().next().copied()
    }

    /// Drops the lowest range.
    pub(crate) fn pop_min(&mut self) -> Option<Range<u64>> {
        self.ranges.pop_first().map(|(start, end)| start..end)
    }

    /// Drops every value below `floor`.
    pub(crate) fn remove_below(&mut self, floor: u64) {
        while let Some((&start, &end)) = self.ranges.first_key_value() {
            if end <= floor {
                self.ranges.remove(&start);
            } else {
                if start < floor {
                    self.ranges.remove(&start);
                    self.ranges.insert(floor, end);
                }
                break;
            }
        }
    }

    /// The ranges from the highest down.
    pub(crate) fn iter_descending(&self) -> impl Iterator<Item = Range<u64>> + '_ {
        self.ranges.iter().rev().map(|(&start, &end)| start..end)
    }

    /// The ranges from the lowest up.
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = Range<u64>> + '_ {
        self.ranges.iter().map(|(&start, &end)| start..end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn inserting_merges_neighbours_and_counts_new_values() {
        let mut set = RangeSet::default();
        assert_eq!(set.insert(0..10), 10);
        assert_eq!(set.insert(20..30), 10);
        assert_eq!(set.insert(5..25), 10);
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![0..30]);
        assert_eq!(set.insert(30..31), 1);
        assert_eq!(set.len(), 1);
        assert_eq!(set.insert(3..4), 0);
    }

    proptest! {
        #[test]
        fn behaves_like_a_set_of_values(ranges in proptest::collection::vec((0u64..200, 0u64..20), 0..40)) {
            let mut set = RangeSet::default();
            let mut model = BTreeSet::new();
            for (start, len) in ranges {
                let fresh = (start..start + len).filter(|v| !model.contains(v)).count() as u64;
                prop_assert_eq!(set.insert(start..start + len), fresh);
                model.extend(start..start + len);
            }
            for value in 0..230 {
                prop_assert_eq!(set.contains(value), model.contains(&value));
            }
            let flattened: BTreeSet<u64> = set.iter().flatten().collect();
            prop_assert_eq!(flattened, model);
            // Disjoint and non-adjacent.
            let ranges: Vec<_> = set.iter().collect();
            for pair in ranges.windows(2) {
                prop_assert!(pair[0].end < pair[1].start);
            }
        }
    }

    #[test]
    fn remove_below_cuts_the_range_it_falls_in() {
        let mut set = RangeSet::default();
        set.insert(0..10);
        set.insert(20..30);
        set.remove_below(25);
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![25..30]);
        assert!(set.covers(26..30));
        assert!(!set.covers(24..26));
    }

    #[test]
    fn the_first_gap_skips_the_range_holding_the_value() {
        let mut set = RangeSet::default();
        set.insert(10..20);
        set.insert(30..40);
        assert_eq!(set.first_gap_from(5), 5);
        assert_eq!(set.first_gap_from(10), 20);
        assert_eq!(set.first_gap_from(19), 20);
        assert_eq!(set.first_gap_from(20), 20);
        assert_eq!(set.first_gap_from(35), 40);
    }
}
