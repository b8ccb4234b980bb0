//! protowright's own wire types, generated from `proto/protowright/v1/`.
//!
//! [`Envelope`] is the frame every connection carries, [`Status`] a failed
//! call's outcome, [`Delivery`] the schema option that picks a message's
//! channel. User schemas that import these files get these types (the build
//! step maps the `protowright.v1` package here).
//!
//! `generated.rs` is produced by `cargo xtask codegen` and checked in, so
//! that depending on protowright needs no code generation; a test fails when
//! it is out of date with the `.proto` files.

#![allow(missing_docs, unreachable_pub, clippy::all)]

include!("generated.rs");
