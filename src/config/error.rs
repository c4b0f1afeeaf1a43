//! Why a configuration file was rejected: [`ConfigError`], a small `Copy` value naming the
//! problem and carrying the numbers it is about, and [`ConfigRejection`], which adds the text
//! of the file that locates it.
//!
//! Every message has the form `"<field>": <problem>; fix: <fix>`, and the texts are an
//! interface: scripts and users match on them, so a variant's wording never changes with the
//! code around it. Limits in the texts are printed from the constants the rules check, never
//! spelled out twice. This module never reads JSON and never decides what is valid; the reader
//! and the rules pick the variant.

use super::dump::DumpError;
use super::schema::{
    Key, CLIENT_TIMEOUT_S_RANGE, CPU_LATENCY_US_RANGE, DOMAIN_MAX, IFNAME_MAX,
    MAX_DELAY_REQ_HOLD_MS_RANGE, MAX_DELAY_REQ_RATE_RANGE, MAX_HOLD_US_RANGE,
    MAX_IDENTITIES_PER_MAC_RANGE, MAX_RESIDENCE_US_RANGE, PATH_MAX, REALTIME_PRIORITY_RANGE,
    SDO_ID_RANGE, STATUS_INTERVAL_S_RANGE, UPSTREAM_MAX_DELAY_REQ_RATE_RANGE,
};
use core::fmt;

/// `field` of errors about the file as a whole (syntax, truncation, not an object).
pub const FILE_FIELD: &str = "(file)";
/// `field` of the error for an unknown key ([`ConfigRejection`] shows the key itself).
pub const UNKNOWN_KEY_FIELD: &str = "(unknown key)";

/// A rejected configuration: which field, what is wrong, how to fix it.
///
/// `Display` prints the whole line; [`ConfigError::field`], [`ConfigError::problem`] and
/// [`ConfigError::fix`] give its parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// The file as a whole is not one JSON object.
    File(FileError),
    /// A key that is not one of `KEYS` ([`Context::UnknownKey`] carries it).
    UnknownKey,
    /// The key appears twice.
    SetTwice(Key),
    /// A key without a default (`upstream`, `downstream`) is absent.
    Missing(Key),
    /// The key's value is not valid JSON, or not of the key's type.
    Value(Key, ValueError),
    /// A list (`downstream`, `domains`) holds more than `max` entries.
    TooMany { key: Key, max: usize },
    /// `upstream` or a `downstream` entry is not a usable interface name.
    Interface(Key, InterfaceError),
    /// `downstream` is `[]`.
    NoDownstream,
    /// A `downstream` entry is the upstream interface.
    UpstreamAsDownstream,
    /// A `downstream` entry appears twice.
    DownstreamTwice,
    /// `domains` is `[]`.
    NoDomains,
    /// A domain number above `max`.
    DomainAbove { value: u32, max: u32 },
    /// A domain number listed twice.
    DomainTwice(u8),
    /// `delay_resp` or `correction` names no mode.
    UnknownMode(Key),
    /// A number outside `min..=max`.
    OutOfRange {
        key: Key,
        value: u32,
        min: u32,
        max: u32,
    },
    /// `status_file` is not a usable path.
    StatusFile(PathError),
    /// `metrics_file` is not a usable path.
    MetricsFile(PathError),
    /// `user` is not a login name as useradd accepts it.
    User,
    /// `upstream_max_delay_req_rate` with `"correction": "none"`: the clients would take the
    /// pacing wait for path delay.
    PacingWithoutResidence,
    /// The `"dump"` object or one of its keys (`dump.<key>`).
    Dump(DumpError),
}

/// What is wrong with the file as a whole (its `field` is [`FILE_FIELD`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileError {
    Empty,
    Truncated,
    NotAnObject,
    ValueNotFollowed,
    KeyNotQuoted,
    TrailingComma,
    TrailingText,
    KeyNotUtf8,
    NotJson,
}

/// What is wrong with the JSON of one key's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueError {
    NoColon,
    ListSyntax,
    TrailingComma,
    NotUtf8,
    /// Not of the key's type (or `null`, or a malformed literal).
    WrongType,
}

/// Why a name is not a Linux interface name that a packet socket can open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InterfaceError {
    Empty,
    /// `len` bytes, more than IFNAME_MAX.
    TooLong {
        len: usize,
    },
    /// `.` or `..`.
    NotAName,
    Slash,
    Colon,
    Backslash,
    Space,
    Control,
}

