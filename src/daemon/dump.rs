//! The Wireshark-ready dump (`"dump"` in the configuration): frames the core handled, in a pcapng
//! file, each with a comment saying what ptpproxy did with it.
//!
//! The loop only copies: [`Dump::offer`] puts a fixed-size [`Record`] (the frame's bytes, port,
//! capture timestamp and fate) into a fixed-capacity single-producer single-consumer queue, or
//! counts it as not dumped when the queue is full. A writer thread of its own drains the queue,
//! writes the pcapng blocks ([`ptpproxy::wire::pcapng`]) and rotates the file at `max_bytes`. The
//! loop never waits on the file, never takes a lock per frame and allocates nothing per frame;
//! the writer never decides anything about a frame.
//!
//! What a comment can say is what is known when the core decides: the drop reason by its
//! status-file name (`dropped: rogue_master`), or the egress ports and what the residence
//! correction will do as each copy leaves (the residence itself is measured later, per port, at
//! the send: `correction += residence at send`).
//!
//! Configuration changes travel on a channel beside the queue, tagged with an epoch that every
//! record carries, so the writer switches files and port names exactly between the frames of two
//! configurations.

use super::capture::Received;
use ptpproxy::board;
use ptpproxy::config::{Config, DumpConfig, DumpFrames};
use ptpproxy::correction::Timing;
use ptpproxy::port::PortSet;
use ptpproxy::proxy::Action;
use ptpproxy::stats::DropReason;
use ptpproxy::time::Timestamp;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{mpsc, Arc, Mutex};

mod writer;

/// The queue's slots (it holds one record fewer): enough for the writer's sleep
/// ([`writer::TICK`]) at some 10 000 frames per second, in 256 * (SNAPLEN + 40) bytes at most
/// (118 KiB with the generic board).
const QUEUE: usize = 256;
/// Queued records after which the loop wakes the writer before its tick.
const WAKE_AT: usize = QUEUE / 4;

type Queue = heapless::spsc::Queue<Record, QUEUE>;

/// What the core did with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    Dropped(DropReason),
    Forwarded {
        to: PortSet,
        correction: Correction,
    },
    /// A Delay_Req queued by the upstream pacing: it leaves towards the upstream port when its
    /// turn comes (or is dropped and counted).
    Paced,
}

/// What the residence correction does to a forwarded frame as it leaves ([`Timing`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Correction {
    /// Sent as it is.
    Unchanged,
    /// One-step Sync: its residence is added to its own correctionField.
    OneStep,
    /// Two-step Sync or Delay_Req: its residence is measured and added to the Follow_Up or
    /// Delay_Resp that comes next.
    Remembered,
    /// Follow_Up or Delay_Resp: the residence of its Sync or Delay_Req is added.
    Applied,
    /// An event captured while the wall clock stepped: not sent.
    Untimed,
}

impl Correction {
    fn of(timing: &Timing) -> Correction {
        match timing {
            Timing::None => Correction::Unchanged,
            Timing::OneStep { .. } => Correction::OneStep,
            Timing::Remember { .. } => Correction::Remembered,
            Timing::Apply { .. } => Correction::Applied,
            Timing::Untimed => Correction::Untimed,
        }
    }
}

/// One frame on its way to the writer: fixed size, so the queue never allocates.
pub struct Record {
    /// The configuration it was taken under ([`Control::epoch`]).
    epoch: u32,
    port: u8,
    fate: Fate,
    /// The kernel's capture timestamp, nanoseconds since the Unix epoch.
    captured: Timestamp,
    wire_len: u32,
    len: u16,
    data: [u8; board::SNAPLEN],
}

// The queue's memory, as README.md gives it: 256 * (snap length + 40) bytes at most (the
// header fields and the padding to 8 bytes).
const _: () = assert!(core::mem::size_of::<Record>() <= board::SNAPLEN + 40);

/// What the writer is told besides frames: from the frames of `epoch` on, write this dump with
/// these port names (a new file, the one before kept as `<file>.1`), or none.
pub struct Control {
    epoch: u32,
    dump: Option<(DumpConfig, Vec<String>)>,
}

/// The writer's counters, read by the status file.
#[derive(Default)]
pub struct Shared {
    pub written: AtomicU64,
    /// Records not written: of an earlier configuration (they reached the writer after it
    /// switched), or while no file could be opened.
    pub lost: AtomicU64,
    /// Bytes in the current file.
    pub bytes: AtomicU64,
    pub rotations: AtomicU64,
    pub write_errors: AtomicU64,
    /// The last failure, for the log (the loop reports it once).
    pub last_error: Mutex<Option<String>>,
}

