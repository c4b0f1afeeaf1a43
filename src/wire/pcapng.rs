//! The pcapng blocks a dump file is made of (draft-ietf-opsawg-pcapng): a Section Header Block,
//! one Interface Description Block per port (its name, nanosecond timestamps) and one Enhanced
//! Packet Block per frame, carrying an `opt_comment` that says what ptpproxy did with it.
//!
//! Each function encodes one block into the caller's buffer and returns its length, or `None`
//! when the buffer is too small (nothing is then promised about the buffer's contents). Blocks
//! are written little-endian whatever the host: the Section Header's byte-order magic tells
//! readers. This module never allocates, never panics on input and does no I/O.

/// Section Header Block type (also a byte-order-independent file signature).
pub const SHB_TYPE: u32 = 0x0A0D_0D0A;
/// Interface Description Block type.
pub const IDB_TYPE: u32 = 0x0000_0001;
/// Enhanced Packet Block type.
pub const EPB_TYPE: u32 = 0x0000_0006;
/// The Section Header's byte-order magic.
pub const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
/// LINKTYPE_ETHERNET: every port captures Ethernet frames.
pub const LINKTYPE_ETHERNET: u16 = 1;

const OPT_END: u16 = 0;
const OPT_COMMENT: u16 = 1;
const SHB_USERAPPL: u16 = 4;
const IF_NAME: u16 = 2;
const IF_TSRESOL: u16 = 9;
/// if_tsresol 9: timestamps count 10^-9 s, the resolution of the capture timestamps.
const TSRESOL_NANOSECONDS: u8 = 9;

/// `n` rounded up to a multiple of 4 (block bodies and option values are 32-bit aligned).
pub const fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

/// Bytes an option holding `len` bytes takes (code, length, value, padding).
const fn option_len(len: usize) -> usize {
    4 + pad4(len)
}

/// Bytes of the Enhanced Packet Block [`enhanced_packet`] writes for `captured` bytes of frame
/// and a comment of `comment` bytes: what the dump's size bound counts.
pub const fn enhanced_packet_len(captured: usize, comment: usize) -> usize {
    // type, length, interface, timestamp (2), captured and original lengths, data, options,
    // end of options, length again.
    28 + pad4(captured) + option_len(comment) + 4 + 4
}

/// A little-endian cursor over the caller's buffer; every write checks the room left.
struct Cursor<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Cursor<'_> {
    fn bytes(&mut self, b: &[u8]) -> Option<()> {
        let end = self.at.checked_add(b.len())?;
        self.buf.get_mut(self.at..end)?.copy_from_slice(b);
        self.at = end;
        Some(())
    }

    fn u16(&mut self, v: u16) -> Option<()> {
        self.bytes(&v.to_le_bytes())
    }

    fn u32(&mut self, v: u32) -> Option<()> {
        self.bytes(&v.to_le_bytes())
    }

    /// Zeros up to the next 32-bit boundary.
    fn pad(&mut self) -> Option<()> {
        let n = pad4(self.at) - self.at;
        self.bytes(&[0; 3][..n])
    }

    /// One option: code, length, value, padding. Values longer than an option holds are cut.
    fn option(&mut self, code: u16, value: &[u8]) -> Option<()> {
        let value = &value[..value.len().min(usize::from(u16::MAX) - 3)];
        self.u16(code)?;
        self.u16(u16::try_from(value.len()).ok()?)?;
        self.bytes(value)?;
        self.pad()
    }

    /// Start a block of type `kind`; its length is written by [`Cursor::finish`].
    fn start(&mut self, kind: u32) -> Option<()> {
        self.u32(kind)?;
        self.u32(0)
    }

    /// Close the block that began at 0: its length, at both ends.
    fn finish(mut self) -> Option<usize> {
        let len = self.at.checked_add(4)?;
        let total = u32::try_from(len).ok()?;
        self.u32(total)?;
        self.buf
            .get_mut(4..8)?
            .copy_from_slice(&total.to_le_bytes());
        Some(len)
    }
}

