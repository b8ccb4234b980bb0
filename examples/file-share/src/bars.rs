//! Progress bars for `get`: one per file, with rate and ETA, through
//! indicatif's `MultiProgress`. When standard error is not a terminal the
//! bars are hidden and notes are printed as plain lines instead.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use file_share::{Event, Progress};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

const TEMPLATE: &str =
    "{prefix} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta} {wide_msg}";

/// One bar per file.
pub(crate) struct Bars {
    multi: MultiProgress,
    bars: Mutex<BTreeMap<String, ProgressBar>>,
}

impl Bars {
    /// Bars for `names`, in that order, waiting to start.
    pub(crate) fn new(names: &[String]) -> Self {
        let multi = MultiProgress::new();
        let style = ProgressStyle::with_template(TEMPLATE)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let width = names.iter().map(String::len).max().unwrap_or(0).min(32);
        let mut bars = BTreeMap::new();
        for name in names {
            let bar = multi.add(ProgressBar::new(0).with_style(style.clone()));
            bar.set_prefix(format!("{name:width$}"));
            bar.set_message("waiting");
            bars.entry(name.clone()).or_insert(bar);
        }
        Self {
            multi,
            bars: Mutex::new(bars),
        }
    }

    /// Removes the bars (before printing an error).
    pub(crate) fn clear(&self) {
        let _ = self.multi.clear();
    }

    fn with_bar(&self, name: &str, action: impl FnOnce(&ProgressBar)) {
        let bars = self.bars.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(bar) = bars.get(name) {
            action(bar);
        }
    }

    fn say(&self, name: &str, text: &str) {
        self.line(format!("{name}: {text}"));
    }

    fn line(&self, line: String) {
        if self.multi.is_hidden() {
            eprintln!("{line}");
        } else {
            let _ = self.multi.println(line);
        }
    }
}

impl Progress for Bars {
    fn event(&self, name: &str, event: Event) {
        match event {
            Event::Started { size, verified } => self.with_bar(name, |bar| {
                bar.set_length(size);
                bar.set_position(verified);
                bar.reset_eta();
                bar.set_message("");
            }),
            Event::Chunk { bytes } => self.with_bar(name, |bar| bar.inc(bytes)),
            Event::Note(text) => self.say(name, &text),
            Event::Done => self.with_bar(name, |bar| bar.finish_with_message("verified")),
            // Why is printed with the results.
            Event::Failed(_) => self.with_bar(name, |bar| bar.abandon_with_message("failed")),
        }
    }

    fn connection(&self, text: &str) {
        self.line(text.to_owned());
    }
}
