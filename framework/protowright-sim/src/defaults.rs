//! Transport settings sized for simulated runs.
//!
//! protowright's defaults are sized for the internet: a heartbeat every
//! 5 s, a peer declared dead after 15 s of silence, reliable UDP's idle
//! timeout of 15 s and handshake timeout of 10 s, reconnects backing off
//! up to 10 s. A simulated run lasts seconds, so with those a 2 s partition
//! heals before either side notices, and after a longer one calls keep
//! failing until a 15 s timer fires — long after the test wanted them to
//! succeed. These keep every mechanism and scale its timers down, so faults
//! are detected and healed within a run:
//!
//! | setting | default | here |
//! | --- | --- | --- |
//! | heartbeat / dead peer (TCP sessions) | 5 s / 15 s | 250 ms / 1 s |
//! | default call timeout | 30 s | 2 s |
//! | connect timeout | 5 s | 2 s |
//! | reconnect backoff | 100 ms .. 10 s | 50 ms .. 500 ms |
//! | UDP keepalive / idle timeout | 5 s / 15 s | 250 ms / 2 s |
//! | UDP handshake timeout | 10 s | 2 s |
//! | server shutdown drain | 10 s | 2 s |

use std::time::Duration;

use protowright::{Backoff, ClientConfig, ServerConfig, rpc, udp};

/// Session settings for simulations (see the module docs).
pub fn session() -> rpc::Config {
    rpc::Config {
        heartbeat_interval: Some(Duration::from_millis(250)),
        dead_peer_timeout: Some(Duration::from_secs(1)),
        default_timeout: Some(Duration::from_secs(2)),
        ..rpc::Config::default()
    }
}

/// Reliable-UDP endpoint settings for simulations.
pub fn udp() -> udp::Config {
    udp::Config {
        keepalive_interval: Duration::from_millis(250),
        idle_timeout: Duration::from_secs(2),
        handshake_timeout: Duration::from_secs(2),
        ..udp::Config::default()
    }
}

/// Server settings for simulations.
pub fn server() -> ServerConfig {
    ServerConfig {
        session: session(),
        udp: udp(),
        shutdown_timeout: Duration::from_secs(2),
        ..ServerConfig::default()
    }
}

/// Client settings for simulations.
pub fn client() -> ClientConfig {
    ClientConfig {
        session: session(),
        udp: udp(),
        connect_timeout: Duration::from_secs(2),
        backoff: Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(500),
            ..Backoff::default()
        },
        ..ClientConfig::default()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_simulation_settings_are_valid() {
        super::server().validate().expect("server settings");
        super::client().validate().expect("client settings");
    }
}
