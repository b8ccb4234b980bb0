//! The showcase schemas under `proto/showcase`, compiled by protowright-build.
//!
//! This crate is what a user's crate looks like: a build script that points
//! protowright-build at `.proto` files, and one `include!`. Its tests check
//! the generated types, delivery settings, protocol roots and services.

#![allow(missing_docs, unreachable_pub, clippy::all)]

include!(concat!(env!("OUT_DIR"), "/showcase.rs"));
