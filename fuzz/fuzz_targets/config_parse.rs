//! Arbitrary bytes as a configuration file. `Config::parse_detailed` must never panic, its
//! rejection must print as one line, and an accepted configuration must satisfy every rule of
//! README.md's configuration table (so the relay can trust it without checking again).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ptpproxy::board;
use ptpproxy::config::{
    Config, CLIENT_TIMEOUT_S_RANGE, IFNAME_MAX, MAX_DELAY_REQ_RATE_RANGE, MAX_DOMAINS,
    STATUS_INTERVAL_S_RANGE,
};

fuzz_target!(|data: &[u8]| {
    let detailed = Config::parse_detailed(data);
    assert_eq!(Config::parse(data), detailed.clone().map_err(|r| r.error));
    match detailed {
        Err(r) => {
            let line = r.to_string();
            assert!(!line.contains('\n'), "a rejection is one line: {line:?}");
            assert!(!r.error.field().is_empty() && !r.error.fix().is_empty());
        }
        Ok(c) => {
            let name_ok = |n: &str| !n.is_empty() && n.len() <= IFNAME_MAX;
            assert!(name_ok(&c.upstream));
            assert!(!c.downstream.is_empty() && c.downstream.len() < board::MAX_PORTS);
            for (i, n) in c.downstream.iter().enumerate() {
                assert!(name_ok(n));
                assert_ne!(n, &c.upstream);
                assert!(!c.downstream[..i].contains(n), "{n} listed twice");
            }
            assert!(!c.domains.is_empty() && c.domains.len() <= MAX_DOMAINS);
            assert!(CLIENT_TIMEOUT_S_RANGE.contains(&c.client_timeout_s));
            assert!(MAX_DELAY_REQ_RATE_RANGE.contains(&c.max_delay_req_rate));
            assert!(STATUS_INTERVAL_S_RANGE.contains(&c.status_interval_s));
            assert!(!c.status_file.is_empty());
            assert_eq!(c.downstream_count(), c.downstream.len());
            assert_eq!(c.port_names().count(), 1 + c.downstream.len());
        }
    }
});
