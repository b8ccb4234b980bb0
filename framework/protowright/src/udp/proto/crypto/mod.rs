//! Packet protection for reliable UDP: who may connect, and keys that make
//! every packet after the handshake confidential and authentic.
//!
//! - `keys`: static key pairs (a server's identity) and the public keys
//!   clients pin.
//! - `handshake`: the two-message Noise handshake (`IK` or `NX`) folded
//!   into the stateless cookie exchange.
//! - `packet_keys`: the per-direction AEAD with the packet number as nonce,
//!   the header as associated data and key updates.
//! - `protection`: a connection's protection state, the one place a data
//!   packet is sealed and opened.
//! - `replay`: the window that drops replayed packets.
//! - `reset`: tokens that authenticate a `Reset`.
//! - `token`: connect tokens a matchmaking backend issues.
//!
//! What each piece defends against is in the project's `SECURITY.md`.

mod handshake;
mod keys;
mod packet_keys;
mod protection;
mod replay;
mod reset;
mod token;

use std::net::SocketAddr;

pub(crate) use handshake::{ClientHandshake, Pattern, ServerHandshake};
pub use keys::{KEY_LEN, KeyError, PublicKey, StaticKey};
pub(crate) use packet_keys::PacketKeys;
pub use packet_keys::{Cipher, TAG_LEN};
pub(crate) use protection::{OpenError, Protection};
pub(crate) use replay::ReplayWindow;
pub use reset::RESET_TOKEN_LEN;
pub(crate) use reset::{ResetSecret, tokens_match};
pub use token::{CONNECT_TOKEN_LEN, ConnectToken, ConnectTokenKey, TokenError};

/// How an endpoint protects its connections. The default encrypts every
/// connection; a server should set [`static_key`](Self::static_key) from a
/// saved file ([`StaticKey::load_or_generate`]) and its clients
/// [`server_key`](Self::server_key) to that key's public half.
#[derive(Debug, Clone)]
pub struct Security {
    /// This endpoint's static key: a server's identity, which clients pin.
    /// Default none: the endpoint makes a fresh one when it starts, which
    /// is fine for a client but means a server's clients cannot pin it
    /// across restarts and its resets are not recognised after one.
    pub static_key: Option<StaticKey>,
    /// For a client: the server's public key. With it the client refuses
    /// any other server (Noise `IK`); without it the client accepts the
    /// key the server proves it holds and reports it in its stats, for the
    /// application to pin next time (Noise `NX`). Default none.
    pub server_key: Option<PublicKey>,
    /// A key both sides hold, for closed deployments: without it a client
    /// cannot even begin a handshake. Default none.
    pub pre_shared_key: Option<[u8; KEY_LEN]>,
    /// For a server: admit only clients with a connect token issued under
    /// this policy's key for its address. Default none.
    pub connect_tokens: Option<TokenPolicy>,
    /// For a client: the connect token to present. Default none.
    pub connect_token: Option<ConnectToken>,
    /// For a client: the AEAD that seals the connection's packets, which
    /// the server adopts (both are strong; the handshake covers the
    /// choice). A server's own setting is not consulted. Default
    /// AES-256-GCM.
    pub cipher: Cipher,
    /// Packet numbers between key updates. Default 2^22 (about 4 million
    /// packets), inside AES-GCM's limits; from 1,024 to 2^23. A client
    /// offers its value in the handshake (covered by it) and both sides use
    /// it; a server refuses one outside the range.
    pub key_update_packets: u64,
    /// **Debugging only: sends and accepts packets in plaintext**, readable
    /// and forgeable by anyone on the path. A client with this flag
    /// connects without encryption; a server with it also admits such
    /// clients. Never set it on anything reachable from the internet.
    pub insecure_plaintext_for_debugging: bool,
}

impl Default for Security {
    fn default() -> Self {
        Self {
            static_key: None,
            server_key: None,
            pre_shared_key: None,
            connect_tokens: None,
            connect_token: None,
            cipher: Cipher::default(),
            key_update_packets: 1 << 22,
            insecure_plaintext_for_debugging: false,
        }
    }
}

/// A server's rule for connect tokens.
#[derive(Debug, Clone)]
pub struct TokenPolicy {
    /// The key shared with the backend that issues tokens.
    pub key: ConnectTokenKey,
    /// This server's address as the backend names it in tokens (the
    /// address clients connect to, which may differ from the bound one
    /// behind a NAT).
    pub server_address: SocketAddr,
}

/// What a new connection starts with for its protection, prepared by the
/// endpoint (which holds the keys and the secure generator).
#[derive(Debug)]
pub(crate) struct SecurityStart {
    pub(crate) protection: Protection,
    /// The token this side's `Reset`s for the connection carry; a server
    /// sends it to the client in its welcome.
    pub(crate) local_reset_token: [u8; RESET_TOKEN_LEN],
    /// The peer's token, when the handshake carried it (a server learns
    /// the client's from its first message).
    pub(crate) peer_reset_token: Option<[u8; RESET_TOKEN_LEN]>,
    /// The peer's static key, when known.
    pub(crate) peer_key: Option<PublicKey>,
    /// The client id a connect token admitted.
    pub(crate) client_id: Option<u64>,
    /// A client's `security` and `cipher` bytes and handshake field for its
    /// `Initial`s.
    pub(crate) hello_security: u8,
    pub(crate) hello_cipher: u8,
    pub(crate) hello_key_update: u64,
    pub(crate) hello_handshake: Vec<u8>,
    /// Seeds the connection's random packet-number skips.
    pub(crate) skip_seed: u64,
}

/// The smallest key update interval a configuration may set.
pub(crate) const MIN_KEY_UPDATE_PACKETS: u64 = 1024;

/// The largest: RFC 9001's confidentiality limit for AES-GCM.
pub(crate) const MAX_KEY_UPDATE_PACKETS: u64 = 1 << 23;
