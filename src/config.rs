//! The JSON configuration: parsed with serde-json-core into fixed-capacity types, unknown keys
//! rejected, then validated. A bad file yields one [`ConfigError`] naming the field and the fix.
//!
//! Two steps, neither of which allocates: a hand-written serde visitor reads the file into the
//! private struct `Raw` (strings borrowed from the input, `None` for an absent key), then
//! `Raw::validate` applies the defaults and the rules and builds a [`Config`].
//!
//! Why not `#[derive(Deserialize)] #[serde(deny_unknown_fields)]`: serde-json-core 0.7 errors
//! carry no position and no text. Without its `custom-error-messages` feature the derived code
//! reports unknown, missing and repeated keys and over-long lists all as one anonymous
//! `CustomError`; with the feature, serde-json-core writes the message into a 64-byte
//! `heapless::String` and `unwrap()`s, which panics on serde's unknown-field message (it lists
//! every valid key, well over 64 bytes). So the feature stays off, and the visitor rejects
//! unknown keys itself (the effect of `deny_unknown_fields`) while a `Trace` notes the key it is
//! reading, so that a wrong type, a syntax error inside a value or an unknown key is named.
//!
//! `ConfigError` holds only `&'static str`, so it cannot quote the file; [`Config::parse_detailed`]
//! returns a [`ConfigRejection`] that adds the unknown key, the bad value, or the setting near a
//! syntax error, borrowed from the input.

use crate::board;
use core::fmt;
use core::marker::PhantomData;
use core::ops::RangeInclusive;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// Longest Linux interface name (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;
/// Most PTP domains one relay serves.
pub const MAX_DOMAINS: usize = 8;
/// Longest status-file path.
pub const PATH_MAX: usize = 255;

pub type IfName = heapless::String<IFNAME_MAX>;

/// Where a Delay_Resp goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DelayRespMode {
    /// Only to the downstream port of the client that asked (default).
    Steer,
    /// As `Steer`, and the destination MAC becomes the client's own MAC.
    Unicast,
    /// To every downstream port (for comparison and diagnosis).
    Flood,
}

/// Residence-time correction of relayed event messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Correction {
    /// Frames keep their correctionField.
    None,
    /// ptpproxy adds its residence time (a software end-to-end transparent clock).
    Residence,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub upstream: IfName,
    pub downstream: heapless::Vec<IfName, { board::MAX_PORTS - 1 }>,
    pub domains: heapless::Vec<u8, MAX_DOMAINS>,
    pub delay_resp: DelayRespMode,
    pub correction: Correction,
    pub allow_downstream_masters: bool,
    pub client_timeout_s: u32,
    pub max_delay_req_rate: u32,
    pub status_file: heapless::String<PATH_MAX>,
    pub status_interval_s: u32,
    /// Capture in promiscuous mode instead of joining the PTP multicast groups.
    pub promiscuous: bool,
    /// Unprivileged user to run as once the ports are open (CAP_NET_RAW is kept).
    pub user: Option<heapless::String<USER_MAX>>,
    /// SCHED_FIFO priority (1..=99) with memory locked, or 0 for the normal scheduler.
    pub realtime_priority: u32,
    /// A CPU wake-up latency limit in microseconds to hold while running (the kernel's PM QoS
    /// request, /dev/cpu_dma_latency): idle CPUs then stay in states they leave that fast.
    /// `None`: the system's idle policy is left alone.
    pub cpu_latency_us: Option<u32>,
}

/// A rejected configuration: which field, what is wrong, how to fix it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub field: &'static str,
    pub problem: &'static str,
    pub fix: &'static str,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\": {}; fix: {}", self.field, self.problem, self.fix)
    }
}

/// A [`ConfigError`] together with what the file itself says about it, borrowed from the input
/// (a `ConfigError` holds only `&'static str`, so it cannot quote the file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigRejection<'a> {
    pub error: ConfigError,
    pub context: Context<'a>,
}

/// Text from the file that locates a [`ConfigError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context<'a> {
    /// Nothing to add.
    None,
    /// An unknown key, as written; shown in place of the error's `field`.
    UnknownKey(&'a str),
    /// The value at fault, as written (an interface name, a mode, the path).
    Value(&'a str),
    /// The setting being read, or last read, when a syntax error or the end of the file came.
    /// serde-json-core reports no byte position, so this is the best "where" there is.
    Near(&'static str),
}

impl From<ConfigError> for ConfigRejection<'_> {
    fn from(error: ConfigError) -> Self {
        ConfigRejection {
            error,
            context: Context::None,
        }
    }
}

impl fmt::Display for ConfigRejection<'_> {
    /// The one line a user sees: `"<field>": <problem> (<context>); fix: <fix>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.error;
        match self.context {
            Context::None => fmt::Display::fmt(e, f),
            Context::UnknownKey(key) => write!(f, "{}: {}; fix: {}", Quoted(key), e.problem, e.fix),
            Context::Value(value) => {
                write!(
                    f,
                    "\"{}\": {} ({}); fix: {}",
                    e.field,
                    e.problem,
                    Quoted(value),
                    e.fix
                )
            }
            Context::Near(key) => {
                write!(
                    f,
                    "\"{}\": {} (near \"{}\"); fix: {}",
                    e.field, e.problem, key, e.fix
                )
            }
        }
    }
}

