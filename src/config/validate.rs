//! The rules: [`Raw`] as read from the file becomes a [`Config`], with the defaults applied and
//! every value checked, one small function per field or group of fields.
//!
//! The rules run in the order of [`KEYS`](super::KEYS) and the first broken one wins, so a file
//! with several faults always reports the same one. This module never reads JSON and never
//! writes message text: it picks a [`ConfigError`] variant and, where it helps, the value from
//! the file that broke the rule.

use super::error::{ConfigError, ConfigRejection, Context, InterfaceError, PathError};
use super::parse::{Raw, TOO_MANY_DOMAINS, TOO_MANY_DOWNSTREAM};
use super::schema::*;
use core::ops::RangeInclusive;

impl<'a> Raw<'a> {
    /// Apply the defaults and the rules, in the order of [`KEYS`]; the first broken rule wins.
    pub(super) fn validate(self) -> Result<Config, ConfigRejection<'a>> {
        let upstream = self.upstream.ok_or(ConfigError::Missing(Key::Upstream))?;
        let upstream = interface(Key::Upstream, upstream)?;
        let downstream = downstream(self.downstream, &upstream)?;
        let domains = match self.domains {
            None => heapless::Vec::from_slice(&DEFAULT_DOMAINS).map_err(|_| TOO_MANY_DOMAINS)?,
            Some(numbers) => domain_list(&numbers)?,
        };
        let sdo_id = number(
            Key::SdoId,
            self.sdo_id.unwrap_or(DEFAULT_SDO_ID),
            SDO_ID_RANGE,
        )?;
        // Cannot fail: SDO_ID_RANGE fits in 12 bits.
        let sdo_id = u16::try_from(sdo_id).unwrap_or(0);
        let delay_resp = delay_resp(self.delay_resp)?;
        let correction = correction(self.correction)?;
        let max_hold_us = number(
            Key::MaxHoldUs,
            self.max_hold_us.unwrap_or(DEFAULT_MAX_HOLD_US),
            MAX_HOLD_US_RANGE,
        )?;
        let max_residence_us = max_residence_us(self.max_residence_us, max_hold_us)?;
        let client_timeout_s = number(
            Key::ClientTimeoutS,
            self.client_timeout_s.unwrap_or(DEFAULT_CLIENT_TIMEOUT_S),
            CLIENT_TIMEOUT_S_RANGE,
        )?;
        let max_delay_req_rate = number(
            Key::MaxDelayReqRate,
            self.max_delay_req_rate
                .unwrap_or(DEFAULT_MAX_DELAY_REQ_RATE),
            MAX_DELAY_REQ_RATE_RANGE,
        )?;
        let (upstream_max_delay_req_rate, max_delay_req_hold_ms) = pacing(
            self.upstream_max_delay_req_rate,
            self.max_delay_req_hold_ms,
            correction,
        )?;
        let max_identities_per_mac = number(
            Key::MaxIdentitiesPerMac,
            self.max_identities_per_mac
                .unwrap_or(DEFAULT_MAX_IDENTITIES_PER_MAC),
            MAX_IDENTITIES_PER_MAC_RANGE,
        )?;
        let status_file = path(self.status_file.unwrap_or(DEFAULT_STATUS_FILE))?;
        let status_interval_s = number(
            Key::StatusIntervalS,
            self.status_interval_s.unwrap_or(DEFAULT_STATUS_INTERVAL_S),
            STATUS_INTERVAL_S_RANGE,
        )?;
        let metrics_file = self
            .metrics_file
            .map(|f| metrics_path(f, &status_file))
            .transpose()?;
        Ok(Config {
            upstream,
            downstream,
            domains,
            sdo_id,
            delay_resp,
            correction,
            max_hold_us,
            max_residence_us,
            allow_downstream_masters: self
                .allow_downstream_masters
                .unwrap_or(DEFAULT_ALLOW_DOWNSTREAM_MASTERS),
            client_timeout_s,
            max_delay_req_rate,
            upstream_max_delay_req_rate,
            max_delay_req_hold_ms,
            max_identities_per_mac,
            status_file,
            status_interval_s,
            metrics_file,
            promiscuous: self.promiscuous.unwrap_or(DEFAULT_PROMISCUOUS),
            user: self.user.map(user_name).transpose()?,
            realtime_priority: number(
                Key::RealtimePriority,
                self.realtime_priority.unwrap_or(DEFAULT_REALTIME_PRIORITY),
                REALTIME_PRIORITY_RANGE,
            )?,
            // No default: an absent key leaves the system's idle policy alone.
            cpu_latency_us: self
                .cpu_latency_us
                .map(|us| number(Key::CpuLatencyUs, us, CPU_LATENCY_US_RANGE))
                .transpose()?,
            bridge_ports: bridge_ports(self.bridge_ports)?,
            dump: self.dump.map(super::dump::validate).transpose()?,
            bridge_filter: bridge_filter(self.bridge_filter)?,
        })
    }
}

