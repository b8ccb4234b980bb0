//! The runtime crate checks in the Rust code for protowright's own schemas;
//! it must be exactly what the schemas generate today.

#[test]
fn the_checked_in_wire_types_match_the_schemas() {
    let generated =
        protowright_build::runtime_schema_source().expect("protowright's schemas compile");
    let checked_in = include_str!("../../protowright/src/v1/generated.rs");
    assert!(
        generated == checked_in,
        "framework/protowright/src/v1/generated.rs is out of date with proto/protowright/v1: run `cargo xtask codegen`"
    );
}
