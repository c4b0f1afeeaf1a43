//! The JSON configuration: parsed with serde-json-core into fixed-capacity types, unknown keys
//! rejected, then validated. A bad file yields one [`ConfigError`] naming the field and the fix.
//!
//! Two steps, neither of which allocates: a hand-written serde visitor (`parse`) reads the file
//! into the private struct `Raw` (strings borrowed from the input, `None` for an absent key),
//! then the rules (`validate`) apply the defaults and build a [`Config`]. `schema` holds the
//! typed result, the keys, defaults and ranges; `error` the typed rejections and their texts.
//!
//! [`ConfigError`] is `'static` and `Copy`, so it cannot quote the file;
//! [`Config::parse_detailed`] returns a [`ConfigRejection`] that adds the unknown key, the bad
//! value, or the setting near a syntax error, borrowed from the input. Nothing here touches a
//! file or a socket: the caller hands in the bytes.

mod dump;
mod error;
mod parse;
mod schema;
#[cfg(test)]
mod testing;
mod validate;

pub use dump::{
    DumpConfig, DumpError, DumpFrames, DumpKey, DEFAULT_DUMP_FRAMES, DEFAULT_DUMP_MAX_BYTES,
    DUMP_MAX_BYTES_RANGE,
};
pub use error::{
    ConfigError, ConfigRejection, Context, FileError, InterfaceError, PathError, ValueError,
    FILE_FIELD, UNKNOWN_KEY_FIELD,
};
pub use schema::{BridgeFilter, DEFAULT_BRIDGE_FILTER};
pub use schema::{
    BridgePorts, Config, Correction, DelayRespMode, IfName, Key, CLIENT_TIMEOUT_S_RANGE,
    CPU_LATENCY_US_RANGE, DEFAULT_ALLOW_DOWNSTREAM_MASTERS, DEFAULT_BRIDGE_PORTS,
    DEFAULT_CLIENT_TIMEOUT_S, DEFAULT_CORRECTION, DEFAULT_DELAY_RESP, DEFAULT_DOMAINS,
    DEFAULT_MAX_DELAY_REQ_HOLD_MS, DEFAULT_MAX_DELAY_REQ_RATE, DEFAULT_MAX_HOLD_US,
    DEFAULT_MAX_IDENTITIES_PER_MAC, DEFAULT_PROMISCUOUS, DEFAULT_REALTIME_PRIORITY,
    DEFAULT_RESIDENCE_MARGIN_US, DEFAULT_SDO_ID, DEFAULT_STATUS_FILE, DEFAULT_STATUS_INTERVAL_S,
    DOMAIN_MAX, IFNAME_MAX, KEYS, MAX_DELAY_REQ_HOLD_MS_RANGE, MAX_DELAY_REQ_RATE_RANGE,
    MAX_DOMAINS, MAX_HOLD_US_RANGE, MAX_IDENTITIES_PER_MAC_RANGE, MAX_RESIDENCE_US_RANGE,
    MIN_RESIDENCE_ABOVE_HOLD_US, PATH_MAX, REALTIME_PRIORITY_RANGE, SDO_ID_RANGE,
    STATUS_INTERVAL_S_RANGE, UPSTREAM_MAX_DELAY_REQ_RATE_RANGE, USER_MAX,
};

impl Config {
    /// Parse and validate a configuration file's bytes.
    pub fn parse(json: &[u8]) -> Result<Config, ConfigError> {
        Self::parse_detailed(json).map_err(|r| r.error)
    }

