//! Generates the game's types, its `Lobby` service (trait, client and
//! dispatcher) and its two protocol roots from `proto/game/v1/game.proto`.

fn main() -> Result<(), protowright_build::Error> {
    protowright_build::configure()
        .compile_protos(&["../../proto/game/v1/game.proto"], &["../../proto"])
}