/// Why `status_file` is not a usable path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathError {
    NotAbsolute,
    Directory,
    /// `len` bytes, more than PATH_MAX.
    TooLong {
        len: usize,
    },
    Backslash,
    Control,
    /// The status file's own path (`metrics_file` only).
    StatusFile,
}

impl ConfigError {
    /// The key the error is about, if it is about one.
    pub fn key(&self) -> Option<Key> {
        match *self {
            ConfigError::File(_) | ConfigError::UnknownKey => None,
            ConfigError::SetTwice(key)
            | ConfigError::Missing(key)
            | ConfigError::Value(key, _)
            | ConfigError::TooMany { key, .. }
            | ConfigError::Interface(key, _)
            | ConfigError::UnknownMode(key)
            | ConfigError::OutOfRange { key, .. } => Some(key),
            ConfigError::NoDownstream
            | ConfigError::UpstreamAsDownstream
            | ConfigError::DownstreamTwice => Some(Key::Downstream),
            ConfigError::NoDomains
            | ConfigError::DomainAbove { .. }
            | ConfigError::DomainTwice(_) => Some(Key::Domains),
            ConfigError::StatusFile(_) => Some(Key::StatusFile),
            ConfigError::MetricsFile(_) => Some(Key::MetricsFile),
            ConfigError::User => Some(Key::User),
            ConfigError::PacingWithoutResidence => Some(Key::UpstreamMaxDelayReqRate),
            ConfigError::Dump(_) => Some(Key::Dump),
        }
    }

    /// The field the message names: the key, or [`FILE_FIELD`] or [`UNKNOWN_KEY_FIELD`].
    pub fn field(&self) -> &'static str {
        match (self, self.key()) {
            (ConfigError::UnknownKey, _) => UNKNOWN_KEY_FIELD,
            (ConfigError::Dump(e), _) => e.field(),
            (_, Some(key)) => key.name(),
            (_, None) => FILE_FIELD,
        }
    }

    /// What is wrong, as the message says it.
    pub fn problem(&self) -> impl fmt::Display + '_ {
        Problem(self)
    }

    /// How to fix it, as the message says it.
    pub fn fix(&self) -> &'static str {
        match *self {
            ConfigError::File(e) => e.fix(),
            // Spelled out, not joined from KEYS, to stay a `&'static str`; a test holds the two
            // together.
            ConfigError::UnknownKey => {
                "remove it; valid keys: upstream, downstream, domains, sdo_id, delay_resp, \
                 correction, max_hold_us, max_residence_us, allow_downstream_masters, \
                 client_timeout_s, max_delay_req_rate, upstream_max_delay_req_rate, \
                 max_delay_req_hold_ms, max_identities_per_mac, status_file, status_interval_s, \
                 metrics_file, promiscuous, user, realtime_priority, cpu_latency_us, bridge_ports, \
                 dump, bridge_filter"
            }
            ConfigError::SetTwice(_) => "keep only one of the two",
            ConfigError::Missing(key) => missing_fix(key),
            ConfigError::Value(key, e) => e.fix(key),
            ConfigError::TooMany { key, .. } => too_many_fix(key),
            ConfigError::Interface(_, e) => e.fix(),
            ConfigError::NoDownstream => {
                "list at least one interface facing clients, e.g. [\"lan1\"]"
            }
            ConfigError::UpstreamAsDownstream => {
                "the upstream faces the grandmaster; list only client-facing interfaces"
            }
            ConfigError::DownstreamTwice => "list each interface once",
            ConfigError::NoDomains => "list at least one domain, e.g. [0]",
            ConfigError::DomainAbove { .. } => {
                "use the domainNumber your grandmaster sends, 0 to 255 (0 is the default)"
            }
            ConfigError::DomainTwice(_) => "list each domain once",
            // The same advice as for a value that is not a string at all.
            ConfigError::UnknownMode(key) => wrong_type_fix(key),
            ConfigError::OutOfRange { key, .. } => out_of_range_fix(key),
            ConfigError::StatusFile(e) => e.fix(),
            ConfigError::MetricsFile(e) => e.metrics_fix(),
            ConfigError::User => {
                "name an existing system user such as \"nobody\", or leave \"user\" out to stay \
                 root with only CAP_NET_RAW"
            }
            ConfigError::PacingWithoutResidence => {
                "set \"correction\": \"residence\" (the Delay_Resp must carry each Delay_Req's \
                 wait), or leave \"upstream_max_delay_req_rate\" out"
            }
            ConfigError::Dump(e) => e.fix(),
        }
    }
}

