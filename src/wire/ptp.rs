//! PTPv2 messages: the common header (IEEE 1588-2019 §13.3) and the message bodies the relay
//! reads (Delay_Resp's requestingPortIdentity, §13.8).
//!
//! [`Header`] is the zero-copy view the relay works on. [`HeaderRepr`] and [`MessageRepr`] are the
//! same as plain values, for building messages (tests, the load generator) and reading them whole:
//! the bodies of Sync, Delay_Req, Follow_Up, Delay_Resp (§13.6–§13.8) and Announce (§13.5) are
//! typed, every other message type travels as opaque body bytes, and TLVs after the fixed body
//! (§14) as opaque suffix bytes.
//!
//! ```
//! use ptpproxy::wire::ptp::{MessageRepr, Timestamp};
//! use ptpproxy::wire::PortIdentity;
//!
//! let client = PortIdentity { clock_identity: [2, 0, 0, 0xff, 0xfe, 0, 1, 1], port_number: 1 };
//! let req = MessageRepr::delay_req(client, 38, Timestamp::default()).with_domain(24);
//! let mut buf = [0u8; 64];
//! req.emit(&mut buf);
//! assert_eq!(&buf[..4], &[0x01, 0x02, 0x00, 44]); // Delay_Req, v2, messageLength 44
//! ```

use super::{Error, Result};
use core::fmt;

mod field {
    use core::ops::Range;
    /// Low nibble messageType, high nibble majorSdoId (transportSpecific in v2.0).
    pub const MESSAGE_TYPE: usize = 0;
    /// Low nibble versionPTP, high nibble minorVersionPTP.
    pub const VERSION: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const DOMAIN: usize = 4;
    pub const MINOR_SDO_ID: usize = 5;
    pub const FLAGS: Range<usize> = 6..8;
    pub const CORRECTION: Range<usize> = 8..16;
    pub const SOURCE_PORT_IDENTITY: Range<usize> = 20..30;
    pub const SEQUENCE_ID: Range<usize> = 30..32;
    pub const MESSAGE_TYPE_SPECIFIC: Range<usize> = 16..20;
    pub const CONTROL: usize = 32;
    pub const LOG_MESSAGE_INTERVAL: usize = 33;
    pub const HEADER_LEN: usize = 34;
    /// Delay_Resp and Pdelay_Resp: receiveTimestamp (10), then requestingPortIdentity (10).
    pub const REQUESTING_PORT_IDENTITY: Range<usize> = 44..54;
}

/// Length of the common header.
pub const HEADER_LEN: usize = field::HEADER_LEN;
/// The longest [`MessageRepr::bare`] message: an Announce's fixed length.
pub const BARE_MAX_LEN: usize = 64;

/// messageType (IEEE 1588-2019 Table 36). Reserved codes survive as `Unknown`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageType {
    Sync,
    DelayReq,
    PdelayReq,
    PdelayResp,
    FollowUp,
    DelayResp,
    PdelayRespFollowUp,
    Announce,
    Signaling,
    Management,
    Unknown(u8),
}

impl MessageType {
    pub fn from_nibble(v: u8) -> Self {
        match v & 0x0F {
            0x0 => MessageType::Sync,
            0x1 => MessageType::DelayReq,
            0x2 => MessageType::PdelayReq,
            0x3 => MessageType::PdelayResp,
            0x8 => MessageType::FollowUp,
            0x9 => MessageType::DelayResp,
            0xA => MessageType::PdelayRespFollowUp,
            0xB => MessageType::Announce,
            0xC => MessageType::Signaling,
            0xD => MessageType::Management,
            other => MessageType::Unknown(other),
        }
    }

    /// The smallest messageLength a message of this type can have (§13.5–§13.12).
    pub fn min_len(self) -> usize {
        match self {
            MessageType::Sync | MessageType::DelayReq | MessageType::FollowUp => 44,
            MessageType::PdelayReq
            | MessageType::PdelayResp
            | MessageType::DelayResp
            | MessageType::PdelayRespFollowUp => 54,
            MessageType::Announce => 64,
            MessageType::Signaling => 44,
            MessageType::Management => 48,
            MessageType::Unknown(_) => HEADER_LEN,
        }
    }

    /// The 4-bit code of the type (the inverse of [`from_nibble`](Self::from_nibble)).
    pub fn nibble(self) -> u8 {
        match self {
            MessageType::Sync => 0x0,
            MessageType::DelayReq => 0x1,
            MessageType::PdelayReq => 0x2,
            MessageType::PdelayResp => 0x3,
            MessageType::FollowUp => 0x8,
            MessageType::DelayResp => 0x9,
            MessageType::PdelayRespFollowUp => 0xA,
            MessageType::Announce => 0xB,
            MessageType::Signaling => 0xC,
            MessageType::Management => 0xD,
            MessageType::Unknown(v) => v & 0x0F,
        }
    }

