//! Signals every server needs: sigaction(2) for SIGPIPE, and three ways to stop cleanly
//! on SIGINT/SIGTERM: a flag and EINTR ([`StopSignals`]), a readable fd for a
//! multiplexing loop ([`StopPipe`]), and pthread_sigmask(3) so that the signals reach
//! the thread that waits for them ([`block_stop_signals_in_this_thread`]).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use nix::errno::Errno;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal, sigaction};

use crate::error::SysResult;
use crate::trace::{start, traced, zero};

/// `sigaction(2)` setting SIGPIPE to `SIG_IGN`.
///
/// Writing to a connection whose peer is gone raises SIGPIPE, and its default action
/// kills the process: one client that closes early takes the whole server down. With
/// SIGPIPE ignored, that write() fails with EPIPE instead and the server ends only that
/// client.
///
/// Rust's runtime already ignores SIGPIPE before `main` runs, so a Rust server would
/// survive without this call and teach nothing; we make the call ourselves so that the
/// lesson is seen (`--trace` shows it). A C server must make it: the C broken twin in
/// `examples/submissions/ch04/` does not, and dies.
pub fn ignore_sigpipe() -> SysResult<()> {
    let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    traced(
        start(),
        |_| "sigaction(SIGPIPE, SIG_IGN)".to_string(),
        // SAFETY: SIG_IGN installs no handler code, so nothing can run in signal context.
        unsafe { sigaction(Signal::SIGPIPE, &ignore) }.map(|_| ()),
        zero,
    )
}

/// `sigaction(2)` for SIGINT and SIGTERM, both with `action`, narrated as `what`.
///
/// # Safety
///
/// `action`'s handler, if it has one, must do only async-signal-safe work.
unsafe fn on_stop_signals(action: &SigAction, what: &str) -> SysResult<()> {
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        traced(
            start(),
            |_| format!("sigaction({signal}, {what})"),
            // SAFETY: the caller promises a handler that is async-signal-safe.
            unsafe { sigaction(signal, action) }.map(|_| ()),
            zero,
        )?;
    }
    Ok(())
}

// ------------------------------------------------------------- a flag and EINTR

static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn request_stop(_signal: std::ffi::c_int) {
    // Only an atomic store: the one kind of work that is async-signal-safe here. The
    // main loop sees the flag when its blocking call returns EINTR.
    STOP_REQUESTED.store(true, Ordering::SeqCst);
}

/// SIGINT and SIGTERM as a request to stop, for servers that must exit 0 after closing
/// their sockets (the workbook's rule: long-running servers stop cleanly).
#[derive(Debug, Clone, Copy)]
pub struct StopSignals;

impl StopSignals {
    /// `sigaction(2)` for SIGINT and SIGTERM with a handler that sets a flag and
    /// *without* `SA_RESTART`, so a blocked accept() or read() returns EINTR and the
    /// server's loop can look at [`StopSignals::requested`].
    ///
    /// A signal that lands between the loop's look at the flag and its next blocking
    /// call is seen only when that call returns (the next client). Closing that gap
    /// needs the signal to arrive as an fd ([`StopPipe`], with select/epoll: ch12,
    /// ch17); the iterative servers accept the gap to stay as simple as the book.
    pub fn install() -> SysResult<StopSignals> {
        let action = SigAction::new(
            SigHandler::Handler(request_stop),
            SaFlags::empty(),
            SigSet::empty(),
        );
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { on_stop_signals(&action, "handler, flags 0: no SA_RESTART") }?;
        Ok(StopSignals)
    }

    /// True once SIGINT or SIGTERM has arrived.
    pub fn requested(&self) -> bool {
        STOP_REQUESTED.load(Ordering::SeqCst)
    }
}

// ------------------------------------------------------------- a readable fd

static STOP_PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn write_stop_byte(_signal: std::ffi::c_int) {
    // write(2) is async-signal-safe; errno is saved and restored.
    let saved = Errno::last_raw();
    let fd = STOP_PIPE_WRITE.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: the fd stays open for the life of the process; a 1-byte write of a
        // static byte has no other effect.
        let _ = unsafe { libc_write(fd) };
    }
    Errno::set_raw(saved);
}

/// A raw 1-byte write for the signal handler (libc, not nix: nix's write takes a
/// BorrowedFd, which cannot be made from a raw fd safely inside a handler).
unsafe fn libc_write(fd: RawFd) -> isize {
    // SAFETY: the caller passes an open fd; the buffer is a static byte.
    unsafe { libc::write(fd, b"!".as_ptr().cast(), 1) }
}

/// SIGINT and SIGTERM as a readable fd (the self-pipe trick): the handler writes a
/// byte to a pipe, and the server's select() or epoll_wait() watches the read end. No
/// signal can slip in between "check a flag" and "wait", because the wait itself sees
/// it.
#[derive(Debug)]
pub struct StopPipe {
    read_end: OwnedFd,
    _write_end: OwnedFd,
}

impl StopPipe {
    /// `pipe2(O_CLOEXEC | O_NONBLOCK)` and `sigaction()` for SIGINT and SIGTERM.
    pub fn install() -> SysResult<StopPipe> {
        use nix::fcntl::OFlag;
        let (read_end, write_end) = traced(
            start(),
            |_| "pipe2(O_CLOEXEC|O_NONBLOCK)".to_string(),
            nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK),
            |(r, w)| format!("0 [{}, {}]", r.as_raw_fd(), w.as_raw_fd()),
        )?;
        STOP_PIPE_WRITE.store(write_end.as_raw_fd(), Ordering::SeqCst);
        let action = SigAction::new(
            SigHandler::Handler(write_stop_byte),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        // SAFETY: the handler only calls write(2) and saves/restores errno.
        unsafe { on_stop_signals(&action, "write a byte to the stop pipe") }?;
        Ok(StopPipe {
            read_end,
            _write_end: write_end,
        })
    }

    /// The end to watch for readability.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.read_end.as_fd()
    }
}

// ------------------------------------------------------------- the thread that hears

/// `pthread_sigmask(3)` blocking SIGINT and SIGTERM in the calling thread, so that they
/// go to the main thread, whose accept() they interrupt (ch18's worker threads call
/// this). A C library call over `rt_sigprocmask(2)`: the mask is per thread.
pub fn block_stop_signals_in_this_thread() -> SysResult<()> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    traced(
        start(),
        |_| "pthread_sigmask(SIG_BLOCK, [SIGINT SIGTERM])".to_string(),
        nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None),
        zero,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigpipe_is_ignored_after_the_call() {
        ignore_sigpipe().expect("sigaction failed");
        let old = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
        // SAFETY: installs SIG_IGN again (no handler code) only to read the old action.
        let current = unsafe { sigaction(Signal::SIGPIPE, &old) }.expect("sigaction failed");
        assert!(matches!(current.handler(), SigHandler::SigIgn));
    }
}
