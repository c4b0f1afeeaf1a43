//! The `"dump"` setting: `{"file": "/tmp/ptpproxy.pcapng", "frames": "dropped" | "all",
//! "max_bytes": N}`, a pcapng file of the frames ptpproxy handled, each with what it did with
//! them. Absent: no dump.
//!
//! Everything about this one nested object lives here: its typed form ([`DumpConfig`]), the
//! reader of the object (a serde visitor like the top-level one, unknown and repeated keys
//! rejected), its rules and its errors ([`DumpError`], named `dump.<key>`). It never touches a
//! file and never allocates.

use super::error::{ConfigError, ConfigRejection, Context, PathError};
use super::parse::Trace;
use super::schema::PATH_MAX;
use super::validate::{path_checked, quoting};
use core::fmt;
use core::ops::RangeInclusive;
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};

/// Which frames the dump holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DumpFrames {
    /// Only the frames ptpproxy did not relay (default): what an operator asks about.
    Dropped,
    /// Every frame handled, relayed or not.
    All,
}

/// Where and how much to dump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DumpConfig {
    pub file: heapless::String<PATH_MAX>,
    pub frames: DumpFrames,
    /// The largest the file grows; then it is renamed to `<file>.1` (replacing the one
    /// before) and a new file starts: the dump keeps the latest frames in at most twice this.
    pub max_bytes: u32,
}

pub const DEFAULT_DUMP_FRAMES: DumpFrames = DumpFrames::Dropped;
/// 4 MiB: some 25 000 frames with their comments, small beside a switch's RAM-backed /tmp.
pub const DEFAULT_DUMP_MAX_BYTES: u32 = 4 * 1024 * 1024;
/// A dump file's size: at least room for a few hundred frames, at most 1 GiB.
pub const DUMP_MAX_BYTES_RANGE: RangeInclusive<u32> = 65_536..=1_073_741_824;

/// The keys of the `"dump"` object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DumpKey {
    File,
    Frames,
    MaxBytes,
}

impl DumpKey {
    const ALL: [DumpKey; 3] = [DumpKey::File, DumpKey::Frames, DumpKey::MaxBytes];

    /// The key as written inside `"dump"`.
    pub fn name(self) -> &'static str {
        match self {
            DumpKey::File => "file",
            DumpKey::Frames => "frames",
            DumpKey::MaxBytes => "max_bytes",
        }
    }

    /// The field an error about this key names.
    fn field(self) -> &'static str {
        match self {
            DumpKey::File => "dump.file",
            DumpKey::Frames => "dump.frames",
            DumpKey::MaxBytes => "dump.max_bytes",
        }
    }
}

/// Why the `"dump"` setting was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DumpError {
    /// `"dump"` is not an object, or a key's value is not of its type (`Some(key)`).
    WrongType(Option<DumpKey>),
    /// A key other than file, frames, max_bytes ([`Context::UnknownKey`] carries it).
    UnknownKey,
    SetTwice(DumpKey),
    /// `"file"` is absent (it has no default).
    MissingFile,
    File(PathError),
    /// `"frames"` is neither "dropped" nor "all".
    UnknownFrames,
    /// `max_bytes` outside [`DUMP_MAX_BYTES_RANGE`].
    MaxBytes,
}

const EXAMPLE_FIX: &str = "write e.g. \"dump\": {\"file\": \"/tmp/ptpproxy.pcapng\", \"frames\": \
                           \"dropped\", \"max_bytes\": 4194304}, or leave \"dump\" out";
const FRAMES_FIX: &str = "use \"dropped\" (the frames not relayed) or \"all\"";
const MAX_BYTES_FIX: &str =
    "write e.g. 4194304 (4 MiB, no quotes); the file rotates to <file>.1 at this size";

