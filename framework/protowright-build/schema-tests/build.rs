//! Compiles the showcase schemas the way a user's build script would.

fn main() -> Result<(), protowright_build::Error> {
    let root = "../../../proto";
    let schemas = ["common", "inventory", "legacy", "game", "lobby", "store"]
        .map(|name| format!("{root}/showcase/{name}.proto"));
    let mut builder = protowright_build::configure();
    // Any prost-build option stays reachable.
    builder
        .prost_config()
        .message_attribute(".showcase.game.Chat", "#[derive(PartialOrd)]");
    builder
        .include_file("showcase.rs")
        .btree_map([".showcase.inventory.Inventory.by_slot"])
        .bytes([".showcase.game"])
        .type_attribute(".showcase.common.Id", "#[derive(PartialOrd, Ord)]")
        .compile_protos(&schemas, &[root])
}
