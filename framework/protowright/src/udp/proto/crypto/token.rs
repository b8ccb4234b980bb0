//! Connect tokens: admission for game servers that must accept only the
//! clients a matchmaking backend sent them.
//!
//! The backend and the game servers share a [`ConnectTokenKey`]. The
//! backend issues a client a [`ConnectToken`] bound to one server address
//! and an expiry; the client presents it inside its (encrypted) first
//! handshake message; the server opens it with the shared key and admits
//! the client only if it is genuine, meant for this server and not
//! expired. A token is opaque to the client and cannot be altered or
//! moved to another server.

use std::net::SocketAddr;
use std::time::Duration;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use super::keys::KeyError;

/// Bytes of a connect token: nonce, sealed expiry and client id, tag.
pub const CONNECT_TOKEN_LEN: usize = NONCE_LEN + 16 + 16;

/// The key a matchmaking backend and its game servers share.
#[derive(Clone)]
pub struct ConnectTokenKey {
    bytes: [u8; 32],
}

impl std::fmt::Debug for ConnectTokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnectTokenKey(<hidden>)")
    }
}

/// A token a backend issued, for a client to present when it connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectToken(pub(crate) [u8; CONNECT_TOKEN_LEN]);

impl ConnectToken {
    /// The token's bytes, to send to the client.
    pub fn as_bytes(&self) -> &[u8; CONNECT_TOKEN_LEN] {
        &self.0
    }

    /// A token received from the backend.
    pub fn from_bytes(bytes: [u8; CONNECT_TOKEN_LEN]) -> Self {
        Self(bytes)
    }
}

/// Why a server did not admit a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The client presented none.
    #[error("this server admits only clients with a connect token")]
    Missing,
    /// Not issued with this server's key, altered, or for another server.
    #[error("the connect token is not valid for this server")]
    Invalid,
    /// Past its expiry.
    #[error("the connect token has expired")]
    Expired,
}

impl ConnectTokenKey {
    /// A fresh key from the operating system's secure generator.
    pub fn generate() -> Result<Self, KeyError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| KeyError::Random(std::io::Error::other(e)))?;
        Ok(Self { bytes })
    }

    /// The key from its 32 bytes (as the backend and servers store it).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self { bytes }
    }

    /// The key's 32 bytes, to store and to share between the backend and
    /// its game servers (keep them as secret as a password).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    fn key(&self) -> LessSafeKey {
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &self.bytes).expect("32-byte key"))
    }

    /// Issues a token for the server at `server` (the address clients
    /// connect to) that admits `client_id` until `expires` (time since the
    /// Unix epoch), sealed with a fresh random nonce.
    pub fn issue(
        &self,
        server: SocketAddr,
        client_id: u64,
        expires: Duration,
    ) -> Result<ConnectToken, KeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| KeyError::Random(std::io::Error::other(e)))?;
        Ok(self.issue_with_nonce(server, client_id, expires, nonce))
    }

    /// [`issue`](Self::issue) with a nonce of the caller's; a nonce must
    /// never repeat under one key.
    pub fn issue_with_nonce(
        &self,
        server: SocketAddr,
        client_id: u64,
        expires: Duration,
        nonce: [u8; NONCE_LEN],
    ) -> ConnectToken {
        let mut token = [0u8; CONNECT_TOKEN_LEN];
        token[..NONCE_LEN].copy_from_slice(&nonce);
        let (_, body) = token.split_at_mut(NONCE_LEN);
        let (plain, tag_out) = body.split_at_mut(16);
        plain[..8].copy_from_slice(&expires.as_secs().to_be_bytes());
        plain[8..].copy_from_slice(&client_id.to_be_bytes());
        let tag = self
            .key()
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&associated_data(server)[..]),
                plain,
            )
            .expect("a 16-byte message seals");
        tag_out.copy_from_slice(tag.as_ref());
        ConnectToken(token)
    }

    /// The client id a token admits at server address `server` at `now`
    /// (time since the Unix epoch).
    pub(crate) fn verify(
        &self,
        token: &[u8],
        server: SocketAddr,
        now: Duration,
    ) -> Result<u64, TokenError> {
        let mut token: [u8; CONNECT_TOKEN_LEN] = token.try_into().map_err(|_| {
            if token.is_empty() {
                TokenError::Missing
            } else {
                TokenError::Invalid
            }
        })?;
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&token[..NONCE_LEN]);
        let plain = self
            .key()
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&associated_data(server)[..]),
                &mut token[NONCE_LEN..],
            )
            .map_err(|_| TokenError::Invalid)?;
        let mut expires = [0u8; 8];
        expires.copy_from_slice(&plain[..8]);
        let mut client = [0u8; 8];
        client.copy_from_slice(&plain[8..16]);
        if now.as_secs() > u64::from_be_bytes(expires) {
            return Err(TokenError::Expired);
        }
        Ok(u64::from_be_bytes(client))
    }
}

fn associated_data(server: SocketAddr) -> Vec<u8> {
    let mut data = b"protowright v1 connect token".to_vec();
    data.extend_from_slice(server.to_string().as_bytes());
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_admits_its_client_at_its_server_until_it_expires() {
        let key = ConnectTokenKey::from_bytes([7; 32]);
        let server: SocketAddr = "203.0.113.5:4000".parse().expect("address");
        let other: SocketAddr = "203.0.113.6:4000".parse().expect("address");
        let token = key.issue_with_nonce(server, 42, Duration::from_secs(1000), [1; 12]);
        let bytes = token.as_bytes();
        assert_eq!(key.verify(bytes, server, Duration::from_secs(999)), Ok(42));
        assert_eq!(
            key.verify(bytes, server, Duration::from_secs(1001)),
            Err(TokenError::Expired)
        );
        assert_eq!(
            key.verify(bytes, other, Duration::from_secs(10)),
            Err(TokenError::Invalid)
        );
        let stranger = ConnectTokenKey::from_bytes([8; 32]);
        assert_eq!(
            stranger.verify(bytes, server, Duration::ZERO),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            key.verify(&[], server, Duration::ZERO),
            Err(TokenError::Missing)
        );
        let mut altered = *bytes;
        altered[14] ^= 1;
        assert_eq!(
            key.verify(&altered, server, Duration::ZERO),
            Err(TokenError::Invalid)
        );
        assert!(key.issue(server, 1, Duration::from_secs(5)).is_ok());
    }
}