impl DumpError {
    /// The field the message names: `dump` or `dump.<key>`.
    pub fn field(self) -> &'static str {
        match self {
            DumpError::WrongType(None) | DumpError::UnknownKey => "dump",
            DumpError::WrongType(Some(key)) | DumpError::SetTwice(key) => key.field(),
            DumpError::MissingFile | DumpError::File(_) => DumpKey::File.field(),
            DumpError::UnknownFrames => DumpKey::Frames.field(),
            DumpError::MaxBytes => DumpKey::MaxBytes.field(),
        }
    }

    pub(super) fn write_problem(self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (min, max) = (DUMP_MAX_BYTES_RANGE.start(), DUMP_MAX_BYTES_RANGE.end());
        match self {
            DumpError::WrongType(None) => f.write_str("not an object"),
            DumpError::WrongType(Some(DumpKey::File)) => f.write_str("not a path in quotes"),
            DumpError::WrongType(Some(DumpKey::Frames)) => f.write_str("not a mode in quotes"),
            DumpError::WrongType(Some(DumpKey::MaxBytes)) => {
                write!(f, "not a whole number of bytes from {min} to {max}")
            }
            DumpError::UnknownKey => f.write_str("unknown key in \"dump\""),
            DumpError::SetTwice(_) => f.write_str("set twice"),
            DumpError::MissingFile => f.write_str("missing (it has no default)"),
            DumpError::File(e) => e.write_problem(f),
            DumpError::UnknownFrames => f.write_str("unknown mode"),
            DumpError::MaxBytes => write!(f, "out of range: {min} to {max} bytes"),
        }
    }

    pub(super) fn fix(self) -> &'static str {
        match self {
            DumpError::WrongType(None) => EXAMPLE_FIX,
            DumpError::UnknownKey => "remove it; keys of \"dump\": file, frames, max_bytes",
            DumpError::SetTwice(_) => "keep only one of the two",
            DumpError::MissingFile => "add \"file\": \"/tmp/ptpproxy.pcapng\" to \"dump\"",
            DumpError::WrongType(Some(DumpKey::File)) | DumpError::File(_) => {
                "write a full path to a file, e.g. \"file\": \"/tmp/ptpproxy.pcapng\""
            }
            DumpError::WrongType(Some(DumpKey::Frames)) | DumpError::UnknownFrames => FRAMES_FIX,
            DumpError::WrongType(Some(DumpKey::MaxBytes)) | DumpError::MaxBytes => MAX_BYTES_FIX,
        }
    }
}

/// The `"dump"` object as written.
#[derive(Default)]
pub(super) struct RawDump<'a> {
    file: Option<&'a str>,
    frames: Option<&'a str>,
    max_bytes: Option<u32>,
}

/// Reads the `"dump"` object; `trace` learns the key being read, so that a value of the wrong
/// type is pinned on it.
pub(super) struct Reader<'t, 'a> {
    pub trace: &'t mut Trace<'a>,
}

impl<'de> DeserializeSeed<'de> for Reader<'_, 'de> {
    type Value = RawDump<'de>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<RawDump<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Reader<'_, 'de> {
    type Value = RawDump<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the dump object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawDump<'de>, A::Error> {
        let mut raw = RawDump::default();
        while let Some(name) = map.next_key::<&'de str>()? {
            let Some(key) = DumpKey::ALL.into_iter().find(|k| k.name() == name) else {
                let error = ConfigError::Dump(DumpError::UnknownKey);
                let context = Context::UnknownKey(name);
                return Err(self.trace.reject(ConfigRejection { error, context }));
            };
            let twice = match key {
                DumpKey::File => raw.file.is_some(),
                DumpKey::Frames => raw.frames.is_some(),
                DumpKey::MaxBytes => raw.max_bytes.is_some(),
            };
            if twice {
                let error = ConfigError::Dump(DumpError::SetTwice(key));
                return Err(self.trace.reject(error.into()));
            }
            self.trace.dump_key = Some(key);
            match key {
                DumpKey::File => raw.file = Some(map.next_value()?),
                DumpKey::Frames => raw.frames = Some(map.next_value()?),
                DumpKey::MaxBytes => raw.max_bytes = Some(map.next_value()?),
            }
            self.trace.dump_key = None;
        }
        Ok(raw)
    }
}

