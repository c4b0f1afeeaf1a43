//! The dump's writer thread: drains the records the loop queued, writes them as pcapng blocks
//! with their comments, and starts a new file at `max_bytes` (the full one renamed to
//! `<file>.1`, replacing the one before).
//!
//! It runs under the normal scheduler whatever the loop's (it is created before the loop's
//! thread takes SCHED_FIFO) and without capabilities (dropped at its first configuration),
//! sleeps between ticks, and owns the file alone; it never touches the loop's state but the
//! counters in [`Shared`]. Its buffers are made once, by the thread that creates it. A failed
//! write closes the file (counted, its text kept for the log) and a new one is tried after
//! [`RETRY`].

use super::{Control, Correction, Fate, Record, Shared};
use ptpproxy::board;
use ptpproxy::config::{DumpConfig, IFNAME_MAX};
use ptpproxy::wire::pcapng;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

/// How long the writer sleeps between drains (the loop wakes it earlier when the queue fills).
pub const TICK: Duration = Duration::from_millis(20);
/// How long after a failed write or open the writer tries a new file.
const RETRY: Duration = Duration::from_secs(10);
/// Longest comment: "forwarded to " and every port name (the longest Linux allows, each after a
/// comma), then the longest correction text (under 80 bytes), so none is ever cut.
pub const COMMENT_MAX: usize = 13 + board::MAX_PORTS * (IFNAME_MAX + 1) + 80;
/// The write buffer: a few dozen frames per system call.
const BUFFER: usize = 64 * 1024;
/// The thread's stack: it holds a record and a comment at most (blocks and the write buffer
/// are on the heap), far from the 2 MiB a thread gets by default (all of it locked with
/// `realtime_priority`).
pub const STACK: usize = 128 * 1024;

/// The writer's memory, allocated once before the thread starts.
pub struct Buffers {
    /// One block, encoded before it is buffered.
    block: Vec<u8>,
    /// What waits for the next write(2), at most BUFFER bytes (never grown).
    out: Vec<u8>,
}

impl Buffers {
    pub fn new() -> Buffers {
        Buffers {
            block: vec![0; pcapng::enhanced_packet_len(board::SNAPLEN, COMMENT_MAX)],
            out: Vec::with_capacity(BUFFER),
        }
    }
}

pub type Comment = heapless::String<COMMENT_MAX>;

/// The thread's body: until the loop's end of the channel is gone (the daemon exits).
pub fn run(
    mut queue: heapless::spsc::Consumer<'static, Record>,
    controls: Receiver<Control>,
    buffers: Buffers,
    shared: &Shared,
) {
    let mut w = Writer {
        epoch: 0,
        out: None,
        wanted: None,
        retry_at: None,
        buffers,
        comment: Comment::new(),
        shared,
    };
    loop {
        if w.wanted.is_some() {
            std::thread::park_timeout(TICK);
        } else {
            std::thread::park();
        }
        while let Some(record) = queue.dequeue() {
            // A record of a newer configuration: its Control was sent before it was queued.
            while (record.epoch.wrapping_sub(w.epoch) as i32) > 0 {
                match controls.try_recv() {
                    Ok(c) => w.apply(c),
                    Err(_) => break,
                }
            }
            w.write(&record);
        }
        loop {
            match controls.try_recv() {
                Ok(c) => w.apply(c),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    w.close();
                    return;
                }
            }
        }
        w.flush();
    }
}

/// The open file.
struct Out {
    file: File,
    /// Its length once the buffer is written.
    bytes: u64,
}

struct Writer<'s> {
    /// The configuration epoch being written.
    epoch: u32,
    out: Option<Out>,
    /// The dump and port names of `epoch`; `None`: stopped.
    wanted: Option<(DumpConfig, Vec<String>)>,
    /// After a failure: when to try a new file.
    retry_at: Option<Instant>,
    buffers: Buffers,
    comment: Comment,
    shared: &'s Shared,
}