/// The residence ceiling: as written, above the hold by at least
/// [`MIN_RESIDENCE_ABOVE_HOLD_US`] (the range in the error says so), or the hold plus
/// [`DEFAULT_RESIDENCE_MARGIN_US`].
fn max_residence_us(written: Option<u32>, max_hold_us: u32) -> Result<u32, ConfigError> {
    let floor = max_hold_us + MIN_RESIDENCE_ABOVE_HOLD_US;
    let range = floor.max(*MAX_RESIDENCE_US_RANGE.start())..=*MAX_RESIDENCE_US_RANGE.end();
    match written {
        Some(us) => number(Key::MaxResidenceUs, us, range),
        None => Ok(max_hold_us + DEFAULT_RESIDENCE_MARGIN_US),
    }
}

/// The upstream pacing: a rate (or none) and its hold; pacing needs the residence correction,
/// which hands each client its Delay_Req's wait.
fn pacing(
    rate: Option<u32>,
    hold: Option<u32>,
    correction: Correction,
) -> Result<(Option<u32>, u32), ConfigError> {
    let rate = rate
        .map(|r| {
            number(
                Key::UpstreamMaxDelayReqRate,
                r,
                UPSTREAM_MAX_DELAY_REQ_RATE_RANGE,
            )
        })
        .transpose()?;
    let hold = number(
        Key::MaxDelayReqHoldMs,
        hold.unwrap_or(DEFAULT_MAX_DELAY_REQ_HOLD_MS),
        MAX_DELAY_REQ_HOLD_MS_RANGE,
    )?;
    if rate.is_some() && correction != Correction::Residence {
        return Err(ConfigError::PacingWithoutResidence);
    }
    Ok((rate, hold))
}

/// `error`, shown with `value` as the file wrote it.
pub(super) fn quoting(error: ConfigError, value: &str) -> ConfigRejection<'_> {
    ConfigRejection {
        error,
        context: Context::Value(value),
    }
}

/// `value` if within `range`; the error carries the range so its text matches the check.
fn number(key: Key, value: u32, range: RangeInclusive<u32>) -> Result<u32, ConfigError> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::OutOfRange {
            key,
            value,
            min: *range.start(),
            max: *range.end(),
        })
    }
}

/// The downstream interfaces: at least one, each a valid name, none twice, not the upstream.
fn downstream<'a>(
    names: Option<heapless::Vec<&'a str, MAX_DOWNSTREAM>>,
    upstream: &IfName,
) -> Result<heapless::Vec<IfName, MAX_DOWNSTREAM>, ConfigRejection<'a>> {
    let names = names.ok_or(ConfigError::Missing(Key::Downstream))?;
    if names.is_empty() {
        return Err(ConfigError::NoDownstream.into());
    }
    let mut downstream = heapless::Vec::new();
    for (i, &name) in names.iter().enumerate() {
        let ifname = interface(Key::Downstream, name)?;
        if ifname == *upstream {
            return Err(quoting(ConfigError::UpstreamAsDownstream, name));
        }
        if names.iter().take(i).any(|&earlier| earlier == name) {
            return Err(quoting(ConfigError::DownstreamTwice, name));
        }
        // Cannot fail: `names` has the same capacity.
        downstream.push(ifname).map_err(|_| TOO_MANY_DOWNSTREAM)?;
    }
    Ok(downstream)
}

/// A Linux interface name as the kernel's `dev_valid_name()` accepts it, minus ':' (alias
/// labels, which packet sockets cannot open) and minus '\' (JSON escapes are not decoded here).
fn interface(key: Key, name: &str) -> Result<IfName, ConfigRejection<'_>> {
    interface_name(name).map_err(|e| quoting(ConfigError::Interface(key, e), name))
}