/// Text from the file, quoted with control characters escaped and cut to a readable length, so a
/// hostile or binary file cannot garble the log line.
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN_CHARS: usize = 40;
        // `char_indices` yields char boundaries only, so the slice cannot panic.
        let cut = match self.0.char_indices().nth(SHOWN_CHARS) {
            Some((end, _)) => self.0.get(..end).unwrap_or(self.0),
            None => self.0,
        };
        write!(f, "{cut:?}")?;
        if cut.len() < self.0.len() {
            f.write_str("...")?;
        }
        Ok(())
    }
}

/// `field` of errors about the file as a whole (syntax, truncation, not an object).
pub const FILE_FIELD: &str = "(file)";
/// `field` of the error for an unknown key ([`ConfigRejection`] shows the key itself).
pub const UNKNOWN_KEY_FIELD: &str = "(unknown key)";

/// Every key a configuration file may contain, in the order of the documentation.
pub const KEYS: [&str; 14] = [
    "upstream",
    "downstream",
    "domains",
    "delay_resp",
    "correction",
    "allow_downstream_masters",
    "client_timeout_s",
    "max_delay_req_rate",
    "status_file",
    "status_interval_s",
    "promiscuous",
    "user",
    "realtime_priority",
    "cpu_latency_us",
];

// Defaults for the optional keys (`upstream` and `downstream` have none).
pub const DEFAULT_DOMAINS: [u8; 1] = [0];
pub const DEFAULT_DELAY_RESP: DelayRespMode = DelayRespMode::Steer;
pub const DEFAULT_CORRECTION: Correction = Correction::None;
pub const DEFAULT_ALLOW_DOWNSTREAM_MASTERS: bool = false;
pub const DEFAULT_CLIENT_TIMEOUT_S: u32 = 60;
pub const DEFAULT_MAX_DELAY_REQ_RATE: u32 = 128;
pub const DEFAULT_STATUS_FILE: &str = "/var/run/ptpproxy/status.json";
pub const DEFAULT_STATUS_INTERVAL_S: u32 = 5;
pub const DEFAULT_PROMISCUOUS: bool = false;
pub const DEFAULT_REALTIME_PRIORITY: u32 = 0;
/// SCHED_FIFO priorities (0: the normal scheduler).
pub const REALTIME_PRIORITY_RANGE: RangeInclusive<u32> = 0..=99;
/// CPU wake-up latency limits, microseconds (0: idle CPUs poll instead of sleeping).
pub const CPU_LATENCY_US_RANGE: RangeInclusive<u32> = 0..=1_000_000;
/// Longest user name (useradd's limit).
pub const USER_MAX: usize = 32;

// Accepted ranges. The error texts spell these numbers out; the tests hold them together.
/// Seconds of silence after which a client is forgotten.
pub const CLIENT_TIMEOUT_S_RANGE: RangeInclusive<u32> = 2..=3600;
/// Delay_Req per second per client; PTP profiles send at most 128.
pub const MAX_DELAY_REQ_RATE_RANGE: RangeInclusive<u32> = 1..=1024;
/// Seconds between status-file writes.
pub const STATUS_INTERVAL_S_RANGE: RangeInclusive<u32> = 1..=3600;
/// Largest domainNumber. All of 0..=255 is accepted: IEEE 1588 (Table 2) reserves 128..=255,
/// but profiles use them (IEEE C37.238-2017, the power profile, defaults to 254; linuxptp
/// accepts 0..=255), and a relay only compares the number, it gives it no meaning.
pub const DOMAIN_MAX: u32 = 255;

/// Most downstream ports the board supports (one port is the upstream).
const MAX_DOWNSTREAM: usize = board::MAX_PORTS - 1;

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
            return Err(ConfigError {
                field: FILE_FIELD,
                problem: "the file is empty",
                fix: "write at least {\"upstream\": \"eth0\", \"downstream\": [\"lan1\"]}",
            }
            .into());
        }
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
            Ok(_) => raw.validate(),
            Err(e) => Err(trace.explain(&e, json.trim_ascii_end().ends_with(b"}"))),
        }
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

/// The keys, as an enum; the discriminant indexes [`KEYS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    Upstream,
    Downstream,
    Domains,
    DelayResp,
    Correction,
    AllowDownstreamMasters,
    ClientTimeoutS,
    MaxDelayReqRate,
    StatusFile,
    StatusIntervalS,
    Promiscuous,
    User,
    RealtimePriority,
    CpuLatencyUs,
}

impl Key {
    const ALL: [Key; KEYS.len()] = [
        Key::Upstream,
        Key::Downstream,
        Key::Domains,
        Key::DelayResp,
        Key::Correction,
        Key::AllowDownstreamMasters,
        Key::ClientTimeoutS,
        Key::MaxDelayReqRate,
        Key::StatusFile,
        Key::StatusIntervalS,
        Key::Promiscuous,
        Key::User,
        Key::RealtimePriority,
        Key::CpuLatencyUs,
    ];