    /// controlField (§13.3.2.13, Table 42): deprecated, but still set for version 1 hardware.
    pub fn control_field(self) -> u8 {
        match self {
            MessageType::Sync => 0,
            MessageType::DelayReq => 1,
            MessageType::FollowUp => 2,
            MessageType::DelayResp => 3,
            MessageType::Management => 4,
            _ => 5,
        }
    }

    /// logMessageInterval as the default profile sends it (§13.3.2.14; default intervals of
    /// Annex I.3): 0 (one per second) for Sync, Follow_Up and Delay_Resp, 1 for Announce, 0x7F
    /// ("not used") for the rest.
    pub fn default_log_message_interval(self) -> i8 {
        match self {
            MessageType::Sync | MessageType::FollowUp | MessageType::DelayResp => 0,
            MessageType::Announce => 1,
            _ => 0x7F,
        }
    }

    /// Peer-delay messages travel to their own link-local groups (Annex C.3, D.3, E.3).
    pub fn is_pdelay(self) -> bool {
        matches!(
            self,
            MessageType::PdelayReq | MessageType::PdelayResp | MessageType::PdelayRespFollowUp
        )
    }

    /// Event messages are timestamped on the wire (§8.4.2 ... Table 36: codes 0–3).
    pub fn is_event(self) -> bool {
        matches!(
            self,
            MessageType::Sync
                | MessageType::DelayReq
                | MessageType::PdelayReq
                | MessageType::PdelayResp
        )
    }
}

/// sourcePortIdentity / requestingPortIdentity (§7.5.2): clockIdentity + portNumber.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortIdentity {
    pub clock_identity: [u8; 8],
    pub port_number: u16,
}

impl PortIdentity {
    pub fn from_bytes(b: &[u8; 10]) -> Self {
        let mut clock_identity = [0; 8];
        clock_identity.copy_from_slice(&b[..8]);
        PortIdentity {
            clock_identity,
            port_number: u16::from_be_bytes([b[8], b[9]]),
        }
    }

    pub fn to_bytes(self) -> [u8; 10] {
        let mut b = [0; 10];
        b[..8].copy_from_slice(&self.clock_identity);
        b[8..].copy_from_slice(&self.port_number.to_be_bytes());
        b
    }
}

/// Printed the way linuxptp prints it: `aabbcc.fffe.ddeeff-1`.
impl fmt::Display for PortIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.clock_identity;
        write!(
            f,
            "{:02x}{:02x}{:02x}.{:02x}{:02x}.{:02x}{:02x}{:02x}-{}",
            c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], self.port_number
        )
    }
}

