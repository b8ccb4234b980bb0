//! The demo's closing table.

use protowright::Transport;

use crate::runs::Path;

/// One run's figures.
pub(crate) struct Row {
    pub(crate) example: &'static str,
    pub(crate) transport: Transport,
    pub(crate) path: Path,
    /// Messages (or chunks) that arrived.
    pub(crate) messages: u64,
    pub(crate) throughput: String,
    pub(crate) rtt: String,
    /// Packets that carried resent data, server side (reliable UDP).
    pub(crate) resent: Option<u64>,
    /// What was checked, and how it came out.
    pub(crate) verified: String,
    /// Whether everything owed arrived.
    pub(crate) ok: bool,
}

/// Prints `rows` as an aligned table.
pub(crate) fn print(rows: &[Row]) {
    let header = [
        "example",
        "over",
        "path",
        "messages",
        "throughput",
        "rtt",
        "resent",
        "verified",
    ];
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|row| {
            [
                row.example.to_owned(),
                row.transport.to_string(),
                row.path.to_string(),
                row.messages.to_string(),
                row.throughput.clone(),
                row.rtt.clone(),
                row.resent.map_or("-".to_owned(), |n| n.to_string()),
                row.verified.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("  {}", padded.join("  ").trim_end());
    };
    line(&header.map(str::to_owned));
    line(&widths.map(|w| "-".repeat(w)));
    for row in &cells {
        line(row);
    }
}