/// The loop's end of the dump.
pub struct Dump {
    link: Option<Link>,
    /// What is dumped now; `None`: nothing.
    frames: Option<DumpFrames>,
    /// The configuration the dump runs with, to tell whether a reload changes it.
    running: Option<(DumpConfig, Vec<String>)>,
    epoch: u32,
    /// Frames not dumped because the queue was full.
    pub queue_full: u64,
    queued_this_turn: usize,
    /// Write errors and rotations already named in the log.
    reported: (u64, u64),
}

/// The writer thread and the loop's ends of its queue and channel (made once, at the first
/// dump; the thread then lives as long as the daemon).
struct Link {
    producer: heapless::spsc::Producer<'static, Record>,
    control: mpsc::Sender<Control>,
    thread: std::thread::JoinHandle<()>,
    shared: Arc<Shared>,
}

impl Dump {
    pub fn new() -> Dump {
        Dump {
            link: None,
            frames: None,
            running: None,
            epoch: 0,
            queue_full: 0,
            queued_this_turn: 0,
            reported: (0, 0),
        }
    }

    /// Create the writer thread and its queue now, before the daemon takes its scheduling
    /// policy and drops its privileges: the thread then stays under the normal scheduler
    /// (`realtime_priority` is set on the loop's thread alone), and its stack and buffers are
    /// in place before `mlockall` would refuse new memory to an unprivileged process. It drops
    /// its capabilities at the first configuration ([`Dump::configure`], after the drop).
    pub fn spawn_writer(&mut self) -> Result<(), String> {
        if self.link.is_none() {
            self.link = Some(Link::spawn().map_err(|e| format!("dump: no writer thread: {e}"))?);
        }
        Ok(())
    }

    /// Start, change or stop the dump as `config` says (at start and at each reload). A
    /// string for the log when something changed. Only a changed `"dump"` or port list starts
    /// a new file.
    pub fn configure(&mut self, config: &Config) -> Result<Option<String>, String> {
        let ports: Vec<String> = config.port_names().map(str::to_owned).collect();
        let wanted = config.dump.clone().map(|d| (d, ports));
        if wanted == self.running {
            return Ok(None);
        }
        let note = match &wanted {
            Some((d, _)) => format!(
                "dump: {} frames to {} (rotated to {}.1 at {} bytes)",
                frames_name(d.frames),
                d.file,
                d.file,
                d.max_bytes
            ),
            None => "dump: stopped".to_owned(),
        };
        let epoch = self.epoch.wrapping_add(1);
        let control = Control {
            epoch,
            dump: wanted.clone(),
        };
        if self.link.is_none() && wanted.is_none() {
            self.running = None;
            return Ok(None);
        }
        self.spawn_writer()?;
        let link = self.link.as_ref().ok_or("dump: no writer")?;
        link.control
            .send(control)
            .map_err(|_| "dump: the writer thread ended".to_owned())?;
        link.thread.thread().unpark();
        self.epoch = epoch;
        self.frames = wanted.as_ref().map(|(d, _)| d.frames);
        self.running = wanted;
        Ok(Some(note))
    }

    /// The hot path: queue a copy of `frame`, as received on `port` (not as rewritten), if the
    /// configuration dumps frames with the fate `action`; count it when the queue is full.
    /// Never blocks, never allocates.
    pub fn offer(&mut self, port: usize, frame: &Received<'_>, action: &Action<'_>) {
        let Some(frames) = self.frames else {
            return;
        };
        let fate = match action {
            Action::Drop(reason) => Fate::Dropped(*reason),
            Action::Forward { .. } | Action::Held if frames == DumpFrames::Dropped => return,
            Action::Held => Fate::Paced,
            Action::Forward { to, timing, .. } => Fate::Forwarded {
                to: *to,
                correction: Correction::of(timing),
            },
        };
        let Some(link) = self.link.as_mut() else {
            return;
        };
        let data = frame.data;
        let len = data.len().min(board::SNAPLEN);
        let mut record = Record {
            epoch: self.epoch,
            port: port as u8,
            fate,
            captured: frame.captured,
            wire_len: frame.wire_len,
            len: len as u16,
            data: [0; board::SNAPLEN],
        };
        record.data[..len].copy_from_slice(&data[..len]);
        if link.producer.enqueue(record).is_err() {
            self.queue_full += 1;
        } else {
            self.queued_this_turn += 1;
        }
    }

    /// After a loop turn: wake the writer early if the queue filled up (otherwise it wakes on
    /// its own tick, so that a light load costs no wake-up per turn).
    pub fn end_turn(&mut self) {
        if let Some(link) = &self.link {
            if link.producer.len() >= WAKE_AT && self.queued_this_turn > 0 {
                link.thread.thread().unpark();
            }
        }
        self.queued_this_turn = 0;
    }

