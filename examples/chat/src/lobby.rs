//! The server's state: who holds which nickname, who is in which room, each
//! room's recent lines, and each member's outbox.
//!
//! Every operation is a plain method that runs to completion under the
//! server's one lock and never waits: it checks the request, changes the
//! state, and fans the resulting event out into the members' outboxes
//! (which never wait either; see `outbox`). Calls and disconnects arrive
//! here from `server`; nothing here touches a socket.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use protowright::rpc::{Code, Status};

use crate::names::{check_line, check_nick, check_room};
use crate::outbox::{Outbox, QueueStats};
use crate::pb;

/// The server's bounds. Defaults: 256 events queued per member, 50 lines
/// of history per room, 1,000 rooms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Events queued on the server for one member before the oldest is
    /// dropped (and the member told how many it missed).
    pub member_queue: usize,
    /// Lines a room keeps for members who join later.
    pub history: usize,
    /// Rooms that may exist at once (a room exists while someone is in it).
    pub max_rooms: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            member_queue: 256,
            history: 50,
            max_rooms: 1_000,
        }
    }
}

/// The server's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LobbyStats {
    /// Connections attached now.
    pub connections: usize,
    /// Rooms now.
    pub rooms: usize,
    /// Lines said since the start.
    pub lines: u64,
    /// The fullest any member's queue has been (never above
    /// [`Limits::member_queue`]).
    pub queue_high_water: usize,
    /// Events dropped from members' queues since the start.
    pub dropped: u64,
}

/// A connection's number in the lobby.
pub(crate) type MemberId = u64;

/// One connection: its outbox, and once it joined, its nickname and room.
#[derive(Debug)]
struct Seat {
    outbox: Arc<Outbox>,
    nick: Option<String>,
    room: Option<String>,
}

/// Who holds a nickname, and the secret that lets it be taken over.
#[derive(Debug)]
struct Claim {
    member: MemberId,
    resume: u64,
}

#[derive(Debug, Default)]
struct Room {
    /// Members by nickname.
    members: BTreeMap<String, MemberId>,
    history: VecDeque<pb::Said>,
    /// The number the next line gets.
    next_seq: u64,
}

/// The state behind every connection of one server (see the module docs).
#[derive(Debug)]
pub(crate) struct Lobby {
    limits: Limits,
    seats: BTreeMap<MemberId, Seat>,
    nicks: BTreeMap<String, Claim>,
    rooms: BTreeMap<String, Room>,
    next_member: MemberId,
    lines: u64,
    /// Counters of outboxes that are gone, so totals survive them.
    gone: QueueStats,
}