/// Read/write view of a PTPv2 message: the common header and the fields after it.
#[derive(Debug)]
pub struct Header<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Header<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        Header { buffer }
    }

    /// Use on every received message. Checks versionPTP == 2 and that messageLength covers the
    /// message type's body and fits the buffer (trailing padding is allowed). After `Ok`, no
    /// accessor panics.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let h = Self::new_unchecked(buffer);
        h.check_len()?;
        Ok(h)
    }

    pub fn check_len(&self) -> Result<()> {
        self.check().map(|_| ())
    }

    /// [`Header::check_len`], returning the messageType it judged the length by (so a caller
    /// that needs it does not decode it again).
    pub fn check(&self) -> Result<MessageType> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let version = b[field::VERSION] & 0x0F;
        if version != 2 {
            return Err(Error::UnsupportedVersion(version));
        }
        let len = self.message_length();
        let message_type = self.message_type();
        if usize::from(len) < message_type.min_len() {
            return Err(Error::BadMessageLength(len));
        }
        if usize::from(len) > b.len() {
            return Err(Error::Truncated);
        }
        Ok(message_type)
    }

    fn be16(&self, r: core::ops::Range<usize>) -> u16 {
        let s = &self.buffer.as_ref()[r];
        u16::from_be_bytes([s[0], s[1]])
    }

    pub fn message_type(&self) -> MessageType {
        MessageType::from_nibble(self.buffer.as_ref()[field::MESSAGE_TYPE])
    }

    /// majorSdoId (transportSpecific in IEEE 1588-2008).
    pub fn major_sdo_id(&self) -> u8 {
        self.buffer.as_ref()[field::MESSAGE_TYPE] >> 4
    }

    /// minorSdoId (octet 5; reserved, zero, in IEEE 1588-2008).
    pub fn minor_sdo_id(&self) -> u8 {
        self.buffer.as_ref()[field::MINOR_SDO_ID]
    }

    /// sdoId, majorSdoId << 8 | minorSdoId (§7.1.4): with domainNumber, what names the PTP
    /// domain a message belongs to.
    pub fn sdo_id(&self) -> u16 {
        u16::from(self.major_sdo_id()) << 8 | u16::from(self.minor_sdo_id())
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION] & 0x0F
    }

    pub fn message_length(&self) -> u16 {
        self.be16(field::LENGTH)
    }

    pub fn domain_number(&self) -> u8 {
        self.buffer.as_ref()[field::DOMAIN]
    }

    pub fn flags(&self) -> u16 {
        self.be16(field::FLAGS)
    }

    /// twoStepFlag (flagField octet 0, bit 1, §13.3.2.8).
    pub fn two_step(&self) -> bool {
        self.buffer.as_ref()[field::FLAGS.start] & 0x02 != 0
    }

    /// correctionField: nanoseconds x 2^16, signed (§13.3.2.9).
    pub fn correction(&self) -> i64 {
        let mut b = [0; 8];
        b.copy_from_slice(&self.buffer.as_ref()[field::CORRECTION]);
        i64::from_be_bytes(b)
    }

    pub fn source_port_identity(&self) -> PortIdentity {
        let mut b = [0; 10];
        b.copy_from_slice(&self.buffer.as_ref()[field::SOURCE_PORT_IDENTITY]);
        PortIdentity::from_bytes(&b)
    }

    pub fn sequence_id(&self) -> u16 {
        self.be16(field::SEQUENCE_ID)
    }

    pub fn log_message_interval(&self) -> i8 {
        self.buffer.as_ref()[field::LOG_MESSAGE_INTERVAL] as i8
    }

    /// The body of an Announce (§13.5.1); `None` for other types, or a message too short to
    /// hold one.
    pub fn announce(&self) -> Option<AnnounceBody> {
        let m = self.buffer.as_ref();
        (self.message_type() == MessageType::Announce && m.len() >= MessageType::Announce.min_len())
            .then(|| AnnounceBody::parse(m))
    }

    /// requestingPortIdentity of a Delay_Resp or Pdelay_Resp (§13.8.2.2); `None` for other types.
    pub fn requesting_port_identity(&self) -> Option<PortIdentity> {
        match self.message_type() {
            MessageType::DelayResp | MessageType::PdelayResp => {
                let mut b = [0; 10];
                b.copy_from_slice(&self.buffer.as_ref()[field::REQUESTING_PORT_IDENTITY]);
                Some(PortIdentity::from_bytes(&b))
            }
            _ => None,
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Header<T> {
    pub fn set_correction(&mut self, value: i64) {
        self.buffer.as_mut()[field::CORRECTION].copy_from_slice(&value.to_be_bytes());
    }

    pub fn set_sequence_id(&mut self, value: u16) {
        self.buffer.as_mut()[field::SEQUENCE_ID].copy_from_slice(&value.to_be_bytes());
    }

    pub fn set_domain_number(&mut self, value: u8) {
        self.buffer.as_mut()[field::DOMAIN] = value;
    }
}

/// flagField bit of twoStepFlag (octet 0, bit 1, §13.3.2.8), as a big-endian `u16`.
pub const FLAG_TWO_STEP: u16 = 0x0200;

/// The common header as plain values (§13.3): parse a view into it, emit it into a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderRepr {
    /// Octet 0 whole: majorSdoId and messageType.
    pub sdo_and_type: u8,
    /// Octet 1 whole: minorVersionPTP and versionPTP.
    pub version: u8,
    pub message_length: u16,
    pub domain_number: u8,
    /// Octet 5: minorSdoId.
    pub minor_sdo_id: u8,
    pub flags: u16,
    pub correction: i64,
    pub message_type_specific: [u8; 4],
    pub source_port_identity: PortIdentity,
    pub sequence_id: u16,
    pub control: u8,
    pub log_message_interval: i8,
}

impl HeaderRepr {
    /// A header with the defaults of the type: majorSdoId 0, version 2.0, messageLength the
    /// type's fixed length ([`MessageType::min_len`]), domain 0, twoStepFlag on Sync (the
    /// Follow_Up carries the time, as ptp4l does by default) and no other flag, correction 0,
    /// the type's controlField and default logMessageInterval.
    pub fn new(message_type: MessageType, source: PortIdentity, sequence_id: u16) -> HeaderRepr {
        HeaderRepr {
            sdo_and_type: message_type.nibble(),
            version: 0x02,
            message_length: message_type.min_len() as u16,
            domain_number: 0,
            minor_sdo_id: 0,
            flags: match message_type {
                MessageType::Sync => FLAG_TWO_STEP,
                _ => 0,
            },
            correction: 0,
            message_type_specific: [0; 4],
            source_port_identity: source,
            sequence_id,
            control: message_type.control_field(),
            log_message_interval: message_type.default_log_message_interval(),
        }
    }

    /// The messageType in the low nibble of octet 0.
    pub fn message_type(&self) -> MessageType {
        MessageType::from_nibble(self.sdo_and_type)
    }

    pub fn parse<T: AsRef<[u8]>>(h: &Header<T>) -> HeaderRepr {
        let b = h.buffer.as_ref();
        let mut mts = [0; 4];
        mts.copy_from_slice(&b[field::MESSAGE_TYPE_SPECIFIC]);
        HeaderRepr {
            sdo_and_type: b[field::MESSAGE_TYPE],
            version: b[field::VERSION],
            message_length: h.message_length(),
            domain_number: h.domain_number(),
            minor_sdo_id: b[field::MINOR_SDO_ID],
            flags: h.flags(),
            correction: h.correction(),
            message_type_specific: mts,
            source_port_identity: h.source_port_identity(),
            sequence_id: h.sequence_id(),
            control: b[field::CONTROL],
            log_message_interval: h.log_message_interval(),
        }
    }

    /// Write the header into the first [`HEADER_LEN`] bytes of `buf` (which must hold them).
    pub fn emit(&self, buf: &mut [u8]) {
        let b = &mut buf[..HEADER_LEN];
        b[field::MESSAGE_TYPE] = self.sdo_and_type;
        b[field::VERSION] = self.version;
        b[field::LENGTH].copy_from_slice(&self.message_length.to_be_bytes());
        b[field::DOMAIN] = self.domain_number;
        b[field::MINOR_SDO_ID] = self.minor_sdo_id;
        b[field::FLAGS].copy_from_slice(&self.flags.to_be_bytes());
        b[field::CORRECTION].copy_from_slice(&self.correction.to_be_bytes());
        b[field::MESSAGE_TYPE_SPECIFIC].copy_from_slice(&self.message_type_specific);
        b[field::SOURCE_PORT_IDENTITY].copy_from_slice(&self.source_port_identity.to_bytes());
        b[field::SEQUENCE_ID].copy_from_slice(&self.sequence_id.to_be_bytes());
        b[field::CONTROL] = self.control;
        b[field::LOG_MESSAGE_INTERVAL] = self.log_message_interval as u8;
    }
}

/// A PTP Timestamp (§5.3.3): 48 bits of seconds and the nanoseconds (below 10^9) into the
/// second. Not to be confused with `crate::time::Timestamp`, the shell's capture time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp {
    /// secondsField: only the low 48 bits are sent.
    pub seconds: u64,
    pub nanoseconds: u32,
}