impl Writer<'_> {
    fn apply(&mut self, control: Control) {
        // The daemon configures the dump only once its privileges are dropped; this thread
        // needs none to write a file (repeated: cheap, and a reload is rare).
        if let Err(e) = super::super::privileges::drop_thread_capabilities() {
            self.failed(&format!("capabilities not dropped: {e}"));
        }
        self.close();
        self.epoch = control.epoch;
        self.wanted = control.dump;
        self.open();
    }

    /// A new file: the one there is kept as `<file>.1`; the section and interface headers.
    fn open(&mut self) {
        let Some((config, ports)) = &self.wanted else {
            return;
        };
        let file = config.file.as_str();
        match new_file(file, ports, &mut self.buffers) {
            Ok(out) => {
                self.shared.bytes.store(out.bytes, Relaxed);
                self.out = Some(out);
                self.retry_at = None;
            }
            Err(e) => self.failed(&format!("{file}: {e}")),
        }
    }

    fn close(&mut self) {
        self.flush();
        self.out = None;
    }

    /// Write what the buffer holds.
    fn flush(&mut self) {
        let out = &mut self.buffers.out;
        let written = match self.out.as_mut() {
            Some(o) if !out.is_empty() => o.file.write_all(out),
            _ => Ok(()),
        };
        out.clear();
        if let Err(e) = written {
            self.failed(&e.to_string());
        }
    }

    /// Add `n` bytes of the block buffer to the file's (written first if they would not fit).
    fn buffer(&mut self, n: usize) {
        if self.buffers.out.len() + n > BUFFER {
            self.flush();
        }
        let b = &mut self.buffers;
        b.out.extend_from_slice(&b.block[..n]);
        if let Some(o) = self.out.as_mut() {
            o.bytes += n as u64;
            self.shared.bytes.store(o.bytes, Relaxed);
        }
    }

    /// Count and keep `error`; close the file and try again after [`RETRY`].
    fn failed(&mut self, error: &str) {
        bump(&self.shared.write_errors);
        if let Ok(mut last) = self.shared.last_error.lock() {
            *last = Some(error.to_owned());
        }
        self.out = None;
        self.retry_at = Some(Instant::now() + RETRY);
    }

    fn write(&mut self, record: &Record) {
        if record.epoch != self.epoch || self.wanted.is_none() {
            bump(&self.shared.lost);
            return;
        }
        if self.out.is_none() && self.retry_at.is_some_and(|t| Instant::now() >= t) {
            self.open();
        }
        let Some((config, ports)) = &self.wanted else {
            return;
        };
        let max_bytes = u64::from(config.max_bytes);
        comment(&mut self.comment, record.fate, ports);
        let data = &record.data[..usize::from(record.len)];
        let len = pcapng::enhanced_packet_len(data.len(), self.comment.len()) as u64;
        if self.out.as_ref().is_some_and(|o| o.bytes + len > max_bytes) {
            self.close();
            bump(&self.shared.rotations);
            self.open();
        }
        let packet = pcapng::Packet {
            interface: u32::from(record.port),
            timestamp_ns: u64::try_from(record.captured.0).unwrap_or(0),
            data,
            wire_len: record.wire_len,
            comment: &self.comment,
        };
        let encoded = pcapng::enhanced_packet(&mut self.buffers.block, &packet);
        let (Some(n), true) = (encoded, self.out.is_some()) else {
            bump(&self.shared.lost);
            return;
        };
        self.buffer(n);
        bump(&self.shared.written);
    }
}

/// Create `path` (renaming a file already there to `<path>.1`) and write its section header
/// and one interface per port, in port order (the interface index is the port number).
fn new_file(path: &str, ports: &[String], buffers: &mut Buffers) -> std::io::Result<Out> {
    let exists = std::fs::metadata(path).is_ok_and(|m| m.len() > 0);
    if exists {
        std::fs::rename(path, format!("{path}.1"))?;
    }
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o640)
        .open(path)?;
    let Buffers { block, out } = buffers;
    out.clear();
    let too_small = || std::io::Error::other("pcapng header larger than its buffer");
    let app = concat!("ptpproxy ", env!("CARGO_PKG_VERSION"));
    let n = pcapng::section_header(block, app).ok_or_else(too_small)?;
    out.extend_from_slice(&block[..n]);
    for name in ports {
        let n = pcapng::interface_description(block, name, board::SNAPLEN as u32)
            .ok_or_else(too_small)?;
        out.extend_from_slice(&block[..n]);
    }
    // At most 9 interfaces of ~40 bytes: far within the buffer, written at the next flush.
    let bytes = out.len() as u64;
    Ok(Out { file, bytes })
}

