//! The one error type of the shell: what failed at start, reload or in the loop itself, as one
//! line for the log. Errors of single frames are never errors here: they are counted.

use std::fmt;

#[derive(Debug)]
pub enum Error {
    /// The configuration file: unreadable, too large, or invalid (the problem names the field).
    Config { path: String, problem: String },
    /// A port could not be opened: its interface, the step that failed, and why.
    Port {
        name: String,
        step: &'static str,
        cause: String,
    },
    /// A system facility of the daemon itself (signalfd, poll, privileges, scheduling, PM QoS).
    Sys { what: String, cause: String },
    /// A request the system refused, said in full.
    Refused(String),
}

impl Error {
    pub fn sys(what: impl Into<String>, cause: impl fmt::Display) -> Error {
        Error::Sys {
            what: what.into(),
            cause: cause.to_string(),
        }
    }

    pub fn port(name: &str, step: &'static str, cause: impl fmt::Display) -> Error {
        Error::Port {
            name: name.to_owned(),
            step,
            cause: cause.to_string(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config { path, problem } => write!(f, "{path}: {problem}"),
            Error::Port { name, step, cause } => write!(f, "{name}: {step}: {cause}"),
            Error::Sys { what, cause } => write!(f, "{what}: {cause}"),
            Error::Refused(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for Error {}