impl Timestamp {
    /// Bytes on the wire.
    pub const LEN: usize = 10;

    /// From nanoseconds since the epoch of the timescale.
    pub const fn from_nanos(ns: u64) -> Timestamp {
        Timestamp {
            seconds: ns / 1_000_000_000,
            nanoseconds: (ns % 1_000_000_000) as u32,
        }
    }

    pub fn from_bytes(b: &[u8; 10]) -> Timestamp {
        Timestamp {
            seconds: u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]]),
            nanoseconds: u32::from_be_bytes([b[6], b[7], b[8], b[9]]),
        }
    }

    pub fn to_bytes(self) -> [u8; 10] {
        let mut b = [0; 10];
        b[..6].copy_from_slice(&self.seconds.to_be_bytes()[2..]);
        b[6..].copy_from_slice(&self.nanoseconds.to_be_bytes());
        b
    }
}

/// ClockQuality (§5.3.7): what the best master clock algorithm compares after priority1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ClockQuality {
    pub clock_class: u8,
    pub clock_accuracy: u8,
    pub offset_scaled_log_variance: u16,
}

/// The Announce body (§13.5.1), after the common header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnnounceBody {
    pub origin_timestamp: Timestamp,
    pub current_utc_offset: i16,
    pub grandmaster_priority1: u8,
    pub grandmaster_clock_quality: ClockQuality,
    pub grandmaster_priority2: u8,
    pub grandmaster_identity: [u8; 8],
    pub steps_removed: u16,
    /// timeSource (§7.6.2.8, Table 6).
    pub time_source: u8,
}

mod announce {
    use core::ops::Range;
    /// Offsets into the message (the body starts after the 34-byte header).
    pub const ORIGIN_TIMESTAMP: Range<usize> = 34..44;
    pub const CURRENT_UTC_OFFSET: Range<usize> = 44..46;
    /// Octet 46 is reserved.
    pub const PRIORITY1: usize = 47;
    pub const CLOCK_CLASS: usize = 48;
    pub const CLOCK_ACCURACY: usize = 49;
    pub const VARIANCE: Range<usize> = 50..52;
    pub const PRIORITY2: usize = 52;
    pub const GRANDMASTER_IDENTITY: Range<usize> = 53..61;
    pub const STEPS_REMOVED: Range<usize> = 61..63;
    pub const TIME_SOURCE: usize = 63;
}

