//! The reader: a hand-written serde visitor that reads the file's one JSON object into [`Raw`]
//! (strings borrowed from the input, `None` for an absent key), rejecting unknown and repeated
//! keys and over-long lists, and naming the key at fault when serde-json-core fails.
//!
//! It only reads: it applies no default and judges no value beyond its JSON type, and it never
//! allocates (no unescape buffer, `heapless` lists).
//!
//! Why not `#[derive(Deserialize)] #[serde(deny_unknown_fields)]`: serde-json-core 0.7 errors
//! carry no position and no text. Without its `custom-error-messages` feature the derived code
//! reports unknown, missing and repeated keys and over-long lists all as one anonymous
//! `CustomError`; with the feature, serde-json-core writes the message into a 64-byte
//! `heapless::String` and `unwrap()`s, which panics on serde's unknown-field message (it lists
//! every valid key, well over 64 bytes). So the feature stays off, and the visitor rejects
//! unknown keys itself (the effect of `deny_unknown_fields`) while a [`Trace`] notes the key it
//! is reading, so that a wrong type, a syntax error inside a value or an unknown key is named.

use super::dump::{self, DumpError, DumpKey, RawDump};
use super::error::{ConfigError, ConfigRejection, Context, FileError, ValueError};
use super::schema::{Key, KEYS, MAX_DOMAINS, MAX_DOWNSTREAM};
use core::fmt;
use core::marker::PhantomData;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json_core::de::Error as JsonError;

/// One `downstream` entry too many.
pub(super) const TOO_MANY_DOWNSTREAM: ConfigError = ConfigError::TooMany {
    key: Key::Downstream,
    max: MAX_DOWNSTREAM,
};
/// One `domains` entry too many.
pub(super) const TOO_MANY_DOMAINS: ConfigError = ConfigError::TooMany {
    key: Key::Domains,
    max: MAX_DOMAINS,
};

const _: () = assert!(KEYS.len() < 32, "Trace::seen is a u32 bit set");

/// The file as written: strings borrowed from it, `None` for an absent key.
#[derive(Default)]
pub(super) struct Raw<'a> {
    pub upstream: Option<&'a str>,
    pub downstream: Option<heapless::Vec<&'a str, MAX_DOWNSTREAM>>,
    // u32, not u8, so that 300 gets the range message rather than a type error.
    pub domains: Option<heapless::Vec<u32, MAX_DOMAINS>>,
    pub sdo_id: Option<u32>,
    pub delay_resp: Option<&'a str>,
    pub correction: Option<&'a str>,
    pub allow_downstream_masters: Option<bool>,
    pub client_timeout_s: Option<u32>,
    pub max_delay_req_rate: Option<u32>,
    pub upstream_max_delay_req_rate: Option<u32>,
    pub max_delay_req_hold_ms: Option<u32>,
    pub max_identities_per_mac: Option<u32>,
    pub status_file: Option<&'a str>,
    pub status_interval_s: Option<u32>,
    pub metrics_file: Option<&'a str>,
    pub promiscuous: Option<bool>,
    pub user: Option<&'a str>,
    pub realtime_priority: Option<u32>,
    pub cpu_latency_us: Option<u32>,
    pub max_hold_us: Option<u32>,
    pub max_residence_us: Option<u32>,
    pub bridge_ports: Option<&'a str>,
    pub dump: Option<RawDump<'a>>,
    pub bridge_filter: Option<&'a str>,
}

/// Read `json` (not empty, byte-order mark removed) into a [`Raw`].
pub(super) fn read(json: &[u8]) -> Result<Raw<'_>, ConfigRejection<'_>> {
    let mut raw = Raw::default();
    let mut trace = Trace::default();
    // No unescape buffer: strings stay borrowed, escapes undecoded (names, paths reject '\').
    let mut de = serde_json_core::de::Deserializer::new(json, None);
    let read = Reader {
        raw: &mut raw,
        trace: &mut trace,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end()); // trailing whitespace is fine, anything else is not
    match read {
        Ok(_) => Ok(raw),
        Err(e) => Err(trace.explain(&e, json.trim_ascii_end().ends_with(b"}"))),
    }
}

