//! ptpproxy core: a selective PTPv2 multicast relay, without I/O.
//!
//! One upstream port faces the grandmaster, up to `board::MAX_PORTS - 1` downstream ports face the
//! clients. The binary's shell captures frames with libpcap and hands each one, with the time it
//! read and the port it came from, to [`relay::Relay::handle_frame`], which answers with an
//! [`relay::Action`]: forward these bytes to this set of ports, or drop and say why.
//!
//! - [`wire`]: zero-copy views of Ethernet (+802.1Q), IPv4/IPv6/UDP and PTPv2 messages.
//! - [`relay`]: the forwarding rules of DESIGN.md as one pure decision per frame.
//! - [`clients`]: the fixed-capacity client table (sourcePortIdentity -> port, MAC), aging,
//!   admission and per-client Delay_Req rate limits.
//! - [`config`]: the JSON configuration, parsed into fixed-capacity types and validated.
//! - [`stats`]: plain counters; every drop has exactly one reason.
//! - [`board`]: capacities generated from the board profile at build time.
//!
//! The core never touches a socket or a clock (time is passed in as [`time::Instant`]) and never
//! allocates: every table is a `heapless` container sized by the board profile.

#![forbid(unsafe_code)]

pub mod board;
pub mod clients;
pub mod config;
pub mod correction;
pub mod fixed_map;
pub mod gcra;
pub mod port;
pub mod proxy;
pub mod relay;
pub mod stats;
pub mod time;
pub mod wire;