impl Lobby {
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            limits,
            seats: BTreeMap::new(),
            nicks: BTreeMap::new(),
            rooms: BTreeMap::new(),
            next_member: 1,
            lines: 0,
            gone: QueueStats::default(),
        }
    }

    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }

    /// A new connection, with the outbox its events go to.
    pub(crate) fn attach(&mut self, outbox: Arc<Outbox>) -> MemberId {
        let member = self.next_member;
        self.next_member += 1;
        let seat = Seat {
            outbox,
            nick: None,
            room: None,
        };
        self.seats.insert(member, seat);
        member
    }

    /// The connection ended: it leaves its room and frees its nickname.
    pub(crate) fn detach(&mut self, member: MemberId) {
        self.unseat(member, "disconnected");
    }

    /// Takes `member`'s seat away: out of its room (the others told
    /// `reason`), its nickname freed, its outbox closed.
    fn unseat(&mut self, member: MemberId, reason: &str) {
        let Some(seat) = self.seats.remove(&member) else {
            return;
        };
        if let (Some(nick), Some(room)) = (&seat.nick, &seat.room) {
            self.remove_from_room(room, nick, reason);
        }
        if let Some(nick) = &seat.nick
            && self.nicks.get(nick).is_some_and(|c| c.member == member)
        {
            self.nicks.remove(nick);
        }
        seat.outbox.close();
        let stats = seat.outbox.stats();
        self.gone.high_water = self.gone.high_water.max(stats.high_water);
        self.gone.dropped += stats.dropped;
    }

    pub(crate) fn join(
        &mut self,
        member: MemberId,
        request: pb::JoinRequest,
    ) -> Result<pb::JoinReply, Status> {
        let pb::JoinRequest { nick, room, resume } = request;
        check_nick(&nick)?;
        check_room(&room)?;
        let seat = self.seat(member)?;
        if let Some(held) = &seat.nick
            && *held != nick
        {
            return Err(Status::new(
                Code::FailedPrecondition,
                format!("this connection is `{held}`; open a new connection to chat as `{nick}`"),
            ));
        }
        if seat.room.as_deref() == Some(room.as_str()) {
            return Ok(self.reply(&room));
        }
        if !self.rooms.contains_key(&room) && self.rooms.len() >= self.limits.max_rooms {
            return Err(Status::resource_exhausted(format!(
                "the server has its limit of {} rooms; join an existing one",
                self.limits.max_rooms
            )));
        }
        if seat.nick.is_none() {
            self.claim(member, &nick, resume)?;
        }
        if let Some(old) = self.seat_mut(member)?.room.take() {
            self.remove_from_room(&old, &nick, "moved to another room");
        }
        let joined = pb::Joined {
            room: room.clone(),
            nick: nick.clone(),
        };
        self.broadcast(&room, None, joined.into());
        self.rooms
            .entry(room.clone())
            .or_default()
            .members
            .insert(nick, member);
        self.seat_mut(member)?.room = Some(room.clone());
        Ok(self.reply(&room))
    }

    /// Gives `nick` to `member`, taking it over from a connection holding
    /// it with the same non-zero secret.
    fn claim(&mut self, member: MemberId, nick: &str, resume: u64) -> Result<(), Status> {
        if let Some(claim) = self.nicks.get(nick) {
            if resume == 0 || claim.resume != resume {
                return Err(Status::new(
                    Code::AlreadyExists,
                    format!("the nickname `{nick}` is taken; pick another"),
                ));
            }
            // The same person on a new connection: the old one is stale.
            let stale = claim.member;
            self.unseat(stale, "reconnected");
        }
        self.nicks.insert(nick.to_owned(), Claim { member, resume });
        self.seat_mut(member)?.nick = Some(nick.to_owned());
        Ok(())
    }

    pub(crate) fn say(&mut self, member: MemberId, text: String) -> Result<pb::SayReply, Status> {
        check_line(&text)?;
        let (nick, room_name) = self.membership(member)?;
        let history = self.limits.history;
        let Some(room) = self.rooms.get_mut(&room_name) else {
            return Err(Status::internal(format!("the room `{room_name}` is gone")));
        };
        room.next_seq += 1;
        let said = pb::Said {
            room: room_name.clone(),
            nick,
            text,
            seq: room.next_seq,
        };
        if history > 0 {
            if room.history.len() >= history {
                room.history.pop_front();
            }
            room.history.push_back(said.clone());
        }
        let seq = said.seq;
        self.lines += 1;
        self.broadcast(&room_name, Some(member), said.into());
        Ok(pb::SayReply { seq })
    }

    pub(crate) fn leave(&mut self, member: MemberId) -> Result<pb::LeaveReply, Status> {
        let (nick, room) = self.membership(member)?;
        self.seat_mut(member)?.room = None;
        self.remove_from_room(&room, &nick, "left");
        Ok(pb::LeaveReply { room })
    }

    pub(crate) fn list(&self) -> pb::ListReply {
        let rooms = self
            .rooms
            .iter()
            .map(|(name, room)| pb::RoomInfo {
                name: name.clone(),
                members: room.members.keys().cloned().collect(),
            })
            .collect();
        pb::ListReply { rooms }
    }

    pub(crate) fn stats(&self) -> LobbyStats {
        let mut stats = LobbyStats {
            connections: self.seats.len(),
            rooms: self.rooms.len(),
            lines: self.lines,
            queue_high_water: self.gone.high_water,
            dropped: self.gone.dropped,
        };
        for seat in self.seats.values() {
            let queue = seat.outbox.stats();
            stats.queue_high_water = stats.queue_high_water.max(queue.high_water);
            stats.dropped += queue.dropped;
        }
        stats
    }

    /// The queue counters of the member called `nick`, if one is.
    pub(crate) fn member_queue(&self, nick: &str) -> Option<QueueStats> {
        let claim = self.nicks.get(nick)?;
        Some(self.seats.get(&claim.member)?.outbox.stats())
    }

    fn seat(&self, member: MemberId) -> Result<&Seat, Status> {
        self.seats
            .get(&member)
            .ok_or_else(|| Status::unavailable("this connection has ended"))
    }

    fn seat_mut(&mut self, member: MemberId) -> Result<&mut Seat, Status> {
        self.seats
            .get_mut(&member)
            .ok_or_else(|| Status::unavailable("this connection has ended"))
    }

    /// The member's nickname and room, or why it has none.
    fn membership(&self, member: MemberId) -> Result<(String, String), Status> {
        let seat = self.seat(member)?;
        match (&seat.nick, &seat.room) {
            (Some(nick), Some(room)) => Ok((nick.clone(), room.clone())),
            _ => Err(Status::new(
                Code::FailedPrecondition,
                "not in a room; join one first (/join ROOM)",
            )),
        }
    }

    fn reply(&self, room: &str) -> pb::JoinReply {
        let (members, history) = self.rooms.get(room).map_or_else(Default::default, |r| {
            (
                r.members.keys().cloned().collect(),
                r.history.iter().cloned().collect(),
            )
        });
        pb::JoinReply {
            room: room.to_owned(),
            members,
            history,
        }
    }

    /// Takes `nick` out of `room`, tells the others why, and removes the
    /// room once it is empty.
    fn remove_from_room(&mut self, room: &str, nick: &str, reason: &str) {
        let Some(entry) = self.rooms.get_mut(room) else {
            return;
        };
        entry.members.remove(nick);
        if entry.members.is_empty() {
            self.rooms.remove(room);
            return;
        }
        let left = pb::Left {
            room: room.to_owned(),
            nick: nick.to_owned(),
            reason: reason.to_owned(),
        };
        self.broadcast(room, None, left.into());
    }

    /// Queues `event` for every member of `room` but `except`.
    fn broadcast(&self, room: &str, except: Option<MemberId>, event: pb::Event) {
        let Some(room) = self.rooms.get(room) else {
            return;
        };
        for member in room.members.values() {
            if Some(*member) == except {
                continue;
            }
            if let Some(seat) = self.seats.get(member) {
                seat.outbox.push(event.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests;
