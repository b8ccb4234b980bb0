//! Where a descriptor path points in its file, for error messages.

use std::path::{Path, PathBuf};

use prost_types::FileDescriptorSet;

use crate::diagnostic::{disk_path, excerpt};
use crate::error::Location;

/// Finds where a descriptor path points in its file, for error messages.
pub(crate) struct Locator<'a> {
    files: &'a FileDescriptorSet,
    includes: &'a [PathBuf],
}

impl<'a> Locator<'a> {
    pub(crate) fn new(files: &'a FileDescriptorSet, includes: &'a [PathBuf]) -> Self {
        Self { files, includes }
    }

    /// The location of the element at `path` in `file`, with its source line
    /// and a caret under the column; line 1, column 1 of the file when its
    /// source info does not cover the element.
    pub(crate) fn locate(&self, file: &str, path: &[i32]) -> (Location, Option<String>) {
        let span = self
            .files
            .file
            .iter()
            .find(|f| f.name() == file)
            .and_then(|f| f.source_code_info.as_ref())
            .and_then(|info| info.location.iter().find(|l| l.path == path))
            .map(|l| l.span.clone())
            .unwrap_or_default();
        let line = span.first().copied().unwrap_or(0).max(0) as usize;
        let column = span.get(1).copied().unwrap_or(0).max(0) as usize;
        let shown = disk_path(file, self.includes);
        let excerpt = excerpt(Path::new(&shown), line, column, None);
        (
            Location {
                file: shown,
                line: line + 1,
                column: column + 1,
            },
            excerpt,
        )
    }
}
