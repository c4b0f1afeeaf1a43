//! PTPv2 messages: the common header (IEEE 1588-2019 §13.3) and the message bodies the relay
//! reads (Delay_Resp's requestingPortIdentity, §13.8).

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
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let version = b[field::VERSION] & 0x0F;
        if version != 2 {
            return Err(Error::UnsupportedVersion(version));
        }
        let len = self.message_length();
        if usize::from(len) < self.message_type().min_len() {
            return Err(Error::BadMessageLength(len));
        }
        if usize::from(len) > b.len() {
            return Err(Error::Truncated);
        }
        Ok(())
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
        let id = &self.source_port_identity;
        let spi = &mut b[field::SOURCE_PORT_IDENTITY];
        spi[..8].copy_from_slice(&id.clock_identity);
        spi[8..].copy_from_slice(&id.port_number.to_be_bytes());
        b[field::SEQUENCE_ID].copy_from_slice(&self.sequence_id.to_be_bytes());
        b[field::CONTROL] = self.control;
        b[field::LOG_MESSAGE_INTERVAL] = self.log_message_interval as u8;
    }
}
