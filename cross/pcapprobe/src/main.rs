//! `pcapprobe FILE`: one line per packet, as the pcap crate hands it to Rust:
//! `caplen=N len=N data=N ts=SEC.USEC`. With a mismatched time_t between Rust's libc and the
//! C library libpcap was built against, caplen/len/data come out as garbage.

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: pcapprobe FILE.pcap");
        std::process::exit(64);
    };
    let mut cap = match pcap::Capture::from_file(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pcapprobe: {path}: {e}");
            std::process::exit(66);
        }
    };
    while let Ok(p) = cap.next_packet() {
        println!(
            "caplen={} len={} data={} ts={}.{:06}",
            p.header.caplen,
            p.header.len,
            p.data.len(),
            p.header.ts.tv_sec,
            p.header.ts.tv_usec
        );
    }
}