impl AnnounceBody {
    /// A free-running grandmaster as ptp4l announces one by default: UTC offset 37 s,
    /// priorities 128, clockClass 248 (default), accuracy unknown (0xFE), variance 0xFFFF,
    /// 0 steps removed, timeSource INTERNAL_OSCILLATOR (0xA0).
    pub fn new(grandmaster_identity: [u8; 8]) -> AnnounceBody {
        AnnounceBody {
            origin_timestamp: Timestamp::default(),
            current_utc_offset: 37,
            grandmaster_priority1: 128,
            grandmaster_clock_quality: ClockQuality {
                clock_class: 248,
                clock_accuracy: 0xFE,
                offset_scaled_log_variance: 0xFFFF,
            },
            grandmaster_priority2: 128,
            grandmaster_identity,
            steps_removed: 0,
            time_source: 0xA0,
        }
    }

    /// Read from a whole message (at least 64 bytes: header and body).
    fn parse(m: &[u8]) -> AnnounceBody {
        let mut grandmaster_identity = [0; 8];
        grandmaster_identity.copy_from_slice(&m[announce::GRANDMASTER_IDENTITY]);
        AnnounceBody {
            origin_timestamp: timestamp_at(m, announce::ORIGIN_TIMESTAMP.start),
            current_utc_offset: i16::from_be_bytes([
                m[announce::CURRENT_UTC_OFFSET.start],
                m[announce::CURRENT_UTC_OFFSET.start + 1],
            ]),
            grandmaster_priority1: m[announce::PRIORITY1],
            grandmaster_clock_quality: ClockQuality {
                clock_class: m[announce::CLOCK_CLASS],
                clock_accuracy: m[announce::CLOCK_ACCURACY],
                offset_scaled_log_variance: u16::from_be_bytes([
                    m[announce::VARIANCE.start],
                    m[announce::VARIANCE.start + 1],
                ]),
            },
            grandmaster_priority2: m[announce::PRIORITY2],
            grandmaster_identity,
            steps_removed: u16::from_be_bytes([
                m[announce::STEPS_REMOVED.start],
                m[announce::STEPS_REMOVED.start + 1],
            ]),
            time_source: m[announce::TIME_SOURCE],
        }
    }

    /// Write into a whole message buffer (the header is not touched; the reserved octet is 0).
    fn emit(&self, m: &mut [u8]) {
        m[announce::ORIGIN_TIMESTAMP].copy_from_slice(&self.origin_timestamp.to_bytes());
        m[announce::CURRENT_UTC_OFFSET].copy_from_slice(&self.current_utc_offset.to_be_bytes());
        m[announce::PRIORITY1 - 1] = 0;
        m[announce::PRIORITY1] = self.grandmaster_priority1;
        let q = &self.grandmaster_clock_quality;
        m[announce::CLOCK_CLASS] = q.clock_class;
        m[announce::CLOCK_ACCURACY] = q.clock_accuracy;
        m[announce::VARIANCE].copy_from_slice(&q.offset_scaled_log_variance.to_be_bytes());
        m[announce::PRIORITY2] = self.grandmaster_priority2;
        m[announce::GRANDMASTER_IDENTITY].copy_from_slice(&self.grandmaster_identity);
        m[announce::STEPS_REMOVED].copy_from_slice(&self.steps_removed.to_be_bytes());
        m[announce::TIME_SOURCE] = self.time_source;
    }
}

fn timestamp_at(m: &[u8], at: usize) -> Timestamp {
    let mut b = [0; Timestamp::LEN];
    b.copy_from_slice(&m[at..at + Timestamp::LEN]);
    Timestamp::from_bytes(&b)
}

fn port_identity_at(m: &[u8], at: usize) -> PortIdentity {
    let mut b = [0; 10];
    b.copy_from_slice(&m[at..at + 10]);
    PortIdentity::from_bytes(&b)
}

/// The fixed part of a message after the common header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageBody<'a> {
    /// §13.6: the originTimestamp (zero or approximate in a two-step Sync).
    Sync { origin_timestamp: Timestamp },
    /// §13.6: the originTimestamp (approximate; the event timestamp is what counts).
    DelayReq { origin_timestamp: Timestamp },
    /// §13.7: the Sync's preciseOriginTimestamp.
    FollowUp { precise_origin_timestamp: Timestamp },
    /// §13.8: when the Delay_Req arrived, and whose it was.
    DelayResp {
        receive_timestamp: Timestamp,
        requesting_port_identity: PortIdentity,
    },
    /// §13.5.
    Announce(AnnounceBody),
    /// Any other type (Pdelay_*, Signaling, Management, reserved codes): the bytes of its fixed
    /// body (what [`MessageType::min_len`] counts after the header), written as they are. Parsing
    /// never yields it for the typed messages above, but it may carry any type when emitting.
    Other(&'a [u8]),
}

