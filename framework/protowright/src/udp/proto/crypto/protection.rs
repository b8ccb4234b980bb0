//! A connection's packet protection as it moves through the handshake:
//! where a packet's clear header ends, how it is sealed, and how a
//! received one is opened (or refused) before any frame in it is read.

use super::handshake::ClientHandshake;
use super::keys::PublicKey;
use super::packet_keys::{Cipher, PacketKeys, TAG_LEN};
use super::replay::{Rejected, ReplayWindow};
use crate::udp::proto::coding::varint_len;
use crate::udp::proto::packet::{self, CHECKSUM_LEN, Packet};

/// A connection's protection state.
pub(crate) enum Protection {
    /// The debugging flag: packets end in a CRC-32 and nothing is secret.
    Plaintext,
    /// A client waiting for the server's handshake answer; it can neither
    /// send nor open data packets yet.
    Client {
        handshake: Box<ClientHandshake>,
        cipher: Cipher,
        update_every: u64,
    },
    /// Keys in place. A server sends its handshake answer in front of every
    /// packet until the client shows it has keys too.
    Keys {
        keys: Box<PacketKeys>,
        answer: Option<Vec<u8>>,
        replay: ReplayWindow,
    },
}

/// What opening a packet learned besides its frames: the server's key,
/// when the packet finished a client's handshake (kept even if the rest
/// of that packet then fails to open, since the handshake itself proved
/// the key).
pub(crate) type Learned = Option<PublicKey>;

impl std::fmt::Debug for Protection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Plaintext => f.write_str("Plaintext"),
            Self::Client { .. } => f.write_str("Client(handshaking)"),
            Self::Keys { keys, answer, .. } => f
                .debug_struct("Keys")
                .field("keys", keys)
                .field("answer_pending", &answer.is_some())
                .finish(),
        }
    }
}

/// Why a received packet was not opened. Every case is dropped and
/// counted; none is acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// Not a packet (bad header, bad checksum in plaintext).
    Malformed,
    /// Failed authentication: forged, corrupted or for other keys.
    Unauthentic,
    /// A packet number the replay window refuses.
    Replayed(Rejected),
}

/// An opened packet.
#[derive(Debug)]
pub(crate) struct Opened<'a> {
    pub(crate) number: u64,
    pub(crate) frames: &'a [u8],
}

impl Protection {
    /// The key generations in use (sending, receiving), once keys exist.
    #[cfg(test)]
    pub(crate) fn generations(&self) -> Option<(u64, u64)> {
        match self {
            Self::Keys { keys, .. } => Some((keys.seal.generation(), keys.open.generation())),
            _ => None,
        }
    }

    /// Whether packets are encrypted (or will be, once the handshake ends).
    pub(crate) fn is_encrypted(&self) -> bool {
        !matches!(self, Self::Plaintext)
    }

    /// Bytes a data packet carries besides its frames, at most: the clear
    /// header with a packet number of `number` and the trailer.
    pub(crate) fn overhead(&self, number: u64) -> usize {
        let header = packet::HEADER_LEN + varint_len(number);
        match self {
            Self::Plaintext => header + CHECKSUM_LEN,
            Self::Client { .. } => header + TAG_LEN,
            Self::Keys { answer, .. } => {
                let answer = answer
                    .as_ref()
                    .map_or(0, |a| varint_len(a.len() as u64) + a.len());
                header + answer + TAG_LEN
            }
        }
    }

    /// Writes the clear header of data packet `number` to `cid` and
    /// returns where it ends.
    pub(crate) fn start_packet(&self, buf: &mut Vec<u8>, cid: u64, number: u64) -> usize {
        let answer = match self {
            Self::Keys { answer, .. } => answer.as_deref(),
            _ => None,
        };
        if self.is_encrypted() {
            packet::encode_protected_header(buf, cid, answer, number);
        } else {
            packet::encode_data_header(buf, cid, number);
        }
        buf.len()
    }

    /// Seals the packet begun at `start` with its header ending at
    /// `header_end`: the one point where every data packet is protected.
    pub(crate) fn finish_packet(
        &mut self,
        buf: &mut Vec<u8>,
        start: usize,
        header_end: usize,
        number: u64,
    ) {
        match self {
            Self::Keys { keys, .. } => {
                let (header, payload) = buf[start..].split_at_mut(header_end - start);
                let tag = keys.seal.seal(number, header, payload);
                buf.extend_from_slice(&tag);
            }
            Self::Plaintext | Self::Client { .. } => packet::seal(buf, start),
        }
    }

    /// Opens a received data packet, decrypting into `scratch` when
    /// encrypted. Nothing in a packet that fails here may be acted on.
    pub(crate) fn open<'a>(
        &mut self,
        datagram: &'a [u8],
        scratch: &'a mut Vec<u8>,
        learned: &mut Learned,
    ) -> Result<Opened<'a>, OpenError> {
        if let Self::Plaintext = self {
            let packet = packet::unseal(datagram)
                .and_then(Packet::decode)
                .map_err(|_| OpenError::Malformed)?;
            return match packet {
                Packet::Data { number, frames, .. } => Ok(Opened { number, frames }),
                _ => Err(OpenError::Malformed),
            };
        }
        let header = packet::decode_protected(datagram).map_err(|_| OpenError::Malformed)?;
        if let Self::Client {
            handshake,
            cipher,
            update_every,
        } = self
        {
            let answer = header.answer.ok_or(OpenError::Unauthentic)?;
            let finished = handshake
                .finish(answer)
                .map_err(|_| OpenError::Unauthentic)?;
            *learned = finished.peer_key;
            *self = Self::Keys {
                keys: Box::new(PacketKeys::new(
                    *cipher,
                    finished.secrets,
                    true,
                    *update_every,
                )),
                answer: None,
                replay: ReplayWindow::default(),
            };
        }
        let Self::Keys {
            keys,
            answer,
            replay,
        } = self
        else {
            return Err(OpenError::Unauthentic);
        };
        replay.check(header.number).map_err(OpenError::Replayed)?;
        scratch.clear();
        scratch.extend_from_slice(&datagram[header.len..]);
        let len = keys
            .open
            .open(header.number, &datagram[..header.len], scratch)
            .map_err(|_| OpenError::Unauthentic)?;
        replay.accept(header.number);
        // Anything the client sealed shows it has the keys: the answer
        // need not travel any more.
        *answer = None;
        Ok(Opened {
            number: header.number,
            frames: &scratch[..len],
        })
    }
}
