//! Turns `board/$PTPPROXY_BOARD.json` (default `generic`) into compile-time constants, so every
//! table in the binary is sized for the hardware it is built for.

use std::{env, fs, path::PathBuf, process::exit};

#[derive(serde::Deserialize)]
#[allow(dead_code)] // descriptive fields are documentation for people, checked for presence only
struct Board<'a> {
    name: &'a str,
    description: &'a str,
    target: &'a str,
    cpu: &'a str,
    ram_mib: u32,
    ring_bytes: u32,
    snaplen: u32,
    max_clients: u32,
    max_ports: u32,
    pending_corrections: u32,
    rx_batch: u32,
    delay_req_queue: u32,
}

fn fail(file: &str, msg: &str) -> ! {
    eprintln!("error: board profile {file}: {msg}");
    exit(1)
}

fn main() {
    let board = env::var("PTPPROXY_BOARD").unwrap_or_else(|_| "generic".into());
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let path = dir.join("board").join(format!("{board}.json"));
    println!("cargo:rerun-if-env-changed=PTPPROXY_BOARD");
    println!("cargo:rerun-if-changed={}", path.display());
    let file = path.display().to_string();
    let text = fs::read(&path).unwrap_or_else(|e| fail(&file, &e.to_string()));
    let (b, _): (Board, usize) = serde_json_core::from_slice(&text)
        .unwrap_or_else(|e| fail(&file, &format!("not a valid board profile: {e}")));

    if b.name != board {
        fail(
            &file,
            &format!("\"name\" is {:?}, expected {board:?}", b.name),
        );
    }
    if !b.max_clients.is_power_of_two() || !(2..=65536).contains(&b.max_clients) {
        fail(&file, "\"max_clients\" must be a power of two in 2..=65536");
    }
    if !(2..=32).contains(&b.max_ports) {
        fail(
            &file,
            "\"max_ports\" must be 2..=32 (one upstream + downstream ports)",
        );
    }
    if !(128..=9216).contains(&b.snaplen) {
        fail(&file, "\"snaplen\" must be 128..=9216 bytes");
    }
    // libpcap 1.10's TPACKET_V2 ring: slots of TPACKET_ALIGN(68 + snaplen) bytes (68 = the
    // tpacket2 header and sockaddr_ll, aligned, plus a VLAN tag's reserve) packed into blocks of
    // the smallest power-of-two pages that hold one, as many whole blocks as the buffer allows;
    // what a block cannot use is mapped (and resident) for nothing. 444 gives 512-byte slots, 8
    // to a 4 KiB page, no waste.
    let slot = (68 + b.snaplen + 15) & !15;
    let block = slot.next_power_of_two().max(4096);
    let per_block = block / slot;
    let ring_frames = (b.ring_bytes / slot) / per_block * per_block;
    if (block % slot) * 10 > block {
        fail(
            &file,
            &format!(
                "\"snaplen\" {} makes {slot}-byte ring slots that leave {} of every {block}-byte \
                 block unused; pick one whose slot divides the block (e.g. 444: 512-byte slots)",
                b.snaplen,
                block % slot
            ),
        );
    }
    if b.ring_bytes < 65536 {
        fail(&file, "\"ring_bytes\" must be at least 65536");
    }
    if !b.pending_corrections.is_power_of_two() || !(4..=65536).contains(&b.pending_corrections) {
        fail(
            &file,
            "\"pending_corrections\" must be a power of two in 4..=65536",
        );
    }
    // Every client may have a Delay_Req waiting for its Delay_Resp (milliseconds when the
    // master or the relay is busy); a smaller table evicts residences still needed.
    if b.pending_corrections < b.max_clients {
        fail(
            &file,
            "\"pending_corrections\" must be at least \"max_clients\" (2 x is the default)",
        );
    }
    if !(1..=1024).contains(&b.rx_batch) {
        fail(&file, "\"rx_batch\" must be 1..=1024");
    }
    // Delay_Req waiting for the upstream rate (`upstream_max_delay_req_rate`), SNAPLEN bytes each,
    // allocated only when pacing is configured; indices are u16.
    if !(16..=32768).contains(&b.delay_req_queue) {
        fail(&file, "\"delay_req_queue\" must be 16..=32768");
    }

    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("board.rs");
    let code = format!(
        "/// Board profile this binary was built for.\n\
         pub const NAME: &str = {name:?};\n\
         /// Target triple the profile is meant for.\n\
         pub const TARGET: &str = {target:?};\n\
         /// Capture ring size per port, in bytes (pcap_set_buffer_size).\n\
         pub const RING_BYTES: usize = {ring};\n\
         /// Bytes captured per frame; PTP with TLVs and a VLAN tag fits well below this.\n\
         pub const SNAPLEN: usize = {snap};\n\
         /// Frames the capture ring holds at that snaplen (libpcap's slot layout, build.rs).\n\
         pub const RING_FRAMES: usize = {ring_frames};\n\
         /// Client table capacity (a power of two).\n\
         pub const MAX_CLIENTS: usize = {clients};\n\
         /// Ports per relay: one upstream plus up to MAX_PORTS - 1 downstream.\n\
         pub const MAX_PORTS: usize = {ports};\n\
         /// Pending residence-time corrections (two-step Sync and Delay_Req).\n\
         pub const PENDING_CORRECTIONS: usize = {pending};\n\
         /// Frames drained from one port before the loop moves on to the next.\n\
         pub const RX_BATCH: usize = {batch};\n\
         /// Delay_Req the upstream pacing may hold (SNAPLEN bytes each, only when configured).\n\
         pub const DELAY_REQ_QUEUE: usize = {pacing};\n",
        name = b.name,
        target = b.target,
        ring = b.ring_bytes,
        snap = b.snaplen,
        ring_frames = ring_frames,
        clients = b.max_clients,
        ports = b.max_ports,
        pending = b.pending_corrections,
        batch = b.rx_batch,
        pacing = b.delay_req_queue,
    );
    fs::write(out, code).unwrap();
}