    fn name(self) -> &'static str {
        KEYS[self as usize]
    }

    fn from_name(name: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|k| k.name() == name)
    }

    fn bit(self) -> u16 {
        1 << self as u16
    }

    /// The error for a value of the wrong JSON type (or `null`, or a malformed literal).
    fn wrong_type(self) -> ConfigError {
        let (problem, fix) = match self {
            Key::Upstream => (
                "not an interface name in quotes",
                "write e.g. \"upstream\": \"eth0\"",
            ),
            Key::Downstream => (
                "not a list of interface names in quotes",
                "write e.g. \"downstream\": [\"lan1\", \"lan2\"]",
            ),
            Key::Domains => (
                "not a list of domain numbers 0 to 255",
                "write e.g. \"domains\": [0] (whole numbers, no quotes)",
            ),
            Key::DelayResp => (
                "not a mode in quotes",
                "use \"steer\", \"unicast\" or \"flood\"",
            ),
            Key::Correction => ("not a mode in quotes", "use \"none\" or \"residence\""),
            Key::AllowDownstreamMasters | Key::Promiscuous => {
                ("not true or false", "write true or false, without quotes")
            }
            Key::ClientTimeoutS => (
                "not a whole number of seconds from 2 to 3600",
                "write e.g. 60 (no quotes, no fraction)",
            ),
            Key::MaxDelayReqRate => (
                "not a whole number from 1 to 1024",
                "write e.g. 128 (no quotes, no fraction)",
            ),
            Key::StatusFile => (
                "not a path in quotes",
                "write e.g. \"status_file\": \"/var/run/ptpproxy/status.json\"",
            ),
            Key::StatusIntervalS => (
                "not a whole number of seconds from 1 to 3600",
                "write e.g. 5 (no quotes, no fraction)",
            ),
            Key::RealtimePriority => (
                "not a whole number from 0 to 99",
                "write e.g. 10 (no quotes), or 0 for the normal scheduler",
            ),
            Key::CpuLatencyUs => (
                "not a whole number of microseconds from 0 to 1000000",
                "write e.g. 10 (no quotes), or leave the key out to keep the system's idle policy",
            ),
            Key::User => (
                "not a user name in quotes",
                "write e.g. \"user\": \"nobody\"",
            ),
        };
        ConfigError {
            field: self.name(),
            problem,
            fix,
        }
    }
}

const _: () = assert!(KEYS.len() < 16, "Trace::seen is a u16 bit set");

/// The file as written: strings borrowed from it, `None` for an absent key.
#[derive(Default)]
struct Raw<'a> {
    upstream: Option<&'a str>,
    downstream: Option<heapless::Vec<&'a str, MAX_DOWNSTREAM>>,
    // u32, not u8, so that 300 gets the range message rather than a type error.
    domains: Option<heapless::Vec<u32, MAX_DOMAINS>>,
    delay_resp: Option<&'a str>,
    correction: Option<&'a str>,
    allow_downstream_masters: Option<bool>,
    client_timeout_s: Option<u32>,
    max_delay_req_rate: Option<u32>,
    status_file: Option<&'a str>,
    status_interval_s: Option<u32>,
    promiscuous: Option<bool>,
    user: Option<&'a str>,
    realtime_priority: Option<u32>,
    cpu_latency_us: Option<u32>,
}

/// Where the reader is, so that a bare serde-json-core error can be pinned on a key.
#[derive(Default)]
struct Trace<'a> {
    /// The key whose value is being read.
    reading: Option<Key>,
    /// The last key whose value was read completely.
    last: Option<Key>,
    /// Keys seen so far, one bit per [`Key`].
    seen: u16,
    /// Set when the reader itself stopped (unknown or repeated key, list too long); the
    /// error serde-json-core returns then is only a `CustomError`.
    rejected: Option<ConfigRejection<'a>>,
}

impl<'a> Trace<'a> {
    /// Stop reading: remember why and hand serde an error to unwind with.
    fn reject<E: de::Error>(&mut self, rejection: ConfigRejection<'a>) -> E {
        self.rejected = Some(rejection);
        // Short: with `custom-error-messages` this lands in a 64-byte buffer that unwrap()s.
        E::custom("rejected")
    }

