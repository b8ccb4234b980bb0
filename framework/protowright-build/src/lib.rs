//! Build-time code generation for protowright.
//!
//! Call it from `build.rs`, the way prost-build and tonic-build are called:
//!
//! ```no_run
//! fn main() -> Result<(), protowright_build::Error> {
//!     protowright_build::configure().compile_protos(&["proto/chat.proto"], &["proto"])
//! }
//! ```
//!
//! and include the result where the package's module should be:
//!
//! ```ignore
//! pub mod chat {
//!     include!(concat!(env!("OUT_DIR"), "/chat.rs"));
//! }
//! ```
//!
//! Schemas are parsed by protox, in Rust: no `protoc` is needed or fetched.
//! For every schema you get prost's message types, plus:
//!
//! - for every message, an impl of `protowright::MessageInfo` carrying its
//!   delivery settings from `protowright/v1/options.proto`;
//! - for every protocol root (`option (protowright.v1.protocol) = true`),
//!   `From` conversions from each protocol message and an impl of
//!   `protowright::Protocol` to match on what arrived;
//! - `protowright::Outgoing`, so a connection sends a message without being
//!   told its protocol: for every root (routed by the message it holds), and
//!   for every message that exactly one root of the build lists and the
//!   build generates. A message listed in several roots has no such impl
//!   (its protocol would be a guess): send it wrapped in the root it is
//!   meant for, `Root::from(message)`. So is a type mapped with
//!   `extern_path` (such as a well-known type), which the orphan rule keeps
//!   this build from implementing traits for; a root listing one still
//!   routes it by its schema options.
//! - for every `service Foo`: a trait `Foo` with one `async` method per rpc,
//!   implemented by your server and by the generated `FooClient<C>`; a
//!   dispatcher `FooServer<S>`; wire descriptors in `foo_methods`; and
//!   `FooClient::in_memory(server)` for tests.
//!
//! A schema fails the build, with `file:line:column` and what to do, when it
//! does not parse or resolve (an unknown `protowright.v1` name suggests the
//! import it lacks), when a `channel` option is not below [`MAX_CHANNELS`],
//! when two methods share a wire id, or when it uses what protowright cannot
//! generate.
//!
//! # Map
//! - `compile`: protox with protowright's own schemas served from memory
//!   (the crate's copy of the workspace's `proto/protowright/v1`).
//! - `model`: reads protowright's options (through prost-reflect, which keeps
//!   extensions), decides which protocol messages are `Outgoing`, and
//!   assigns method ids.
//! - `generate`: writes the glue through prost-build's service generator.
//! - `diagnostic`, [`Error`]: turn failures into `file:line:column: cause`.

mod builder;
mod compile;
mod diagnostic;
mod error;
mod generate;
mod ident;
mod model;

pub use builder::Builder;
pub use error::{Error, Location, MethodIdClash};
pub use model::MAX_CHANNELS;

/// Starts configuring code generation, with defaults that suit most crates.
pub fn configure() -> Builder {
    Builder::default()
}

/// Writes protowright's own wire types (`protowright/v1/*.proto`) as one
/// Rust file, the way the runtime crate checks them in. Used by
/// `cargo xtask codegen` and by the test that keeps the checked-in copy
/// current; not meant for users.
#[doc(hidden)]
pub fn runtime_schema_source() -> Result<String, Error> {
    let names = ["protowright/v1/options.proto", "protowright/v1/rpc.proto"].map(PathBuf::from);
    let compiled = compile::compile(&names, &[])?;
    let out = tempfile_dir()?;
    prost_build::Config::new()
        .bytes(["."])
        .out_dir(out.path())
        .compile_fds(compiled.files)
        .map_err(Error::Generate)?;
    let path = out.path().join("protowright.v1.rs");
    std::fs::read_to_string(&path).map_err(|source| Error::Io { path, source })
}

use std::path::PathBuf;

/// A scratch directory removed on drop, without another dependency.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempfile_dir() -> Result<ScratchDir, Error> {
    let path = std::env::temp_dir().join(format!(
        "protowright-build-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    ));
    std::fs::create_dir_all(&path).map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })?;
    Ok(ScratchDir(path))
}