fn interface_name(name: &str) -> Result<IfName, InterfaceError> {
    let too_long = InterfaceError::TooLong { len: name.len() };
    if name.is_empty() {
        return Err(InterfaceError::Empty);
    }
    if name.len() > IFNAME_MAX {
        return Err(too_long);
    }
    if name == "." || name == ".." {
        return Err(InterfaceError::NotAName);
    }
    for &b in name.as_bytes() {
        return Err(match b {
            b'/' => InterfaceError::Slash,
            b':' => InterfaceError::Colon,
            b'\\' => InterfaceError::Backslash,
            _ if b.is_ascii_whitespace() => InterfaceError::Space,
            _ if b.is_ascii_control() => InterfaceError::Control,
            _ => continue,
        });
    }
    // Cannot fail: the length was checked above.
    IfName::try_from(name).map_err(|_| too_long)
}

/// Domain numbers: at least one, each 0..=DOMAIN_MAX, none twice.
fn domain_list(numbers: &[u32]) -> Result<heapless::Vec<u8, MAX_DOMAINS>, ConfigError> {
    if numbers.is_empty() {
        return Err(ConfigError::NoDomains);
    }
    let mut out = heapless::Vec::new();
    for (i, &n) in numbers.iter().enumerate() {
        let above = ConfigError::DomainAbove {
            value: n,
            max: DOMAIN_MAX,
        };
        if n > DOMAIN_MAX {
            return Err(above);
        }
        let domain = u8::try_from(n).map_err(|_| above)?;
        if numbers.iter().take(i).any(|&earlier| earlier == n) {
            return Err(ConfigError::DomainTwice(domain));
        }
        out.push(domain).map_err(|_| TOO_MANY_DOMAINS)?;
    }
    Ok(out)
}

fn delay_resp(mode: Option<&str>) -> Result<DelayRespMode, ConfigRejection<'_>> {
    match mode {
        None => Ok(DEFAULT_DELAY_RESP),
        Some("steer") => Ok(DelayRespMode::Steer),
        Some("unicast") => Ok(DelayRespMode::Unicast),
        Some("flood") => Ok(DelayRespMode::Flood),
        Some(other) => Err(quoting(ConfigError::UnknownMode(Key::DelayResp), other)),
    }
}

fn correction(mode: Option<&str>) -> Result<Correction, ConfigRejection<'_>> {
    match mode {
        None => Ok(DEFAULT_CORRECTION),
        Some("none") => Ok(Correction::None),
        Some("residence") => Ok(Correction::Residence),
        Some(other) => Err(quoting(ConfigError::UnknownMode(Key::Correction), other)),
    }
}

fn bridge_ports(mode: Option<&str>) -> Result<BridgePorts, ConfigRejection<'_>> {
    match mode {
        None => Ok(DEFAULT_BRIDGE_PORTS),
        Some("filter") => Ok(BridgePorts::Filter),
        Some("leave") => Ok(BridgePorts::Leave),
        Some(other) => Err(quoting(ConfigError::UnknownMode(Key::BridgePorts), other)),
    }
}

fn bridge_filter(mode: Option<&str>) -> Result<BridgeFilter, ConfigRejection<'_>> {
    match mode {
        None => Ok(DEFAULT_BRIDGE_FILTER),
        Some("auto") => Ok(BridgeFilter::Auto),
        Some("tc") => Ok(BridgeFilter::Tc),
        Some("nftables") => Ok(BridgeFilter::Nftables),
        Some(other) => Err(quoting(ConfigError::UnknownMode(Key::BridgeFilter), other)),
    }
}

/// The status-file path: absolute, a file (not a directory), at most PATH_MAX bytes.
fn path(file: &str) -> Result<heapless::String<PATH_MAX>, ConfigRejection<'_>> {
    path_checked(file).map_err(|e| quoting(ConfigError::StatusFile(e), file))
}

/// The metrics-file path: like the status file's, and another file than it.
fn metrics_path<'a>(
    file: &'a str,
    status_file: &str,
) -> Result<heapless::String<PATH_MAX>, ConfigRejection<'a>> {
    let checked = path_checked(file).and_then(|p| {
        if p == status_file {
            Err(PathError::StatusFile)
        } else {
            Ok(p)
        }
    });
    checked.map_err(|e| quoting(ConfigError::MetricsFile(e), file))
}