    /// Turn a serde-json-core error into the user's message. `closed`: the file ends in '}'.
    fn explain(&self, error: &serde_json_core::de::Error, closed: bool) -> ConfigRejection<'a> {
        use serde_json_core::de::Error as E;
        if let Some(rejection) = self.rejected {
            return rejection;
        }
        let file = |problem, fix| ConfigError {
            field: FILE_FIELD,
            problem,
            fix,
        };
        let near = match self.reading.or(self.last) {
            Some(key) => Context::Near(key.name()),
            None => Context::None,
        };
        let truncated = file(
            "the file ends too early (cut off, or a closing '\"', ']' or '}' is missing)",
            "complete it: every string, list and the whole object must be closed",
        );
        let error = match (self.reading, error) {
            // A file cut inside `true`/`false` fails as a bad literal, not at the end of input.
            (_, E::ExpectedSomeIdent) if !closed => truncated,
            (
                _,
                E::EofWhileParsingList
                | E::EofWhileParsingObject
                | E::EofWhileParsingString
                | E::EofWhileParsingNumber
                | E::EofWhileParsingValue,
            ) => truncated,
            (Some(key), E::ExpectedColon) => ConfigError {
                field: key.name(),
                problem: "no ':' after the key",
                fix: "write the key, a ':', then the value",
            },
            (Some(key), E::ExpectedListCommaOrEnd) => ConfigError {
                field: key.name(),
                problem: "the list is not valid JSON: expected ',' or ']'",
                fix: "separate the entries with ',' and end the list with ']'",
            },
            (Some(key), E::TrailingComma) => ConfigError {
                field: key.name(),
                problem: "a ',' after the last entry of the list",
                fix: "remove the ',' before ']'",
            },
            (Some(key), E::InvalidUnicodeCodePoint) => ConfigError {
                field: key.name(),
                problem: "the text is not valid UTF-8",
                fix: "save the file as UTF-8",
            },
            (Some(key), _) => key.wrong_type(),
            (None, E::InvalidType) if self.last.is_none() => file(
                "not a JSON object",
                "write e.g. {\"upstream\": \"eth0\", \"downstream\": [\"lan1\"]}",
            ),
            (None, E::ExpectedObjectCommaOrEnd) => file(
                "a value is not followed by ',' or '}'",
                "separate the settings with ',' and write whole numbers (60, not 60.0)",
            ),
            (None, E::KeyMustBeAString) => file(
                "a key is not in double quotes",
                "write each key in double quotes, e.g. \"upstream\"",
            ),
            (None, E::TrailingComma) => file(
                "a ',' after the last setting",
                "remove the ',' before the closing '}'",
            ),
            (None, E::TrailingCharacters) => file(
                "text after the closing '}'",
                "remove it: the file is one JSON object",
            ),
            (None, E::InvalidUnicodeCodePoint) => {
                file("a key is not valid UTF-8", "save the file as UTF-8")
            }
            (None, _) => file("not valid JSON", "check the quotes, commas and brackets"),
        };
        // A key-level error names its key already; "near" helps only for the whole-file ones.
        let context = if error.field == FILE_FIELD {
            near
        } else {
            Context::None
        };
        ConfigRejection { error, context }
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
                let error = ConfigError {
                    field: UNKNOWN_KEY_FIELD,
                    problem: "unknown key (keys are lower case, with '_')",
                    fix: "remove it; valid keys: upstream, downstream, domains, delay_resp, \
                          correction, allow_downstream_masters, client_timeout_s, \
                          max_delay_req_rate, status_file, status_interval_s, promiscuous, user, \
                          realtime_priority, cpu_latency_us",
                };
                let context = Context::UnknownKey(name);
                return Err(trace.reject(ConfigRejection { error, context }));
            };
            if trace.seen & key.bit() != 0 {
                let error = ConfigError {
                    field: key.name(),
                    problem: "set twice",
                    fix: "keep only one of the two",
                };
                return Err(trace.reject(error.into()));
            }
            trace.seen |= key.bit();
            trace.reading = Some(key);
            match key {
                Key::Upstream => raw.upstream = Some(map.next_value()?),
                Key::Downstream => {
                    raw.downstream =
                        Some(map.next_value_seed(List::new(trace, TOO_MANY_DOWNSTREAM))?)
                }
                Key::Domains => {
                    raw.domains = Some(map.next_value_seed(List::new(trace, TOO_MANY_DOMAINS))?)
                }
                Key::DelayResp => raw.delay_resp = Some(map.next_value()?),
                Key::Correction => raw.correction = Some(map.next_value()?),
                Key::AllowDownstreamMasters => {
                    raw.allow_downstream_masters = Some(map.next_value()?)
                }
                Key::ClientTimeoutS => raw.client_timeout_s = Some(map.next_value()?),
                Key::MaxDelayReqRate => raw.max_delay_req_rate = Some(map.next_value()?),
                Key::StatusFile => raw.status_file = Some(map.next_value()?),
                Key::StatusIntervalS => raw.status_interval_s = Some(map.next_value()?),
                Key::Promiscuous => raw.promiscuous = Some(map.next_value()?),
                Key::User => raw.user = Some(map.next_value()?),
                Key::RealtimePriority => raw.realtime_priority = Some(map.next_value()?),
                Key::CpuLatencyUs => raw.cpu_latency_us = Some(map.next_value()?),
            }
            trace.reading = None;
            trace.last = Some(key);
        }
        Ok(())
    }
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

const TOO_MANY_DOWNSTREAM: ConfigError = ConfigError {
    field: "downstream",
    problem: TOO_MANY_DOWNSTREAM_PROBLEM,
    fix: "list fewer, or build for a board profile with a larger max_ports",
};
const TOO_MANY_DOWNSTREAM_JOINED: ([u8; 128], usize) = join(
    b"more interfaces than this board supports (",
    MAX_DOWNSTREAM,
    b" at most)",
);
const TOO_MANY_DOWNSTREAM_PROBLEM: &str = text(&TOO_MANY_DOWNSTREAM_JOINED);
const TOO_MANY_DOMAINS: ConfigError = ConfigError {
    field: "domains",
    problem: TOO_MANY_DOMAINS_PROBLEM,
    fix: "list only the domains your grandmaster and clients use",
};
const TOO_MANY_DOMAINS_JOINED: ([u8; 128], usize) = join(
    b"more domains than one relay serves (",
    MAX_DOMAINS,
    b" at most)",
);
const TOO_MANY_DOMAINS_PROBLEM: &str = text(&TOO_MANY_DOMAINS_JOINED);

