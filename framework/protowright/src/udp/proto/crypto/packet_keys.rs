//! Per-packet authenticated encryption: the keys of one direction, with
//! updates.
//!
//! A packet's nonce is its packet number, which a sender never reuses, and
//! the header (up to and including that number) is the associated data, so
//! neither can be altered in flight. Keys move to a new generation every
//! `update_every` packet numbers; the generation follows from the packet
//! number itself, so both sides switch without a signal, and a receiver
//! that has moved on keeps only the previous generation's key for packets
//! that were overtaken. Each generation's secret is derived one way from
//! the last, so a key taken from memory does not open older traffic.

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf;

/// Bytes of the authentication tag that ends every sealed packet.
pub const TAG_LEN: usize = 16;

/// Bytes of a session secret (one per direction, from the handshake).
pub(crate) const SECRET_LEN: usize = 32;

/// The AEAD that seals packets after the handshake. Both run on ring's
/// hardware-accelerated code; AES-256-GCM is the faster on CPUs with AES
/// instructions (every x86-64 and ARMv8 server), ChaCha20-Poly1305 on
/// those without.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cipher {
    /// AES-256 in Galois/counter mode.
    #[default]
    Aes256Gcm,
    /// ChaCha20 with the Poly1305 authenticator.
    ChaCha20Poly1305,
}

impl Cipher {
    fn algorithm(self) -> &'static aead::Algorithm {
        match self {
            Self::Aes256Gcm => &aead::AES_256_GCM,
            Self::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
        }
    }

    pub(crate) fn to_u8(self) -> u8 {
        match self {
            Self::Aes256Gcm => 1,
            Self::ChaCha20Poly1305 => 2,
        }
    }

    pub(crate) fn from_u8(value: u8) -> Option<Self> {
        match value {
            1 => Some(Self::Aes256Gcm),
            2 => Some(Self::ChaCha20Poly1305),
            _ => None,
        }
    }
}

/// How many generations ahead of its current one a receiver tries to
/// open a packet: a sender whose packets were all lost for a while may
/// have moved on by several. Trying costs a few key derivations per
/// packet that claims to be ahead, and only a packet that opens moves the
/// receiver on.
const MAX_GENERATIONS_AHEAD: u64 = 16;

/// A packet failed to authenticate: forged, corrupted, replayed under an
/// old key, or from a key generation this side cannot reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unauthentic;

/// One key generation.
struct Generation {
    number: u64,
    secret: [u8; SECRET_LEN],
    key: LessSafeKey,
}

impl Generation {
    fn first(cipher: Cipher, secret: [u8; SECRET_LEN]) -> Self {
        Self::at(cipher, 0, secret)
    }

    fn at(cipher: Cipher, number: u64, secret: [u8; SECRET_LEN]) -> Self {
        let mut key = [0u8; SECRET_LEN];
        expand(&secret, b"protowright v1 packet key", &mut key);
        let key =
            UnboundKey::new(cipher.algorithm(), &key).expect("both ciphers take 32-byte keys");
        Self {
            number,
            secret,
            key: LessSafeKey::new(key),
        }
    }

    fn next(&self, cipher: Cipher) -> Self {
        let mut secret = [0u8; SECRET_LEN];
        expand(&self.secret, b"protowright v1 key update", &mut secret);
        Self::at(cipher, self.number + 1, secret)
    }
}

/// HKDF-Expand (SHA-256) of `secret` under `label`, filling `out`.
pub(crate) fn expand(secret: &[u8], label: &[u8], out: &mut [u8]) {
    let prk = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, secret);
    let info = [label];
    prk.expand(&info, Len(out.len()))
        .and_then(|okm| okm.fill(out))
        .expect("HKDF-SHA256 gives up to 8,160 bytes; we ask for 32");
}

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn nonce(number: u64) -> Nonce {
    let mut bytes = [0u8; aead::NONCE_LEN];
    bytes[4..].copy_from_slice(&number.to_be_bytes());
    Nonce::assume_unique_for_key(bytes)
}

/// Seals the packets this side sends.
pub(crate) struct SealingKey {
    cipher: Cipher,
    update_every: u64,
    generation: Generation,
}

