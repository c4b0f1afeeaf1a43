//! Files and helpers the configuration tests share.

use super::*;

/// The example of the user contract, verbatim.
pub const EXAMPLE: &str = concat!(
    r#"{"upstream": "eth0", "downstream": ["lan1", "lan2"], "domains": [0], "#,
    r#""delay_resp": "steer", "correction": "residence", "max_hold_us": 2000, "#,
    r#""allow_downstream_masters": false, "#,
    r#""client_timeout_s": 60, "max_delay_req_rate": 128, "#,
    r#""status_file": "/var/run/ptpproxy/status.json", "status_interval_s": 5, "#,
    r#""promiscuous": false}"#,
);

pub const MINIMAL: &str = r#"{"upstream":"eth0","downstream":["lan1"]}"#;

pub fn ifname(s: &str) -> IfName {
    IfName::try_from(s).unwrap()
}

/// The minimal file plus one more setting.
pub fn minimal_with(setting: &str) -> String {
    format!(r#"{{"upstream": "eth0", "downstream": ["lan1"], {setting}}}"#)
}

/// The error for a file that must be rejected.
pub fn error_of(json: &str) -> ConfigError {
    match Config::parse(json.as_bytes()) {
        Ok(config) => panic!("accepted {json}: {config:?}"),
        Err(e) => e,
    }
}

pub fn field_of(json: &str) -> &'static str {
    error_of(json).field()
}

/// `json` is rejected naming `field`, with a problem and a fix, and the detailed form agrees
/// and prints.
pub fn assert_rejected_as(field: &str, json: &str) {
    let e = error_of(json);
    assert_eq!(e.field(), field, "{json} -> {e}");
    assert!(
        !e.problem().to_string().is_empty() && !e.fix().is_empty(),
        "{json}"
    );
    let detailed = Config::parse_detailed(json.as_bytes()).unwrap_err();
    assert_eq!(detailed.error, e, "{json}");
    assert!(!detailed.to_string().is_empty());
}