    /// As [`Config::parse`], and on error also the text of the file that locates it (the
    /// unknown key, the bad value, the setting near a syntax error). Print this one to users.
    pub fn parse_detailed(json: &[u8]) -> Result<Config, ConfigRejection<'_>> {
        // Editors on some systems prepend a UTF-8 byte-order mark; it is not JSON, but harmless.
        let json = json.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(json);
        if json.iter().all(u8::is_ascii_whitespace) {
            return Err(ConfigError::File(FileError::Empty).into());
        }
        parse::read(json)?.validate()
    }

    /// Number of downstream ports (PortId 1..=downstream_count()).
    pub fn downstream_count(&self) -> usize {
        self.downstream.len()
    }

    /// Interface names in PortId order: the upstream (PortId 0), then the downstream ports in
    /// the order of the file (PortId 1, 2, ...).
    pub fn port_names(&self) -> impl Iterator<Item = &str> {
        core::iter::once(self.upstream.as_str()).chain(self.downstream.iter().map(|n| n.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    fn with_defaults(downstream: &[&str]) -> Config {
        Config {
            upstream: ifname("eth0"),
            downstream: downstream.iter().map(|n| ifname(n)).collect(),
            domains: heapless::Vec::from_slice(&DEFAULT_DOMAINS).unwrap(),
            sdo_id: 0,
            delay_resp: DEFAULT_DELAY_RESP,
            correction: DEFAULT_CORRECTION,
            max_hold_us: DEFAULT_MAX_HOLD_US,
            max_residence_us: DEFAULT_MAX_HOLD_US + DEFAULT_RESIDENCE_MARGIN_US,
            allow_downstream_masters: DEFAULT_ALLOW_DOWNSTREAM_MASTERS,
            client_timeout_s: DEFAULT_CLIENT_TIMEOUT_S,
            max_delay_req_rate: DEFAULT_MAX_DELAY_REQ_RATE,
            upstream_max_delay_req_rate: None,
            max_delay_req_hold_ms: DEFAULT_MAX_DELAY_REQ_HOLD_MS,
            max_identities_per_mac: DEFAULT_MAX_IDENTITIES_PER_MAC,
            status_file: heapless::String::try_from(DEFAULT_STATUS_FILE).unwrap(),
            status_interval_s: DEFAULT_STATUS_INTERVAL_S,
            metrics_file: None,
            promiscuous: DEFAULT_PROMISCUOUS,
            user: None,
            realtime_priority: 0,
            cpu_latency_us: None,
            bridge_ports: DEFAULT_BRIDGE_PORTS,
            dump: None,
            bridge_filter: DEFAULT_BRIDGE_FILTER,
        }
    }

    #[test]
    fn full_example_parses() {
        let config = Config::parse(EXAMPLE.as_bytes()).unwrap();
        let expected = Config {
            upstream: ifname("eth0"),
            downstream: [ifname("lan1"), ifname("lan2")].into_iter().collect(),
            domains: heapless::Vec::from_slice(&[0]).unwrap(),
            sdo_id: 0,
            delay_resp: DelayRespMode::Steer,
            correction: Correction::Residence,
            max_hold_us: 2000,
            max_residence_us: 52_000,
            allow_downstream_masters: false,
            client_timeout_s: 60,
            max_delay_req_rate: 128,
            upstream_max_delay_req_rate: None,
            max_delay_req_hold_ms: 500,
            max_identities_per_mac: 8,
            status_file: heapless::String::try_from("/var/run/ptpproxy/status.json").unwrap(),
            status_interval_s: 5,
            metrics_file: None,
            promiscuous: false,
            user: None,
            realtime_priority: 0,
            cpu_latency_us: None,
            bridge_ports: DEFAULT_BRIDGE_PORTS,
            dump: None,
            bridge_filter: DEFAULT_BRIDGE_FILTER,
        };
        assert_eq!(config, expected);
        // The example spells out exactly the defaults.
        assert_eq!(config, with_defaults(&["lan1", "lan2"]));
    }

    #[test]
    fn minimal_gets_all_defaults() {
        assert_eq!(
            Config::parse(MINIMAL.as_bytes()).unwrap(),
            with_defaults(&["lan1"])
        );
    }

    #[test]
    fn ports_are_numbered_upstream_first() {
        let config = Config::parse(EXAMPLE.as_bytes()).unwrap();
        assert_eq!(config.downstream_count(), 2);
        assert_eq!(
            config.port_names().collect::<Vec<_>>(),
            ["eth0", "lan1", "lan2"]
        );
    }
}
