//! The lobby's rules, driven directly: no sockets, no tasks.

use std::sync::Arc;

use super::*;
use crate::outbox::Next;

/// A lobby and the outboxes of its connections, by name.
struct World {
    lobby: Lobby,
    outboxes: BTreeMap<&'static str, (MemberId, Arc<Outbox>)>,
}

impl World {
    fn new(limits: Limits) -> Self {
        Self {
            lobby: Lobby::new(limits),
            outboxes: BTreeMap::new(),
        }
    }

    fn connect(&mut self, name: &'static str) -> MemberId {
        let outbox = Arc::new(Outbox::new(self.lobby.limits().member_queue));
        let member = self.lobby.attach(Arc::clone(&outbox));
        self.outboxes.insert(name, (member, outbox));
        member
    }

    fn id(&self, name: &str) -> MemberId {
        self.outboxes[name].0
    }

    fn join(&mut self, name: &'static str, room: &str) -> Result<pb::JoinReply, Status> {
        self.join_as(name, name, room, 0)
    }

    fn join_as(
        &mut self,
        name: &'static str,
        nick: &str,
        room: &str,
        resume: u64,
    ) -> Result<pb::JoinReply, Status> {
        let request = pb::JoinRequest {
            nick: nick.into(),
            room: room.into(),
            resume,
        };
        self.lobby.join(self.id(name), request)
    }

    fn say(&mut self, name: &str, text: &str) -> Result<u64, Status> {
        Ok(self.lobby.say(self.id(name), text.into())?.seq)
    }

    /// What `name`'s pump would send now, as text.
    fn drain(&self, name: &str) -> Vec<String> {
        let outbox = &self.outboxes[name].1;
        let mut seen = Vec::new();
        while outbox.stats().queued > 0 {
            let next = futures_now(outbox);
            seen.push(match next {
                Some(Next::Missed(count)) => format!("missed {count}"),
                Some(Next::Event(event)) => describe(event),
                None => break,
            });
        }
        seen
    }
}

fn futures_now(outbox: &Outbox) -> Option<Next> {
    use std::future::Future as _;
    let mut next = std::pin::pin!(outbox.next());
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match next.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(next) => next,
        std::task::Poll::Pending => None,
    }
}

fn describe(event: pb::Event) -> String {
    use pb::event::Event;
    match event.event {
        Some(Event::Said(s)) => format!("{}#{} {}: {}", s.room, s.seq, s.nick, s.text),
        Some(Event::Joined(j)) => format!("{} joined {}", j.nick, j.room),
        Some(Event::Left(l)) => format!("{} left {} ({})", l.nick, l.room, l.reason),
        Some(Event::Missed(m)) => format!("missed {}", m.count),
        None => "empty".into(),
    }
}

#[test]
fn members_see_each_others_lines_joins_and_leaves_but_not_their_own_lines() {
    let mut world = World::new(Limits::default());
    world.connect("ada");
    world.connect("bob");
    world.join("ada", "lobby").unwrap();
    let reply = world.join("bob", "lobby").unwrap();
    assert_eq!(reply.members, ["ada", "bob"]);
    assert_eq!(world.say("ada", "hi bob"), Ok(1));
    assert_eq!(world.say("bob", "hi ada"), Ok(2));
    world.lobby.leave(world.id("bob")).unwrap();
    assert_eq!(
        world.drain("ada"),
        [
            "bob joined lobby",
            "lobby#2 bob: hi ada",
            "bob left lobby (left)"
        ]
    );
    assert_eq!(world.drain("bob"), ["lobby#1 ada: hi bob"]);
}

#[test]
fn a_member_who_joins_later_gets_the_bounded_history() {
    let limits = Limits {
        history: 3,
        ..Limits::default()
    };
    let mut world = World::new(limits);
    world.connect("ada");
    world.join("ada", "lobby").unwrap();
    for n in 1..=5 {
        world.say("ada", &format!("line {n}")).unwrap();
    }
    world.connect("bob");
    let reply = world.join("bob", "lobby").unwrap();
    let texts: Vec<_> = reply.history.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(texts, ["line 3", "line 4", "line 5"]);
}

