//! The state the server's tasks share: the world and the seated players,
//! and telling every player what happened.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use protowright::Connection;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::task::JoinHandle;

use crate::pb::{Event, Left, event};
use crate::world::World;

use super::settings::{Observer, Settings};

/// Why a player whose connection ended is gone.
pub(super) const LEFT: &str = "left the game";

/// What the server's tasks share.
pub(super) struct Shared {
    pub(super) settings: Settings,
    pub(super) observer: Box<dyn Observer>,
    pub(super) state: Mutex<State>,
}

pub(super) struct State {
    pub(super) world: World,
    pub(super) members: BTreeMap<u32, Member>,
    /// Whether players may still join.
    pub(super) open: bool,
}

/// A seated player.
pub(super) struct Member {
    pub(super) connection: Connection,
    pub(super) outbox: mpsc::Sender<Event>,
    pub(super) outbox_task: JoinHandle<()>,
    /// The number of the next event for this player.
    pub(super) next_seq: u64,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Tells every player `change`. A player whose queue is full is
    /// removed, and that is told too.
    pub(super) fn broadcast(&self, state: &mut State, change: event::Kind) {
        let mut pending = vec![change];
        while let Some(change) = pending.pop() {
            let tick = state.world.tick();
            self.observer.on_change(tick, &change);
            let mut dropped = Vec::new();
            for (&player, member) in &mut state.members {
                let event = Event {
                    seq: member.next_seq,
                    tick,
                    kind: Some(change.clone()),
                };
                match member.outbox.try_send(event.clone()) {
                    Ok(()) => {
                        member.next_seq += 1;
                        self.observer.on_event(player, &event);
                    }
                    Err(TrySendError::Full(_)) => {
                        dropped.push((player, "removed: could not keep up with its events"));
                    }
                    // Its outbox ended with its connection: it is leaving,
                    // and its seat task has not noticed yet.
                    Err(TrySendError::Closed(_)) => dropped.push((player, LEFT)),
                }
            }
            for (player, reason) in dropped {
                if let Some(member) = state.members.remove(&player) {
                    state.world.remove_player(player);
                    member.connection.close();
                    pending.push(event::Kind::Left(Left {
                        player,
                        reason: reason.into(),
                    }));
                }
            }
        }
    }

    /// `player` is gone: out of the world, and everyone is told.
    pub(super) fn leave(&self, player: u32, reason: &str) {
        let mut state = self.lock();
        if state.members.remove(&player).is_some() {
            state.world.remove_player(player);
            let left = Left {
                player,
                reason: reason.into(),
            };
            self.broadcast(&mut state, event::Kind::Left(left));
        }
    }
}
