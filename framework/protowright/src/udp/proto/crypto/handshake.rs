//! The Noise handshake that gives a connection its keys.
//!
//! Two messages, which ride the existing connection set-up: the client's
//! first message travels in its `Initial` (sent again, unchanged, with the
//! server's cookie), the server's answer at the front of its first data
//! packets. Which pattern runs depends on what the client knows:
//!
//! - `IK` when the client pins the server's public key: the server is
//!   authenticated by its first answer and learns the client's static key.
//! - `NX` when it does not: the server sends its static key inside the
//!   encrypted answer and the client reports it, so an application can
//!   pin it from then on (trust on first use).
//!
//! With a pre-shared key (`IKpsk1`, `NXpsk0`) a server refuses at the first
//! message anyone who does not hold it. The handshake's own primitives are
//! X25519, ChaCha20-Poly1305 and SHA-256 (ring's); packets afterwards use
//! the [`Cipher`](super::Cipher) the configuration names, keyed from the
//! handshake's split.
//!
//! Ephemeral keys come from a seed the endpoint draws from its secure
//! generator, so a simulation replays the same handshake bytes.

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use snow::params::{CipherChoice, DHChoice, HashChoice, NoiseParams};
use snow::resolvers::{CryptoResolver, DefaultResolver, RingResolver};
use snow::types::{Dh, Hash, Random};
use snow::{Builder, HandshakeState};

use super::keys::{KEY_LEN, PublicKey, StaticKey};
use super::packet_keys::SECRET_LEN;

/// The longest handshake message either side writes or reads.
pub(crate) const MAX_MESSAGE: usize = 512;

/// Which Noise pattern a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pattern {
    /// The client knows the server's key.
    Ik,
    /// The client learns the server's key.
    Nx,
}

impl Pattern {
    pub(crate) fn to_u8(self) -> u8 {
        match self {
            Self::Ik => 1,
            Self::Nx => 2,
        }
    }

    pub(crate) fn from_u8(value: u8) -> Option<Self> {
        match value {
            1 => Some(Self::Ik),
            2 => Some(Self::Nx),
            _ => None,
        }
    }

    fn params(self, psk: bool) -> NoiseParams {
        let name = match (self, psk) {
            (Self::Ik, false) => "Noise_IK_25519_ChaChaPoly_SHA256",
            (Self::Ik, true) => "Noise_IKpsk1_25519_ChaChaPoly_SHA256",
            (Self::Nx, false) => "Noise_NX_25519_ChaChaPoly_SHA256",
            (Self::Nx, true) => "Noise_NXpsk0_25519_ChaChaPoly_SHA256",
        };
        name.parse().expect("the four pattern names are valid")
    }

    fn psk_position(self) -> u8 {
        match self {
            Self::Ik => 1,
            Self::Nx => 0,
        }
    }
}

/// The handshake failed: a message did not authenticate (a wrong or
/// missing pre-shared key, a client pinning another server's key, a
/// forgery) or was malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the handshake failed: {0}")]
pub(crate) struct HandshakeFailed(String);

impl From<snow::Error> for HandshakeFailed {
    fn from(error: snow::Error) -> Self {
        Self(error.to_string())
    }
}

/// What a finished handshake yields.
pub(crate) struct Handshaken {
    /// The two session secrets: the client's sending one first.
    pub(crate) secrets: ([u8; SECRET_LEN], [u8; SECRET_LEN]),
    /// The peer's static key, when the pattern reveals it.
    pub(crate) peer_key: Option<PublicKey>,
}

/// A client's half of a handshake in progress.
pub(crate) struct ClientHandshake {
    state: HandshakeState,
    pattern: Pattern,
    first_message: Vec<u8>,
}

impl std::fmt::Debug for ClientHandshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientHandshake")
            .field("pattern", &self.pattern)
            .finish_non_exhaustive()
    }
}

