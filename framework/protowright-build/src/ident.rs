//! Rust names for protobuf names, following prost-build's rules exactly, so
//! that the glue we generate refers to the types prost generates.

use heck::{ToSnakeCase, ToUpperCamelCase};

/// Escapes a Rust keyword the way prost-build does.
fn sanitize(ident: String) -> String {
    match ident.as_str() {
        "as" | "break" | "const" | "continue" | "else" | "enum" | "false" | "fn" | "for" | "if"
        | "impl" | "in" | "let" | "loop" | "match" | "mod" | "move" | "mut" | "pub" | "ref"
        | "return" | "static" | "struct" | "trait" | "true" | "type" | "unsafe" | "use"
        | "where" | "while" | "dyn" | "abstract" | "become" | "box" | "do" | "final" | "macro"
        | "override" | "priv" | "typeof" | "unsized" | "virtual" | "yield" | "async" | "await"
        | "try" | "gen" => format!("r#{ident}"),
        "_" | "super" | "self" | "Self" | "extern" | "crate" => format!("{ident}_"),
        s if s.starts_with(|c: char| c.is_numeric()) => format!("_{ident}"),
        _ => ident,
    }
}

/// A module or field name: `lower_snake`.
pub(crate) fn to_snake(name: &str) -> String {
    sanitize(name.to_snake_case())
}

/// A type or variant name: `UpperCamel`.
pub(crate) fn to_upper_camel(name: &str) -> String {
    sanitize(name.to_upper_camel_case())
}

/// A constant name: `SCREAMING_SNAKE`.
pub(crate) fn to_screaming_snake(name: &str) -> String {
    heck::ToShoutySnakeCase::to_shouty_snake_case(name)
}

/// Maps protobuf paths to Rust paths outside the generated code
/// (`extern_path`), longest prefix first.
#[derive(Debug, Clone, Default)]
pub(crate) struct ExternPaths {
    paths: Vec<(String, String)>,
}

impl ExternPaths {
    /// Maps the fully qualified protobuf path `proto` (leading dot) to `rust`.
    pub(crate) fn insert(&mut self, proto: &str, rust: &str) {
        self.paths.push((proto.to_owned(), rust.to_owned()));
        self.paths
            .sort_by_key(|(proto, _)| std::cmp::Reverse(proto.len()));
    }

    /// Whether every type of `package` (no leading dot) is mapped elsewhere,
    /// so no code is generated for it.
    pub(crate) fn covers_package(&self, package: &str) -> bool {
        let name = format!(".{package}");
        self.paths.iter().any(|(proto, _)| {
            name == *proto
                || name
                    .strip_prefix(proto.as_str())
                    .is_some_and(|rest| rest.starts_with('.'))
        })
    }

    /// Whether the type with fully qualified `name` (leading dot) is mapped
    /// elsewhere, on its own or through its package, so this build does not
    /// generate it.
    pub(crate) fn is_extern(&self, name: &str) -> bool {
        self.resolve(name).is_some()
    }

    /// The Rust path of fully qualified `name` (leading dot) if it lies under
    /// an extern path.
    fn resolve(&self, name: &str) -> Option<String> {
        self.paths.iter().find_map(|(proto, rust)| {
            if name == proto {
                return Some(rust.clone());
            }
            let rest = name.strip_prefix(proto)?.strip_prefix('.')?;
            let mut segments: Vec<&str> = rest.split('.').collect();
            let last = segments.pop()?;
            let modules = segments.iter().map(|s| to_snake(s));
            Some(
                std::iter::once(rust.clone())
                    .chain(modules)
                    .chain(std::iter::once(to_upper_camel(last)))
                    .collect::<Vec<_>>()
                    .join("::"),
            )
        })
    }
}

/// The Rust path of the type with fully qualified protobuf name `name`
/// (leading dot), as written in the module generated for `package`.
///
/// Mirrors prost-build: shared leading package segments are skipped, each
/// remaining segment of `package` becomes `super`, the target's remaining
/// package and parent-message segments become snake-case modules.
pub(crate) fn type_path(package: &str, name: &str, externs: &ExternPaths) -> String {
    if let Some(path) = externs.resolve(name) {
        return path;
    }
    let mut local = package.split('.').filter(|s| !s.is_empty()).peekable();
    let mut target: Vec<&str> = name.trim_start_matches('.').split('.').collect();
    let type_name = target.pop().unwrap_or_default();
    let mut target = target.into_iter().peekable();
    while local.peek().is_some() && local.peek() == target.peek() {
        local.next();
        target.next();
    }
    local
        .map(|_| "super".to_owned())
        .chain(target.map(to_snake))
        .chain(std::iter::once(to_upper_camel(type_name)))
        .collect::<Vec<_>>()
        .join("::")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_type_in_the_same_package_is_named_directly() {
        let externs = ExternPaths::default();
        assert_eq!(
            type_path("chat.v1", ".chat.v1.Message", &externs),
            "Message"
        );
        assert_eq!(
            type_path("chat.v1", ".chat.v1.Room.Member", &externs),
            "room::Member"
        );
    }

    #[test]
    fn a_type_in_another_package_is_reached_through_super() {
        let externs = ExternPaths::default();
        assert_eq!(
            type_path("chat.v1", ".common.Id", &externs),
            "super::super::common::Id"
        );
        assert_eq!(
            type_path("chat.v1", ".chat.types.Id", &externs),
            "super::types::Id"
        );
        assert_eq!(type_path("", ".common.Id", &externs), "common::Id");
    }

    #[test]
    fn extern_paths_win_longest_prefix_first() {
        let mut externs = ExternPaths::default();
        externs.insert(".google.protobuf", "::prost_types");
        externs.insert(".google.protobuf.Empty", "()");
        assert_eq!(
            type_path("a", ".google.protobuf.Timestamp", &externs),
            "::prost_types::Timestamp"
        );
        assert_eq!(type_path("a", ".google.protobuf.Empty", &externs), "()");
    }

    #[test]
    fn keywords_are_escaped_like_prost() {
        assert_eq!(to_snake("type"), "r#type");
        assert_eq!(to_upper_camel("self"), "Self_");
        assert_eq!(to_snake("HTTPServer"), "http_server");
    }
}
