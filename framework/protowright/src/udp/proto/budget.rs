//! Endpoint-wide budgets a hostile peer cannot get around by opening more
//! connections: the receive memory every connection's receiver charges
//! ([`MemoryBudget`], one [`Account`] per receiver), and the connections
//! one IP address may hold ([`SourceCounts`]).
//!
//! A receiver charges its account for every message it holds (partly
//! received, waiting for an earlier one, or unread), payload and
//! bookkeeping overhead together, and gives the charge back when the
//! message leaves. Before taking in new data it asks
//! [`Account::has_room`]; the caller decides what a refusal means (a
//! reliable fragment goes unacknowledged, an unreliable one is dropped).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes held for receiving by all of an endpoint's connections, and the
/// most they may hold. Cloning shares the count.
#[derive(Debug, Clone)]
pub(crate) struct MemoryBudget {
    used: Arc<AtomicU64>,
    limit: u64,
}

impl MemoryBudget {
    pub(crate) fn new(limit: u64) -> Self {
        Self {
            used: Arc::new(AtomicU64::new(0)),
            limit,
        }
    }

    /// Bytes charged now, by every account.
    pub(crate) fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }
}

/// One receiver's share of a [`MemoryBudget`]: what it has charged, given
/// back in full when it is dropped. Without a budget (a receiver on its
/// own, in unit tests) it only counts.
#[derive(Debug, Default)]
pub(crate) struct Account {
    held: u64,
    budget: Option<MemoryBudget>,
}

impl Account {
    /// Starts charging `budget`, moving what is already held onto it.
    pub(crate) fn join(&mut self, budget: &MemoryBudget) {
        if let Some(old) = self.budget.take() {
            old.used.fetch_sub(self.held, Ordering::Relaxed);
        }
        budget.used.fetch_add(self.held, Ordering::Relaxed);
        self.budget = Some(budget.clone());
    }

    /// Bytes this account holds.
    #[cfg(test)]
    pub(crate) fn held(&self) -> u64 {
        self.held
    }

    /// Whether `bytes` more fit in the endpoint's budget.
    pub(crate) fn has_room(&self, bytes: u64) -> bool {
        self.budget
            .as_ref()
            .is_none_or(|budget| budget.used().saturating_add(bytes) <= budget.limit)
    }

    /// Charges `bytes`, whether or not they fit: callers ask
    /// [`has_room`](Self::has_room) first where refusing is possible.
    pub(crate) fn hold(&mut self, bytes: u64) {
        self.held += bytes;
        if let Some(budget) = &self.budget {
            budget.used.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// Gives back `bytes` charged earlier.
    pub(crate) fn free(&mut self, bytes: u64) {
        debug_assert!(bytes <= self.held, "freeing {bytes} of {}", self.held);
        let bytes = bytes.min(self.held);
        self.held -= bytes;
        if let Some(budget) = &self.budget {
            budget.used.fetch_sub(bytes, Ordering::Relaxed);
        }
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        let held = self.held;
        self.free(held);
    }
}

/// Connections held per source IP address (server side), against a cap.
#[derive(Debug, Default)]
pub(crate) struct SourceCounts {
    counts: HashMap<IpAddr, usize>,
}

impl SourceCounts {
    /// Whether `ip` holds fewer than `cap` connections.
    pub(crate) fn has_room(&self, ip: IpAddr, cap: usize) -> bool {
        self.counts.get(&ip).copied().unwrap_or(0) < cap
    }

    /// Counts one more connection from `ip`.
    pub(crate) fn add(&mut self, ip: IpAddr) {
        *self.counts.entry(ip).or_default() += 1;
    }

    /// Counts one connection from `ip` fewer; an address with none left is
    /// forgotten, so the map holds only addresses with connections.
    pub(crate) fn remove(&mut self, ip: IpAddr) {
        if let Some(count) = self.counts.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                self.counts.remove(&ip);
            }
        }
    }

    /// Addresses with at least one connection.
    #[cfg(test)]
    pub(crate) fn addresses(&self) -> usize {
        self.counts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_share_one_budget_and_give_back_what_they_held_when_dropped() {
        let budget = MemoryBudget::new(1000);
        let mut a = Account::default();
        a.hold(100);
        a.join(&budget);
        let mut b = Account::default();
        b.join(&budget);
        b.hold(600);
        assert_eq!(budget.used(), 700);
        assert!(a.has_room(300));
        assert!(!b.has_room(301));
        b.free(200);
        assert_eq!((a.held(), b.held(), budget.used()), (100, 400, 500));
        drop(b);
        assert_eq!(budget.used(), 100);
        drop(a);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn an_address_holds_at_most_its_cap_and_is_forgotten_at_zero() {
        let ip: IpAddr = [10, 0, 0, 1].into();
        let mut counts = SourceCounts::default();
        counts.add(ip);
        counts.add(ip);
        assert!(!counts.has_room(ip, 2));
        assert!(counts.has_room([10, 0, 0, 2].into(), 2));
        counts.remove(ip);
        assert!(counts.has_room(ip, 2));
        counts.remove(ip);
        assert_eq!(counts.addresses(), 0);
    }
}