fn bit(key: Key) -> u32 {
    1 << key as u32
}

/// Where the reader is, so that a bare serde-json-core error can be pinned on a key.
#[derive(Default)]
pub(super) struct Trace<'a> {
    /// The key whose value is being read.
    reading: Option<Key>,
    /// The last key whose value was read completely.
    last: Option<Key>,
    /// Keys seen so far, one bit per [`Key`].
    seen: u32,
    /// Set when the reader itself stopped (unknown or repeated key, list too long); the
    /// error serde-json-core returns then is only a `CustomError`.
    rejected: Option<ConfigRejection<'a>>,
    /// Inside `"dump"`: the key of that object whose value is being read.
    pub(super) dump_key: Option<DumpKey>,
}

impl<'a> Trace<'a> {
    /// Stop reading: remember why and hand serde an error to unwind with.
    pub(super) fn reject<E: de::Error>(&mut self, rejection: ConfigRejection<'a>) -> E {
        self.rejected = Some(rejection);
        // Short: with `custom-error-messages` this lands in a 64-byte buffer that unwrap()s.
        E::custom("rejected")
    }

    /// Turn a serde-json-core error into the user's message. `closed`: the file ends in '}'.
    fn explain(&self, error: &JsonError, closed: bool) -> ConfigRejection<'a> {
        if let Some(rejection) = self.rejected {
            return rejection;
        }
        let error = match self.reading {
            _ if truncated(error, closed) => ConfigError::File(FileError::Truncated),
            Some(Key::Dump) => ConfigError::Dump(DumpError::WrongType(self.dump_key)),
            Some(key) => ConfigError::Value(key, value_error(error)),
            None => ConfigError::File(file_error(error, self.last.is_none())),
        };
        // A key-level error names its key already; "near" helps only for the whole-file ones.
        let context = match (error, self.reading.or(self.last)) {
            (ConfigError::File(_), Some(key)) => Context::Near(key.name()),
            _ => Context::None,
        };
        ConfigRejection { error, context }
    }
}

/// Whether the file ended before the object did. `closed`: the file ends in '}'.
fn truncated(error: &JsonError, closed: bool) -> bool {
    match error {
        // A file cut inside `true`/`false` fails as a bad literal, not at the end of input.
        JsonError::ExpectedSomeIdent => !closed,
        JsonError::EofWhileParsingList
        | JsonError::EofWhileParsingObject
        | JsonError::EofWhileParsingString
        | JsonError::EofWhileParsingNumber
        | JsonError::EofWhileParsingValue => true,
        _ => false,
    }
}

/// A failure while reading a key's value.
fn value_error(error: &JsonError) -> ValueError {
    match error {
        JsonError::ExpectedColon => ValueError::NoColon,
        JsonError::ExpectedListCommaOrEnd => ValueError::ListSyntax,
        JsonError::TrailingComma => ValueError::TrailingComma,
        JsonError::InvalidUnicodeCodePoint => ValueError::NotUtf8,
        _ => ValueError::WrongType,
    }
}

/// A failure between the settings. `at_start`: no setting was read yet.
fn file_error(error: &JsonError, at_start: bool) -> FileError {
    match error {
        JsonError::InvalidType if at_start => FileError::NotAnObject,
        JsonError::ExpectedObjectCommaOrEnd => FileError::ValueNotFollowed,
        JsonError::KeyMustBeAString => FileError::KeyNotQuoted,
        JsonError::TrailingComma => FileError::TrailingComma,
        JsonError::TrailingCharacters => FileError::TrailingText,
        JsonError::InvalidUnicodeCodePoint => FileError::KeyNotUtf8,
        _ => FileError::NotJson,
    }
}

/// Reads the top-level object into [`Raw`]: the `deny_unknown_fields` of this module.
struct Reader<'a, 'r> {
    raw: &'r mut Raw<'a>,
    trace: &'r mut Trace<'a>,
}