/// What ptpproxy did with a frame, as its pcapng comment says it: `dropped: <reason>` (the
/// status file's name), or `forwarded to <ports>` and what the correction does as it leaves.
pub fn comment(out: &mut Comment, fate: Fate, ports: &[String]) {
    out.clear();
    // A comment that does not fit is cut: heapless refuses the piece, the rest stays.
    let _ = match fate {
        Fate::Dropped(reason) => write!(out, "dropped: {}", reason.name()),
        Fate::Paced => out
            .push_str("held by the upstream pacing; leaves when its turn comes, the wait added to its Delay_Resp")
            .map_err(|_| core::fmt::Error),
        Fate::Forwarded { to, correction } => {
            let _ = out.push_str("forwarded to ");
            for (k, port) in to.iter().enumerate() {
                let name = ports.get(port.index()).map_or("?", String::as_str);
                let _ = out.push_str(if k == 0 { "" } else { "," });
                let _ = out.push_str(name);
            }
            out.push_str(match correction {
                Correction::Unchanged => "; correction unchanged",
                Correction::OneStep => "; correction += residence at send (one-step Sync)",
                Correction::Remembered => {
                    "; residence measured at send, added to its Follow_Up or Delay_Resp"
                }
                Correction::Applied => "; correction += its event's residence at send",
                Correction::Untimed => "; not sent: the wall clock stepped, residence unknown",
            })
            .map_err(|_| core::fmt::Error)
        }
    };
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ptpproxy::port::{PortId, PortSet};
    use ptpproxy::stats::DropReason;

    fn names() -> Vec<String> {
        ["up0", "ds1", "ds2"].map(String::from).to_vec()
    }

    fn text(fate: Fate) -> String {
        let mut c = Comment::new();
        comment(&mut c, fate, &names());
        c.to_string()
    }

    #[test]
    fn comments_name_the_reason_or_the_ports() {
        assert_eq!(
            text(Fate::Dropped(DropReason::RogueMaster)),
            "dropped: rogue_master"
        );
        assert!(text(Fate::Paced).starts_with("held by the upstream pacing"));
        let to = PortSet::single(PortId(1)).with(PortId(2));
        assert_eq!(
            text(Fate::Forwarded {
                to,
                correction: Correction::OneStep
            }),
            "forwarded to ds1,ds2; correction += residence at send (one-step Sync)"
        );
        let up = PortSet::single(PortId(0));
        assert_eq!(
            text(Fate::Forwarded {
                to: up,
                correction: Correction::Unchanged
            }),
            "forwarded to up0; correction unchanged"
        );
    }

    #[test]
    fn the_longest_comment_fits_whole() {
        let long: Vec<String> = (0..board::MAX_PORTS)
            .map(|i| format!("port{i:011}"))
            .collect();
        let to = PortSet::range(0, board::MAX_PORTS);
        let mut c = Comment::new();
        comment(
            &mut c,
            Fate::Forwarded {
                to,
                correction: Correction::Remembered,
            },
            &long,
        );
        assert!(c.starts_with("forwarded to port00000000000,"), "{c}");
        assert!(c.len() <= COMMENT_MAX);
        // Every port, then the correction: nothing was cut.
        assert!(c.ends_with("Follow_Up or Delay_Resp"), "{c}");
        let ports = c.split(';').next().unwrap_or_default();
        assert_eq!(ports.matches(',').count(), board::MAX_PORTS - 1, "{c}");
    }
}
