//! A client and a server in the middle of their handshake, with the
//! fuzzer on the path: it drops and alters the genuine packets and forges
//! `Initial`s (with cookies the server really issued, so the fuzzer's
//! handshake bytes reach the Noise reader), server `Handshake` answers,
//! `Retry`s, `Refuse`s and `Reset`s.

use std::net::SocketAddr;
use std::time::Duration;

use super::input::Input;
use super::pair::{Pair, client_addr, server_addr};
use crate::udp::proto::coding::Put;
use crate::udp::proto::packet::{self, Hello, Packet, PacketType};
use crate::udp::proto::{Config, VERSION};

/// Rounds at the end, long enough for the handshake to finish or give up.
const SETTLE_ROUNDS: usize = 32;
/// How far time may move in one of those.
const SETTLE_ROUND: Duration = Duration::from_millis(100);

/// One step of the script: the low four bits of its first byte (0 and
/// the unused values let time pass).
const DROP: u8 = 1;
const ALTER: u8 = 2;
const INITIAL: u8 = 3;
const ANSWER: u8 = 4;
const RETRY: u8 = 5;
const REFUSE: u8 = 6;
const RESET: u8 = 7;
const RAW: u8 = 8;
const REPEAT: u8 = 9;

/// Flags in the high bits of that byte, read by each step as it needs.
const FLAG_A: u8 = 0x10;
const FLAG_B: u8 = 0x20;
const FLAG_C: u8 = 0x40;
const FLAG_D: u8 = 0x80;

/// Drives a handshake between a client and a listening server (default
/// configuration, fixed seeds) with the fuzzer on the path.
///
/// `data` is a script of steps, each a byte whose low four bits pick it
/// (and whose high bits are its flags) followed by its operands:
/// let time pass (`0`); drop (`1`), alter one byte of (`2`) or repeat
/// (`9`) the next queued datagram; deliver to the server an `Initial`
/// whose fields and handshake bytes come from the input, with no cookie,
/// the input's or one the server issued for it (`3`); deliver to the
/// client a `Handshake` answer (`4`), a `Retry` (`5`), a `Refuse` (`6`);
/// deliver a `Reset` (`7`) or raw bytes (`8`) to either side. Unknown
/// steps let time pass. Once the script ends both sides run on until the
/// handshake finished or gave up. Never panics, whatever `data` holds.
#[doc(hidden)]
pub fn fuzz_handshake(data: &[u8]) {
    run(data);
}

/// [`fuzz_handshake`], handing back the pair at the end (`None` only if
/// the default configuration is refused).
pub(super) fn run(data: &[u8]) -> Option<Pair> {
    let mut pair = Pair::new()?;
    let mut input = Input::new(data);
    while !input.is_empty() {
        let op = input.byte();
        match op & 0x0f {
            DROP => {
                if op & FLAG_A != 0 {
                    pair.from_server.pop_front();
                } else {
                    pair.to_server.pop_front();
                }
            }
            ALTER => alter(&mut pair, op, &mut input),
            REPEAT => {
                if op & FLAG_A != 0 {
                    if let Some(front) = pair.from_server.front().cloned() {
                        pair.from_server.push_front(front);
                    }
                } else if let Some(front) = pair.to_server.front().cloned() {
                    pair.to_server.push_front(front);
                }
            }
            INITIAL => forge_initial(&mut pair, op, &mut input),
            ANSWER => forge_answer(&mut pair, op, &mut input),
            RETRY => {
                let cid = pair.client_cid().unwrap_or_default();
                let cookie = input.chunk();
                let echo = if op & FLAG_A != 0 {
                    pair.client_attempt.clone()
                } else {
                    input.chunk().to_vec()
                };
                let mut datagram = Vec::new();
                packet::put_header(&mut datagram, PacketType::Retry, cid);
                datagram.put_blob(cookie);
                datagram.put_blob(&echo);
                packet::seal(&mut datagram, 0);
                to_client(&mut pair, op, &datagram);
            }
            REFUSE => {
                let cid = pair.client_cid().unwrap_or_default();
                let mut datagram = Vec::new();
                packet::put_header(&mut datagram, PacketType::Refuse, cid);
                datagram.push(input.byte());
                datagram.push(if op & FLAG_A != 0 {
                    input.byte()
                } else {
                    VERSION
                });
                datagram.put_blob(input.chunk());
                packet::seal(&mut datagram, 0);
                to_client(&mut pair, op, &datagram);
            }
            RESET => forge_reset(&mut pair, op, &mut input),
            RAW => {
                let mut datagram = input.chunk().to_vec();
                if op & FLAG_B != 0 {
                    packet::seal(&mut datagram, 0);
                }
                if op & FLAG_A != 0 {
                    to_client(&mut pair, op, &datagram);
                } else {
                    pair.server
                        .handle_datagram(pair.now, client_addr(), &datagram);
                }
            }
            _ => pair.step(Duration::from_millis(u64::from(input.byte()) * 4)),
        }
    }
    for _ in 0..SETTLE_ROUNDS {
        pair.step(SETTLE_ROUND);
    }
    Some(pair)
}