/// `head`, the decimal `n`, `tail`, joined at compile time: error texts are `&'static str`
/// but some limits come from the board profile.
const fn join(head: &[u8], n: usize, tail: &[u8]) -> ([u8; 128], usize) {
    let mut out = [0u8; 128];
    let mut len = 0;
    let mut i = 0;
    while i < head.len() {
        out[len] = head[i];
        len += 1;
        i += 1;
    }
    let mut digits = [0u8; 20];
    let mut count = 0;
    let mut rest = n;
    loop {
        digits[count] = b'0' + (rest % 10) as u8;
        count += 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    while count > 0 {
        count -= 1;
        out[len] = digits[count];
        len += 1;
    }
    i = 0;
    while i < tail.len() {
        out[len] = tail[i];
        len += 1;
        i += 1;
    }
    (out, len)
}

/// The text [`join`] built (evaluated at compile time: a bad input fails the build, not a run).
const fn text(joined: &'static ([u8; 128], usize)) -> &'static str {
    match core::str::from_utf8(joined.0.split_at(joined.1).0) {
        Ok(s) => s,
        Err(_) => panic!("join() of non-UTF-8 text"),
    }
}

impl<'a> Raw<'a> {
    /// Apply the defaults and the rules, in the order of [`KEYS`]; the first broken rule wins.
    fn validate(self) -> Result<Config, ConfigRejection<'a>> {
        let missing = |field, fix| ConfigError {
            field,
            problem: "missing (it has no default)",
            fix,
        };
        let upstream = self.upstream.ok_or(missing(
            "upstream",
            "add \"upstream\": \"<interface facing the grandmaster>\", e.g. \"eth0\"",
        ))?;
        let upstream = interface("upstream", upstream)?;

        let names = self.downstream.ok_or(missing(
            "downstream",
            "add \"downstream\": [\"<interface facing clients>\", ...], e.g. [\"lan1\"]",
        ))?;
        if names.is_empty() {
            return Err(ConfigError {
                field: "downstream",
                problem: "the list is empty",
                fix: "list at least one interface facing clients, e.g. [\"lan1\"]",
            }
            .into());
        }
        let mut downstream = heapless::Vec::new();
        for (i, &name) in names.iter().enumerate() {
            let ifname = interface("downstream", name)?;
            let rejection = |problem, fix| ConfigRejection {
                error: ConfigError {
                    field: "downstream",
                    problem,
                    fix,
                },
                context: Context::Value(name),
            };
            if ifname == upstream {
                return Err(rejection(
                    "the upstream interface is also listed as downstream",
                    "the upstream faces the grandmaster; list only client-facing interfaces",
                ));
            }
            if names.iter().take(i).any(|&earlier| earlier == name) {
                return Err(rejection(
                    "interface listed twice",
                    "list each interface once",
                ));
            }
            // Cannot fail: `names` has the same capacity.
            downstream.push(ifname).map_err(|_| TOO_MANY_DOWNSTREAM)?;
        }

        let domains = match self.domains {
            None => heapless::Vec::from_slice(&DEFAULT_DOMAINS).map_err(|_| TOO_MANY_DOMAINS)?,
            Some(numbers) => domain_list(&numbers)?,
        };

        let delay_resp = match self.delay_resp {
            None => DEFAULT_DELAY_RESP,
            Some("steer") => DelayRespMode::Steer,
            Some("unicast") => DelayRespMode::Unicast,
            Some("flood") => DelayRespMode::Flood,
            Some(other) => {
                return Err(ConfigRejection {
                    error: ConfigError {
                        field: "delay_resp",
                        problem: "unknown mode",
                        fix: "use \"steer\", \"unicast\" or \"flood\"",
                    },
                    context: Context::Value(other),
                })
            }
        };

        let correction = match self.correction {
            None => DEFAULT_CORRECTION,
            Some("none") => Correction::None,
            Some("residence") => Correction::Residence,
            Some(other) => {
                return Err(ConfigRejection {
                    error: ConfigError {
                        field: "correction",
                        problem: "unknown mode",
                        fix: "use \"none\" or \"residence\"",
                    },
                    context: Context::Value(other),
                })
            }
        };

        let client_timeout_s = number(
            self.client_timeout_s,
            DEFAULT_CLIENT_TIMEOUT_S,
            CLIENT_TIMEOUT_S_RANGE,
            ConfigError {
                field: "client_timeout_s",
                problem: "out of range: 2 to 3600 seconds",
                fix: "use e.g. 60: a client silent that long is forgotten",
            },
        )?;
        let max_delay_req_rate = number(
            self.max_delay_req_rate,
            DEFAULT_MAX_DELAY_REQ_RATE,
            MAX_DELAY_REQ_RATE_RANGE,
            ConfigError {
                field: "max_delay_req_rate",
                problem: "out of range: 1 to 1024 Delay_Req per second per client",
                fix: "use 128 (the most any PTP profile sends) or less",
            },
        )?;

        let status_file = match self.status_file {
            None => path(DEFAULT_STATUS_FILE)?,
            Some(file) => path(file)?,
        };
        let status_interval_s = number(
            self.status_interval_s,
            DEFAULT_STATUS_INTERVAL_S,
            STATUS_INTERVAL_S_RANGE,
            ConfigError {
                field: "status_interval_s",
                problem: "out of range: 1 to 3600 seconds",
                fix: "use e.g. 5",
            },
        )?;

        Ok(Config {
            upstream,
            downstream,
            domains,
            delay_resp,
            correction,
            allow_downstream_masters: self
                .allow_downstream_masters
                .unwrap_or(DEFAULT_ALLOW_DOWNSTREAM_MASTERS),
            client_timeout_s,
            max_delay_req_rate,
            status_file,
            status_interval_s,
            promiscuous: self.promiscuous.unwrap_or(DEFAULT_PROMISCUOUS),
            user: match self.user {
                None => None,
                Some(name) => Some(user_name(name)?),
            },
            realtime_priority: number(
                self.realtime_priority,
                DEFAULT_REALTIME_PRIORITY,
                REALTIME_PRIORITY_RANGE,
                ConfigError {
                    field: "realtime_priority",
                    problem: "out of range: 0 to 99",
                    fix: "use e.g. 10 (SCHED_FIFO), or 0 for the normal scheduler",
                },
            )?,
            cpu_latency_us: self
                .cpu_latency_us
                .map(|us| {
                    number(
                        Some(us),
                        us,
                        CPU_LATENCY_US_RANGE,
                        ConfigError {
                            field: "cpu_latency_us",
                            problem: "out of range: 0 to 1000000 microseconds",
                            fix: "use e.g. 10, or leave the key out to keep the system's idle \
                                  policy",
                        },
                    )
                })
                .transpose()?,
        })
    }
}

/// A login name as useradd accepts it: `[a-z_][a-z0-9_-]*`, at most 32 bytes.
fn user_name(name: &str) -> Result<heapless::String<USER_MAX>, ConfigRejection<'_>> {
    let valid = name.bytes().enumerate().all(|(i, b)| {
        b.is_ascii_lowercase() || b == b'_' || (i > 0 && (b.is_ascii_digit() || b == b'-'))
    });
    match heapless::String::try_from(name) {
        Ok(s) if valid && !name.is_empty() => Ok(s),
        _ => Err(ConfigRejection {
            error: ConfigError {
                field: "user",
                problem: "not a valid user name",
                fix: "name an existing system user such as \"nobody\", or leave \"user\" out to stay root with only CAP_NET_RAW",
            },
            context: Context::Value(name),
        }),
    }
}

