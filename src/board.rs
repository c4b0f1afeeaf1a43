//! Compile-time constants from the board profile `board/$PTPPROXY_BOARD.json` (see build.rs).
//! Everything sized by the hardware (rings, tables, batches) reads its size from here.

include!(concat!(env!("OUT_DIR"), "/board.rs"));