impl<'de> DeserializeSeed<'de> for Reader<'de, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Reader<'de, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a ptpproxy configuration object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Reader { raw, trace } = self;
        while let Some(name) = map.next_key::<&'de str>()? {
            let Some(key) = Key::from_name(name) else {
                let error = ConfigError::UnknownKey;
                let context = Context::UnknownKey(name);
                return Err(trace.reject(ConfigRejection { error, context }));
            };
            if trace.seen & bit(key) != 0 {
                return Err(trace.reject(ConfigError::SetTwice(key).into()));
            }
            trace.seen |= bit(key);
            trace.reading = Some(key);
            read_value(key, raw, trace, &mut map)?;
            trace.reading = None;
            trace.last = Some(key);
        }
        Ok(())
    }
}

/// Read the value of `key` into its field of `raw`.
fn read_value<'de, A: MapAccess<'de>>(
    key: Key,
    raw: &mut Raw<'de>,
    trace: &mut Trace<'de>,
    map: &mut A,
) -> Result<(), A::Error> {
    match key {
        Key::Upstream => raw.upstream = Some(map.next_value()?),
        Key::Downstream => {
            raw.downstream = Some(map.next_value_seed(List::new(trace, TOO_MANY_DOWNSTREAM))?)
        }
        Key::Domains => {
            raw.domains = Some(map.next_value_seed(List::new(trace, TOO_MANY_DOMAINS))?)
        }
        Key::SdoId => raw.sdo_id = Some(map.next_value()?),
        Key::DelayResp => raw.delay_resp = Some(map.next_value()?),
        Key::Correction => raw.correction = Some(map.next_value()?),
        Key::AllowDownstreamMasters => raw.allow_downstream_masters = Some(map.next_value()?),
        Key::ClientTimeoutS => raw.client_timeout_s = Some(map.next_value()?),
        Key::MaxDelayReqRate => raw.max_delay_req_rate = Some(map.next_value()?),
        Key::UpstreamMaxDelayReqRate => raw.upstream_max_delay_req_rate = Some(map.next_value()?),
        Key::MaxDelayReqHoldMs => raw.max_delay_req_hold_ms = Some(map.next_value()?),
        Key::MaxIdentitiesPerMac => raw.max_identities_per_mac = Some(map.next_value()?),
        Key::StatusFile => raw.status_file = Some(map.next_value()?),
        Key::StatusIntervalS => raw.status_interval_s = Some(map.next_value()?),
        Key::MetricsFile => raw.metrics_file = Some(map.next_value()?),
        Key::Promiscuous => raw.promiscuous = Some(map.next_value()?),
        Key::User => raw.user = Some(map.next_value()?),
        Key::RealtimePriority => raw.realtime_priority = Some(map.next_value()?),
        Key::CpuLatencyUs => raw.cpu_latency_us = Some(map.next_value()?),
        Key::MaxHoldUs => raw.max_hold_us = Some(map.next_value()?),
        Key::MaxResidenceUs => raw.max_residence_us = Some(map.next_value()?),
        Key::BridgePorts => raw.bridge_ports = Some(map.next_value()?),
        Key::Dump => raw.dump = Some(map.next_value_seed(dump::Reader { trace })?),
        Key::BridgeFilter => raw.bridge_filter = Some(map.next_value()?),
    }
    Ok(())
}

/// Reads a JSON list into a `heapless::Vec`, rejecting one entry too many with `too_many`
/// (heapless' own serde support would say only `CustomError`).
struct List<'t, 'a, T, const N: usize> {
    trace: &'t mut Trace<'a>,
    too_many: ConfigError,
    item: PhantomData<T>,
}

impl<'t, 'a, T, const N: usize> List<'t, 'a, T, N> {
    fn new(trace: &'t mut Trace<'a>, too_many: ConfigError) -> Self {
        List {
            trace,
            too_many,
            item: PhantomData,
        }
    }
}

