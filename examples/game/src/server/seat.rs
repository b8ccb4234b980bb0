//! One connection's seat: the `Lobby` service it is served with, the task
//! reading its inputs, and the outbox sending its events.

use std::sync::{Arc, OnceLock};

use protowright::rpc::{Code, Status};
use protowright::{Connection, MessageInfo as _, Protocol as _, RecvError, Server};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::PROTOCOL_VERSION;
use crate::pb::{
    ClockReply, ClockRequest, Event, JoinRequest, Joined, Lobby, LobbyServer, Snapshot, ToServer,
    Welcome, event, to_server,
};
use crate::world::World;

use super::shared::{LEFT, Member, Shared};

/// The longest display name kept, in characters.
const MAX_NAME: usize = 32;

/// Seats each incoming connection and reads its inputs.
pub(super) async fn accept(mut server: Server, shared: Arc<Shared>) {
    while let Some(incoming) = server.accept().await {
        let mut seat = None;
        incoming.serve_with(|connection| {
            let made = Arc::new(Seat {
                shared: Arc::clone(&shared),
                connection: connection.clone(),
                player: OnceLock::new(),
            });
            seat = Some(Arc::clone(&made));
            LobbyServer::from_arc(made)
        });
        if let Some(seat) = seat {
            tokio::spawn(play(seat));
        }
    }
}

/// One connection's place at the table: the `Lobby` service it is served
/// with, and its player once it joined.
struct Seat {
    shared: Arc<Shared>,
    connection: Connection,
    player: OnceLock<u32>,
}

impl Lobby for Seat {
    async fn join(&self, request: JoinRequest) -> Result<Welcome, Status> {
        if request.version != PROTOCOL_VERSION {
            return Err(Status::new(
                Code::FailedPrecondition,
                format!(
                    "this server speaks game protocol version {PROTOCOL_VERSION}, the client version {}: use a client of the same version",
                    request.version
                ),
            ));
        }
        let name: String = request.name.chars().take(MAX_NAME).collect();
        let shared = &self.shared;
        let mut state = shared.lock();
        if !state.open {
            return Err(Status::unavailable("the server is shutting down"));
        }
        if let Some(player) = self.player.get() {
            return Err(Status::new(
                Code::AlreadyExists,
                format!("this connection already plays as player {player}"),
            ));
        }
        let max = shared.settings.max_players;
        if state.members.len() >= max {
            return Err(Status::resource_exhausted(format!(
                "the game is full ({max} of {max} players); try again later"
            )));
        }
        let player = state.world.add_player();
        let _ = self.player.set(player);
        // The newest snapshot first: never stuck behind queued events.
        self.connection
            .set_priority(Snapshot::CHANNEL, SNAPSHOT_PRIORITY);
        self.connection.set_priority(Event::CHANNEL, EVENT_PRIORITY);
        let (outbox, queue) = mpsc::channel(shared.settings.event_queue);
        let outbox_task = tokio::spawn(send_events(self.connection.clone(), queue));
        state.members.insert(
            player,
            Member {
                connection: self.connection.clone(),
                outbox,
                outbox_task,
                next_seq: 0,
            },
        );
        let joined = Joined {
            player,
            name: name.clone(),
        };
        shared.broadcast(&mut state, event::Kind::Joined(joined));
        Ok(Welcome {
            player,
            tick_hz: shared.settings.tick_hz,
            tick: state.world.tick(),
            arena: Some(World::arena()),
        })
    }

    async fn clock(&self, _request: ClockRequest) -> Result<ClockReply, Status> {
        Ok(ClockReply {
            tick: self.shared.lock().world.tick(),
        })
    }
}

/// The snapshot channel's priority: above the events'.
const SNAPSHOT_PRIORITY: i32 = 1;
/// The event channel's priority.
const EVENT_PRIORITY: i32 = 0;

/// Reads a connection's inputs until it ends, then reports its player
/// gone. A connection that has not joined within the join timeout is
/// closed.
async fn play(seat: Arc<Seat>) {
    let shared = &seat.shared;
    let connection = &seat.connection;
    let deadline = Instant::now() + shared.settings.join_timeout;
    loop {
        let message = tokio::select! {
            biased;
            message = connection.recv::<ToServer>() => message,
            () = tokio::time::sleep_until(deadline), if seat.player.get().is_none() => {
                connection.go_away(Status::new(
                    Code::FailedPrecondition,
                    "no Join within the join timeout",
                )).await;
                connection.close();
                break;
            }
        };
        match message {
            Ok(Some(message)) => {
                let (Some(&player), Some(to_server::Kind::Input(input))) =
                    (seat.player.get(), message.into_kind())
                else {
                    continue;
                };
                shared.observer.on_input(player, &input);
                shared.lock().world.handle_input(player, &input);
            }
            // Another protocol's message: dropped, the connection stays.
            Err(RecvError::Decode { .. }) => {}
            Ok(None) | Err(_) => break,
        }
    }
    if let Some(&player) = seat.player.get() {
        shared.leave(player, LEFT);
    }
}

/// Sends one player's events in order until its queue closes (the player
/// left) or its connection ends.
async fn send_events(connection: Connection, mut queue: mpsc::Receiver<Event>) {
    while let Some(event) = queue.recv().await {
        if connection.send(event).await.is_err() {
            break;
        }
    }
}