/// The rules: `file` required and a usable path, `frames` a mode, `max_bytes` in range.
pub(super) fn validate(raw: RawDump<'_>) -> Result<DumpConfig, ConfigRejection<'_>> {
    let quoting = |e: DumpError, value| quoting(ConfigError::Dump(e), value);
    let file = raw.file.ok_or(ConfigError::Dump(DumpError::MissingFile))?;
    let file = path_checked(file).map_err(|e| quoting(DumpError::File(e), file))?;
    let frames = match raw.frames {
        None => DEFAULT_DUMP_FRAMES,
        Some("dropped") => DumpFrames::Dropped,
        Some("all") => DumpFrames::All,
        Some(other) => return Err(quoting(DumpError::UnknownFrames, other)),
    };
    let max_bytes = raw.max_bytes.unwrap_or(DEFAULT_DUMP_MAX_BYTES);
    if !DUMP_MAX_BYTES_RANGE.contains(&max_bytes) {
        return Err(ConfigError::Dump(DumpError::MaxBytes).into());
    }
    Ok(DumpConfig {
        file,
        frames,
        max_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::Config;
    use super::*;

    fn dump_of(setting: &str) -> Option<DumpConfig> {
        let json = minimal_with(&format!(r#""dump": {setting}"#));
        Config::parse(json.as_bytes()).unwrap().dump
    }

    fn text(setting: &str) -> String {
        let json = minimal_with(&format!(r#""dump": {setting}"#));
        Config::parse_detailed(json.as_bytes())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn absent_is_off_and_defaults_fill_the_rest() {
        assert_eq!(Config::parse(MINIMAL.as_bytes()).unwrap().dump, None);
        let d = dump_of(r#"{"file": "/tmp/p.pcapng"}"#).unwrap();
        assert_eq!(d.file.as_str(), "/tmp/p.pcapng");
        assert_eq!(d.frames, DumpFrames::Dropped);
        assert_eq!(d.max_bytes, DEFAULT_DUMP_MAX_BYTES);
        let d = dump_of(r#"{"max_bytes": 65536, "frames": "all", "file": "/d/x"}"#).unwrap();
        assert_eq!((d.frames, d.max_bytes), (DumpFrames::All, 65536));
    }

    #[test]
    fn bad_values_name_the_field() {
        #[rustfmt::skip]
        let cases: &[(&str, &str)] = &[
            ("dump", r#""/tmp/p.pcapng""#),
            ("dump", r#"[1]"#),
            ("dump", r#"{"file": "/tmp/p", "size": 1}"#),
            ("dump.file", r#"{}"#),
            ("dump.file", r#"{"frames": "all"}"#),
            ("dump.file", r#"{"file": "tmp/p"}"#),
            ("dump.file", r#"{"file": "/tmp/"}"#),
            ("dump.file", r#"{"file": 3}"#),
            ("dump.file", r#"{"file": "/a", "file": "/b"}"#),
            ("dump.frames", r#"{"file": "/a", "frames": "forwarded"}"#),
            ("dump.frames", r#"{"file": "/a", "frames": true}"#),
            ("dump.max_bytes", r#"{"file": "/a", "max_bytes": 1000}"#),
            ("dump.max_bytes", r#"{"file": "/a", "max_bytes": 2000000000}"#),
            ("dump.max_bytes", r#"{"file": "/a", "max_bytes": "1M"}"#),
            ("dump.max_bytes", r#"{"file": "/a", "max_bytes": -1}"#),
        ];
        for &(field, setting) in cases {
            assert_rejected_as(field, &minimal_with(&format!(r#""dump": {setting}"#)));
        }
        assert_rejected_as(
            "dump",
            &minimal_with(r#""dump": {"file": "/a"}, "dump": {"file": "/b"}"#),
        );
    }

    #[test]
    fn messages_say_the_fix() {
        assert_eq!(
            text(r#"{"file": "/a", "frames": "some"}"#),
            "\"dump.frames\": unknown mode (\"some\"); fix: use \"dropped\" (the frames not \
             relayed) or \"all\""
        );
        assert_eq!(
            text(r#"{"file": "/a", "max_bytes": 10}"#),
            "\"dump.max_bytes\": out of range: 65536 to 1073741824 bytes; fix: write e.g. \
             4194304 (4 MiB, no quotes); the file rotates to <file>.1 at this size"
        );
        assert_eq!(
            text(r#"{"file": "/a", "colour": 1}"#),
            "\"colour\": unknown key in \"dump\"; fix: remove it; keys of \"dump\": file, \
             frames, max_bytes"
        );
        assert!(text("1").starts_with("\"dump\": not an object; fix: write e.g. \"dump\": {"));
    }

    #[test]
    fn every_prefix_of_a_file_with_a_dump_is_a_file_error() {
        let json = minimal_with(r#""dump": {"file": "/tmp/p.pcapng", "frames": "all"}"#);
        assert!(Config::parse(json.as_bytes()).is_ok());
        for n in 0..json.len() {
            let e = Config::parse(&json.as_bytes()[..n]).unwrap_err();
            assert_eq!(e.field(), super::super::FILE_FIELD, "{n} bytes: {e}");
        }
    }
}
