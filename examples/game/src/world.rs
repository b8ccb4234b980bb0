//! The game's rules: a bounded arena, players pushed by their inputs,
//! coins to pick up. Pure: no sockets, no clock, no global randomness —
//! the server calls [`World::step`] once per tick with the tick's length,
//! and the seed is an input, so a test steps it by hand.

use std::collections::BTreeMap;

use crate::pb::{Arena, Coin, Input, PlayerState, Scored, Snapshot};

/// The arena's width, in units.
pub const WIDTH: f32 = 40.0;
/// The arena's height, in units.
pub const HEIGHT: f32 = 30.0;
/// How hard a full input pushes, in units per second squared.
const ACCELERATION: f32 = 40.0;
/// Drag, per second: with a full input a player settles at
/// `ACCELERATION / DRAG` = 10 units per second.
const DRAG: f32 = 4.0;
/// The fastest a player moves, in units per second.
const MAX_SPEED: f32 = 12.0;
/// The share of speed a player keeps when it bounces off a wall.
const RESTITUTION: f32 = 0.5;
/// How close a player must come to a coin to pick it up.
const PICKUP: f32 = 1.0;
/// Coins in the arena at any time.
pub const COINS: usize = 5;

/// One player's body.
#[derive(Debug, Clone, PartialEq)]
struct Body {
    x: f32,
    y: f32,
    vx: f32,
    vy: f32,
    /// The current intent, at most one unit long.
    intent: (f32, f32),
    /// The newest input applied.
    input: u32,
    score: u32,
}

/// The state of the game, advanced one tick at a time.
///
/// Call order: [`add_player`](Self::add_player) /
/// [`remove_player`](Self::remove_player) /
/// [`handle_input`](Self::handle_input) between ticks, [`step`](Self::step)
/// once per tick, then [`snapshot`](Self::snapshot) to publish it.
#[derive(Debug, Clone)]
pub struct World {
    tick: u64,
    players: BTreeMap<u32, Body>,
    coins: Vec<Coin>,
    next_player: u32,
    next_coin: u32,
    rng: SplitMix,
}

impl World {
    /// A world at tick 0 with its coins laid out, every random choice
    /// drawn from `seed`.
    pub fn new(seed: u64) -> Self {
        let mut world = Self {
            tick: 0,
            players: BTreeMap::new(),
            coins: Vec::with_capacity(COINS),
            next_player: 1,
            next_coin: 1,
            rng: SplitMix(seed),
        };
        for _ in 0..COINS {
            let coin = world.new_coin();
            world.coins.push(coin);
        }
        world
    }

    /// The arena's size.
    pub fn arena() -> Arena {
        Arena {
            width: WIDTH,
            height: HEIGHT,
        }
    }

    /// The tick the world is at: how many steps it has taken.
    pub fn tick(&self) -> u64 {
        self.tick
    }

    /// How many players are in the arena.
    pub fn players(&self) -> usize {
        self.players.len()
    }

    /// Places a new player at a random spot, at rest; returns its id (ids
    /// are never reused).
    pub fn add_player(&mut self) -> u32 {
        let id = self.next_player;
        self.next_player += 1;
        let (x, y) = self.random_spot();
        self.players.insert(
            id,
            Body {
                x,
                y,
                vx: 0.0,
                vy: 0.0,
                intent: (0.0, 0.0),
                input: 0,
                score: 0,
            },
        );
        id
    }

    /// Takes `player` out of the arena; `false` if it was not there.
    pub fn remove_player(&mut self, player: u32) -> bool {
        self.players.remove(&player).is_some()
    }

    /// Applies `input` from `player` if it is newer than the last one
    /// applied; returns whether it was. A direction longer than one unit is
    /// cut to one; a non-finite one counts as no intent.
    pub fn handle_input(&mut self, player: u32, input: &Input) -> bool {
        let Some(body) = self.players.get_mut(&player) else {
            return false;
        };
        if input.seq <= body.input {
            return false;
        }
        body.input = input.seq;
        body.intent = unit_at_most(input.x, input.y);
        true
    }

