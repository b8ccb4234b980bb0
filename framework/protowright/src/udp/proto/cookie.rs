//! Stateless address validation: a server answers a first `Initial` with a
//! cookie it can check later without having stored anything.
//!
//! A cookie is the time of issue sealed (AES-256-GCM) under a secret only
//! the server knows, with the client's address, its connection id and its
//! handshake's first bytes as associated data. It is opaque (an observer
//! learns neither the time nor the key), it cannot be forged, and it is
//! good only for the address and the attempt it was issued to. The secret
//! rotates every lifetime; the one before is still accepted for one more
//! lifetime, so a cookie issued just before a rotation still works.

use std::net::SocketAddr;
use std::time::Duration;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

/// The cookie's length: key generation (1), nonce (12), sealed issue time
/// (8) and tag (16).
pub(crate) const COOKIE_LEN: usize = 1 + NONCE_LEN + 8 + 16;

/// One cookie secret.
struct Secret {
    generation: u8,
    key: LessSafeKey,
}

impl Secret {
    fn new(generation: u8, bytes: [u8; 32]) -> Self {
        let key = UnboundKey::new(&AES_256_GCM, &bytes).expect("AES-256 takes 32-byte keys");
        Self {
            generation,
            key: LessSafeKey::new(key),
        }
    }
}

/// Issues and checks cookies.
pub(crate) struct CookieJar {
    current: Secret,
    previous: Option<Secret>,
    rotated_at: Duration,
    lifetime: Duration,
}

impl std::fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieJar")
            .field("generation", &self.current.generation)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl CookieJar {
    /// A jar whose first secret is `secret`.
    pub(crate) fn new(secret: [u8; 32], lifetime: Duration) -> Self {
        Self {
            current: Secret::new(0, secret),
            previous: None,
            rotated_at: Duration::ZERO,
            lifetime,
        }
    }

    /// Whether the current secret has served its lifetime at
    /// `since_epoch`; the caller then [`rotate`](Self::rotate)s.
    pub(crate) fn due_for_rotation(&self, since_epoch: Duration) -> bool {
        since_epoch.saturating_sub(self.rotated_at) >= self.lifetime
    }

    /// Starts using `secret`; the secret before it is still accepted.
    pub(crate) fn rotate(&mut self, secret: [u8; 32], since_epoch: Duration) {
        let generation = self.current.generation.wrapping_add(1);
        let old = std::mem::replace(&mut self.current, Secret::new(generation, secret));
        self.previous = Some(old);
        self.rotated_at = since_epoch;
    }

    /// A cookie for `addr`, `cid` and `attempt`, issued `since_epoch` after
    /// the epoch, sealed with `nonce` (random, from the endpoint).
    pub(crate) fn issue(
        &self,
        addr: SocketAddr,
        cid: u64,
        attempt: &[u8],
        since_epoch: Duration,
        nonce: [u8; NONCE_LEN],
    ) -> [u8; COOKIE_LEN] {
        let mut cookie = [0u8; COOKIE_LEN];
        cookie[0] = self.current.generation;
        cookie[1..1 + NONCE_LEN].copy_from_slice(&nonce);
        let (_, body) = cookie.split_at_mut(1 + NONCE_LEN);
        let (issued, tag_out) = body.split_at_mut(8);
        issued.copy_from_slice(&(since_epoch.as_millis() as u64).to_be_bytes());
        let associated = associated_data(addr, cid, attempt);
        let tag = self
            .current
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&associated[..]),
                issued,
            )
            .expect("an 8-byte message seals");
        tag_out.copy_from_slice(tag.as_ref());
        cookie
    }

    /// Whether `cookie` was issued by this jar for `addr`, `cid` and
    /// `attempt` and has not expired at `since_epoch`.
    pub(crate) fn check(
        &self,
        cookie: &[u8],
        addr: SocketAddr,
        cid: u64,
        attempt: &[u8],
        since_epoch: Duration,
    ) -> bool {
        let Ok(mut cookie) = <[u8; COOKIE_LEN]>::try_from(cookie) else {
            return false;
        };
        let secret = if cookie[0] == self.current.generation {
            &self.current
        } else {
            match &self.previous {
                Some(previous) if previous.generation == cookie[0] => previous,
                _ => return false,
            }
        };
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&cookie[1..1 + NONCE_LEN]);
        let associated = associated_data(addr, cid, attempt);
        let Ok(issued) = secret.key.open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&associated[..]),
            &mut cookie[1 + NONCE_LEN..],
        ) else {
            return false;
        };
        let mut millis = [0u8; 8];
        millis.copy_from_slice(issued);
        let issued = u64::from_be_bytes(millis);
        let now = since_epoch.as_millis() as u64;
        issued <= now && now - issued <= self.lifetime.as_millis() as u64
    }
}

fn associated_data(addr: SocketAddr, cid: u64, attempt: &[u8]) -> Vec<u8> {
    let mut data = Vec::with_capacity(64 + attempt.len());
    data.extend_from_slice(b"protowright v1 cookie");
    match addr {
        SocketAddr::V4(v4) => {
            data.push(4);
            data.extend_from_slice(&v4.ip().octets());
        }
        SocketAddr::V6(v6) => {
            data.push(6);
            data.extend_from_slice(&v6.ip().octets());
        }
    }
    data.extend_from_slice(&addr.port().to_be_bytes());
    data.extend_from_slice(&cid.to_be_bytes());
    data.extend_from_slice(attempt);
    data
}

/// The most attempts remembered; beyond it the oldest is forgotten (only
/// a flood of genuine connections fills it within one cookie lifetime).
const MAX_USED_ATTEMPTS: usize = 1 << 16;