impl ClientHandshake {
    /// Starts a handshake and writes the first message, carrying
    /// `payload` (encrypted in `IK` or with a pre-shared key).
    pub(crate) fn start(
        local: &StaticKey,
        server: Option<PublicKey>,
        psk: Option<&[u8; KEY_LEN]>,
        prologue: &[u8],
        payload: &[u8],
        seed: [u8; 32],
    ) -> Result<Self, HandshakeFailed> {
        let pattern = if server.is_some() {
            Pattern::Ik
        } else {
            Pattern::Nx
        };
        let mut builder = Builder::with_resolver(pattern.params(psk.is_some()), resolver(seed))
            .prologue(prologue)?;
        if let Some(server) = &server {
            builder = builder
                .local_private_key(local.secret())?
                .remote_public_key(server.as_bytes())?;
        }
        if let Some(psk) = psk {
            builder = builder.psk(pattern.psk_position(), psk)?;
        }
        let mut state = builder.build_initiator()?;
        let mut message = vec![0u8; MAX_MESSAGE];
        let len = state.write_message(payload, &mut message)?;
        message.truncate(len);
        Ok(Self {
            state,
            pattern,
            first_message: message,
        })
    }

    /// The pattern in use.
    #[cfg(test)]
    pub(crate) fn pattern(&self) -> Pattern {
        self.pattern
    }

    /// The first message, sent in every `Initial` of this attempt.
    pub(crate) fn first_message(&self) -> &[u8] {
        &self.first_message
    }

    /// Reads the server's answer. A forged answer fails and leaves the
    /// handshake as it was, so the genuine one still completes it.
    pub(crate) fn finish(&mut self, answer: &[u8]) -> Result<Handshaken, HandshakeFailed> {
        let mut payload = vec![0u8; answer.len()];
        self.state.read_message(answer, &mut payload)?;
        if !self.state.is_handshake_finished() {
            return Err(HandshakeFailed(
                "the answer did not finish the handshake".into(),
            ));
        }
        Ok(Handshaken {
            secrets: self.state.dangerously_get_raw_split(),
            peer_key: remote_key(&self.state),
        })
    }
}

/// A server's half: it reads the client's first message and answers it.
pub(crate) struct ServerHandshake {
    state: HandshakeState,
    payload: Vec<u8>,
}

impl ServerHandshake {
    /// Reads a client's first message written for `pattern`.
    pub(crate) fn read(
        local: &StaticKey,
        pattern: Pattern,
        psk: Option<&[u8; KEY_LEN]>,
        prologue: &[u8],
        message: &[u8],
        seed: [u8; 32],
    ) -> Result<Self, HandshakeFailed> {
        let mut builder = Builder::with_resolver(pattern.params(psk.is_some()), resolver(seed))
            .prologue(prologue)?
            .local_private_key(local.secret())?;
        if let Some(psk) = psk {
            builder = builder.psk(pattern.psk_position(), psk)?;
        }
        let mut state = builder.build_responder()?;
        let mut payload = vec![0u8; message.len()];
        let len = state.read_message(message, &mut payload)?;
        payload.truncate(len);
        Ok(Self { state, payload })
    }

    /// The payload of the client's first message.
    pub(crate) fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The client's static key, when the pattern carries one (`IK`).
    pub(crate) fn client_key(&self) -> Option<PublicKey> {
        remote_key(&self.state)
    }

    /// Writes the answer and finishes the handshake.
    pub(crate) fn answer(mut self) -> Result<(Vec<u8>, Handshaken), HandshakeFailed> {
        let mut message = vec![0u8; MAX_MESSAGE];
        let len = self.state.write_message(&[], &mut message)?;
        message.truncate(len);
        let peer_key = remote_key(&self.state);
        Ok((
            message,
            Handshaken {
                secrets: self.state.dangerously_get_raw_split(),
                peer_key,
            },
        ))
    }
}

fn remote_key(state: &HandshakeState) -> Option<PublicKey> {
    let bytes: [u8; KEY_LEN] = state.get_remote_static()?.try_into().ok()?;
    Some(PublicKey::from_bytes(bytes))
}

fn resolver(seed: [u8; 32]) -> Box<dyn CryptoResolver + Send> {
    Box::new(Resolver { seed })
}

/// ring for the cipher and hash, snow's own X25519, and our seeded
/// generator for ephemeral keys.
struct Resolver {
    seed: [u8; 32],
}

