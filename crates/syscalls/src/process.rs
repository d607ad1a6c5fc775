//! Processes: fork(2), waitpid(2), kill(2), prctl(2) for PR_SET_PDEATHSIG, getppid(2),
//! and a SIGCHLD reaper.

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use nix::errno::Errno;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::sys::wait::{WaitPidFlag, WaitStatus};
pub use nix::unistd::{ForkResult, Pid};

use crate::error::SysResult;
use crate::trace::{start, traced, zero};

/// How a child ended, in words: `exited with status 3`, `killed by signal 9 (SIGKILL)`.
pub fn describe(status: &WaitStatus) -> String {
    match *status {
        WaitStatus::Exited(_, code) => format!("exited with status {code}"),
        WaitStatus::Signaled(_, signal, _) => {
            format!("killed by signal {} ({signal})", signal as i32)
        }
        WaitStatus::StillAlive => "still running".into(),
        other => format!("{other:?}"),
    }
}

/// `fork(2)`: a copy of this process. The parent learns the child's pid; the child
/// gets 0. Both go on from here with copies of every variable and every fd (sockets
/// included: each fd now has two owners, and a socket closes only when both close).
///
/// # Safety
///
/// The process must have one thread when it forks (every chapter binary does): in a
/// threaded process the child could only call async-signal-safe functions.
pub unsafe fn fork() -> SysResult<ForkResult> {
    // Flush what the parent has buffered, or the child prints it a second time.
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let started = start();
    // SAFETY: the caller promises a single-threaded process.
    let result = unsafe { nix::unistd::fork() };
    // The child exists only from the return on: on a demo's timeline its fork() is a
    // moment, not a call it waited in beside its parent's.
    let started = match result {
        Ok(ForkResult::Child) => start(),
        _ => started,
    };
    traced(
        started,
        |_| "fork()".to_string(),
        result,
        |r| match r {
            ForkResult::Parent { child } => format!("{child} (in the parent: the child's pid)"),
            ForkResult::Child => format!("0 (in the child, pid {})", std::process::id()),
        },
    )
}

/// `waitpid(2)`: the status of a child that ended, reaping it (its zombie goes away).
/// `pid` None means any child (-1). With `nohang`, returns `StillAlive` at once when no
/// child has ended (WNOHANG).
pub fn waitpid(pid: Option<Pid>, nohang: bool) -> SysResult<WaitStatus> {
    let flags = nohang.then_some(WaitPidFlag::WNOHANG);
    let shown_pid = pid.map_or("-1".to_string(), |p| p.to_string());
    traced(
        start(),
        |_| {
            format!(
                "waitpid({shown_pid}, {})",
                if nohang { "WNOHANG" } else { "0" }
            )
        },
        nix::sys::wait::waitpid(pid, flags),
        |s| match s.pid() {
            Some(p) => format!("{p} ({})", describe(s)),
            None => "0 (no child has ended yet)".to_string(),
        },
    )
}

/// `kill(2)`: sends `signal` to `pid`.
pub fn kill(pid: Pid, signal: Signal) -> SysResult<()> {
    traced(
        start(),
        |_| format!("kill({pid}, {signal})"),
        nix::sys::signal::kill(pid, signal),
        zero,
    )
}

/// `prctl(PR_SET_PDEATHSIG, signal)`: the kernel sends `signal` to this process when its
/// parent ends, however it ends (SIGKILL included, which no parent can clean up after).
/// A forked server child calls it so that it never outlives the server. The setting is
/// not inherited by the child's own children, and it is lost on a change of uid.
///
/// The parent may already have ended between fork() and this call, when no signal
/// comes: check [`getppid`] after it.
pub fn set_parent_death_signal(signal: Signal) -> SysResult<()> {
    traced(
        start(),
        |_| format!("prctl(PR_SET_PDEATHSIG, {signal})"),
        nix::sys::prctl::set_pdeathsig(signal),
        zero,
    )
}

/// `getppid(2)`: the parent's pid. A process whose parent has ended has been adopted
/// (by init, or by a subreaper), and sees that one's pid here.
pub fn getppid() -> Pid {
    let parent = nix::unistd::getppid();
    let _ = traced(
        start(),
        |_| "getppid()".to_string(),
        Ok::<_, Errno>(parent),
        |p| p.to_string(),
    );
    parent
}

/// What a server's child does first after fork(), so that it never outlives its server:
/// SIGINT and SIGTERM back to their default action
/// ([`crate::signal::default_stop_signals`]), no signal blocked (a server that holds its
/// signals outside its wait passes its mask on), SIGTERM when the parent dies, however it
/// dies, SIGKILL included ([`set_parent_death_signal`]), and a look at [`getppid`] in case
/// the parent died before that call. False when a call failed or the parent is already
/// gone: the child should exit.
pub fn tie_to_parent(parent: Pid) -> bool {
    crate::signal::default_stop_signals().is_ok()
        && crate::signal::unblock_all_signals().is_ok()
        && set_parent_death_signal(Signal::SIGTERM).is_ok()
        && getppid() == parent
}

