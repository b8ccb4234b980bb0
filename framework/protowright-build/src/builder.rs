//! The build-script API.

use std::path::{Path, PathBuf};

use crate::compile::compile;
use crate::error::Error;
use crate::generate::Glue;
use crate::ident::ExternPaths;
use crate::model::{Locator, Model};

/// Configures code generation. Start with [`configure`](crate::configure).
///
/// Options prost-build users know are passed through (`bytes`,
/// `btree_map`, attributes, `extern_path`, `include_file`, `out_dir`); any
/// other is reachable through [`prost_config`](Self::prost_config).
#[derive(Debug)]
pub struct Builder {
    prost: prost_build::Config,
    externs: ExternPaths,
    runtime: String,
    emit_rerun_if_changed: bool,
    descriptor_set_path: Option<PathBuf>,
}

impl Default for Builder {
    fn default() -> Self {
        Self::with_prost_config(prost_build::Config::new())
    }
}

impl Builder {
    /// A builder around an existing prost-build configuration.
    pub fn with_prost_config(prost: prost_build::Config) -> Self {
        let mut externs = ExternPaths::default();
        externs.insert(".google.protobuf", "::prost_types");
        externs.insert(".google.protobuf.Empty", "()");
        Self {
            prost,
            externs,
            runtime: "::protowright".to_owned(),
            emit_rerun_if_changed: true,
            descriptor_set_path: None,
        }
    }

    /// The underlying prost-build configuration, for any option not
    /// mirrored here. Map packages with [`extern_path`](Self::extern_path)
    /// rather than through it, so protocol-root conversions see the mapping.
    pub fn prost_config(&mut self) -> &mut prost_build::Config {
        &mut self.prost
    }

    /// Writes generated files to `path` instead of `$OUT_DIR`.
    pub fn out_dir(mut self, path: impl Into<PathBuf>) -> Self {
        self.prost.out_dir(path);
        self
    }

    /// Generates `bytes::Bytes` instead of `Vec<u8>` for the `bytes` fields
    /// matching `paths` (`"."` for all).
    pub fn bytes<I, S>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.prost.bytes(paths);
        self
    }

    /// Generates `BTreeMap` instead of `HashMap` for the map fields matching
    /// `paths` (`"."` for all).
    pub fn btree_map<I, S>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.prost.btree_map(paths);
        self
    }

    /// Adds an attribute to the messages and enums matching `path`.
    pub fn type_attribute(mut self, path: impl AsRef<str>, attribute: impl AsRef<str>) -> Self {
        self.prost.type_attribute(path, attribute);
        self
    }

    /// Adds an attribute to the messages matching `path`.
    pub fn message_attribute(mut self, path: impl AsRef<str>, attribute: impl AsRef<str>) -> Self {
        self.prost.message_attribute(path, attribute);
        self
    }

    /// Adds an attribute to the fields matching `path`.
    pub fn field_attribute(mut self, path: impl AsRef<str>, attribute: impl AsRef<str>) -> Self {
        self.prost.field_attribute(path, attribute);
        self
    }

    /// Uses the existing Rust type at `rust_path` for the protobuf type or
    /// package `proto_path` (fully qualified, with a leading dot).
    pub fn extern_path(mut self, proto_path: impl AsRef<str>, rust_path: impl AsRef<str>) -> Self {
        self.externs.insert(proto_path.as_ref(), rust_path.as_ref());
        self.prost
            .extern_path(proto_path.as_ref(), rust_path.as_ref());
        self
    }

    /// Also writes `path` (relative to the output directory): one file that
    /// includes every generated module in its package's module tree.
    pub fn include_file(mut self, path: impl AsRef<Path>) -> Self {
        self.prost.include_file(path.as_ref());
        self
    }

    /// Where generated code finds the protowright runtime; `::protowright`
    /// unless the crate is reached through a re-export.
    pub fn runtime_path(mut self, path: impl Into<String>) -> Self {
        self.runtime = path.into();
        self
    }

    /// Whether to print `cargo:rerun-if-changed` for every schema file read
    /// (on by default).
    pub fn emit_rerun_if_changed(mut self, emit: bool) -> Self {
        self.emit_rerun_if_changed = emit;
        self
    }

    /// Also writes the compiled schemas, imports and source info included,
    /// as an encoded `FileDescriptorSet` at `path` (for reflection services
    /// and tools that read schemas at run time).
    pub fn file_descriptor_set_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.descriptor_set_path = Some(path.into());
        self
    }

    /// Compiles `protos`, resolving imports in `includes`, and writes the
    /// generated Rust code.
    ///
    /// Fails with a readable `file:line:column: cause` error when a schema is
    /// malformed, refers to something unknown, imports a missing file, puts a
    /// message on a channel not below [`MAX_CHANNELS`](crate::MAX_CHANNELS),
    /// gives two methods the same wire id, or uses what protowright cannot
    /// generate; and with the include paths searched when a file in `protos`
    /// does not exist.
    pub fn compile_protos(
        mut self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> Result<(), Error> {
        let protos: Vec<PathBuf> = protos.iter().map(|p| p.as_ref().to_path_buf()).collect();
        let includes: Vec<PathBuf> = includes.iter().map(|p| p.as_ref().to_path_buf()).collect();
        let compiled = compile(&protos, &includes)?;
        if self.emit_rerun_if_changed {
            for path in &compiled.read_from_disk {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
        if let Some(path) = &self.descriptor_set_path {
            std::fs::write(path, &compiled.encoded).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
        }
        let runtime_schema = format!("{}::v1", self.runtime);
        self.externs.insert(".protowright.v1", &runtime_schema);
        self.prost.extern_path(".protowright.v1", &runtime_schema);

        let locator = Locator::new(&compiled.files, &includes);
        let model = Model::read(&compiled.files, &compiled.pool, &locator, &self.externs)?;
        self.prost
            .service_generator(Box::new(Glue::new(model, self.runtime.clone())));
        self.prost
            .compile_fds(compiled.files)
            .map_err(Error::Generate)
    }
}