/// Attempts a cookie admitted lately. A cookie is good for one connection:
/// a recorded `Initial` replayed while its cookie is still fresh, after
/// the connection it opened has ended, is dropped rather than reported as
/// that client connecting again.
#[derive(Debug)]
pub(crate) struct UsedAttempts {
    lifetime: Duration,
    order: std::collections::VecDeque<(Duration, (u64, [u8; 16]))>,
    set: std::collections::HashSet<(u64, [u8; 16])>,
}

impl UsedAttempts {
    pub(crate) fn new(lifetime: Duration) -> Self {
        Self {
            lifetime,
            order: std::collections::VecDeque::new(),
            set: std::collections::HashSet::new(),
        }
    }

    fn key(cid: u64, attempt: &[u8]) -> (u64, [u8; 16]) {
        let mut prefix = [0u8; 16];
        let len = attempt.len().min(16);
        prefix[..len].copy_from_slice(&attempt[..len]);
        (cid, prefix)
    }

    fn forget_expired(&mut self, since_epoch: Duration) {
        while let Some(&(at, key)) = self.order.front() {
            if since_epoch.saturating_sub(at) <= self.lifetime
                && self.order.len() < MAX_USED_ATTEMPTS
            {
                break;
            }
            self.order.pop_front();
            self.set.remove(&key);
        }
    }

    /// Whether attempt `cid`/`attempt` was admitted within a cookie
    /// lifetime of `since_epoch`.
    pub(crate) fn contains(&mut self, cid: u64, attempt: &[u8], since_epoch: Duration) -> bool {
        self.forget_expired(since_epoch);
        self.set.contains(&Self::key(cid, attempt))
    }

    /// Records an admitted attempt.
    pub(crate) fn insert(&mut self, cid: u64, attempt: &[u8], since_epoch: Duration) {
        self.forget_expired(since_epoch);
        let key = Self::key(cid, attempt);
        if self.set.insert(key) {
            self.order.push_back((since_epoch, key));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECONDS: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn cookies_check_only_for_their_address_id_attempt_and_lifetime() {
        let jar = CookieJar::new([1; 32], SECONDS(10));
        let addr: SocketAddr = "10.0.0.1:4000".parse().expect("address");
        let other: SocketAddr = "10.0.0.2:4000".parse().expect("address");
        let cookie = jar.issue(addr, 7, b"attempt", SECONDS(5), [3; NONCE_LEN]);
        assert!(jar.check(&cookie, addr, 7, b"attempt", SECONDS(6)));
        assert!(!jar.check(&cookie, other, 7, b"attempt", SECONDS(6)));
        assert!(!jar.check(&cookie, addr, 8, b"attempt", SECONDS(6)));
        assert!(!jar.check(&cookie, addr, 7, b"another", SECONDS(6)));
        assert!(!jar.check(&cookie, addr, 7, b"attempt", SECONDS(16)));
        assert!(!jar.check(&cookie[..15], addr, 7, b"attempt", SECONDS(6)));
        let other_key = CookieJar::new([2; 32], SECONDS(10));
        assert!(!other_key.check(&cookie, addr, 7, b"attempt", SECONDS(6)));
    }

    #[test]
    fn a_cookie_reveals_no_time_and_no_bit_can_be_changed() {
        let jar = CookieJar::new([1; 32], SECONDS(10));
        let addr: SocketAddr = "[::1]:9".parse().expect("address");
        let a = jar.issue(addr, 7, b"", SECONDS(1), [3; NONCE_LEN]);
        let b = jar.issue(addr, 7, b"", SECONDS(1), [4; NONCE_LEN]);
        assert_ne!(a[13..21], b[13..21], "the same time seals differently");
        assert!(!a.windows(8).any(|w| w == 1000u64.to_be_bytes()));
        for i in 0..COOKIE_LEN {
            let mut forged = a;
            forged[i] ^= 0x40;
            assert!(!jar.check(&forged, addr, 7, b"", SECONDS(2)), "byte {i}");
        }
    }

    #[test]
    fn after_a_rotation_the_previous_secret_is_accepted_for_one_more() {
        let mut jar = CookieJar::new([1; 32], SECONDS(10));
        let addr: SocketAddr = "10.0.0.1:4000".parse().expect("address");
        let old = jar.issue(addr, 7, b"", SECONDS(9), [3; NONCE_LEN]);
        assert!(jar.due_for_rotation(SECONDS(10)));
        jar.rotate([2; 32], SECONDS(10));
        assert!(!jar.due_for_rotation(SECONDS(11)));
        assert!(jar.check(&old, addr, 7, b"", SECONDS(11)));
        let new = jar.issue(addr, 7, b"", SECONDS(11), [4; NONCE_LEN]);
        jar.rotate([5; 32], SECONDS(20));
        assert!(
            !jar.check(&old, addr, 7, b"", SECONDS(12)),
            "two secrets ago"
        );
        assert!(jar.check(&new, addr, 7, b"", SECONDS(20)));
    }

    #[test]
    fn an_admitted_attempt_is_remembered_for_one_cookie_lifetime() {
        let mut used = UsedAttempts::new(SECONDS(10));
        used.insert(7, b"attempt", SECONDS(1));
        assert!(used.contains(7, b"attempt", SECONDS(5)));
        assert!(!used.contains(8, b"attempt", SECONDS(5)));
        assert!(!used.contains(7, b"another", SECONDS(5)));
        assert!(
            !used.contains(7, b"attempt", SECONDS(12)),
            "forgotten after the lifetime"
        );
    }
}