/// A number, or its default; `out_of_range` if outside `range`.
fn number(
    value: Option<u32>,
    default: u32,
    range: RangeInclusive<u32>,
    out_of_range: ConfigError,
) -> Result<u32, ConfigError> {
    let value = value.unwrap_or(default);
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(out_of_range)
    }
}

/// A Linux interface name as the kernel's `dev_valid_name()` accepts it, minus ':' (alias
/// labels, which packet sockets cannot open) and minus '\' (JSON escapes are not decoded here).
fn interface<'a>(field: &'static str, name: &'a str) -> Result<IfName, ConfigRejection<'a>> {
    let rejection = |problem, fix| ConfigRejection {
        error: ConfigError {
            field,
            problem,
            fix,
        },
        context: Context::Value(name),
    };
    const AS_IP_LINK: &str = "write the name as `ip link` lists it, e.g. \"eth0\"";
    if name.is_empty() {
        return Err(rejection("empty interface name", AS_IP_LINK));
    }
    if name.len() > IFNAME_MAX {
        return Err(rejection(
            "interface name longer than 15 bytes (the Linux limit)",
            "use the kernel's name for the interface, as `ip link` lists it",
        ));
    }
    if name == "." || name == ".." {
        return Err(rejection("not an interface name", AS_IP_LINK));
    }
    for &b in name.as_bytes() {
        let problem = match b {
            b'/' => "'/' is not allowed in an interface name",
            b':' => "':' marks an alias label, which cannot capture packets",
            b'\\' => "'\\' is not allowed (JSON escapes are not decoded)",
            _ if b.is_ascii_whitespace() => "spaces are not allowed in an interface name",
            _ if b.is_ascii_control() => "control characters are not allowed in an interface name",
            _ => continue,
        };
        return Err(rejection(problem, AS_IP_LINK));
    }
    IfName::try_from(name).map_err(|_| rejection("interface name too long", AS_IP_LINK))
}

/// Domain numbers: at least one, each 0..=DOMAIN_MAX, none twice.
fn domain_list(numbers: &[u32]) -> Result<heapless::Vec<u8, MAX_DOMAINS>, ConfigError> {
    let problem = |problem, fix| ConfigError {
        field: "domains",
        problem,
        fix,
    };
    if numbers.is_empty() {
        return Err(problem(
            "the list is empty",
            "list at least one domain, e.g. [0]",
        ));
    }
    let mut out = heapless::Vec::new();
    for (i, &n) in numbers.iter().enumerate() {
        let out_of_range = problem(
            "a domain number is above 255",
            "use the domainNumber your grandmaster sends, 0 to 255 (0 is the default)",
        );
        if n > DOMAIN_MAX {
            return Err(out_of_range);
        }
        if numbers.iter().take(i).any(|&earlier| earlier == n) {
            return Err(problem("a domain is listed twice", "list each domain once"));
        }
        let n = u8::try_from(n).map_err(|_| out_of_range)?;
        out.push(n).map_err(|_| TOO_MANY_DOMAINS)?;
    }
    Ok(out)
}

