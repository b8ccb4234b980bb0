//! The runtime crate checks in the Rust code for protowright's own schemas;
//! it must be exactly what the schemas generate today.

use std::path::Path;

#[test]
fn the_checked_in_wire_types_match_the_schemas() {
    // Read at run time, not embedded: a packaged crate holds no files from
    // outside itself, and outside the workspace there is nothing to compare.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../protowright/src/v1/generated.rs");
    let Ok(checked_in) = std::fs::read_to_string(&path) else {
        eprintln!(
            "{} not found: not inside the protowright workspace",
            path.display()
        );
        return;
    };
    let generated =
        protowright_build::runtime_schema_source().expect("protowright's schemas compile");
    assert!(
        generated == checked_in,
        "framework/protowright/src/v1/generated.rs is out of date with proto/protowright/v1: run `cargo xtask codegen`"
    );
}
