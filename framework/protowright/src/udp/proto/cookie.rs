//! Stateless address validation: a server answers a first `Initial` with a
//! cookie it can check later without having stored anything, a keyed MAC
//! over the client's address, its connection id and the time of issue.

use std::net::SocketAddr;
use std::time::Duration;

/// The cookie's length: 8 bytes of issue time (ms since the endpoint's
/// epoch) and 8 of MAC.
pub(crate) const COOKIE_LEN: usize = 16;

/// Issues and checks cookies with one secret key.
#[derive(Debug, Clone)]
pub(crate) struct CookieJar {
    key: [u64; 2],
    lifetime: Duration,
}

impl CookieJar {
    pub(crate) fn new(key: [u64; 2], lifetime: Duration) -> Self {
        Self { key, lifetime }
    }

    /// A cookie for `addr` and `cid`, issued `since_epoch` after the epoch.
    pub(crate) fn issue(
        &self,
        addr: SocketAddr,
        cid: u64,
        since_epoch: Duration,
    ) -> [u8; COOKIE_LEN] {
        let issued = since_epoch.as_millis() as u64;
        let mut cookie = [0; COOKIE_LEN];
        cookie[..8].copy_from_slice(&issued.to_be_bytes());
        cookie[8..].copy_from_slice(&self.mac(addr, cid, issued).to_be_bytes());
        cookie
    }

    /// Whether `cookie` was issued by this jar for `addr` and `cid` and has
    /// not expired at `since_epoch`.
    pub(crate) fn check(
        &self,
        cookie: &[u8],
        addr: SocketAddr,
        cid: u64,
        since_epoch: Duration,
    ) -> bool {
        let Ok(cookie) = <[u8; COOKIE_LEN]>::try_from(cookie) else {
            return false;
        };
        let mut issued = [0; 8];
        issued.copy_from_slice(&cookie[..8]);
        let issued = u64::from_be_bytes(issued);
        let mut mac = [0; 8];
        mac.copy_from_slice(&cookie[8..]);
        let now = since_epoch.as_millis() as u64;
        let fresh = issued <= now && now - issued <= self.lifetime.as_millis() as u64;
        // Compare every byte regardless, so timing tells nothing.
        let expected = self.mac(addr, cid, issued).to_be_bytes();
        let differing = expected
            .iter()
            .zip(mac)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        fresh && differing == 0
    }

    fn mac(&self, addr: SocketAddr, cid: u64, issued: u64) -> u64 {
        let mut message = Vec::with_capacity(40);
        match addr {
            SocketAddr::V4(v4) => {
                message.push(4);
                message.extend_from_slice(&v4.ip().octets());
            }
            SocketAddr::V6(v6) => {
                message.push(6);
                message.extend_from_slice(&v6.ip().octets());
            }
        }
        message.extend_from_slice(&addr.port().to_be_bytes());
        message.extend_from_slice(&cid.to_be_bytes());
        message.extend_from_slice(&issued.to_be_bytes());
        siphash24(self.key, &message)
    }
}

/// SipHash-2-4, a keyed pseudo-random function fit for MACs over short
/// inputs.
pub(crate) fn siphash24(key: [u64; 2], message: &[u8]) -> u64 {
    let mut v = [
        key[0] ^ 0x736f_6d65_7073_6575,
        key[1] ^ 0x646f_7261_6e64_6f6d,
        key[0] ^ 0x6c79_6765_6e65_7261,
        key[1] ^ 0x7465_6462_7974_6573,
    ];
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }
    let mut chunks = message.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let m = u64::from_le_bytes(word);
        v[3] ^= m;
        round(&mut v);
        round(&mut v);
        v[0] ^= m;
    }
    let mut last = [0u8; 8];
    let tail = chunks.remainder();
    last[..tail.len()].copy_from_slice(tail);
    last[7] = message.len() as u8;
    let m = u64::from_le_bytes(last);
    v[3] ^= m;
    round(&mut v);
    round(&mut v);
    v[0] ^= m;
    v[2] ^= 0xff;
    for _ in 0..4 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siphash_matches_the_reference_vectors() {
        // From the SipHash paper: key 00..0f, messages 00..(n-1).
        let key = [
            u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]),
            u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]),
        ];
        assert_eq!(siphash24(key, &[]), 0x726f_db47_dd0e_0e31);
        let fifteen: Vec<u8> = (0..15).collect();
        assert_eq!(siphash24(key, &fifteen), 0xa129_ca61_49be_45e5);
    }

    #[test]
    fn cookies_check_only_for_their_address_id_and_lifetime() {
        let jar = CookieJar::new([1, 2], Duration::from_secs(10));
        let addr: SocketAddr = "10.0.0.1:4000".parse().expect("address");
        let other: SocketAddr = "10.0.0.2:4000".parse().expect("address");
        let cookie = jar.issue(addr, 7, Duration::from_secs(5));
        assert!(jar.check(&cookie, addr, 7, Duration::from_secs(6)));
        assert!(!jar.check(&cookie, other, 7, Duration::from_secs(6)));
        assert!(!jar.check(&cookie, addr, 8, Duration::from_secs(6)));
        assert!(!jar.check(&cookie, addr, 7, Duration::from_secs(16)));
        assert!(!jar.check(&cookie[..15], addr, 7, Duration::from_secs(6)));
        let other_key = CookieJar::new([1, 3], Duration::from_secs(10));
        assert!(!other_key.check(&cookie, addr, 7, Duration::from_secs(6)));
    }
}
