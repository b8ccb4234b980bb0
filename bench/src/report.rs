//! What a run prints: one JSON object on the last line of stdout.

use std::time::Duration;

/// A measurement, printed as one JSON line for the harness.
#[derive(Debug, Clone)]
pub enum Report {
    /// Messages decoded by the receiver, over the time from the first to
    /// the last.
    Throughput {
        /// Messages counted.
        messages: u64,
        /// From the first message to the last.
        elapsed: Duration,
    },
    /// Round trips, sorted.
    Latency {
        /// Every round trip measured, in order of size.
        samples: Vec<Duration>,
    },
    /// Bytes received, their checksum, and the time from first to last.
    Received {
        /// Bytes counted.
        bytes: u64,
        /// Their position-weighted checksum.
        checksum: u64,
        /// From the first byte to the last.
        elapsed: Duration,
    },
    /// Bytes sent and their checksum, for the harness to compare.
    Sent {
        /// Bytes sent.
        bytes: u64,
        /// Their checksum.
        checksum: u64,
    },
    /// Messages handed to an unreliable transport, for the harness to
    /// compare with those that arrived.
    SentMessages {
        /// Messages sent.
        messages: u64,
    },
    /// Server memory per connection.
    Memory {
        /// Resident bytes gained per connection.
        bytes_per_conn: f64,
    },
    /// Time to establish all connections.
    Connected {
        /// Seconds from the first connect to the last established.
        seconds: f64,
    },
}

impl Report {
    /// Prints the report as one JSON line.
    pub fn print(&self) {
        let json = match self {
            Report::Throughput { messages, elapsed } => serde_json::json!({
                "msgs_per_s": *messages as f64 / elapsed.as_secs_f64().max(1e-9),
                "messages": messages,
            }),
            Report::Latency { samples } => {
                let at = |q: f64| {
                    let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
                    samples.get(index).map_or(0.0, |d| d.as_secs_f64() * 1e6)
                };
                serde_json::json!({ "p50_us": at(0.50), "p99_us": at(0.99), "samples": samples.len() })
            }
            Report::Received {
                bytes,
                checksum,
                elapsed,
            } => serde_json::json!({
                "mb_per_s": *bytes as f64 / 1e6 / elapsed.as_secs_f64().max(1e-9),
                "bytes": bytes,
                "checksum": checksum,
            }),
            Report::Sent { bytes, checksum } => {
                serde_json::json!({ "sent_bytes": bytes, "sent_checksum": checksum })
            }
            Report::SentMessages { messages } => {
                serde_json::json!({ "sent_messages": messages })
            }
            Report::Memory { bytes_per_conn } => {
                serde_json::json!({ "bytes_per_conn": bytes_per_conn })
            }
            Report::Connected { seconds } => serde_json::json!({ "connect_s": seconds }),
        };
        println!("{json}");
    }

    /// A latency report from unsorted samples.
    pub fn latency(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Report::Latency { samples }
    }
}
