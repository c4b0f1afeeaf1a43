//! ptpproxy core: a selective PTPv2 multicast relay, without I/O. ARCHITECTURE.md has the path
//! of one frame, the rules table and where to change what.
//!
//! One upstream port faces the grandmaster, up to `board::MAX_PORTS - 1` downstream ports face the
//! clients. The binary's shell captures frames with libpcap and hands each one, with the time it
//! read, its capture timestamp and the port it came from, to [`proxy::Proxy::handle_frame`], which
//! answers with a [`proxy::Action`]: forward these bytes to this set of ports (with what the
//! residence correction needs as they leave), or drop and say why.
//!
//! - [`proxy`]: the sans-IO core the shell drives; owns the relay and the correction.
//! - [`relay`]: the forwarding rules as one pure decision per frame.
//! - [`loop_guard`]: frames the relay sent that come back in (a cabling loop) are not relayed
//!   again.
//! - [`correction`]: the residence correction (software end-to-end transparent clock).
//! - [`pacing`]: Delay_Req towards the grandmaster held to a rate, fairly between ports.
//! - [`clients`]: the fixed-capacity client table (sourcePortIdentity -> port, MAC), aging,
//!   admission and per-client Delay_Req rate limits ([`gcra`]).
//! - [`wire`]: zero-copy views of Ethernet (+802.1Q), IPv4/IPv6/UDP and PTPv2 messages.
//! - [`port`]: port numbers, sets of ports, and how a reload renumbers them.
//! - [`config`]: the JSON configuration, parsed into fixed-capacity types and validated.
//! - [`stats`]: plain counters; every drop has exactly one reason.
//! - [`upstream`]: the grandmaster being relayed per domain, and the age of its messages.
//! - [`board`]: capacities generated from the board profile at build time.
//!
//! The core never touches a socket or a clock (time is passed in as [`time::Instant`] and
//! [`time::Timestamp`]) and never allocates per frame: every table is sized by the board profile.

#![forbid(unsafe_code)]

pub mod board;
pub mod clients;
pub mod config;
pub mod correction;
pub mod fixed_map;
pub mod gcra;
pub mod loop_guard;
pub mod pacing;
pub mod port;
pub mod proxy;
pub mod relay;
pub mod stats;
pub mod time;
pub mod upstream;
pub mod wire;