// ---------------------------------------------------------------------- the reaper

/// Reaped children waiting to be reported: (pid << 32) | encoded status. A ring with one
/// producer (the SIGCHLD handler, which does not nest: SIGCHLD is blocked while it
/// runs) and one consumer (the main loop).
const RING: usize = 4096;
static REAPED: [AtomicI64; RING] = [const { AtomicI64::new(0) }; RING];
static HEAD: AtomicUsize = AtomicUsize::new(0);
static TAIL: AtomicUsize = AtomicUsize::new(0);
static LOST: AtomicUsize = AtomicUsize::new(0);

fn encode(status: WaitStatus) -> Option<i64> {
    let (pid, code) = match status {
        WaitStatus::Exited(pid, code) => (pid, code as i64),
        WaitStatus::Signaled(pid, signal, _) => (pid, 256 + signal as i64),
        _ => return None,
    };
    Some(((pid.as_raw() as i64) << 32) | code)
}

fn decode(packed: i64) -> (Pid, WaitStatus) {
    let pid = Pid::from_raw((packed >> 32) as i32);
    let code = (packed & 0xffff_ffff) as i32;
    let status = if code >= 256 {
        WaitStatus::Signaled(
            pid,
            Signal::try_from(code - 256).unwrap_or(Signal::SIGKILL),
            false,
        )
    } else {
        WaitStatus::Exited(pid, code)
    };
    (pid, status)
}

extern "C" fn reap_children(_signal: std::ffi::c_int) {
    // Only async-signal-safe work: waitpid() and atomic stores. errno is saved and
    // restored, because the code this handler interrupted may be about to read it.
    let saved = Errno::last_raw();
    // One SIGCHLD may stand for many children: signals of one kind do not queue, so a
    // burst of exits can arrive as a single signal. Reap until none is left.
    loop {
        match nix::sys::wait::waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => break,
            Ok(status) => {
                if let Some(packed) = encode(status) {
                    let head = HEAD.load(Ordering::Relaxed);
                    if head - TAIL.load(Ordering::Acquire) < RING {
                        REAPED[head % RING].store(packed, Ordering::Relaxed);
                        HEAD.store(head + 1, Ordering::Release);
                    } else {
                        LOST.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }
    Errno::set_raw(saved);
}

/// Reaps every child as soon as it ends, from a SIGCHLD handler, so that no zombie is
/// left even when many children end at once.
#[derive(Debug, Clone, Copy)]
pub struct Reaper;

impl Reaper {
    /// `sigaction(SIGCHLD)` with the reaping handler. No `SA_RESTART`: a blocked
    /// accept() returns EINTR, the caller retries it, and reports what was reaped in
    /// between. `SA_NOCLDSTOP`: a stopped child is not news.
    pub fn install() -> SysResult<Reaper> {
        let action = SigAction::new(
            SigHandler::Handler(reap_children),
            SaFlags::SA_NOCLDSTOP,
            SigSet::empty(),
        );
        traced(
            start(),
            |_| {
                "sigaction(SIGCHLD, reap with waitpid(-1, WNOHANG) until none is left, SA_NOCLDSTOP)".into()
            },
            // SAFETY: the handler calls only waitpid() and atomic operations, which are
            // async-signal-safe, and restores errno.
            unsafe { sigaction(Signal::SIGCHLD, &action) }.map(|_| ()),
            zero,
        )?;
        Ok(Reaper)
    }

    /// The children reaped since the last call, oldest first.
    pub fn reaped(&self) -> Vec<(Pid, WaitStatus)> {
        let mut out = Vec::new();
        let head = HEAD.load(Ordering::Acquire);
        let mut tail = TAIL.load(Ordering::Relaxed);
        while tail < head {
            out.push(decode(REAPED[tail % RING].load(Ordering::Relaxed)));
            tail += 1;
        }
        TAIL.store(tail, Ordering::Release);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_survive_the_ring() {
        let pid = Pid::from_raw(4242);
        for status in [
            WaitStatus::Exited(pid, 24),
            WaitStatus::Signaled(pid, Signal::SIGTERM, false),
        ] {
            assert_eq!(decode(encode(status).unwrap()), (pid, status));
        }
        assert_eq!(
            describe(&WaitStatus::Exited(pid, 3)),
            "exited with status 3"
        );
        assert_eq!(
            describe(&WaitStatus::Signaled(pid, Signal::SIGKILL, false)),
            "killed by signal 9 (SIGKILL)"
        );
    }
}
