//! Least privilege: once its ports are open, ptpproxy keeps only CAP_NET_RAW — what reopening a
//! port that went away (or opening one a reload adds) needs: an AF_PACKET socket, its ring, its
//! filter and its multicast memberships. Everything else goes: the other capabilities (also from
//! the bounding set, so nothing can regain them), and, if the configuration names a `user`, root
//! itself. `no_new_privs` is set last.
//!
//! Started without root (e.g. systemd `User=` with `AmbientCapabilities=CAP_NET_RAW`), it drops
//! what it can: every capability but CAP_NET_RAW.
//!
//! One exception, only when it is needed: with a bridge filter installed at start
//! (`daemon::bridge`), CAP_NET_ADMIN stays in the permitted and bounding sets, never effective,
//! so that the filter can be replaced (a reload, a re-created port) and removed at exit. The
//! daemon uses it only for the length of a change: [`spawn_with_net_admin`] hands it to the
//! `nft` child as an ambient capability for that child's life only, and [`with_net_admin`] makes
//! it effective for the tc netlink requests of one change and lowers it again.

use super::error::Error;
use nix::unistd::{self, Gid, Uid, User};
use std::path::Path;

/// capability.h
const CAP_NET_ADMIN: u32 = 12;
const CAP_NET_RAW: u32 = 13;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Set this thread's effective, permitted and inheritable sets to exactly these (bit numbers
/// < 32).
fn capset(effective: u32, permitted: u32, inheritable: u32) -> std::io::Result<()> {
    let header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [
        CapData {
            effective,
            permitted,
            inheritable,
        },
        CapData::default(),
    ];
    // SAFETY: capset(2) with a version-3 header and the two data words version 3 requires;
    // both live on the stack for the duration of the call, and the kernel only reads them.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Drop every capability of the calling thread only (a helper thread that needs none). Call it
/// only after [`drop_privileges`]: a thread without CAP_SETUID would fail the setuid(2) that
/// the C library repeats in every thread.
pub fn drop_thread_capabilities() -> std::io::Result<()> {
    capset(0, 0, 0)
}

fn prctl(option: libc::c_int, arg: libc::c_ulong, arg3: libc::c_ulong) -> std::io::Result<()> {
    // SAFETY: prctl options used here (PR_CAPBSET_DROP, PR_CAP_AMBIENT) take plain integers.
    let rc = unsafe { libc::prctl(option, arg, arg3, 0 as libc::c_ulong, 0 as libc::c_ulong) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Raise or lower CAP_NET_ADMIN in the ambient set.
fn ambient(op: libc::c_int) -> std::io::Result<()> {
    prctl(
        libc::PR_CAP_AMBIENT,
        op as libc::c_ulong,
        libc::c_ulong::from(CAP_NET_ADMIN),
    )
}

fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// What [`drop_privileges`] achieved, for the log.
pub struct Dropped {
    pub uid: u32,
    pub gid: u32,
    pub bounding_set_cleared: bool,
    /// CAP_NET_ADMIN was kept (permitted, not effective) for the bridge filter.
    pub net_admin_kept: bool,
}

/// Drop to CAP_NET_RAW (and to `user`, if given). `status_file`'s directory is created and
/// handed to that user first, so the status file can still be written. `keep_net_admin`: also
/// keep CAP_NET_ADMIN, permitted but not effective, for [`spawn_with_net_admin`].
pub fn drop_privileges(
    user: Option<&str>,
    status_file: &str,
    keep_net_admin: bool,
) -> Result<Dropped, Error> {
    let kept = |cap: u32| cap == CAP_NET_RAW || (keep_net_admin && cap == CAP_NET_ADMIN);
    let root = Uid::effective().is_root();
    let target = match user {
        Some(name) => Some(
            User::from_name(name)
                .map_err(|e| Error::sys(format!("user {name:?}"), e))?
                .ok_or_else(|| Error::Refused(format!("user {name:?} does not exist")))?,
        ),
        None => None,
    };
    if let (Some(u), false) = (&target, root) {
        if u.uid != Uid::effective() {
            return Err(Error::Refused(format!(
                "switching to user {:?} needs root",
                u.name
            )));
        }
    }
    if let (Some(u), Some(dir)) = (&target, Path::new(status_file).parent()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::sys(dir.display().to_string(), e))?;
        unistd::chown(dir, Some(u.uid), Some(u.gid))
            .map_err(|e| Error::sys(dir.display().to_string(), e))?;
    }

    // The bounding set first: dropping from it needs CAP_SETPCAP, which goes last.
    let mut bounding_set_cleared = true;
    for cap in 0..=last_cap() {
        if !kept(cap) && prctl(libc::PR_CAPBSET_DROP, cap.into(), 0).is_err() {
            bounding_set_cleared = false;
        }
    }
    // No ambient capabilities for anything we might execute (we execute nothing).
    let _ = prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
        0,
    );

    if let Some(u) = &target {
        // Keep the permitted set across setuid; the effective set is rebuilt below.
        nix::sys::prctl::set_keepcaps(true).map_err(|e| Error::sys("PR_SET_KEEPCAPS", e))?;
        unistd::setgroups(&[]).map_err(|e| Error::sys("setgroups", e))?;
        unistd::setgid(u.gid).map_err(|e| Error::sys(format!("setgid {}", u.gid), e))?;
        unistd::setuid(u.uid).map_err(|e| Error::sys(format!("setuid {}", u.uid), e))?;
        nix::sys::prctl::set_keepcaps(false).map_err(|e| Error::sys("PR_SET_KEEPCAPS", e))?;
    }
    capset(1 << CAP_NET_RAW, permitted(keep_net_admin), 0)
        .map_err(|e| Error::sys("capset(CAP_NET_RAW)", e))?;
    nix::sys::prctl::set_no_new_privs().map_err(|e| Error::sys("PR_SET_NO_NEW_PRIVS", e))?;
    Ok(Dropped {
        uid: Uid::current().as_raw(),
        gid: Gid::current().as_raw(),
        bounding_set_cleared,
        net_admin_kept: keep_net_admin,
    })
}

/// The permitted set after [`drop_privileges`].
fn permitted(net_admin: bool) -> u32 {
    1 << CAP_NET_RAW | if net_admin { 1 << CAP_NET_ADMIN } else { 0 }
}

/// Start `cmd` (after [`drop_privileges`] kept CAP_NET_ADMIN) with CAP_NET_ADMIN as an ambient
/// capability, so that the program it runs has it effective although this process never does;
/// the ambient and inheritable sets are emptied again right after the start, whatever happened.
/// Ambient capabilities survive `no_new_privs` and a non-root uid: they are what the child was
/// given, not what an executable grants.
pub fn spawn_with_net_admin(
    cmd: &mut std::process::Command,
) -> std::io::Result<std::process::Child> {
    let lend = 1 << CAP_NET_ADMIN;
    capset(1 << CAP_NET_RAW, permitted(true), lend)?;
    let child = ambient(libc::PR_CAP_AMBIENT_RAISE).and_then(|()| cmd.spawn());
    let _ = ambient(libc::PR_CAP_AMBIENT_LOWER);
    let _ = capset(1 << CAP_NET_RAW, permitted(true), 0);
    child
}

/// Run `f` (after [`drop_privileges`] kept CAP_NET_ADMIN) with CAP_NET_ADMIN effective: tc
/// changes are netlink requests of this process, the kernel checks the capability when the
/// socket is opened and on each request. Lowered again right after `f`, whatever it returned.
pub fn with_net_admin<T>(f: impl FnOnce() -> T) -> std::io::Result<T> {
    capset(1 << CAP_NET_RAW | 1 << CAP_NET_ADMIN, permitted(true), 0)?;
    let out = f();
    let _ = capset(1 << CAP_NET_RAW, permitted(true), 0);
    Ok(out)
}

/// Run under SCHED_FIFO at `priority` with all memory locked, so that neither another task nor
/// a page fault delays the relay (while the capture rings fill). Needs CAP_SYS_NICE and
/// CAP_IPC_LOCK: call it before [`drop_privileges`].
pub fn set_realtime(priority: u32) -> Result<(), Error> {
    use nix::sys::mman::{mlockall, MlockAllFlags};
    mlockall(MlockAllFlags::MCL_CURRENT | MlockAllFlags::MCL_FUTURE)
        .map_err(|e| Error::sys("mlockall", e))?;
    // SAFETY: sched_param is plain integers (musl adds SCHED_SPORADIC fields); zero is valid.
    let mut param: libc::sched_param = unsafe { core::mem::zeroed() };
    param.sched_priority = priority as libc::c_int;
    // The system call itself: musl's sched_setscheduler() wrapper always fails with ENOSYS.
    // SAFETY: sched_setscheduler(2) on this process (pid 0) with a valid sched_param that the
    // kernel only reads during the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_sched_setscheduler,
            0 as libc::pid_t,
            libc::SCHED_FIFO,
            &param as *const libc::sched_param,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(Error::sys(
            format!("SCHED_FIFO {priority}"),
            std::io::Error::last_os_error(),
        ))
    }
}