// The domain fix spells out the u8 range that DOMAIN_MAX is.
const _: () = assert!(DOMAIN_MAX == u8::MAX as u32);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "\"{}\": {}; fix: {}",
            self.field(),
            self.problem(),
            self.fix()
        )
    }
}

/// [`ConfigError::problem`]: written, not stored, so that limits come from the constants.
struct Problem<'e>(&'e ConfigError);

impl fmt::Display for Problem<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self.0 {
            ConfigError::File(e) => f.write_str(e.problem()),
            ConfigError::UnknownKey => f.write_str("unknown key (keys are lower case, with '_')"),
            ConfigError::SetTwice(_) => f.write_str("set twice"),
            ConfigError::Missing(_) => f.write_str("missing (it has no default)"),
            ConfigError::Value(key, e) => e.write_problem(key, f),
            ConfigError::TooMany { key, max } => too_many_problem(key, max, f),
            ConfigError::Interface(_, e) => e.write_problem(f),
            ConfigError::NoDownstream | ConfigError::NoDomains => f.write_str("the list is empty"),
            ConfigError::UpstreamAsDownstream => {
                f.write_str("the upstream interface is also listed as downstream")
            }
            ConfigError::DownstreamTwice => f.write_str("interface listed twice"),
            ConfigError::DomainAbove { max, .. } => write!(f, "a domain number is above {max}"),
            ConfigError::DomainTwice(_) => f.write_str("a domain is listed twice"),
            ConfigError::UnknownMode(_) => f.write_str("unknown mode"),
            ConfigError::OutOfRange { key, min, max, .. } => {
                write!(f, "out of range: {min} to {max}{}", unit(key))
            }
            ConfigError::StatusFile(e) | ConfigError::MetricsFile(e) => e.write_problem(f),
            ConfigError::User => f.write_str("not a valid user name"),
            ConfigError::PacingWithoutResidence => {
                f.write_str("pacing Delay_Req needs the residence correction")
            }
            ConfigError::Dump(e) => e.write_problem(f),
        }
    }
}

/// The unit an out-of-range message gives after the range.
fn unit(key: Key) -> &'static str {
    match key {
        Key::ClientTimeoutS | Key::StatusIntervalS => " seconds",
        Key::MaxDelayReqRate => " Delay_Req per second per client",
        Key::UpstreamMaxDelayReqRate => " Delay_Req per second towards the grandmaster",
        Key::MaxDelayReqHoldMs => " milliseconds",
        Key::MaxIdentitiesPerMac => " identities per source MAC (the client table's size)",
        Key::CpuLatencyUs | Key::MaxHoldUs | Key::MaxResidenceUs => " microseconds",
        _ => "",
    }
}

fn out_of_range_fix(key: Key) -> &'static str {
    match key {
        Key::ClientTimeoutS => "use e.g. 60: a client silent that long is forgotten",
        Key::MaxDelayReqRate => "use 128 (the most any PTP profile sends) or less",
        Key::UpstreamMaxDelayReqRate => {
            "use what the grandmaster's data sheet says it answers per second (e.g. 4000), or \
             leave the key out for no pacing"
        }
        Key::MaxDelayReqHoldMs => "use e.g. 500 (the default)",
        Key::StatusIntervalS => "use e.g. 5",
        Key::RealtimePriority => "use e.g. 10 (SCHED_FIFO), or 0 for the normal scheduler",
        Key::MaxHoldUs => "use e.g. 2000, or 0 to send every frame as soon as it is read",
        Key::MaxResidenceUs => {
            "leave it out (max_hold_us + 50000), or allow at least 1000 above max_hold_us"
        }
        Key::SdoId => {
            "use 0 (the default PTP profile), or the sdoId of your profile as majorSdoId * 256 + \
             minorSdoId"
        }
        Key::MaxIdentitiesPerMac => {
            "use 8, or the number of clients behind one device that forwards their frames with \
             its own MAC (a transparent clock, boundary clock or router)"
        }
        _ => "use e.g. 10, or leave the key out to keep the system's idle policy",
    }
}

/// Only the two keys without a default can be missing; anything else gets the downstream text.
fn missing_fix(key: Key) -> &'static str {
    match key {
        Key::Upstream => "add \"upstream\": \"<interface facing the grandmaster>\", e.g. \"eth0\"",
        _ => "add \"downstream\": [\"<interface facing clients>\", ...], e.g. [\"lan1\"]",
    }
}