#[test]
fn a_taken_nickname_is_refused_unless_its_secret_proves_a_reconnect() {
    let mut world = World::new(Limits::default());
    world.connect("old");
    world.connect("other");
    world.connect("new");
    world.join_as("old", "ada", "lobby", 42).unwrap();
    world.join("other", "lobby").unwrap();
    let taken = world.join_as("new", "ada", "lobby", 0).unwrap_err();
    assert_eq!(taken.code(), Code::AlreadyExists);
    assert_eq!(taken.message(), "the nickname `ada` is taken; pick another");
    let wrong = world.join_as("new", "ada", "lobby", 7).unwrap_err();
    assert_eq!(wrong.code(), Code::AlreadyExists);
    // The same secret: the new connection takes over, the old one is closed.
    world.join_as("new", "ada", "lobby", 42).unwrap();
    assert_eq!(futures_now(&world.outboxes["old"].1), None, "closed");
    assert_eq!(
        world.drain("other"),
        ["ada left lobby (reconnected)", "ada joined lobby"]
    );
    // The old connection's end no longer touches the nickname.
    world.lobby.detach(world.id("old"));
    assert!(world.lobby.member_queue("ada").is_some());
}

#[test]
fn bad_names_and_lines_are_refused_and_change_nothing() {
    let mut world = World::new(Limits::default());
    world.connect("ada");
    let bad = world.join_as("ada", "a d a", "lobby", 0).unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let not_in = world.say("ada", "anyone?").unwrap_err();
    assert_eq!(not_in.code(), Code::FailedPrecondition);
    world.join("ada", "lobby").unwrap();
    assert_eq!(
        world.say("ada", "").unwrap_err().code(),
        Code::InvalidArgument
    );
    let renamed = world.join_as("ada", "eve", "lobby", 0).unwrap_err();
    assert_eq!(renamed.code(), Code::FailedPrecondition);
    assert_eq!(world.lobby.list().rooms.len(), 1);
}

#[test]
fn moving_rooms_tells_both_rooms_and_empty_rooms_vanish() {
    let mut world = World::new(Limits::default());
    world.connect("ada");
    world.connect("bob");
    world.join("ada", "one").unwrap();
    world.join("bob", "one").unwrap();
    world.join("bob", "two").unwrap();
    assert_eq!(
        world.drain("ada"),
        ["bob joined one", "bob left one (moved to another room)"]
    );
    world.lobby.detach(world.id("ada"));
    let rooms: Vec<_> = world
        .lobby
        .list()
        .rooms
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(rooms, ["two"]);
    assert_eq!(world.lobby.stats().connections, 1);
}

#[test]
fn a_disconnect_is_a_leave_the_others_see() {
    let mut world = World::new(Limits::default());
    world.connect("ada");
    world.connect("bob");
    world.join("ada", "lobby").unwrap();
    world.join("bob", "lobby").unwrap();
    world.drain("ada");
    world.lobby.detach(world.id("bob"));
    assert_eq!(world.drain("ada"), ["bob left lobby (disconnected)"]);
    // The nickname is free again.
    world.connect("bob2");
    world.join_as("bob2", "bob", "lobby", 0).unwrap();
}

#[test]
fn a_member_who_never_reads_holds_at_most_its_bound_and_is_told_what_it_missed() {
    let limits = Limits {
        member_queue: 4,
        ..Limits::default()
    };
    let mut world = World::new(limits);
    world.connect("ada");
    world.connect("bob");
    world.join("ada", "lobby").unwrap();
    world.join("bob", "lobby").unwrap();
    for n in 1..=20 {
        world.say("ada", &format!("{n}")).unwrap();
    }
    let stats = world.lobby.stats();
    assert_eq!((stats.queue_high_water, stats.dropped), (4, 16));
    assert_eq!(
        world.drain("bob"),
        [
            "missed 16",
            "lobby#17 ada: 17",
            "lobby#18 ada: 18",
            "lobby#19 ada: 19",
            "lobby#20 ada: 20"
        ]
    );
}

#[test]
fn rooms_beyond_the_limit_are_refused() {
    let limits = Limits {
        max_rooms: 1,
        ..Limits::default()
    };
    let mut world = World::new(limits);
    world.connect("ada");
    world.connect("bob");
    world.join("ada", "one").unwrap();
    let refused = world.join("bob", "two").unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(
        world.lobby.member_queue("bob").is_none(),
        "no nickname taken"
    );
    world.join("bob", "one").unwrap();
}