    /// At exit: let the writer write what is queued and close the file, waiting at most
    /// `limit` (a stalled file system must not hold up the exit).
    pub fn shutdown(&mut self, limit: std::time::Duration) {
        self.frames = None;
        let Some(link) = self.link.as_mut() else {
            return;
        };
        // The writer drains the queue, finds the channel closed (its one sender replaced),
        // closes the file and returns.
        link.control = mpsc::channel().0;
        link.thread.thread().unpark();
        let t0 = std::time::Instant::now();
        while !link.thread.is_finished() && t0.elapsed() < limit {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// The status file's `dump` counters.
    pub fn report(&self) -> [(&'static str, u64); 7] {
        let get = |f: fn(&Shared) -> &AtomicU64| {
            self.link.as_ref().map_or(0, |l| f(&l.shared).load(Relaxed))
        };
        [
            ("enabled", u64::from(self.running.is_some())),
            ("frames_written", get(|s| &s.written)),
            ("frames_dropped", self.queue_full + get(|s| &s.lost)),
            ("bytes", get(|s| &s.bytes)),
            (
                "max_bytes",
                self.running
                    .as_ref()
                    .map_or(0, |(d, _)| u64::from(d.max_bytes)),
            ),
            ("rotations", get(|s| &s.rotations)),
            ("write_errors", get(|s| &s.write_errors)),
        ]
    }

    /// Lines for the log since the last call, each with whether it is a warning: write
    /// failures (the last one's text) and rotations at `max_bytes`.
    pub fn notices(&mut self) -> Vec<(bool, String)> {
        let mut out = Vec::new();
        let (Some(link), Some((d, _))) = (&self.link, &self.running) else {
            return out;
        };
        let errors = link.shared.write_errors.load(Relaxed);
        if errors > self.reported.0 {
            let last = link.shared.last_error.lock().ok().and_then(|e| e.clone());
            out.push((
                true,
                format!(
                    "dump: {} write errors, the last: {}",
                    errors - self.reported.0,
                    last.as_deref().unwrap_or("?")
                ),
            ));
        }
        let rotations = link.shared.rotations.load(Relaxed);
        if rotations > self.reported.1 {
            out.push((
                false,
                format!(
                    "dump: {} reached max_bytes {}; rotated to {}.1 ({} rotations)",
                    d.file, d.max_bytes, d.file, rotations
                ),
            ));
        }
        self.reported = (errors, rotations);
        out
    }
}

impl Default for Dump {
    fn default() -> Self {
        Dump::new()
    }
}

impl Link {
    fn spawn() -> std::io::Result<Link> {
        // Made once per process (the thread lives as long as it): leaked, so that both ends
        // are 'static without a lock or a reference count per frame.
        let queue: &'static mut Queue = Box::leak(Box::new(Queue::new()));
        let (producer, consumer) = queue.split();
        let (control, controls) = mpsc::channel();
        let shared = Arc::new(Shared::default());
        let theirs = Arc::clone(&shared);
        let buffers = writer::Buffers::new();
        let handle = std::thread::Builder::new()
            .name("ptpproxy-dump".into())
            .stack_size(writer::STACK)
            .spawn(move || writer::run(consumer, controls, buffers, &theirs))?;
        Ok(Link {
            producer,
            control,
            thread: handle,
            shared,
        })
    }
}

pub fn frames_name(f: DumpFrames) -> &'static str {
    match f {
        DumpFrames::Dropped => "dropped",
        DumpFrames::All => "all",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ptpproxy::port::PortId;

    /// (block type, body) of every block of a pcapng file, checking each block's framing.
    fn blocks(bytes: &[u8]) -> Vec<(u32, Vec<u8>)> {
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let (mut at, mut out) = (0, Vec::new());
        while at < bytes.len() {
            let len = u32_at(at + 4) as usize;
            assert_eq!(u32_at(at + len - 4) as usize, len, "block at {at}");
            out.push((u32_at(at), bytes[at + 8..at + len - 4].to_vec()));
            at += len;
        }
        out
    }

    /// The comment of an Enhanced Packet Block's body (its only option).
    fn comment_of(body: &[u8]) -> String {
        let caplen = u32::from_le_bytes(body[12..16].try_into().unwrap()) as usize;
        let at = 20 + ptpproxy::wire::pcapng::pad4(caplen);
        let len = u16::from_le_bytes(body[at + 2..at + 4].try_into().unwrap()) as usize;
        String::from_utf8(body[at + 4..at + 4 + len].to_vec()).unwrap()
    }

    fn config(dir: &std::path::Path, dump: &str) -> Config {
        let json = format!(
            r#"{{"upstream": "up", "downstream": ["dn1", "dn2"], "dump": {{"file": "{}/d.pcapng", {dump}}}}}"#,
            dir.display()
        );
        Config::parse(json.as_bytes()).unwrap()
    }

    /// Wait (bounded) until the writer wrote `n` frames in all.
    fn wait_written(d: &Dump, n: u64) {
        for _ in 0..200 {
            if d.report()[1].1 >= n {
                return;
            }
            d.link.as_ref().unwrap().thread.thread().unpark();
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("written {:?}, wanted {n}", d.report());
    }

    fn frame(k: u8) -> [u8; 60] {
        let mut f = [k; 60];
        f[12..14].copy_from_slice(&[0x88, 0xF7]);
        f
    }

    fn offer(d: &mut Dump, port: usize, data: &[u8], action: &Action<'_>) {
        let r = Received {
            data,
            captured: Timestamp(1_780_000_000_000_000_000),
            wire_len: data.len() as u32,
        };
        d.offer(port, &r, action);
    }

    #[test]
    fn frames_reach_the_file_with_their_fate_and_rotate_at_max_bytes() {
        let dir = std::env::temp_dir().join(format!("ptpproxy-dump-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut d = Dump::new();
        let all = config(&dir, r#""frames": "all", "max_bytes": 65536"#);
        assert!(d.configure(&all).unwrap().is_some());
        assert_eq!(d.configure(&all).unwrap(), None, "unchanged: no new file");
        let f = frame(1);
        let to = PortSet::single(PortId(1)).with(PortId(2));
        let forward = Action::Forward {
            to,
            frame: &f,
            timing: Timing::None,
        };
        offer(&mut d, 0, &f, &forward);
        offer(&mut d, 1, &f, &Action::Drop(DropReason::RogueMaster));
        wait_written(&d, 2);
        let path = dir.join("d.pcapng");
        // Flushed each tick: the file is complete while the dump runs.
        let b = blocks(&std::fs::read(&path).unwrap());
        let kinds: Vec<u32> = b.iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds, [0x0A0D_0D0A, 1, 1, 1, 6, 6]);
        assert_eq!(
            comment_of(&b[4].1),
            "forwarded to dn1,dn2; correction unchanged"
        );
        assert_eq!(comment_of(&b[5].1), "dropped: rogue_master");
        assert_eq!(u32::from_le_bytes(b[5].1[0..4].try_into().unwrap()), 1);

        // "dropped": a forwarded frame is not queued.
        d.end_turn();
        d.configure(&config(&dir, r#""max_bytes": 65536"#)).unwrap();
        offer(&mut d, 0, &f, &forward);
        assert_eq!(d.queued_this_turn, 0);

        // The size bound: each file stays within max_bytes, the full one is kept as .1.
        let mut written = d.report()[1].1;
        for _ in 0..8 {
            for _ in 0..100 {
                offer(&mut d, 2, &f, &Action::Drop(DropReason::Truncated));
            }
            d.end_turn();
            written += 100;
            wait_written(&d, written);
        }
        let report = d.report();
        assert_eq!(report[2], ("frames_dropped", 0), "{report:?}");
        assert!(report[5].1 >= 1, "rotated: {report:?}");
        for (p, full) in [(path.clone(), false), (dir.join("d.pcapng.1"), true)] {
            let len = std::fs::metadata(&p).unwrap().len();
            assert!(
                len <= 65536 && (!full || len > 65000),
                "{}: {len}",
                p.display()
            );
            assert!(blocks(&std::fs::read(&p).unwrap()).len() > 4);
        }

        // Off: nothing more is queued or written.
        let off = Config {
            dump: None,
            ..all.clone()
        };
        assert_eq!(d.configure(&off).unwrap().as_deref(), Some("dump: stopped"));
        offer(&mut d, 1, &f, &Action::Drop(DropReason::Loop));
        assert_eq!(d.queued_this_turn, 0);
        assert_eq!(d.report()[0], ("enabled", 0));
        d.shutdown(std::time::Duration::from_secs(2));
        assert!(d.link.as_ref().unwrap().thread.is_finished());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_that_cannot_be_opened_is_counted_and_named_once() {
        let dir = std::env::temp_dir().join(format!("ptpproxy-dump-none-{}", std::process::id()));
        let mut d = Dump::new();
        d.configure(&config(&dir, r#""frames": "all""#)).unwrap();
        offer(&mut d, 1, &frame(2), &Action::Drop(DropReason::Loop));
        for _ in 0..200 {
            if d.report()[6].1 > 0 && d.report()[2].1 > 0 {
                break;
            }
            d.link.as_ref().unwrap().thread.thread().unpark();
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(d.report()[6], ("write_errors", 1));
        assert_eq!(d.report()[2], ("frames_dropped", 1), "not written: counted");
        let lines = d.notices();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].0 && lines[0].1.contains("d.pcapng: No such file or directory"));
        assert!(d.notices().is_empty(), "named once");
        d.shutdown(std::time::Duration::from_secs(2));
    }
}