/// A Section Header Block (version 1.0, section length unknown) naming `application` as the
/// writer (`shb_userappl`).
pub fn section_header(buf: &mut [u8], application: &str) -> Option<usize> {
    let mut c = Cursor { buf, at: 0 };
    c.start(SHB_TYPE)?;
    c.u32(BYTE_ORDER_MAGIC)?;
    c.u16(1)?;
    c.u16(0)?;
    // Section length -1: not given (the file grows while it is read).
    c.bytes(&(-1i64).to_le_bytes())?;
    c.option(SHB_USERAPPL, application.as_bytes())?;
    c.option(OPT_END, &[])?;
    c.finish()
}

/// An Interface Description Block for the Ethernet port `name`, frames cut at `snaplen`,
/// timestamps in nanoseconds.
pub fn interface_description(buf: &mut [u8], name: &str, snaplen: u32) -> Option<usize> {
    let mut c = Cursor { buf, at: 0 };
    c.start(IDB_TYPE)?;
    c.u16(LINKTYPE_ETHERNET)?;
    c.u16(0)?;
    c.u32(snaplen)?;
    c.option(IF_NAME, name.as_bytes())?;
    c.option(IF_TSRESOL, &[TSRESOL_NANOSECONDS])?;
    c.option(OPT_END, &[])?;
    c.finish()
}

/// One captured frame as an Enhanced Packet Block.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    /// The index of its port's Interface Description Block in the section (0 for the first).
    pub interface: u32,
    /// Nanoseconds since the Unix epoch (the kernel's capture timestamp).
    pub timestamp_ns: u64,
    /// The bytes captured.
    pub data: &'a [u8],
    /// The frame's length on the wire (at least `data.len()`).
    pub wire_len: u32,
    /// What ptpproxy did with it (UTF-8, `opt_comment`).
    pub comment: &'a str,
}