/// The status-file path: absolute, a file (not a directory), at most PATH_MAX bytes.
fn path(file: &str) -> Result<heapless::String<PATH_MAX>, ConfigRejection<'_>> {
    let rejection = |problem, fix| ConfigRejection {
        error: ConfigError {
            field: "status_file",
            problem,
            fix,
        },
        context: Context::Value(file),
    };
    const EXAMPLE: &str = "write a full path such as \"/var/run/ptpproxy/status.json\"";
    if !file.starts_with('/') {
        return Err(rejection(
            "not an absolute path (it must start with '/')",
            EXAMPLE,
        ));
    }
    if file.ends_with('/') {
        return Err(rejection(
            "names a directory, not a file",
            "add the file name, e.g. \"/var/run/ptpproxy/status.json\"",
        ));
    }
    if file.len() > PATH_MAX {
        return Err(rejection(
            "path longer than 255 bytes",
            "use a shorter path",
        ));
    }
    if file.contains('\\') {
        return Err(rejection(
            "'\\' is not allowed (JSON escapes are not decoded)",
            EXAMPLE,
        ));
    }
    if file.bytes().any(|b| b.is_ascii_control()) {
        return Err(rejection(
            "control characters are not allowed in the path",
            EXAMPLE,
        ));
    }
    heapless::String::try_from(file)
        .map_err(|_| rejection("path longer than 255 bytes", "use a shorter path"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the user contract, verbatim.
    const EXAMPLE: &str = concat!(
        r#"{"upstream": "eth0", "downstream": ["lan1", "lan2"], "domains": [0], "#,
        r#""delay_resp": "steer", "correction": "none", "allow_downstream_masters": false, "#,
        r#""client_timeout_s": 60, "max_delay_req_rate": 128, "#,
        r#""status_file": "/var/run/ptpproxy/status.json", "status_interval_s": 5, "#,
        r#""promiscuous": false}"#,
    );

    const MINIMAL: &str = r#"{"upstream":"eth0","downstream":["lan1"]}"#;

    fn ifname(s: &str) -> IfName {
        IfName::try_from(s).unwrap()
    }

    fn with_defaults(downstream: &[&str]) -> Config {
        Config {
            upstream: ifname("eth0"),
            downstream: downstream.iter().map(|n| ifname(n)).collect(),
            domains: heapless::Vec::from_slice(&DEFAULT_DOMAINS).unwrap(),
            delay_resp: DEFAULT_DELAY_RESP,
            correction: DEFAULT_CORRECTION,
            allow_downstream_masters: DEFAULT_ALLOW_DOWNSTREAM_MASTERS,
            client_timeout_s: DEFAULT_CLIENT_TIMEOUT_S,
            max_delay_req_rate: DEFAULT_MAX_DELAY_REQ_RATE,
            status_file: heapless::String::try_from(DEFAULT_STATUS_FILE).unwrap(),
            status_interval_s: DEFAULT_STATUS_INTERVAL_S,
            promiscuous: DEFAULT_PROMISCUOUS,
            user: None,
            realtime_priority: 0,
            cpu_latency_us: None,
        }
    }

    /// The minimal file plus one more setting.
    fn minimal_with(setting: &str) -> String {
        format!(r#"{{"upstream": "eth0", "downstream": ["lan1"], {setting}}}"#)
    }

    fn field_of(json: &str) -> &'static str {
        match Config::parse(json.as_bytes()) {
            Ok(config) => panic!("accepted {json}: {config:?}"),
            Err(e) => e.field,
        }
    }

    #[test]
    fn full_example_parses() {
        let config = Config::parse(EXAMPLE.as_bytes()).unwrap();
        let expected = Config {
            upstream: ifname("eth0"),
            downstream: [ifname("lan1"), ifname("lan2")].into_iter().collect(),
            domains: heapless::Vec::from_slice(&[0]).unwrap(),
            delay_resp: DelayRespMode::Steer,
            correction: Correction::None,
            allow_downstream_masters: false,
            client_timeout_s: 60,
            max_delay_req_rate: 128,
            status_file: heapless::String::try_from("/var/run/ptpproxy/status.json").unwrap(),
            status_interval_s: 5,
            promiscuous: false,
            user: None,
            realtime_priority: 0,
            cpu_latency_us: None,
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
        assert_eq!(config.status_interval_s, 3600);
        let flood = minimal_with(r#""delay_resp": "flood""#);
        assert_eq!(
            Config::parse(flood.as_bytes()).unwrap().delay_resp,
            DelayRespMode::Flood
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

    #[test]
    fn limits_are_accepted_and_one_past_is_rejected() {
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
        assert!(TOO_MANY_DOWNSTREAM
            .problem
            .contains(&format!("({max} at most)")));

        let domains = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        let ok = minimal_with(&format!(r#""domains": [{}]"#, domains(MAX_DOMAINS)));
        assert_eq!(
            Config::parse(ok.as_bytes()).unwrap().domains.len(),
            MAX_DOMAINS
        );
        let bad = minimal_with(&format!(r#""domains": [{}]"#, domains(MAX_DOMAINS + 1)));
        assert_eq!(field_of(&bad), "domains");
        assert!(TOO_MANY_DOMAINS
            .problem
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

        // The error texts spell the ranges out; hold them to the constants.
        for (key, range) in [
            ("client_timeout_s", CLIENT_TIMEOUT_S_RANGE),
            ("max_delay_req_rate", MAX_DELAY_REQ_RATE_RANGE),
            ("status_interval_s", STATUS_INTERVAL_S_RANGE),
            ("domains", 0..=DOMAIN_MAX),
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
            assert_eq!(e.field, key);
            assert!(e.problem.contains(&range.end().to_string()), "{e}");
            let text = format!("{} to {}", range.start(), range.end());
            // A value of the wrong type gets the range in its message too.
            let quoted = setting(7).replace('7', "\"7\"");
            let e = Config::parse(quoted.as_bytes()).unwrap_err();
            assert_eq!(e.field, key);
            assert!(e.problem.contains(&text), "{e}");
            if *range.start() > 0 {
                let below = setting(range.start() - 1);
                let e = Config::parse(below.as_bytes()).unwrap_err();
                assert_eq!(e.field, key);
                assert!(e.problem.contains(&text), "{e}");
            }
        }
    }

    #[test]
    fn each_rule_names_its_field() {
        // Whole files, and the field the error must name.
        #[rustfmt::skip]
        let files: &[(&str, &str)] = &[
            // syntax and shape of the file
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
        // Settings added to the minimal file, and the field the error must name.
        #[rustfmt::skip]
        let settings: &[(&str, &str)] = &[
            // keys
            (UNKNOWN_KEY_FIELD, r#""colour": "red""#),
            (UNKNOWN_KEY_FIELD, r#""Promiscuous": true"#),                       // case matters
            (UNKNOWN_KEY_FIELD, r#""ports": [1, [2]]"#),
            ("upstream", r#""upstream": "eth1""#),                                // set twice
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
            (FILE_FIELD, r#""client_timeout_s": 60.5"#),      // serde-json-core stops at '.'
            ("max_delay_req_rate", r#""max_delay_req_rate": 0"#),
            ("max_delay_req_rate", r#""max_delay_req_rate": 1025"#),
            ("status_interval_s", r#""status_interval_s": 0"#),
            ("status_interval_s", r#""status_interval_s": 3601"#),
            // status file
            ("status_file", r#""status_file": "status.json""#),
            ("status_file", r#""status_file": """#),
            ("status_file", r#""status_file": "/var/run/ptpproxy/""#),
            ("status_file", r#""status_file": "/tmp/a\"b""#),
            ("status_file", r#""status_file": ["/tmp/x"]"#),
        ];
        let long_path = format!(r#""status_file": "/{}""#, "p".repeat(PATH_MAX));
        let cases = files
            .iter()
            .map(|&(field, json)| (field, json.to_string()))
            .chain(
                settings
                    .iter()
                    .map(|&(field, setting)| (field, minimal_with(setting))),
            );
        for (field, json) in cases.chain([("status_file", minimal_with(&long_path))]) {
            let e = match Config::parse(json.as_bytes()) {
                Ok(c) => panic!("accepted {json}: {c:?}"),
                Err(e) => e,
            };
            assert_eq!(e.field, field, "{json} -> {e}");
            assert!(!e.problem.is_empty() && !e.fix.is_empty(), "{json}");
            // The detailed form agrees and prints without panicking.
            let detailed = Config::parse_detailed(json.as_bytes()).unwrap_err();
            assert_eq!(detailed.error, e, "{json}");
            assert!(!detailed.to_string().is_empty());
        }
        let not_utf8 = b"{\"upstream\": \"eth\xff\", \"downstream\": [\"lan1\"]}";
        assert_eq!(Config::parse(not_utf8).unwrap_err().field, "upstream");
        let key_not_utf8 = b"{\"upstream\": \"eth0\", \"\xc3\": 1}";
        assert_eq!(Config::parse(key_not_utf8).unwrap_err().field, FILE_FIELD);
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
            assert_eq!(with(bad).unwrap_err().field, "user", "{bad}");
        }
        assert_eq!(Config::parse(MINIMAL.as_bytes()).unwrap().user, None);
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
        assert_eq!(with("100").unwrap_err().field, "realtime_priority");
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
        assert_eq!(with("1000001").unwrap_err().field, "cpu_latency_us");
        assert_eq!(
            Config::parse(MINIMAL.as_bytes()).unwrap().cpu_latency_us,
            None
        );
    }

    #[test]
    fn messages_read_well() {
        let text = |json: &str| {
            Config::parse_detailed(json.as_bytes())
                .unwrap_err()
                .to_string()
        };
        let valid_keys = "upstream, downstream, domains, delay_resp, correction, \
                          allow_downstream_masters, client_timeout_s, max_delay_req_rate, \
                          status_file, status_interval_s, promiscuous, user, realtime_priority, \
                          cpu_latency_us";
        assert_eq!(
            text(&minimal_with(r#""colour": "red""#)),
            format!(
                "\"colour\": unknown key (keys are lower case, with '_'); fix: remove it; \
                 valid keys: {valid_keys}"
            )
        );
        assert_eq!(valid_keys.split(", ").collect::<Vec<_>>(), KEYS);
        let plain = Config::parse(minimal_with(r#""colour": "red""#).as_bytes()).unwrap_err();
        assert!(plain
            .to_string()
            .starts_with("\"(unknown key)\": unknown key"));

        assert_eq!(
            Config::parse(minimal_with(r#""correction": "residence""#).as_bytes())
                .unwrap()
                .correction,
            Correction::Residence
        );
        assert_eq!(
            text(&minimal_with(r#""correction": "Residence""#)),
            "\"correction\": unknown mode (\"Residence\"); fix: use \"none\" or \"residence\""
        );
        assert_eq!(
            text(r#"{"upstream": "eth0", "downstream": ["lan1", "lan2", "lan1"]}"#),
            "\"downstream\": interface listed twice (\"lan1\"); fix: list each interface once"
        );
        assert_eq!(
            text(r#"{"upstream": "eth0", "downstream": ["lan1"], "delay_resp": "bcast"}"#),
            "\"delay_resp\": unknown mode (\"bcast\"); fix: use \"steer\", \"unicast\" or \"flood\""
        );
        assert_eq!(
            text(&minimal_with(r#""client_timeout_s": 60.0"#)),
            "\"(file)\": a value is not followed by ',' or '}' (near \"client_timeout_s\"); \
             fix: separate the settings with ',' and write whole numbers (60, not 60.0)"
        );
        assert_eq!(
            text(r#"{"upstream": "eth0", "downstream": ["lan1"]"#),
            "\"(file)\": the file ends too early (cut off, or a closing '\"', ']' or '}' is \
             missing) (near \"downstream\"); fix: complete it: every string, list and the whole \
             object must be closed"
        );
        // Text from the file is escaped and cut short.
        let hostile = format!("{{\"\u{1b}[31m{}\": 1}}", "k".repeat(100));
        let shown = text(&hostile);
        assert!(shown.starts_with("\"\\u{1b}[31mkkk"), "{shown}");
        assert!(shown.contains("kkk\"...: unknown key"), "{shown}");
        assert!(!shown.contains('\u{1b}'));
    }

    #[test]
    fn every_prefix_is_rejected_as_a_file_error() {
        for n in 0..EXAMPLE.len() {
            let prefix = &EXAMPLE.as_bytes()[..n];
            match Config::parse_detailed(prefix) {
                Ok(c) => panic!("accepted {n} bytes: {c:?}"),
                Err(r) => assert_eq!(r.error.field, FILE_FIELD, "{n} bytes: {r}"),
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