pub(super) fn path_checked(file: &str) -> Result<heapless::String<PATH_MAX>, PathError> {
    let too_long = PathError::TooLong { len: file.len() };
    if !file.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if file.ends_with('/') {
        return Err(PathError::Directory);
    }
    if file.len() > PATH_MAX {
        return Err(too_long);
    }
    if file.contains('\\') {
        return Err(PathError::Backslash);
    }
    if file.bytes().any(|b| b.is_ascii_control()) {
        return Err(PathError::Control);
    }
    heapless::String::try_from(file).map_err(|_| too_long)
}

/// A login name as useradd accepts it: `[a-z_][a-z0-9_-]*`, at most USER_MAX bytes.
fn user_name(name: &str) -> Result<heapless::String<USER_MAX>, ConfigRejection<'_>> {
    let valid = name.bytes().enumerate().all(|(i, b)| {
        b.is_ascii_lowercase() || b == b'_' || (i > 0 && (b.is_ascii_digit() || b == b'-'))
    });
    match heapless::String::try_from(name) {
        Ok(s) if valid && !name.is_empty() => Ok(s),
        _ => Err(quoting(ConfigError::User, name)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::*;
    use crate::board;

    #[test]
    fn every_value_other_than_default_is_kept() {
        let json = concat!(
            "\u{feff}\n{\n",
            r#"  "promiscuous": true,"#,
            "\n",
            r#"  "downstream": ["lan3", "wan.100", "br-lan"], "upstream": "eth0","#,
            "\n",
            r#"  "domains": [24, 0, 254], "delay_resp": "unicast", "correction": "none","#,
            "\n",
            r#"  "allow_downstream_masters": true, "client_timeout_s": 2,"#,
            "\n",
            r#"  "max_delay_req_rate": 1024, "status_file": "/tmp/s.json","#,
            "\n",
            r#"  "status_interval_s": 3600"#,
            "\n}\n\t \r\n",
        );
        let config = Config::parse(json.as_bytes()).unwrap();
        assert_eq!(config.upstream, ifname("eth0"));
        let names: Vec<&str> = config.downstream.iter().map(|n| n.as_str()).collect();
        assert_eq!(names, ["lan3", "wan.100", "br-lan"]);
        assert_eq!(config.domains.as_slice(), [24, 0, 254]);
        assert_eq!(config.delay_resp, DelayRespMode::Unicast);
        assert!(config.allow_downstream_masters && config.promiscuous);
        assert_eq!(config.client_timeout_s, 2);
        assert_eq!(config.max_delay_req_rate, 1024);
        assert_eq!(config.status_file.as_str(), "/tmp/s.json");
        assert_eq!(config.metrics_file, None);
        let metrics = minimal_with(r#""metrics_file": "/var/run/ptpproxy/ptpproxy.prom""#);
        let metrics = Config::parse(metrics.as_bytes()).unwrap().metrics_file;
        assert_eq!(metrics.as_deref(), Some("/var/run/ptpproxy/ptpproxy.prom"));
        let same = error_of(&minimal_with(
            r#""metrics_file": "/var/run/ptpproxy/status.json""#,
        ));
        assert!(
            same.to_string().contains("the status file's path"),
            "{same}"
        );
        assert_eq!(config.status_interval_s, 3600);
        let flood = minimal_with(r#""delay_resp": "flood""#);
        assert_eq!(
            Config::parse(flood.as_bytes()).unwrap().delay_resp,
            DelayRespMode::Flood
        );
    }

    #[test]
    fn list_and_length_limits_are_accepted_and_one_past_is_rejected() {
        let max = board::MAX_PORTS - 1;
        let list = |n: usize| {
            (1..=n)
                .map(|i| format!("\"lan{i}\""))
                .collect::<Vec<_>>()
                .join(",")
        };
        let ports = |n| format!(r#"{{"upstream": "eth0", "downstream": [{}]}}"#, list(n));
        assert_eq!(
            Config::parse(ports(max).as_bytes())
                .unwrap()
                .downstream_count(),
            max
        );
        assert_eq!(field_of(&ports(max + 1)), "downstream");
        assert!(error_of(&ports(max + 1))
            .problem()
            .to_string()
            .contains(&format!("({max} at most)")));

        let domains = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        let ok = minimal_with(&format!(r#""domains": [{}]"#, domains(MAX_DOMAINS)));
        assert_eq!(
            Config::parse(ok.as_bytes()).unwrap().domains.len(),
            MAX_DOMAINS
        );
        let bad = minimal_with(&format!(r#""domains": [{}]"#, domains(MAX_DOMAINS + 1)));
        assert_eq!(field_of(&bad), "domains");
        assert!(error_of(&bad)
            .problem()
            .to_string()
            .contains(&format!("({MAX_DOMAINS} at most)")));

        let name15 = minimal_with(r#""status_interval_s": 1"#).replace("lan1", "abcdefghijklmno");
        assert_eq!(
            Config::parse(name15.as_bytes()).unwrap().downstream[0].len(),
            IFNAME_MAX
        );
        let path255 = format!("/{}", "p".repeat(PATH_MAX - 1));
        let ok = minimal_with(&format!(r#""status_file": "{path255}""#));
        assert_eq!(
            Config::parse(ok.as_bytes()).unwrap().status_file.len(),
            PATH_MAX
        );
    }

    #[test]
    fn range_texts_hold_the_constants() {
        // The error texts spell the ranges out; hold them to the constants.
        for (key, range) in [
            ("client_timeout_s", CLIENT_TIMEOUT_S_RANGE),
            ("max_delay_req_rate", MAX_DELAY_REQ_RATE_RANGE),
            ("status_interval_s", STATUS_INTERVAL_S_RANGE),
            ("domains", 0..=DOMAIN_MAX),
            ("sdo_id", SDO_ID_RANGE),
            ("max_identities_per_mac", MAX_IDENTITIES_PER_MAC_RANGE),
        ] {
            let setting = |n: u32| match key {
                "domains" => minimal_with(&format!(r#""domains": [{n}]"#)),
                _ => minimal_with(&format!(r#""{key}": {n}"#)),
            };
            for n in [*range.start(), *range.end()] {
                assert!(Config::parse(setting(n).as_bytes()).is_ok(), "{key}: {n}");
            }
            let above = setting(range.end() + 1);
            let e = Config::parse(above.as_bytes()).unwrap_err();
            assert_eq!(e.field(), key);
            assert!(
                e.problem().to_string().contains(&range.end().to_string()),
                "{e}"
            );
            let text = format!("{} to {}", range.start(), range.end());
            // A value of the wrong type gets the range in its message too.
            let quoted = setting(7).replace('7', "\"7\"");
            let e = Config::parse(quoted.as_bytes()).unwrap_err();
            assert_eq!(e.field(), key);
            assert!(e.problem().to_string().contains(&text), "{e}");
            if *range.start() > 0 {
                let below = setting(range.start() - 1);
                let e = Config::parse(below.as_bytes()).unwrap_err();
                assert_eq!(e.field(), key);
                assert!(e.problem().to_string().contains(&text), "{e}");
            }
        }
    }

    #[test]
    fn identities_per_mac_and_sdo_id() {
        let config = Config::parse(MINIMAL.as_bytes()).unwrap();
        assert_eq!((config.max_identities_per_mac, config.sdo_id), (8, 0));
        let config = Config::parse(
            minimal_with(r#""max_identities_per_mac": 40, "sdo_id": 256"#).as_bytes(),
        )
        .unwrap();
        assert_eq!((config.max_identities_per_mac, config.sdo_id), (40, 0x100));
        let max = board::MAX_CLIENTS;
        for bad in ["0".to_string(), (max + 1).to_string()] {
            let text = Config::parse(
                minimal_with(&format!(r#""max_identities_per_mac": {bad}"#)).as_bytes(),
            )
            .unwrap_err()
            .to_string();
            assert_eq!(
                text,
                format!(
                    "\"max_identities_per_mac\": out of range: 1 to {max} identities per source MAC \
                     (the client table's size); fix: use 8, or the number of clients behind one \
                     device that forwards their frames with its own MAC (a transparent clock, \
                     boundary clock or router)"
                )
            );
        }
        let text = Config::parse(minimal_with(r#""sdo_id": 4096"#).as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            text.starts_with("\"sdo_id\": out of range: 0 to 4095; fix: use 0"),
            "{text}"
        );
    }

    #[test]
    fn interface_rules_name_their_field() {
        #[rustfmt::skip]
        let files: &[(&str, &str)] = &[
            // required keys
            ("upstream", r#"{"downstream": ["lan1"]}"#),
            ("downstream", r#"{"upstream": "eth0"}"#),
            // interface names
            ("upstream", r#"{"upstream": 5, "downstream": ["lan1"]}"#),
            ("upstream", r#"{"upstream": null, "downstream": ["lan1"]}"#),
            ("upstream", r#"{"upstream": {"a": 1}, "downstream": ["lan1"]}"#),
            ("upstream", r#"{"upstream": "", "downstream": ["lan1"]}"#),
            ("upstream", r#"{"upstream": "abcdefghijklmnop", "downstream": ["lan1"]}"#),
            ("downstream", r#"{"upstream": "eth0", "downstream": ["abcdefghijklmnop"]}"#),
            ("upstream", r#"{"upstream": "eth/0", "downstream": ["lan1"]}"#),
            ("downstream", r#"{"upstream": "eth0", "downstream": ["lan1:1"]}"#),
            ("upstream", r#"{"upstream": "eth 0", "downstream": ["lan1"]}"#),
            ("upstream", "{\"upstream\": \"eth\t0\", \"downstream\": [\"lan1\"]}"),
            ("downstream", "{\"upstream\": \"eth0\", \"downstream\": [\"lan\u{1}\"]}"),
            ("upstream", r#"{"upstream": "eth\u0030", "downstream": ["lan1"]}"#),
            ("downstream", r#"{"upstream": "eth0", "downstream": [".."]}"#),
            ("downstream", r#"{"upstream": "eth0", "downstream": ["lan1", "lan2", "lan1"]}"#),
            ("downstream", r#"{"upstream": "eth0", "downstream": ["lan1", "eth0"]}"#),
            ("downstream", r#"{"upstream": "eth0", "downstream": []}"#),
            ("downstream", r#"{"upstream": "eth0", "downstream": "lan1"}"#),
            ("downstream", r#"{"upstream": "eth0", "downstream": [1]}"#),
        ];
        for &(field, json) in files {
            assert_rejected_as(field, json);
        }
    }

    #[test]
    fn setting_rules_name_their_field() {
        // Settings added to the minimal file, and the field the error must name.
        #[rustfmt::skip]
        let settings: &[(&str, &str)] = &[
            // domains
            ("domains", r#""domains": []"#),
            ("domains", r#""domains": [0, 256]"#),
            ("domains", r#""domains": [99999999999]"#),
            ("domains", r#""domains": [-1]"#),
            ("domains", r#""domains": ["0"]"#),
            ("domains", r#""domains": [1.5]"#),
            ("domains", r#""domains": [24, 0, 24]"#),
            ("domains", r#""domains": 0"#),
            // modes
            ("delay_resp", r#""delay_resp": "Steer""#),
            ("delay_resp", r#""delay_resp": 1"#),
            ("correction", r#""correction": "off""#),
            ("correction", r#""correction": false"#),
            // flags
            ("allow_downstream_masters", r#""allow_downstream_masters": "false""#),
            ("promiscuous", r#""promiscuous": 0"#),
            ("promiscuous", r#""promiscuous": ture"#),
            // numbers
            ("client_timeout_s", r#""client_timeout_s": 1"#),
            ("client_timeout_s", r#""client_timeout_s": 3601"#),
            ("client_timeout_s", r#""client_timeout_s": -60"#),
            ("client_timeout_s", r#""client_timeout_s": "60""#),
            ("client_timeout_s", r#""client_timeout_s": null"#),
            ("client_timeout_s", r#""client_timeout_s": 4294967296"#),
            ("max_delay_req_rate", r#""max_delay_req_rate": 0"#),
            ("max_delay_req_rate", r#""max_delay_req_rate": 1025"#),
            ("status_interval_s", r#""status_interval_s": 0"#),
            ("status_interval_s", r#""status_interval_s": 3601"#),
            // metrics file
            ("metrics_file", r#""metrics_file": "ptpproxy.prom""#),
            ("metrics_file", r#""metrics_file": "/var/run/ptpproxy/""#),
            ("metrics_file", r#""metrics_file": "/var/run/ptpproxy/status.json""#),
            ("metrics_file", r#""metrics_file": null"#),
            // status file
            ("status_file", r#""status_file": "status.json""#),
            ("status_file", r#""status_file": """#),
            ("status_file", r#""status_file": "/var/run/ptpproxy/""#),
            ("status_file", r#""status_file": "/tmp/a\"b""#),
            ("status_file", r#""status_file": ["/tmp/x"]"#),
        ];
        for &(field, setting) in settings {
            assert_rejected_as(field, &minimal_with(setting));
        }
        let long_path = format!(r#""status_file": "/{}""#, "p".repeat(PATH_MAX));
        assert_rejected_as("status_file", &minimal_with(&long_path));
    }

    #[test]
    fn user_names() {
        let with = |u: &str| Config::parse(minimal_with(&format!(r#""user": {u}"#)).as_bytes());
        assert_eq!(with(r#""nobody""#).unwrap().user.as_deref(), Some("nobody"));
        assert_eq!(
            with(r#""ptp-proxy_1""#).unwrap().user.as_deref(),
            Some("ptp-proxy_1")
        );
        for bad in [
            r#""""#,
            r#""Root""#,
            r#""1user""#,
            r#""a b""#,
            r#""-x""#,
            "0",
            r#""aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa""#,
        ] {
            assert_eq!(with(bad).unwrap_err().field(), "user", "{bad}");
        }
        assert_eq!(Config::parse(MINIMAL.as_bytes()).unwrap().user, None);
    }

    #[test]
    fn max_hold_us() {
        let with =
            |v: &str| Config::parse(minimal_with(&format!(r#""max_hold_us": {v}"#)).as_bytes());
        assert_eq!(Config::parse(MINIMAL.as_bytes()).unwrap().max_hold_us, 2000);
        assert_eq!(with("0").unwrap().max_hold_us, 0);
        assert_eq!(with("100000").unwrap().max_hold_us, 100_000);
        for bad in ["100001", "-1", "\"10\""] {
            assert_eq!(with(bad).unwrap_err().field(), "max_hold_us", "{bad}");
        }
        assert!(with("1.5").is_err());
    }

    #[test]
    fn max_residence_us() {
        let with = |v: &str| Config::parse(minimal_with(v).as_bytes());
        // Absent: the hold plus the margin, following the hold.
        assert_eq!(
            Config::parse(MINIMAL.as_bytes()).unwrap().max_residence_us,
            52_000
        );
        assert_eq!(
            with(r#""max_hold_us": 0"#).unwrap().max_residence_us,
            50_000
        );
        assert_eq!(
            with(r#""max_residence_us": 600000"#)
                .unwrap()
                .max_residence_us,
            600_000
        );
        assert_eq!(
            with(r#""max_residence_us": 3000"#)
                .unwrap()
                .max_residence_us,
            3000
        );
        for bad in ["2999", "999", "1000001", "-1", "\"10\""] {
            let e = with(&format!(r#""max_residence_us": {bad}"#)).unwrap_err();
            assert_eq!(e.field(), "max_residence_us", "{bad}");
        }
        assert!(with(r#""max_residence_us": 1.5"#).is_err());
        // Below the hold: the range in the message starts above it.
        let text = Config::parse_detailed(
            minimal_with(r#""max_hold_us": 40000, "max_residence_us": 40500"#).as_bytes(),
        )
        .unwrap_err()
        .to_string();
        assert!(text.contains("41000"), "{text}");
        assert!(text.contains("max_hold_us + 50000"), "{text}");
    }

    #[test]
    fn upstream_pacing() {
        let with = |v: &str| Config::parse(minimal_with(v).as_bytes());
        let minimal = Config::parse(MINIMAL.as_bytes()).unwrap();
        assert_eq!(minimal.upstream_max_delay_req_rate, None);
        assert_eq!(minimal.max_delay_req_hold_ms, 500);
        let c = with(r#""upstream_max_delay_req_rate": 4000, "max_delay_req_hold_ms": 200"#);
        let c = c.unwrap();
        assert_eq!(c.upstream_max_delay_req_rate, Some(4000));
        assert_eq!(c.max_delay_req_hold_ms, 200);
        for bad in ["9", "1000001", "-1", "\"4000\"", "null"] {
            let e = with(&format!(r#""upstream_max_delay_req_rate": {bad}"#)).unwrap_err();
            assert_eq!(e.field(), "upstream_max_delay_req_rate", "{bad}");
        }
        for bad in ["0", "901", "\"500\""] {
            let e = with(&format!(r#""max_delay_req_hold_ms": {bad}"#)).unwrap_err();
            assert_eq!(e.field(), "max_delay_req_hold_ms", "{bad}");
        }
        let e = with(r#""upstream_max_delay_req_rate": 4000, "correction": "none""#).unwrap_err();
        assert_eq!(e, ConfigError::PacingWithoutResidence);
        assert!(e.to_string().contains("\"residence\""), "{e}");
        // A hold alone is harmless without a rate.
        assert!(with(r#""max_delay_req_hold_ms": 100, "correction": "none""#).is_ok());
    }

    #[test]
    fn realtime_priority() {
        let with = |v: &str| {
            Config::parse(minimal_with(&format!(r#""realtime_priority": {v}"#)).as_bytes())
        };
        assert_eq!(with("0").unwrap().realtime_priority, 0);
        assert_eq!(with("99").unwrap().realtime_priority, 99);
        for bad in ["100", "-1", "\"10\"", "1.5"] {
            assert!(with(bad).is_err(), "{bad}");
        }
        assert_eq!(with("100").unwrap_err().field(), "realtime_priority");
    }

    #[test]
    fn cpu_latency_us() {
        let with =
            |v: &str| Config::parse(minimal_with(&format!(r#""cpu_latency_us": {v}"#)).as_bytes());
        assert_eq!(with("0").unwrap().cpu_latency_us, Some(0));
        assert_eq!(with("1000000").unwrap().cpu_latency_us, Some(1_000_000));
        for bad in ["1000001", "-1", "\"10\"", "1.5", "null"] {
            assert!(with(bad).is_err(), "{bad}");
        }
        assert_eq!(with("1000001").unwrap_err().field(), "cpu_latency_us");
        assert_eq!(
            Config::parse(MINIMAL.as_bytes()).unwrap().cpu_latency_us,
            None
        );
    }

    #[test]
    fn bridge_ports() {
        let with =
            |v: &str| Config::parse(minimal_with(&format!(r#""bridge_ports": {v}"#)).as_bytes());
        assert_eq!(
            Config::parse(MINIMAL.as_bytes()).unwrap().bridge_ports,
            BridgePorts::Filter
        );
        assert_eq!(
            with("\"filter\"").unwrap().bridge_ports,
            BridgePorts::Filter
        );
        assert_eq!(with("\"leave\"").unwrap().bridge_ports, BridgePorts::Leave);
        for bad in ["\"Filter\"", "\"off\"", "true", "1"] {
            assert_rejected_as(
                "bridge_ports",
                &minimal_with(&format!(r#""bridge_ports": {bad}"#)),
            );
        }
        let text = Config::parse_detailed(minimal_with(r#""bridge_ports": "off""#).as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("\"filter\"") && text.contains("\"leave\""),
            "{text}"
        );
    }

    #[test]
    fn bridge_filter() {
        let with =
            |v: &str| Config::parse(minimal_with(&format!(r#""bridge_filter": {v}"#)).as_bytes());
        assert_eq!(
            Config::parse(MINIMAL.as_bytes()).unwrap().bridge_filter,
            BridgeFilter::Auto
        );
        assert_eq!(with("\"auto\"").unwrap().bridge_filter, BridgeFilter::Auto);
        assert_eq!(with("\"tc\"").unwrap().bridge_filter, BridgeFilter::Tc);
        assert_eq!(
            with("\"nftables\"").unwrap().bridge_filter,
            BridgeFilter::Nftables
        );
        for bad in ["\"nft\"", "\"TC\"", "true", "0"] {
            assert_rejected_as(
                "bridge_filter",
                &minimal_with(&format!(r#""bridge_filter": {bad}"#)),
            );
        }
        let text = Config::parse_detailed(minimal_with(r#""bridge_filter": "nft""#).as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("\"nftables\"") && text.contains("\"tc\""),
            "{text}"
        );
    }
}