/// `packet` as an Enhanced Packet Block; its length is [`enhanced_packet_len`].
pub fn enhanced_packet(buf: &mut [u8], packet: &Packet<'_>) -> Option<usize> {
    let captured = u32::try_from(packet.data.len()).ok()?;
    let mut c = Cursor { buf, at: 0 };
    c.start(EPB_TYPE)?;
    c.u32(packet.interface)?;
    // High 32 bits, then low 32 bits, of the timestamp in if_tsresol units.
    c.u32((packet.timestamp_ns >> 32) as u32)?;
    c.u32(packet.timestamp_ns as u32)?;
    c.u32(captured)?;
    c.u32(packet.wire_len.max(captured))?;
    c.bytes(packet.data)?;
    c.pad()?;
    c.option(OPT_COMMENT, packet.comment.as_bytes())?;
    c.option(OPT_END, &[])?;
    c.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes(b[at..at + 2].try_into().unwrap())
    }

    /// The options of a block whose options start at `at`: (code, value) until opt_endofopt.
    fn options(b: &[u8], mut at: usize) -> Vec<(u16, Vec<u8>)> {
        let mut out = Vec::new();
        loop {
            let (code, len) = (u16_at(b, at), usize::from(u16_at(b, at + 2)));
            if code == OPT_END {
                assert_eq!(len, 0);
                assert_eq!(at + 4, b.len() - 4, "opt_endofopt is the last option");
                return out;
            }
            out.push((code, b[at + 4..at + 4 + len].to_vec()));
            at += 4 + pad4(len);
        }
    }

    /// Both length fields agree with the block's size, a multiple of 4.
    fn check_framing(b: &[u8], kind: u32) {
        assert_eq!(u32_at(b, 0), kind);
        assert_eq!(b.len() % 4, 0);
        assert_eq!(u32_at(b, 4) as usize, b.len());
        assert_eq!(u32_at(b, b.len() - 4) as usize, b.len());
    }

    #[test]
    fn section_header_is_version_1_little_endian_with_the_application() {
        let mut buf = [0u8; 128];
        let n = section_header(&mut buf, "ptpproxy 0.1.0").unwrap();
        let b = &buf[..n];
        check_framing(b, SHB_TYPE);
        assert_eq!(&b[8..12], [0x4D, 0x3C, 0x2B, 0x1A]);
        assert_eq!((u16_at(b, 12), u16_at(b, 14)), (1, 0));
        assert_eq!(&b[16..24], [0xFF; 8]);
        assert_eq!(options(b, 24), [(SHB_USERAPPL, b"ptpproxy 0.1.0".to_vec())]);
        // 24 fixed + 4 + 16 (14 padded) + 4 end + 4 length.
        assert_eq!(n, 52);
    }

    #[test]
    fn interface_description_names_the_port_in_nanoseconds() {
        let mut buf = [0u8; 128];
        let n = interface_description(&mut buf, "ds1", 444).unwrap();
        let b = &buf[..n];
        check_framing(b, IDB_TYPE);
        assert_eq!(u16_at(b, 8), LINKTYPE_ETHERNET);
        assert_eq!(u32_at(b, 12), 444);
        assert_eq!(
            options(b, 16),
            [(IF_NAME, b"ds1".to_vec()), (IF_TSRESOL, vec![9])]
        );
    }

    #[test]
    fn enhanced_packet_carries_frame_time_and_comment() {
        let frame: Vec<u8> = (0..61).collect(); // odd length: padded
        let comment = "dropped: rogue_master";
        let t = 1_780_000_000_123_456_789u64;
        let p = Packet {
            interface: 2,
            timestamp_ns: t,
            data: &frame,
            wire_len: 61,
            comment,
        };
        let mut buf = [0xAAu8; 256];
        let n = enhanced_packet(&mut buf, &p).unwrap();
        assert_eq!(n, enhanced_packet_len(frame.len(), comment.len()));
        let b = &buf[..n];
        check_framing(b, EPB_TYPE);
        assert_eq!(u32_at(b, 8), 2);
        let ts = (u64::from(u32_at(b, 12)) << 32) | u64::from(u32_at(b, 16));
        assert_eq!(ts, t);
        assert_eq!((u32_at(b, 20), u32_at(b, 24)), (61, 61));
        assert_eq!(&b[28..89], &frame[..]);
        assert_eq!(&b[89..92], [0, 0, 0], "padding is zeros");
        assert_eq!(options(b, 92), [(OPT_COMMENT, comment.as_bytes().to_vec())]);
    }

    #[test]
    fn a_truncated_capture_keeps_its_wire_length() {
        let frame = [0u8; 8];
        let p = Packet {
            interface: 0,
            timestamp_ns: 0,
            data: &frame,
            wire_len: 1500,
            comment: "",
        };
        let mut buf = [0u8; 64];
        let n = enhanced_packet(&mut buf, &p).unwrap();
        assert_eq!((u32_at(&buf, 20), u32_at(&buf, 24)), (8, 1500));
        assert_eq!(n, enhanced_packet_len(8, 0));
        // A wire length below the captured bytes is raised to them (readers reject less).
        let p = Packet { wire_len: 2, ..p };
        enhanced_packet(&mut buf, &p).unwrap();
        assert_eq!(u32_at(&buf, 24), 8);
    }

    #[test]
    fn a_buffer_too_small_is_none_for_every_size() {
        let frame = [1u8; 60];
        let p = Packet {
            interface: 0,
            timestamp_ns: 5,
            data: &frame,
            wire_len: 60,
            comment: "forwarded to ds1",
        };
        let need = enhanced_packet_len(60, 16);
        let mut buf = vec![0u8; need];
        for short in 0..need {
            assert_eq!(enhanced_packet(&mut buf[..short], &p), None, "{short}");
            assert_eq!(
                section_header(&mut buf[..short.min(51)], "ptpproxy 0.1.0"),
                None
            );
            assert_eq!(
                interface_description(&mut buf[..short.min(39)], "ds1", 9),
                None
            );
        }
        assert_eq!(enhanced_packet(&mut buf, &p), Some(need));
    }
}