/// The kernel's PM QoS interface for CPU wake-up latency.
const CPU_LATENCY_DEVICE: &str = "/dev/cpu_dma_latency";

/// Ask that idle CPUs stay in states they leave within `us` microseconds, for as long as the
/// returned file is open (the kernel drops the request when it closes, also on a crash). A frame
/// then wakes the relay without waiting for a deep idle state's exit; the price is power. The
/// device is root's: call it before [`drop_privileges`] (with a `user`, a later change needs a
/// restart).
pub fn hold_cpu_latency(us: u32) -> Result<std::fs::File, Error> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(CPU_LATENCY_DEVICE)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::PermissionDenied => Error::sys(
                CPU_LATENCY_DEVICE,
                format!(
                    "{e} (root's device: with \"user\" set, a request added by a reload \
                     takes a restart)"
                ),
            ),
            _ => Error::sys(CPU_LATENCY_DEVICE, e),
        })?;
    set_cpu_latency(&mut f, us)?;
    Ok(f)
}

/// Change the request held by `f` to `us` microseconds.
pub fn set_cpu_latency(f: &mut std::fs::File, us: u32) -> Result<(), Error> {
    use std::io::Write as _;
    // The device takes the value as a binary 32-bit integer (the config keeps it in range).
    let value = i32::try_from(us).unwrap_or(i32::MAX);
    f.write_all(&value.to_ne_bytes())
        .map_err(|e| Error::sys(CPU_LATENCY_DEVICE, e))
}