fn too_many_problem(key: Key, max: usize, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match key {
        Key::Domains => write!(f, "more domains than one relay serves ({max} at most)"),
        _ => write!(
            f,
            "more interfaces than this board supports ({max} at most)"
        ),
    }
}

fn too_many_fix(key: Key) -> &'static str {
    match key {
        Key::Domains => "list only the domains your grandmaster and clients use",
        _ => "list fewer, or build for a board profile with a larger max_ports",
    }
}

/// "from <min> to <max>", the range of a number key as its wrong-type message gives it.
struct Span(core::ops::RangeInclusive<u32>);

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "from {} to {}", self.0.start(), self.0.end())
    }
}

/// The problem when a key's value has the wrong JSON type: what the key takes.
fn wrong_type_problem(key: Key, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match key {
        Key::Upstream => f.write_str("not an interface name in quotes"),
        Key::Downstream => f.write_str("not a list of interface names in quotes"),
        Key::Domains => write!(f, "not a list of domain numbers 0 to {DOMAIN_MAX}"),
        Key::DelayResp | Key::Correction | Key::BridgePorts | Key::BridgeFilter => {
            f.write_str("not a mode in quotes")
        }
        Key::AllowDownstreamMasters | Key::Promiscuous => f.write_str("not true or false"),
        Key::ClientTimeoutS => {
            write!(
                f,
                "not a whole number of seconds {}",
                Span(CLIENT_TIMEOUT_S_RANGE)
            )
        }
        Key::MaxDelayReqRate => write!(f, "not a whole number {}", Span(MAX_DELAY_REQ_RATE_RANGE)),
        Key::UpstreamMaxDelayReqRate => write!(
            f,
            "not a whole number {}",
            Span(UPSTREAM_MAX_DELAY_REQ_RATE_RANGE)
        ),
        Key::MaxDelayReqHoldMs => write!(
            f,
            "not a whole number of milliseconds {}",
            Span(MAX_DELAY_REQ_HOLD_MS_RANGE)
        ),
        Key::SdoId => write!(f, "not a whole number {}", Span(SDO_ID_RANGE)),
        Key::MaxIdentitiesPerMac => {
            write!(
                f,
                "not a whole number {}",
                Span(MAX_IDENTITIES_PER_MAC_RANGE)
            )
        }
        Key::StatusFile | Key::MetricsFile => f.write_str("not a path in quotes"),
        Key::StatusIntervalS => {
            write!(
                f,
                "not a whole number of seconds {}",
                Span(STATUS_INTERVAL_S_RANGE)
            )
        }
        Key::RealtimePriority => write!(f, "not a whole number {}", Span(REALTIME_PRIORITY_RANGE)),
        Key::CpuLatencyUs => {
            write!(
                f,
                "not a whole number of microseconds {}",
                Span(CPU_LATENCY_US_RANGE)
            )
        }
        Key::MaxHoldUs => {
            write!(
                f,
                "not a whole number of microseconds {}",
                Span(MAX_HOLD_US_RANGE)
            )
        }
        Key::MaxResidenceUs => {
            write!(
                f,
                "not a whole number of microseconds {}",
                Span(MAX_RESIDENCE_US_RANGE)
            )
        }
        Key::User => f.write_str("not a user name in quotes"),
        Key::Dump => DumpError::WrongType(None).write_problem(f),
    }
}