impl SealingKey {
    pub(crate) fn new(cipher: Cipher, secret: [u8; SECRET_LEN], update_every: u64) -> Self {
        Self {
            cipher,
            update_every: update_every.max(1),
            generation: Generation::first(cipher, secret),
        }
    }

    /// Encrypts `payload` in place for packet `number` with `header` as
    /// associated data, and returns the tag to append. Packet numbers must
    /// grow; a number in a later generation moves the key on.
    pub(crate) fn seal(&mut self, number: u64, header: &[u8], payload: &mut [u8]) -> [u8; TAG_LEN] {
        let wanted = number / self.update_every;
        while self.generation.number < wanted {
            self.generation = self.generation.next(self.cipher);
        }
        let tag = self
            .generation
            .key
            .seal_in_place_separate_tag(nonce(number), Aad::from(header), payload)
            .expect("sealing fails only past ring's 2^36-byte message bound");
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// The generation in use, for stats and tests.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.number
    }
}

/// Opens the packets the peer sends.
pub(crate) struct OpeningKey {
    cipher: Cipher,
    update_every: u64,
    current: Generation,
    previous: Option<Generation>,
    next: Option<Generation>,
}

impl OpeningKey {
    pub(crate) fn new(cipher: Cipher, secret: [u8; SECRET_LEN], update_every: u64) -> Self {
        Self {
            cipher,
            update_every: update_every.max(1),
            current: Generation::first(cipher, secret),
            previous: None,
            next: None,
        }
    }

    /// Authenticates and decrypts `sealed` (ciphertext then tag) in place
    /// for packet `number` with `header` as associated data, and returns
    /// the plaintext's length. The current generation, the one before and
    /// up to [`MAX_GENERATIONS_AHEAD`] after are tried; opening with a
    /// later one moves this side on to it.
    pub(crate) fn open(
        &mut self,
        number: u64,
        header: &[u8],
        sealed: &mut [u8],
    ) -> Result<usize, Unauthentic> {
        let generation = number / self.update_every;
        let current = self.current.number;
        if generation == current {
            return open_with(&self.current, number, header, sealed);
        }
        if generation + 1 == current {
            let previous = self.previous.as_ref().ok_or(Unauthentic)?;
            return open_with(previous, number, header, sealed);
        }
        if generation <= current || generation - current > MAX_GENERATIONS_AHEAD {
            return Err(Unauthentic);
        }
        let mut candidate = self
            .next
            .take()
            .unwrap_or_else(|| self.current.next(self.cipher));
        let mut before = None;
        while candidate.number < generation {
            let later = candidate.next(self.cipher);
            before = Some(std::mem::replace(&mut candidate, later));
        }
        match open_with(&candidate, number, header, sealed) {
            Ok(len) => {
                let old = std::mem::replace(&mut self.current, candidate);
                self.previous = Some(before.unwrap_or(old));
                Ok(len)
            }
            Err(error) => {
                // Keep the one right after the current: the common case.
                self.next = Some(match before {
                    None => candidate,
                    Some(_) => self.current.next(self.cipher),
                });
                Err(error)
            }
        }
    }

    /// The generation in use, for stats and tests.
    pub(crate) fn generation(&self) -> u64 {
        self.current.number
    }
}

fn open_with(
    generation: &Generation,
    number: u64,
    header: &[u8],
    sealed: &mut [u8],
) -> Result<usize, Unauthentic> {
    generation
        .key
        .open_in_place(nonce(number), Aad::from(header), sealed)
        .map(|plain| plain.len())
        .map_err(|_| Unauthentic)
}

/// Both directions of one connection.
pub(crate) struct PacketKeys {
    pub(crate) seal: SealingKey,
    pub(crate) open: OpeningKey,
}

impl PacketKeys {
    /// The keys from the handshake's two secrets, the first being the
    /// initiator's (the client's) sending secret.
    pub(crate) fn new(
        cipher: Cipher,
        secrets: ([u8; SECRET_LEN], [u8; SECRET_LEN]),
        initiator: bool,
        update_every: u64,
    ) -> Self {
        let (send, receive) = if initiator {
            (secrets.0, secrets.1)
        } else {
            (secrets.1, secrets.0)
        };
        Self {
            seal: SealingKey::new(cipher, send, update_every),
            open: OpeningKey::new(cipher, receive, update_every),
        }
    }
}