/// Delivers a forged datagram to the client, from the server's address or
/// (flag C) another.
fn to_client(pair: &mut Pair, op: u8, datagram: &[u8]) {
    let from = if op & FLAG_C != 0 {
        spoofed()
    } else {
        server_addr()
    };
    pair.client.handle_datagram(pair.now, from, datagram);
}

/// An address neither endpoint uses.
fn spoofed() -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 9], 7000))
}

/// Flips bits of one byte of the next datagram to the server (or, flag A,
/// from it); flag B fixes its checksum up afterwards, so the change gets
/// past the checksum of the unprotected packet types.
fn alter(pair: &mut Pair, op: u8, input: &mut Input<'_>) {
    let at = usize::from(input.u16());
    let mask = input.byte();
    let datagram = if op & FLAG_A != 0 {
        pair.from_server.front_mut().map(|(_, datagram)| datagram)
    } else {
        pair.to_server.front_mut()
    };
    let Some(datagram) = datagram else {
        return;
    };
    if datagram.is_empty() {
        return;
    }
    let at = at % datagram.len();
    datagram[at] ^= mask;
    if op & FLAG_B != 0 && datagram.len() >= packet::CHECKSUM_LEN {
        datagram.truncate(datagram.len() - packet::CHECKSUM_LEN);
        packet::seal(datagram, 0);
    }
}

/// An `Initial` to the server from the client's address (flag A) or
/// another, for the client's connection id (flag B) or the input's, with
/// the input's schema hash (flag C) or the right one, and a cookie the
/// server issued for exactly this hello (flag D) or the input's.
fn forge_initial(pair: &mut Pair, op: u8, input: &mut Input<'_>) {
    let from = if op & FLAG_A != 0 {
        client_addr()
    } else {
        spoofed()
    };
    let cid = match pair.client_cid() {
        Some(cid) if op & FLAG_B != 0 => cid,
        _ => input.u64(),
    };
    let schema_hash = if op & FLAG_C != 0 {
        input.u64()
    } else {
        Config::default().schema_hash
    };
    let max_data = input.u64();
    let max_message = input.u64();
    let security = input.byte();
    let cipher = input.byte();
    let key_update = input.u64();
    let handshake = input.chunk();
    let mut hello = Hello {
        schema_hash,
        max_data,
        max_message,
        cookie: &[],
        security,
        cipher,
        key_update,
        handshake,
    };
    let issued;
    if op & FLAG_D != 0 {
        let mut first = Vec::new();
        packet::encode_initial(&mut first, cid, &hello);
        packet::seal(&mut first, 0);
        pair.server.handle_datagram(pair.now, from, &first);
        issued = pair
            .take_answer(from, PacketType::Retry, cid)
            .and_then(
                |retry| match packet::unseal(&retry).and_then(Packet::decode) {
                    Ok(Packet::Retry { cookie, .. }) => Some(cookie.to_vec()),
                    _ => None,
                },
            )
            .unwrap_or_default();
        hello.cookie = &issued;
    } else {
        hello.cookie = input.chunk();
    }
    let mut datagram = Vec::new();
    packet::encode_initial(&mut datagram, cid, &hello);
    packet::seal(&mut datagram, 0);
    pair.server.handle_datagram(pair.now, from, &datagram);
}

/// A server `Handshake` packet to the client's connection id (or, flag A,
/// the input's): the input's answer blob, packet number and ciphertext.
fn forge_answer(pair: &mut Pair, op: u8, input: &mut Input<'_>) {
    let cid = match pair.client_cid() {
        Some(cid) if op & FLAG_A == 0 => cid,
        _ => input.u64(),
    };
    let answer = input.chunk();
    let number = input.u64();
    let mut datagram = Vec::new();
    packet::encode_protected_header(&mut datagram, cid, Some(answer), number);
    datagram.extend_from_slice(input.chunk());
    to_client(pair, op, &datagram);
}

/// A `Reset` with the input's token: to the client for the server's
/// connection id, or (flag A) to the server for the client's; flag B takes
/// the connection id from the input instead.
fn forge_reset(pair: &mut Pair, op: u8, input: &mut Input<'_>) {
    let server_cid = pair
        .server_conn
        .and_then(|handle| pair.server.connection(handle))
        .map(|connection| connection.local_cid());
    let known = if op & FLAG_A != 0 {
        pair.client_cid()
    } else {
        server_cid
    };
    let cid = match known {
        Some(cid) if op & FLAG_B == 0 => cid,
        _ => input.u64(),
    };
    let mut datagram = Vec::new();
    packet::encode_reset(&mut datagram, cid, input.chunk());
    packet::seal(&mut datagram, 0);
    if op & FLAG_A != 0 {
        pair.server
            .handle_datagram(pair.now, client_addr(), &datagram);
    } else {
        to_client(pair, op, &datagram);
    }
}
