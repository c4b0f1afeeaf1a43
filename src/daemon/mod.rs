//! The shell around the core: ports (libpcap), the poll loop, signals, logging, the status
//! file. Everything here does I/O; every decision about a frame is made by `ptpproxy::relay`.

pub mod event_loop;
pub mod log;
pub mod port;
pub mod privileges;
pub mod status;

use ptpproxy::config::Config;
use std::fs;

/// Largest configuration file read.
const CONFIG_MAX: u64 = 64 * 1024;

/// Read and validate a configuration file. The error is one line for the user.
pub fn load_config(path: &str) -> Result<Config, String> {
    use std::io::Read;
    let file = fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    let mut bytes = Vec::new();
    file.take(CONFIG_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{path}: {e}"))?;
    if bytes.len() as u64 > CONFIG_MAX {
        return Err(format!("{path}: larger than {CONFIG_MAX} bytes"));
    }
    Config::parse_detailed(&bytes).map_err(|e| format!("{path}: {e}"))
}