impl std::fmt::Debug for PacketKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketKeys")
            .field("cipher", &self.seal.cipher)
            .field("send_generation", &self.seal.generation())
            .field("receive_generation", &self.open.generation())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(cipher: Cipher, every: u64) -> (PacketKeys, PacketKeys) {
        let secrets = ([1u8; SECRET_LEN], [2u8; SECRET_LEN]);
        (
            PacketKeys::new(cipher, secrets, true, every),
            PacketKeys::new(cipher, secrets, false, every),
        )
    }

    fn sealed(keys: &mut PacketKeys, number: u64, header: &[u8], body: &[u8]) -> Vec<u8> {
        let mut buf = body.to_vec();
        let tag = keys.seal.seal(number, header, &mut buf);
        buf.extend_from_slice(&tag);
        buf
    }

    #[test]
    fn a_sealed_packet_opens_on_the_other_side_only() {
        for cipher in [Cipher::Aes256Gcm, Cipher::ChaCha20Poly1305] {
            let (mut client, mut server) = pair(cipher, 1 << 20);
            let mut packet = sealed(&mut client, 5, b"head", b"hello");
            assert_ne!(&packet[..5], b"hello");
            let mut copy = packet.clone();
            assert_eq!(server.open.open(5, b"head", &mut packet), Ok(5));
            assert_eq!(&packet[..5], b"hello");
            // The sender's own receive key is the other direction's.
            assert_eq!(client.open.open(5, b"head", &mut copy), Err(Unauthentic));
        }
    }

    #[test]
    fn a_changed_header_number_or_byte_fails() {
        let (mut client, mut server) = pair(Cipher::Aes256Gcm, 1 << 20);
        let packet = sealed(&mut client, 9, b"head", b"payload");
        assert!(server.open.open(9, b"heae", &mut packet.clone()).is_err());
        assert!(server.open.open(10, b"head", &mut packet.clone()).is_err());
        for i in 0..packet.len() {
            let mut flipped = packet.clone();
            flipped[i] ^= 1;
            assert!(
                server.open.open(9, b"head", &mut flipped).is_err(),
                "byte {i}"
            );
        }
        assert!(
            server
                .open
                .open(9, b"head", &mut packet[..3].to_vec())
                .is_err()
        );
    }

    #[test]
    fn keys_update_by_packet_number_and_the_previous_generation_still_opens() {
        let (mut client, mut server) = pair(Cipher::Aes256Gcm, 100);
        let early = sealed(&mut client, 99, b"h", b"late one");
        let later = sealed(&mut client, 150, b"h", b"next generation");
        assert_eq!(client.seal.generation(), 1);
        // Generation 0 key cannot open generation 1 packets by accident.
        assert_eq!(server.open.open(150, b"h", &mut later.clone()), Ok(15));
        assert_eq!(server.open.generation(), 1);
        assert_eq!(server.open.open(99, b"h", &mut early.clone()), Ok(8));
        // After a blackout the sender is generations ahead: still opens.
        let far = sealed(&mut client, 550, b"h", b"far");
        assert_eq!(server.open.open(550, b"h", &mut far.clone()), Ok(3));
        assert_eq!(server.open.generation(), 5);
        // Generation 0 is gone; beyond the limit is refused.
        assert_eq!(
            server.open.open(99, b"h", &mut early.clone()),
            Err(Unauthentic)
        );
        let beyond = 100 * (5 + MAX_GENERATIONS_AHEAD + 1);
        let too_far = sealed(&mut client, beyond, b"h", b"x");
        assert_eq!(
            server.open.open(beyond, b"h", &mut too_far.clone()),
            Err(Unauthentic)
        );
    }

    #[test]
    fn a_forged_packet_for_the_next_generation_does_not_move_the_key() {
        let (mut client, mut server) = pair(Cipher::ChaCha20Poly1305, 100);
        let mut forged = vec![0u8; 40];
        assert!(server.open.open(120, b"h", &mut forged).is_err());
        assert_eq!(server.open.generation(), 0);
        let genuine = sealed(&mut client, 20, b"h", b"still here");
        assert_eq!(server.open.open(20, b"h", &mut genuine.clone()), Ok(10));
    }
}
