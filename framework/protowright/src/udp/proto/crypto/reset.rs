//! Reset tokens: proof that a `Reset` ("I hold no such connection") comes
//! from the endpoint that held it.
//!
//! A server derives each connection's token from a secret of its own and
//! the connection id, and hands it to the client inside the encrypted
//! handshake; after a restart the server derives the same token again
//! without having stored anything (its reset secret follows from its static
//! key), so only it can end the client's connection at once. Anyone else's
//! `Reset` is dropped and counted.

use ring::hmac;

use super::packet_keys::expand;

/// Bytes of a reset token.
pub const RESET_TOKEN_LEN: usize = 16;

/// Derives reset tokens.
pub(crate) struct ResetSecret {
    key: hmac::Key,
}

impl std::fmt::Debug for ResetSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResetSecret(<hidden>)")
    }
}

impl ResetSecret {
    /// The secret that follows from `root` (a static key's secret half).
    pub(crate) fn derive(root: &[u8; 32]) -> Self {
        let mut secret = [0u8; 32];
        expand(root, b"protowright v1 reset secret", &mut secret);
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
        }
    }

    /// The token of connection `cid`.
    pub(crate) fn token(&self, cid: u64) -> [u8; RESET_TOKEN_LEN] {
        let tag = hmac::sign(&self.key, &cid.to_be_bytes());
        let mut token = [0u8; RESET_TOKEN_LEN];
        token.copy_from_slice(&tag.as_ref()[..RESET_TOKEN_LEN]);
        token
    }
}

/// Compares two tokens in constant time.
pub(crate) fn tokens_match(a: &[u8], b: &[u8; RESET_TOKEN_LEN]) -> bool {
    a.len() == RESET_TOKEN_LEN && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_follow_from_the_secret_and_the_id() {
        let a = ResetSecret::derive(&[1; 32]);
        let again = ResetSecret::derive(&[1; 32]);
        let other = ResetSecret::derive(&[2; 32]);
        assert_eq!(a.token(7), again.token(7), "stable across restarts");
        assert_ne!(a.token(7), a.token(8));
        assert_ne!(a.token(7), other.token(7));
        assert!(tokens_match(&a.token(7), &again.token(7)));
        assert!(!tokens_match(&a.token(7)[..15], &a.token(7)));
        assert!(!tokens_match(&a.token(8), &a.token(7)));
    }
}