impl MessageBody<'_> {
    /// Bytes after the common header.
    pub fn len(&self) -> usize {
        match self {
            MessageBody::Sync { .. }
            | MessageBody::DelayReq { .. }
            | MessageBody::FollowUp { .. } => Timestamp::LEN,
            MessageBody::DelayResp { .. } => Timestamp::LEN + 10,
            MessageBody::Announce(_) => 30,
            MessageBody::Other(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The message type the body belongs to; `None` for [`MessageBody::Other`].
    pub fn message_type(&self) -> Option<MessageType> {
        Some(match self {
            MessageBody::Sync { .. } => MessageType::Sync,
            MessageBody::DelayReq { .. } => MessageType::DelayReq,
            MessageBody::FollowUp { .. } => MessageType::FollowUp,
            MessageBody::DelayResp { .. } => MessageType::DelayResp,
            MessageBody::Announce(_) => MessageType::Announce,
            MessageBody::Other(_) => return None,
        })
    }
}

/// A whole PTP message as plain values: the common header, the fixed body and the TLVs after it.
///
/// `emit` writes the header exactly as it is here, messageType and messageLength included: the
/// constructors and `with_suffix` keep them consistent with the body and
/// [`buffer_len`](Self::buffer_len); set `header.message_length` (or `header.version`) by hand
/// to build a message that lies about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageRepr<'a> {
    pub header: HeaderRepr,
    pub body: MessageBody<'a>,
    /// What follows the fixed body up to messageLength: TLVs (§14), written as they are.
    pub suffix: &'a [u8],
}

impl MessageRepr<'static> {
    /// A Sync from `source` (two-step by default: see [`HeaderRepr::new`]).
    pub fn sync(source: PortIdentity, sequence_id: u16, origin_timestamp: Timestamp) -> Self {
        MessageRepr::new(source, sequence_id, MessageBody::Sync { origin_timestamp })
    }

    pub fn delay_req(source: PortIdentity, sequence_id: u16, origin_timestamp: Timestamp) -> Self {
        MessageRepr::new(
            source,
            sequence_id,
            MessageBody::DelayReq { origin_timestamp },
        )
    }

    pub fn follow_up(
        source: PortIdentity,
        sequence_id: u16,
        precise_origin_timestamp: Timestamp,
    ) -> Self {
        let body = MessageBody::FollowUp {
            precise_origin_timestamp,
        };
        MessageRepr::new(source, sequence_id, body)
    }

    /// The answer to the Delay_Req `requesting` sent with `sequence_id` (§11.3.2: a Delay_Resp
    /// copies the Delay_Req's sequenceId and names its sender).
    pub fn delay_resp(
        source: PortIdentity,
        sequence_id: u16,
        receive_timestamp: Timestamp,
        requesting: PortIdentity,
    ) -> Self {
        let body = MessageBody::DelayResp {
            receive_timestamp,
            requesting_port_identity: requesting,
        };
        MessageRepr::new(source, sequence_id, body)
    }

    pub fn announce(source: PortIdentity, sequence_id: u16, body: AnnounceBody) -> Self {
        MessageRepr::new(source, sequence_id, MessageBody::Announce(body))
    }
}

impl<'a> MessageRepr<'a> {
    /// A message with the header defaults of its type ([`HeaderRepr::new`]). A
    /// [`MessageBody::Other`] body is taken as a Management message; use [`other`](Self::other)
    /// to name the type.
    pub fn new(source: PortIdentity, sequence_id: u16, body: MessageBody<'a>) -> Self {
        let t = body.message_type().unwrap_or(MessageType::Management);
        MessageRepr::other(t, source, sequence_id, body)
    }

    /// A message of type `message_type` with the given body (typed or opaque) and the header
    /// defaults of the type.
    pub fn other(
        message_type: MessageType,
        source: PortIdentity,
        sequence_id: u16,
        body: MessageBody<'a>,
    ) -> Self {
        let mut m = MessageRepr {
            header: HeaderRepr::new(message_type, source, sequence_id),
            body,
            suffix: &[],
        };
        m.header.message_length = m.buffer_len() as u16;
        m
    }