/// The fix when a key's value has the wrong JSON type: an example of the right one.
fn wrong_type_fix(key: Key) -> &'static str {
    match key {
        Key::Upstream => "write e.g. \"upstream\": \"eth0\"",
        Key::Downstream => "write e.g. \"downstream\": [\"lan1\", \"lan2\"]",
        Key::Domains => "write e.g. \"domains\": [0] (whole numbers, no quotes)",
        Key::DelayResp => "use \"steer\", \"unicast\" or \"flood\"",
        Key::Correction => "use \"none\" or \"residence\"",
        Key::BridgePorts => {
            "use \"filter\" (ptpproxy stops the bridge forwarding PTP between relayed ports) \
             or \"leave\""
        }
        Key::BridgeFilter => {
            "use \"auto\" (tc on switchdev ports, nftables otherwise), \"tc\" or \"nftables\""
        }
        Key::AllowDownstreamMasters | Key::Promiscuous => "write true or false, without quotes",
        Key::ClientTimeoutS => "write e.g. 60 (no quotes, no fraction)",
        Key::MaxDelayReqRate => "write e.g. 128 (no quotes, no fraction)",
        Key::UpstreamMaxDelayReqRate => {
            "write e.g. 4000 (no quotes, no fraction), or leave the key out for no pacing"
        }
        Key::MaxDelayReqHoldMs => "write e.g. 500 (no quotes, no fraction)",
        Key::SdoId => "write e.g. 0 (no quotes, no fraction)",
        Key::MaxIdentitiesPerMac => "write e.g. 8 (no quotes, no fraction)",
        Key::StatusFile => "write e.g. \"status_file\": \"/var/run/ptpproxy/status.json\"",
        Key::MetricsFile => {
            "write e.g. \"metrics_file\": \"/var/run/ptpproxy/ptpproxy.prom\", or leave it out"
        }
        Key::StatusIntervalS => "write e.g. 5 (no quotes, no fraction)",
        Key::RealtimePriority => "write e.g. 10 (no quotes), or 0 for the normal scheduler",
        Key::CpuLatencyUs => {
            "write e.g. 10 (no quotes), or leave the key out to keep the system's idle policy"
        }
        Key::MaxHoldUs => "write e.g. 2000 (no quotes, no fraction)",
        Key::MaxResidenceUs => "write e.g. 52000 (no quotes, no fraction)",
        Key::User => "write e.g. \"user\": \"nobody\"",
        Key::Dump => DumpError::WrongType(None).fix(),
    }
}

impl FileError {
    fn problem(self) -> &'static str {
        match self {
            FileError::Empty => "the file is empty",
            FileError::Truncated => {
                "the file ends too early (cut off, or a closing '\"', ']' or '}' is missing)"
            }
            FileError::NotAnObject => "not a JSON object",
            FileError::ValueNotFollowed => "a value is not followed by ',' or '}'",
            FileError::KeyNotQuoted => "a key is not in double quotes",
            FileError::TrailingComma => "a ',' after the last setting",
            FileError::TrailingText => "text after the closing '}'",
            FileError::KeyNotUtf8 => "a key is not valid UTF-8",
            FileError::NotJson => "not valid JSON",
        }
    }

    fn fix(self) -> &'static str {
        match self {
            FileError::Empty => {
                "write at least {\"upstream\": \"eth0\", \"downstream\": [\"lan1\"]}"
            }
            FileError::Truncated => {
                "complete it: every string, list and the whole object must be closed"
            }
            FileError::NotAnObject => {
                "write e.g. {\"upstream\": \"eth0\", \"downstream\": [\"lan1\"]}"
            }
            FileError::ValueNotFollowed => {
                "separate the settings with ',' and write whole numbers (60, not 60.0)"
            }
            FileError::KeyNotQuoted => "write each key in double quotes, e.g. \"upstream\"",
            FileError::TrailingComma => "remove the ',' before the closing '}'",
            FileError::TrailingText => "remove it: the file is one JSON object",
            FileError::KeyNotUtf8 => "save the file as UTF-8",
            FileError::NotJson => "check the quotes, commas and brackets",
        }
    }
}

impl ValueError {
    fn write_problem(self, key: Key, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueError::NoColon => "no ':' after the key",
            ValueError::ListSyntax => "the list is not valid JSON: expected ',' or ']'",
            ValueError::TrailingComma => "a ',' after the last entry of the list",
            ValueError::NotUtf8 => "the text is not valid UTF-8",
            ValueError::WrongType => return wrong_type_problem(key, f),
        })
    }

    fn fix(self, key: Key) -> &'static str {
        match self {
            ValueError::NoColon => "write the key, a ':', then the value",
            ValueError::ListSyntax => "separate the entries with ',' and end the list with ']'",
            ValueError::TrailingComma => "remove the ',' before ']'",
            ValueError::NotUtf8 => "save the file as UTF-8",
            ValueError::WrongType => wrong_type_fix(key),
        }
    }
}