    /// Advances the world by one tick of `dt` seconds: every player
    /// accelerates toward its intent, slows by drag, bounces off the walls,
    /// and picks up the coins it touches (a picked coin reappears
    /// elsewhere). Returns who scored.
    pub fn step(&mut self, dt: f32) -> Vec<Scored> {
        self.tick += 1;
        for body in self.players.values_mut() {
            body.vx += (body.intent.0 * ACCELERATION - body.vx * DRAG) * dt;
            body.vy += (body.intent.1 * ACCELERATION - body.vy * DRAG) * dt;
            let speed = body.vx.hypot(body.vy);
            if speed > MAX_SPEED {
                body.vx *= MAX_SPEED / speed;
                body.vy *= MAX_SPEED / speed;
            }
            body.x += body.vx * dt;
            body.y += body.vy * dt;
            (body.x, body.vx) = bounce(body.x, body.vx, WIDTH);
            (body.y, body.vy) = bounce(body.y, body.vy, HEIGHT);
        }
        let mut scored = Vec::new();
        for index in 0..self.coins.len() {
            let (cx, cy) = (self.coins[index].x, self.coins[index].y);
            let taker = self
                .players
                .iter_mut()
                .find(|(_, body)| (body.x - cx).hypot(body.y - cy) < PICKUP);
            if let Some((&player, body)) = taker {
                body.score += 1;
                scored.push(Scored {
                    player,
                    coin: self.coins[index].id,
                    score: body.score,
                });
                self.coins[index] = self.new_coin();
            }
        }
        scored
    }

    /// The world as it is now, for every player.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            tick: self.tick,
            players: self
                .players
                .iter()
                .map(|(&id, body)| PlayerState {
                    id,
                    x: body.x,
                    y: body.y,
                    vx: body.vx,
                    vy: body.vy,
                    score: body.score,
                    input: body.input,
                })
                .collect(),
            coins: self.coins.clone(),
        }
    }

    fn new_coin(&mut self) -> Coin {
        let id = self.next_coin;
        self.next_coin += 1;
        let (x, y) = self.random_spot();
        Coin { id, x, y }
    }

    /// A spot at least one unit from every wall.
    fn random_spot(&mut self) -> (f32, f32) {
        let x = 1.0 + self.rng.unit() * (WIDTH - 2.0);
        let y = 1.0 + self.rng.unit() * (HEIGHT - 2.0);
        (x, y)
    }
}

/// `(x, y)` cut to at most one unit long; `(0, 0)` if not finite.
pub fn unit_at_most(x: f32, y: f32) -> (f32, f32) {
    if !x.is_finite() || !y.is_finite() {
        return (0.0, 0.0);
    }
    let length = x.hypot(y);
    if length > 1.0 {
        (x / length, y / length)
    } else {
        (x, y)
    }
}

/// Keeps `position` within `0..=limit`, reversing and damping `velocity`
/// at a wall.
fn bounce(position: f32, velocity: f32, limit: f32) -> (f32, f32) {
    if position < 0.0 {
        (-position.min(limit), -velocity * RESTITUTION)
    } else if position > limit {
        ((2.0 * limit - position).max(0.0), -velocity * RESTITUTION)
    } else {
        (position, velocity)
    }
}

/// A small seeded generator (SplitMix64): the world's only randomness.
#[derive(Debug, Clone)]
pub struct SplitMix(pub u64);