impl CryptoResolver for Resolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(Box::new(SeededRandom(StdRng::from_seed(self.seed))))
    }

    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        DefaultResolver.resolve_dh(choice)
    }

    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        RingResolver.resolve_hash(choice)
    }

    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn snow::types::Cipher>> {
        RingResolver.resolve_cipher(choice)
    }
}

/// A ChaCha-based generator seeded from the endpoint's secure one.
struct SeededRandom(StdRng);

impl Random for SeededRandom {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        self.0.fill_bytes(dest);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_key() -> StaticKey {
        StaticKey::from_secret([9; KEY_LEN])
    }

    fn run(
        pinned: Option<PublicKey>,
        client_psk: Option<&[u8; 32]>,
        server_psk: Option<&[u8; 32]>,
    ) -> Result<(Handshaken, Handshaken, Vec<u8>), HandshakeFailed> {
        let client_key = StaticKey::from_secret([3; KEY_LEN]);
        let mut client =
            ClientHandshake::start(&client_key, pinned, client_psk, b"pro", b"token", [1; 32])?;
        let server = ServerHandshake::read(
            &server_key(),
            client.pattern(),
            server_psk,
            b"pro",
            client.first_message(),
            [2; 32],
        )?;
        let payload = server.payload().to_vec();
        let (answer, server_side) = server.answer()?;
        let client_side = client.finish(&answer)?;
        Ok((client_side, server_side, payload))
    }

    #[test]
    fn ik_and_nx_agree_on_secrets_and_reveal_the_right_keys() {
        let (client, server, payload) =
            run(Some(server_key().public_key()), None, None).expect("ik");
        assert_eq!(client.secrets, server.secrets);
        assert_eq!(payload, b"token");
        assert_eq!(client.peer_key, Some(server_key().public_key()));
        assert_eq!(
            server.peer_key,
            Some(StaticKey::from_secret([3; KEY_LEN]).public_key())
        );
        let (client, server, _) = run(None, None, None).expect("nx");
        assert_eq!(client.secrets, server.secrets);
        assert_eq!(client.peer_key, Some(server_key().public_key()));
        assert_eq!(server.peer_key, None);
    }

    #[test]
    fn a_client_pinning_another_key_fails_at_the_server() {
        let other = StaticKey::from_secret([4; KEY_LEN]).public_key();
        assert!(run(Some(other), None, None).is_err());
    }

    #[test]
    fn a_pre_shared_key_must_match_on_both_sides() {
        let psk = [5u8; 32];
        let wrong = [6u8; 32];
        for pinned in [Some(server_key().public_key()), None] {
            assert!(run(pinned, Some(&psk), Some(&psk)).is_ok());
            assert!(run(pinned, Some(&wrong), Some(&psk)).is_err());
            assert!(run(pinned, None, Some(&psk)).is_err());
        }
    }

    #[test]
    fn a_forged_answer_fails_and_the_genuine_one_still_finishes() {
        let client_key = StaticKey::from_secret([3; KEY_LEN]);
        let pinned = Some(server_key().public_key());
        let mut client =
            ClientHandshake::start(&client_key, pinned, None, b"p", b"", [1; 32]).expect("start");
        let server = ServerHandshake::read(
            &server_key(),
            Pattern::Ik,
            None,
            b"p",
            client.first_message(),
            [2; 32],
        )
        .expect("read");
        let (answer, server_side) = server.answer().expect("answer");
        let mut forged = answer.clone();
        forged[40] ^= 1;
        assert!(client.finish(&forged).is_err());
        assert!(client.finish(&[0; 10]).is_err());
        let finished = client.finish(&answer).expect("genuine answer");
        assert_eq!(finished.secrets, server_side.secrets);
    }

    #[test]
    fn a_changed_prologue_fails() {
        let client_key = StaticKey::from_secret([3; KEY_LEN]);
        let client = ClientHandshake::start(
            &client_key,
            Some(server_key().public_key()),
            None,
            b"schema 1",
            b"",
            [1; 32],
        )
        .expect("start");
        let read = ServerHandshake::read(
            &server_key(),
            Pattern::Ik,
            None,
            b"schema 2",
            client.first_message(),
            [2; 32],
        );
        assert!(read.is_err());
    }
}