impl InterfaceError {
    fn write_problem(self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InterfaceError::Empty => "empty interface name",
            InterfaceError::TooLong { .. } => {
                return write!(
                    f,
                    "interface name longer than {IFNAME_MAX} bytes (the Linux limit)"
                )
            }
            InterfaceError::NotAName => "not an interface name",
            InterfaceError::Slash => "'/' is not allowed in an interface name",
            InterfaceError::Colon => "':' marks an alias label, which cannot capture packets",
            InterfaceError::Backslash => "'\\' is not allowed (JSON escapes are not decoded)",
            InterfaceError::Space => "spaces are not allowed in an interface name",
            InterfaceError::Control => "control characters are not allowed in an interface name",
        })
    }

    fn fix(self) -> &'static str {
        match self {
            InterfaceError::TooLong { .. } => {
                "use the kernel's name for the interface, as `ip link` lists it"
            }
            _ => "write the name as `ip link` lists it, e.g. \"eth0\"",
        }
    }
}

impl PathError {
    pub(super) fn write_problem(self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathError::NotAbsolute => "not an absolute path (it must start with '/')",
            PathError::Directory => "names a directory, not a file",
            PathError::TooLong { .. } => return write!(f, "path longer than {PATH_MAX} bytes"),
            PathError::Backslash => "'\\' is not allowed (JSON escapes are not decoded)",
            PathError::Control => "control characters are not allowed in the path",
            PathError::StatusFile => "the status file's path",
        })
    }

    fn metrics_fix(self) -> &'static str {
        match self {
            PathError::Directory => "add the file name, e.g. \"/var/run/ptpproxy/ptpproxy.prom\"",
            PathError::TooLong { .. } => "use a shorter path",
            PathError::StatusFile => {
                "use another file, e.g. \"/var/run/ptpproxy/ptpproxy.prom\" beside the status file"
            }
            _ => "write a full path such as \"/var/run/ptpproxy/ptpproxy.prom\"",
        }
    }

    fn fix(self) -> &'static str {
        match self {
            PathError::Directory => "add the file name, e.g. \"/var/run/ptpproxy/status.json\"",
            PathError::TooLong { .. } => "use a shorter path",
            _ => "write a full path such as \"/var/run/ptpproxy/status.json\"",
        }
    }
}

/// A [`ConfigError`] together with what the file itself says about it, borrowed from the input
/// (a `ConfigError` is `'static`, so it cannot quote the file).
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
        let (field, problem, fix) = (e.field(), e.problem(), e.fix());
        match self.context {
            Context::None => fmt::Display::fmt(e, f),
            Context::UnknownKey(key) => write!(f, "{}: {problem}; fix: {fix}", Quoted(key)),
            Context::Value(value) => {
                write!(f, "\"{field}\": {problem} ({}); fix: {fix}", Quoted(value))
            }
            Context::Near(key) => write!(f, "\"{field}\": {problem} (near \"{key}\"); fix: {fix}"),
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

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{Config, Correction, KEYS};

    #[test]
    fn messages_read_well() {
        let text = |json: &str| {
            Config::parse_detailed(json.as_bytes())
                .unwrap_err()
                .to_string()
        };
        let valid_keys = "upstream, downstream, domains, sdo_id, delay_resp, correction, \
                          max_hold_us, max_residence_us, allow_downstream_masters, client_timeout_s, \
                          max_delay_req_rate, upstream_max_delay_req_rate, max_delay_req_hold_ms, \
                          max_identities_per_mac, status_file, status_interval_s, metrics_file, \
                          promiscuous, user, realtime_priority, cpu_latency_us, bridge_ports, \
                          dump, bridge_filter";
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
    fn typed_errors_print_the_values_they_carry() {
        use super::super::Key;
        use super::{ConfigError, FileError, PathError};
        let timeout = ConfigError::OutOfRange {
            key: Key::ClientTimeoutS,
            value: 1,
            min: 2,
            max: 3600,
        };
        assert_eq!(
            timeout.to_string(),
            "\"client_timeout_s\": out of range: 2 to 3600 seconds; fix: use e.g. 60: a client \
             silent that long is forgotten"
        );
        let ports = ConfigError::TooMany {
            key: Key::Downstream,
            max: 7,
        };
        assert_eq!(
            ports.problem().to_string(),
            "more interfaces than this board supports (7 at most)"
        );
        let long = ConfigError::StatusFile(PathError::TooLong { len: 300 });
        assert_eq!(long.field(), "status_file");
        assert_eq!(long.problem().to_string(), "path longer than 255 bytes");
        let empty = ConfigError::File(FileError::Empty);
        assert_eq!(
            (empty.field(), empty.key(), ConfigError::UnknownKey.field()),
            ("(file)", None, "(unknown key)")
        );
    }
}