impl SplitMix {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `[0, 1)`.
    pub fn unit(&mut self) -> f32 {
        // 24 random bits: exactly representable in an f32.
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    fn input(seq: u32, x: f32, y: f32) -> Input {
        Input { seq, x, y }
    }

    #[test]
    fn a_player_pushed_right_moves_right_and_settles_at_its_top_speed() {
        let mut world = World::new(1);
        let id = world.add_player();
        let start = world.snapshot().players[0].x;
        world.handle_input(id, &input(1, 1.0, 0.0));
        world.step(0.1);
        let after = world.snapshot().players[0];
        assert!(after.x > start, "{after:?}");
        assert!(after.vx > 0.0 && after.vy == 0.0, "{after:?}");
        // Far from the walls' influence on speed, it settles near 10 u/s.
        let mut settled = World::new(1);
        let id = settled.add_player();
        settled.handle_input(id, &input(1, 1.0, 0.0));
        let mut top = 0.0f32;
        for _ in 0..30 {
            settled.step(1.0 / 30.0);
            top = top.max(settled.snapshot().players[0].vx.abs());
        }
        assert!(top > 5.0 && top <= MAX_SPEED, "top speed {top}");
    }

    #[test]
    fn nobody_leaves_the_arena_however_hard_it_pushes() {
        let mut world = World::new(2);
        let id = world.add_player();
        world.handle_input(id, &input(1, -1.0, -1.0));
        for _ in 0..300 {
            world.step(1.0 / 30.0);
            let p = &world.snapshot().players[0];
            assert!(
                (0.0..=WIDTH).contains(&p.x) && (0.0..=HEIGHT).contains(&p.y),
                "{p:?}"
            );
        }
    }

    #[test]
    fn older_inputs_are_ignored_and_long_or_broken_directions_are_tamed() {
        let mut world = World::new(3);
        let id = world.add_player();
        assert!(world.handle_input(id, &input(5, 3.0, 4.0)));
        assert!(!world.handle_input(id, &input(4, -1.0, 0.0)));
        assert!(!world.handle_input(id, &input(5, -1.0, 0.0)));
        assert_eq!(world.players[&id].intent, (0.6, 0.8));
        assert!(world.handle_input(id, &input(6, f32::NAN, 0.0)));
        assert_eq!(world.players[&id].intent, (0.0, 0.0));
        assert!(
            !world.handle_input(99, &input(7, 1.0, 0.0)),
            "no such player"
        );
    }

    #[test]
    fn touching_a_coin_scores_and_the_coin_moves_elsewhere() {
        let mut world = World::new(4);
        let id = world.add_player();
        let coin = world.coins[0];
        let body = world.players.get_mut(&id).expect("the player");
        (body.x, body.y) = (coin.x, coin.y);
        let scored = world.step(1.0 / 30.0);
        assert_eq!(
            scored,
            vec![Scored {
                player: id,
                coin: coin.id,
                score: 1
            }]
        );
        assert_eq!(world.coins.len(), COINS);
        assert!(world.coins.iter().all(|c| c.id != coin.id));
        assert_eq!(world.snapshot().players[0].score, 1);
    }

    #[test]
    fn the_same_seed_and_inputs_give_the_same_world() {
        let run = || {
            let mut world = World::new(42);
            let a = world.add_player();
            let b = world.add_player();
            for n in 1..200u32 {
                world.handle_input(a, &input(n, 1.0, 0.3));
                world.handle_input(b, &input(n, -0.5, 1.0));
                world.step(1.0 / 30.0);
            }
            world.snapshot()
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn a_full_arena_snapshot_fits_its_schema_limit() {
        let mut world = World::new(5);
        for _ in 0..crate::MAX_PLAYERS {
            let id = world.add_player();
            let body = world.players.get_mut(&id).expect("the player");
            (body.vx, body.vy, body.score, body.input) = (-11.9, -11.9, u32::MAX, u32::MAX);
        }
        world.tick = u64::MAX;
        let root = crate::pb::ToPlayer::from(world.snapshot());
        assert!(
            root.encoded_len() <= 1100,
            "{} bytes with {} players",
            root.encoded_len(),
            crate::MAX_PLAYERS
        );
    }
}
