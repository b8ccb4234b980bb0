//! Turns the schema compiler's errors into `file:line:column: cause`.

use std::path::{Path, PathBuf};

use miette::Diagnostic;

use crate::compile::embedded_definition;
use crate::error::{Error, Location};

/// Converts a protox error into [`Error::Schema`], locating it in the file
/// on disk (searched for in `includes`) when the compiler gives a span.
pub(crate) fn schema_error(error: &protox::Error, includes: &[PathBuf]) -> Error {
    let message = cause(error);
    let file = error.file().map(|name| disk_path(name, includes));
    let span = error.labels().and_then(|mut labels| labels.next());
    let (location, excerpt) = match (file, span, error.source_code()) {
        (Some(file), Some(span), Some(source)) => match source.read_span(span.inner(), 0, 0) {
            Ok(contents) => {
                let line = contents.line();
                let column = contents.column();
                let excerpt = excerpt(Path::new(&file), line, column, span.label());
                let location = Location {
                    file,
                    line: line + 1,
                    column: column + 1,
                };
                (Some(location), excerpt)
            }
            Err(_) => (None, None),
        },
        (Some(file), _, _) => (
            Some(Location {
                file,
                line: 1,
                column: 1,
            }),
            None,
        ),
        _ => (None, None),
    };
    Error::Schema {
        location,
        message,
        excerpt,
    }
}

/// The error's message with its help text, if any.
fn cause(error: &protox::Error) -> String {
    let mut message = error.to_string();
    // For protowright's own names ours is the more useful help: the generic
    // one suggests a leading dot, which does not help a missing import.
    let help = protowright_help(&message).or_else(|| error.help().map(|help| help.to_string()));
    if let Some(help) = help {
        message.push_str(&format!(" (help: {help})"));
    }
    message
}

/// What to do about an unknown name in protowright's package: import the
/// file that defines it, or pick an option that exists.
///
/// prost-reflect's error has no accessor for the name, so it is read from
/// the message (`name 'N' is not defined`, or `'M' resolves to 'N', which
/// is not defined` when the package is known; both pinned by tests).
fn protowright_help(message: &str) -> Option<String> {
    let name = unknown_name(message)?.trim_start_matches('.');
    if !name.starts_with("protowright.v1.") {
        return None;
    }
    Some(match embedded_definition(name) {
        Some(file) => format!(
            "add import \"{file}\"; to the schema (protowright-build serves it: no include path needed)"
        ),
        None => "protowright.v1 has no such name; its options are `delivery`, `channel`, \
                 `max_size` and `protocol` on messages and `method_id` on methods"
            .to_owned(),
    })
}

/// The name an unresolved-name error is about.
fn unknown_name(message: &str) -> Option<&str> {
    let not_defined = message.strip_suffix("' is not defined");
    if let Some(name) = not_defined.and_then(|m| m.strip_prefix("name '")) {
        return Some(name);
    }
    message
        .strip_suffix("', which is not defined")?
        .rsplit_once(" resolves to '")
        .map(|(_, name)| name)
}

/// The error for a schema given to the builder that protox cannot open:
/// `proto` as the caller gave it, whose import name is `name`.
///
/// Says whether the file is missing or only outside the include paths, and
/// lists the include paths as given (relative to the working directory,
/// which for a build script is the package's directory).
pub(crate) fn missing_schema(proto: &Path, name: &Path, includes: &[PathBuf]) -> Error {
    let exists = proto.is_file() || includes.iter().any(|i| i.join(name).is_file());
    let list: Vec<String> = includes
        .iter()
        .map(|i| format!("`{}`", i.display()))
        .collect();
    let cwd = std::env::current_dir()
        .map(|dir| format!(" (paths relative to `{}`)", dir.display()))
        .unwrap_or_default();
    let proto = proto.display();
    let message = match (exists, list.is_empty()) {
        (false, false) => format!(
            "schema `{proto}` does not exist: no such file, and no `{}` under the include paths \
             searched: {}{cwd}",
            name.display(),
            list.join(", ")
        ),
        (false, true) => {
            format!(
                "schema `{proto}` does not exist: no such file, and no include paths were given{cwd}"
            )
        }
        (true, _) => format!(
            "schema `{proto}` is not under any include path, so its imports cannot be resolved; \
             add its directory to the include paths (now: {}){cwd}",
            if list.is_empty() {
                "none".to_owned()
            } else {
                list.join(", ")
            }
        ),
    };
    Error::Schema {
        location: None,
        message,
        excerpt: None,
    }
}

/// The source line of `line` (0-based) with a caret under `column`, read
/// from the file on disk.
pub(crate) fn excerpt(
    file: &Path,
    line: usize,
    column: usize,
    label: Option<&str>,
) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    let source_line = text.lines().nth(line)?;
    let caret = format!("{}^", " ".repeat(column));
    let label = label.map(|l| format!(" {l}")).unwrap_or_default();
    Some(format!("    {source_line}\n    {caret}{label}"))
}

/// Where a schema's import name lives on disk: the first include path that
/// holds it, or the name itself when none does (an embedded file).
pub(crate) fn disk_path(name: &str, includes: &[PathBuf]) -> String {
    includes
        .iter()
        .map(|include| include.join(name))
        .find(|path| path.is_file())
        .map(|path| display_path(&path))
        .unwrap_or_else(|| name.to_owned())
}

fn display_path(path: &Path) -> String {
    path.display().to_string()
}