impl<'de, T: de::Deserialize<'de>, const N: usize> DeserializeSeed<'de> for List<'_, 'de, T, N> {
    type Value = heapless::Vec<T, N>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, T: de::Deserialize<'de>, const N: usize> Visitor<'de> for List<'_, 'de, T, N> {
    type Value = heapless::Vec<T, N>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = heapless::Vec::new();
        while let Some(item) = seq.next_element()? {
            if items.push(item).is_err() {
                return Err(self.trace.reject(self.too_many.into()));
            }
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{Config, FILE_FIELD, UNKNOWN_KEY_FIELD};

    #[test]
    fn syntax_errors_name_the_file_or_the_key() {
        // Whole files, and the field the error must name.
        #[rustfmt::skip]
        let files: &[(&str, &str)] = &[
            (FILE_FIELD, ""),
            (FILE_FIELD, " \n\t"),
            (FILE_FIELD, r#"["eth0"]"#),
            (FILE_FIELD, "null"),
            (FILE_FIELD, r#"{"upstream": "eth0", "downstream": ["lan1"]"#),      // truncated
            (FILE_FIELD, r#"{"upstream": "eth0" "downstream": ["lan1"]}"#),      // missing ','
            (FILE_FIELD, r#"{'upstream': 'eth0', 'downstream': ['lan1']}"#),
            (FILE_FIELD, r#"{"upstream": "eth0", "downstream": ["lan1"],}"#),
            (FILE_FIELD, r#"{"upstream": "eth0", "downstream": ["lan1"]} x"#),
            (FILE_FIELD, r#"{"upstream": "eth0", "downstream": ["lan1"]}{}"#),
            ("upstream", r#"{"upstream" "eth0", "downstream": ["lan1"]}"#),      // missing ':'
            ("downstream", r#"{"upstream": "eth0", "downstream": ["lan1",]}"#),
            ("downstream", r#"{"upstream": "eth0", "downstream": ["a" "b"]}"#),
        ];
        for &(field, json) in files {
            assert_rejected_as(field, json);
        }
        assert_rejected_as(FILE_FIELD, &minimal_with(r#""client_timeout_s": 60.5"#)); // stops at '.'
        let not_utf8 = b"{\"upstream\": \"eth\xff\", \"downstream\": [\"lan1\"]}";
        assert_eq!(Config::parse(not_utf8).unwrap_err().field(), "upstream");
        let key_not_utf8 = b"{\"upstream\": \"eth0\", \"\xc3\": 1}";
        assert_eq!(Config::parse(key_not_utf8).unwrap_err().field(), FILE_FIELD);
    }

    #[test]
    fn unknown_and_repeated_keys_are_rejected() {
        #[rustfmt::skip]
        let settings: &[(&str, &str)] = &[
            (UNKNOWN_KEY_FIELD, r#""colour": "red""#),
            (UNKNOWN_KEY_FIELD, r#""Promiscuous": true"#),                       // case matters
            (UNKNOWN_KEY_FIELD, r#""ports": [1, [2]]"#),
            ("upstream", r#""upstream": "eth1""#),                                // set twice
        ];
        for &(field, setting) in settings {
            assert_rejected_as(field, &minimal_with(setting));
        }
    }

    #[test]
    fn every_prefix_is_rejected_as_a_file_error() {
        for n in 0..EXAMPLE.len() {
            let prefix = &EXAMPLE.as_bytes()[..n];
            match Config::parse_detailed(prefix) {
                Ok(c) => panic!("accepted {n} bytes: {c:?}"),
                Err(r) => assert_eq!(r.error.field(), FILE_FIELD, "{n} bytes: {r}"),
            }
        }
        let ws = format!("  \r\n{EXAMPLE}\n\t \r\n");
        assert!(Config::parse(ws.as_bytes()).is_ok());
    }

    #[test]
    fn one_byte_mutations_do_not_panic() {
        let mut bytes = EXAMPLE.as_bytes().to_vec();
        for i in 0..bytes.len() {
            let original = bytes[i];
            for b in *b"{}[],:\"\\ 0x-.\x00\xff" {
                bytes[i] = b;
                if let Err(r) = Config::parse_detailed(&bytes) {
                    let _ = r.to_string();
                }
            }
            bytes[i] = original;
        }
    }
}