    /// The same message with `suffix` (TLVs) after the body and messageLength to match.
    /// A message of `length` bytes (its messageLength) that carries only what a relay routes by:
    /// type, source, sequenceId and, given one, a requestingPortIdentity (in the Delay_Resp body
    /// layout); every other header field and body byte zero (flags, controlField,
    /// logMessageInterval too). For tests and load whose frames are judged by routing alone.
    /// `length` is raised to what the body needs and capped at [`BARE_MAX_LEN`].
    pub fn bare(
        message_type: MessageType,
        source: PortIdentity,
        sequence_id: u16,
        requesting: Option<PortIdentity>,
        length: usize,
    ) -> MessageRepr<'static> {
        static ZEROS: [u8; BARE_MAX_LEN - HEADER_LEN] = [0; BARE_MAX_LEN - HEADER_LEN];
        let body = match requesting {
            Some(r) => MessageBody::DelayResp {
                receive_timestamp: Timestamp::default(),
                requesting_port_identity: r,
            },
            None => MessageBody::Other(&[]),
        };
        let m = MessageRepr::other(message_type, source, sequence_id, body);
        let pad = length.min(BARE_MAX_LEN).saturating_sub(m.buffer_len());
        let mut m = m.with_suffix(&ZEROS[..pad]);
        m.header.flags = 0;
        m.header.control = 0;
        m.header.log_message_interval = 0;
        m
    }

    pub fn with_suffix<'b>(self, suffix: &'b [u8]) -> MessageRepr<'b>
    where
        'a: 'b,
    {
        let mut m = MessageRepr { suffix, ..self };
        m.header.message_length = m.buffer_len() as u16;
        m
    }

    pub fn with_domain(mut self, domain_number: u8) -> Self {
        self.header.domain_number = domain_number;
        self
    }

    pub fn with_flags(mut self, flags: u16) -> Self {
        self.header.flags = flags;
        self
    }

    pub fn with_correction(mut self, correction: i64) -> Self {
        self.header.correction = correction;
        self
    }

    pub fn with_log_message_interval(mut self, log_message_interval: i8) -> Self {
        self.header.log_message_interval = log_message_interval;
        self
    }

    /// majorSdoId (the high nibble of octet 0; transportSpecific in IEEE 1588-2008).
    pub fn with_major_sdo_id(mut self, major_sdo_id: u8) -> Self {
        self.header.sdo_and_type = (major_sdo_id << 4) | (self.header.sdo_and_type & 0x0F);
        self
    }

    /// The messageType the header carries.
    pub fn message_type(&self) -> MessageType {
        self.header.message_type()
    }

    /// Read a whole message: the bytes up to its messageLength.
    pub fn parse(h: &Header<&'a [u8]>) -> Result<MessageRepr<'a>> {
        h.check_len()?;
        let m: &'a [u8] = h.buffer;
        let m = &m[..usize::from(h.message_length())];
        let t = h.message_type();
        let body = match t {
            MessageType::Sync => MessageBody::Sync {
                origin_timestamp: timestamp_at(m, HEADER_LEN),
            },
            MessageType::DelayReq => MessageBody::DelayReq {
                origin_timestamp: timestamp_at(m, HEADER_LEN),
            },
            MessageType::FollowUp => MessageBody::FollowUp {
                precise_origin_timestamp: timestamp_at(m, HEADER_LEN),
            },
            MessageType::DelayResp => MessageBody::DelayResp {
                receive_timestamp: timestamp_at(m, HEADER_LEN),
                requesting_port_identity: port_identity_at(
                    m,
                    field::REQUESTING_PORT_IDENTITY.start,
                ),
            },
            MessageType::Announce => MessageBody::Announce(AnnounceBody::parse(m)),
            _ => MessageBody::Other(&m[HEADER_LEN..t.min_len()]),
        };
        Ok(MessageRepr {
            header: HeaderRepr::parse(h),
            body,
            suffix: &m[t.min_len()..],
        })
    }

    /// Header, body and suffix: what messageLength should say.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.body.len() + self.suffix.len()
    }

    /// Write the message into the first [`buffer_len`](Self::buffer_len) bytes of `buf`.
    ///
    /// # Panics
    /// If `buf` is shorter than that.
    pub fn emit(&self, buf: &mut [u8]) {
        let m = &mut buf[..self.buffer_len()];
        self.header.emit(m);
        let body_end = HEADER_LEN + self.body.len();
        match &self.body {
            MessageBody::Sync {
                origin_timestamp: t,
            }
            | MessageBody::DelayReq {
                origin_timestamp: t,
            }
            | MessageBody::FollowUp {
                precise_origin_timestamp: t,
            } => m[HEADER_LEN..body_end].copy_from_slice(&t.to_bytes()),
            MessageBody::DelayResp {
                receive_timestamp,
                requesting_port_identity,
            } => {
                m[HEADER_LEN..HEADER_LEN + Timestamp::LEN]
                    .copy_from_slice(&receive_timestamp.to_bytes());
                m[field::REQUESTING_PORT_IDENTITY]
                    .copy_from_slice(&requesting_port_identity.to_bytes());
            }
            MessageBody::Announce(a) => a.emit(m),
            MessageBody::Other(b) => m[HEADER_LEN..body_end].copy_from_slice(b),
        }
        m[body_end..].copy_from_slice(self.suffix);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_keep_48_bits_of_seconds() {
        let cases: [(Timestamp, [u8; 10]); 3] = [
            (Timestamp::default(), [0; 10]),
            (
                Timestamp::from_nanos(1_700_000_000_123_456_789),
                [0, 0, 0x65, 0x53, 0xf1, 0x00, 0x07, 0x5b, 0xcd, 0x15],
            ),
            (
                Timestamp {
                    seconds: 0xffff_ffff_ffff,
                    nanoseconds: 999_999_999,
                },
                [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3b, 0x9a, 0xc9, 0xff],
            ),
        ];
        for (t, bytes) in cases {
            assert_eq!(t.to_bytes(), bytes);
            assert_eq!(Timestamp::from_bytes(&bytes), t);
        }
    }

    /// Message bytes (after the Ethernet header of the captures) and their representation.
    #[test]
    fn message_repr_matches_the_bytes() {
        use super::super::samples::{L2_DELAY_RESP, L2_MANAGEMENT};
        let gm = PortIdentity {
            clock_identity: [0x02, 0, 0, 0xff, 0xfe, 0, 0, 0x01],
            port_number: 1,
        };
        let c11 = PortIdentity {
            clock_identity: [0x02, 0, 0, 0xff, 0xfe, 0, 0x01, 0x01],
            port_number: 1,
        };
        let resp_ts = Timestamp {
            seconds: 0x6b07_917c,
            nanoseconds: 0x244a_f7be,
        };
        let cases: [(&[u8], MessageRepr); 2] = [
            (
                &L2_DELAY_RESP[14..],
                MessageRepr::delay_resp(gm, 38, resp_ts, c11).with_log_message_interval(-3),
            ),
            (
                &L2_MANAGEMENT[14..],
                MessageRepr::new(c11, 0, MessageBody::Other(&L2_MANAGEMENT[14 + 34..14 + 48]))
                    .with_suffix(&L2_MANAGEMENT[14 + 48..]),
            ),
        ];
        for (bytes, repr) in cases {
            let h = Header::new_checked(bytes).unwrap();
            assert_eq!(MessageRepr::parse(&h), Ok(repr));
            let mut out = [0u8; 128];
            repr.emit(&mut out);
            assert_eq!(&out[..repr.buffer_len()], bytes);
        }
        // Bytes past messageLength are not part of the message.
        let mut padded = [0u8; 80];
        padded[..54].copy_from_slice(&L2_DELAY_RESP[14..]);
        let h = Header::new_checked(&padded[..]).unwrap();
        assert_eq!(MessageRepr::parse(&h).unwrap().suffix, &[] as &[u8]);
    }

    #[test]
    fn a_bare_message_carries_only_what_routing_reads() {
        let src = PortIdentity {
            clock_identity: [2, 0, 0, 0xff, 0xfe, 0, 1, 1],
            port_number: 1,
        };
        let req = PortIdentity {
            clock_identity: [2, 0, 0, 0xff, 0xfe, 0, 2, 2],
            port_number: 3,
        };
        for (t, requesting, len) in [
            (MessageType::Sync, None, 44),
            (MessageType::DelayResp, Some(req), 54),
            (MessageType::Announce, None, 64),
            (MessageType::Management, None, 48),
        ] {
            let m = MessageRepr::bare(t, src, 7, requesting, len);
            let mut buf = [0xAAu8; 80];
            m.emit(&mut buf);
            assert_eq!(m.buffer_len(), len, "{t:?}");
            let h = Header::new_checked(&buf[..len]).unwrap();
            assert_eq!(
                (h.message_type(), h.message_length(), h.sequence_id()),
                (t, len as u16, 7)
            );
            assert_eq!(h.source_port_identity(), src);
            assert_eq!(h.requesting_port_identity(), requesting);
            assert_eq!((h.flags(), buf[32], buf[33]), (0, 0, 0), "{t:?}");
            let id_at = if requesting.is_some() { 44..54 } else { 0..0 };
            let rest = buf[HEADER_LEN..len]
                .iter()
                .enumerate()
                .filter(|(i, _)| !id_at.contains(&(i + HEADER_LEN)));
            assert!(rest.clone().all(|(_, b)| *b == 0), "{t:?}");
        }
        // Raised to the body's needs, capped at BARE_MAX_LEN.
        let m = MessageRepr::bare(MessageType::DelayResp, src, 0, Some(req), 40);
        assert_eq!(m.buffer_len(), 54);
        let m = MessageRepr::bare(MessageType::Sync, src, 0, None, 500);
        assert_eq!(m.buffer_len(), BARE_MAX_LEN);
    }

    #[test]
    fn type_codes_round_trip() {
        for v in 0..16u8 {
            let t = MessageType::from_nibble(v);
            assert_eq!(t.nibble(), v);
            assert_eq!(
                HeaderRepr::new(t, PortIdentity::default(), 0).message_type(),
                t
            );
        }
    }
}
