//! Turns the schema compiler's errors into `file:line:column: cause`.

use std::path::{Path, PathBuf};

use miette::Diagnostic;

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
    if let Some(help) = error.help() {
        message.push_str(&format!(" (help: {help})"));
    }
    message
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
