//! Parsing and checking schemas with protox: no `protoc` anywhere.

use std::path::{Path, PathBuf};

use prost_reflect::DescriptorPool;
use prost_types::FileDescriptorSet;
use protox::file::{
    ChainFileResolver, File, FileResolver, GoogleFileResolver, IncludeFileResolver,
};

use crate::diagnostic::{missing_schema, schema_error};
use crate::error::Error;

/// protowright's own schema files, served to every compilation so a user's
/// schema can import them without an include path.
///
/// The crate carries its own copy (`proto/` beside `Cargo.toml`) so that it
/// packages on its own; the canonical, user-facing files are the workspace's
/// `proto/protowright/v1/`, and a test fails when the two differ.
const EMBEDDED: &[(&str, &str)] = &[
    (
        "protowright/v1/options.proto",
        include_str!("../proto/protowright/v1/options.proto"),
    ),
    (
        "protowright/v1/rpc.proto",
        include_str!("../proto/protowright/v1/rpc.proto"),
    ),
];

/// Serves [`EMBEDDED`].
struct EmbeddedFiles;

impl FileResolver for EmbeddedFiles {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match EMBEDDED.iter().find(|(embedded, _)| *embedded == name) {
            Some((_, source)) => File::from_source(name, source),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// The result of compiling a set of schemas.
pub(crate) struct Compiled {
    /// Every file, imports included, with source info (for comments and
    /// error locations).
    pub(crate) files: FileDescriptorSet,
    /// The same files encoded with their options' extensions intact
    /// (prost's descriptor types drop them when re-encoding).
    pub(crate) encoded: Vec<u8>,
    /// The same files with their options' extensions readable.
    pub(crate) pool: DescriptorPool,
    /// Every file read from disk, for `cargo:rerun-if-changed`.
    pub(crate) read_from_disk: Vec<PathBuf>,
}

/// Parses and checks `protos`, resolving imports in `includes`, then in
/// protowright's embedded files, then in Google's well-known types.
pub(crate) fn compile(protos: &[PathBuf], includes: &[PathBuf]) -> Result<Compiled, Error> {
    let mut resolver = ChainFileResolver::new();
    for include in includes {
        resolver.add(IncludeFileResolver::new(include.clone()));
    }
    resolver.add(EmbeddedFiles);
    resolver.add(GoogleFileResolver::new());

    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_source_info(true).include_imports(true);
    for proto in protos {
        let name = relative_to_include(proto, includes);
        compiler.open_file(&name).map_err(|error| {
            // protox names neither the file as given nor where it looked.
            if error.is_file_not_found() && error.file().is_none() {
                missing_schema(proto, &name, includes)
            } else {
                schema_error(&error, includes)
            }
        })?;
    }
    let read_from_disk = compiler
        .files()
        .filter_map(|file| file.path().map(Path::to_path_buf))
        .collect();
    Ok(Compiled {
        files: compiler.file_descriptor_set(),
        encoded: compiler.encode_file_descriptor_set(),
        pool: compiler.descriptor_pool(),
        read_from_disk,
    })
}

/// The import name of `proto` when it lies under an include path; protox
/// can then open it even when the include was given as a relative path.
fn relative_to_include(proto: &Path, includes: &[PathBuf]) -> PathBuf {
    includes
        .iter()
        .find_map(|include| proto.strip_prefix(include).ok())
        .map_or_else(|| proto.to_path_buf(), Path::to_path_buf)
}

/// The embedded file that defines the fully qualified `name` (no leading
/// dot), if any: what a schema that uses `name` must import.
pub(crate) fn embedded_definition(name: &str) -> Option<&'static str> {
    let mut resolver = ChainFileResolver::new();
    resolver.add(EmbeddedFiles);
    resolver.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    for (file, _) in EMBEDDED {
        compiler.open_file(file).ok()?;
    }
    let pool = compiler.descriptor_pool();
    let defining_file = pool
        .get_extension_by_name(name)
        .map(|e| e.parent_file())
        .or_else(|| pool.get_message_by_name(name).map(|m| m.parent_file()))
        .or_else(|| pool.get_enum_by_name(name).map(|e| e.parent_file()))
        .or_else(|| pool.get_service_by_name(name).map(|s| s.parent_file()))?;
    EMBEDDED
        .iter()
        .map(|(file, _)| *file)
        .find(|file| *file == defining_file.name())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::EMBEDDED;

    /// The canonical `proto/protowright/v1/` of the workspace, or `None`
    /// when this crate is built outside it (unpacked from a registry).
    fn canonical_dir() -> Option<std::path::PathBuf> {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let manifest = std::fs::read_to_string(workspace.join("Cargo.toml")).ok()?;
        manifest
            .contains("framework/protowright-build")
            .then(|| workspace.join("proto/protowright/v1"))
    }

    const FIX: &str = "the workspace's proto/protowright/v1/ is the canonical copy: run \
        `cp proto/protowright/v1/*.proto framework/protowright-build/proto/protowright/v1/` \
        from the workspace root (then `cargo xtask codegen`), and list any new file in \
        EMBEDDED in framework/protowright-build/src/compile.rs";

    #[test]
    fn the_embedded_schemas_are_the_workspace_schemas() {
        let Some(canonical) = canonical_dir() else {
            eprintln!("not inside the protowright workspace: nothing to compare");
            return;
        };
        let mut on_disk: Vec<String> = std::fs::read_dir(&canonical)
            .unwrap_or_else(|e| panic!("{}: {e}", canonical.display()))
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| name.ends_with(".proto"))
            .map(|name| format!("protowright/v1/{name}"))
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = EMBEDDED.iter().map(|(n, _)| (*n).to_owned()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded, "the embedded files differ: {FIX}");
        for (name, embedded) in EMBEDDED {
            let path = canonical.join(name.trim_start_matches("protowright/v1/"));
            let canonical = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(
                canonical == *embedded,
                "framework/protowright-build/proto/{name} differs from proto/{name}: {FIX}"
            );
        }
    }
}
