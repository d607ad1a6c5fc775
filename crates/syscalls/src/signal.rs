//! Signals every server needs: sigaction(2) for SIGPIPE, and three ways to stop cleanly
//! on SIGINT/SIGTERM: a flag and EINTR ([`StopSignals`]), a readable fd for a
//! multiplexing loop ([`StopPipe`], one case of [`SignalPipe`], which ch13 also uses for
//! SIGURG), and pthread_sigmask(3) so that the signals reach the thread that waits for
//! them ([`block_stop_signals_in_this_thread`]).

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

/// `sigaction(2)` setting SIGINT and SIGTERM back to `SIG_DFL`: the signal ends the
/// process at once. A server's child does it right after fork() (see
/// [`crate::process::tie_to_parent`]): with the parent's flag-setting handler inherited, a
/// child that got the signal just before it blocked in read() would never look at the
/// flag again, and would wait for ever for a client with nothing more to say (and the
/// parent for it).
pub fn default_stop_signals() -> SysResult<()> {
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: SIG_DFL installs no handler code.
    unsafe { on_stop_signals(&default, "SIG_DFL") }
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

/// The write end of each signal's pipe, by signal number (-1: none).
static PIPE_OF_SIGNAL: [AtomicI32; 65] = [const { AtomicI32::new(-1) }; 65];

extern "C" fn write_signal_byte(signal: std::ffi::c_int) {
    // write(2) is async-signal-safe; errno is saved and restored.
    let saved = Errno::last_raw();
    let fd = PIPE_OF_SIGNAL
        .get(signal as usize)
        .map_or(-1, |slot| slot.load(Ordering::SeqCst));
    if fd >= 0 {
        // SAFETY: the fd stays open for the life of the process; a 1-byte write of the
        // signal's number has no other effect.
        let _ = unsafe { libc_write(fd, signal as u8) };
    }
    Errno::set_raw(saved);
}

/// A raw 1-byte write for the signal handler (libc, not nix: nix's write takes a
/// BorrowedFd, which cannot be made from a raw fd safely inside a handler).
unsafe fn libc_write(fd: RawFd, byte: u8) -> isize {
    // SAFETY: the caller passes an open fd; the buffer is one byte on our stack.
    unsafe { libc::write(fd, (&raw const byte).cast(), 1) }
}

/// Signals as a readable fd (the self-pipe trick): the handler writes the signal's number
/// to a pipe, and the program's select() or epoll_wait() watches the read end. No signal
/// can slip in between "check a flag" and "wait", because the wait itself sees it.
#[derive(Debug)]
pub struct SignalPipe {
    read_end: OwnedFd,
    _write_end: OwnedFd,
}

impl SignalPipe {
    /// `pipe2(O_CLOEXEC | O_NONBLOCK)` and `sigaction()` for each of `signals`, with a
    /// handler that writes the signal's number to the pipe and `SA_RESTART` (the calls it
    /// interrupts go on: the pipe is the news). `what` says in the trace what it is for.
    pub fn install(signals: &[Signal], what: &str) -> SysResult<SignalPipe> {
        use nix::fcntl::OFlag;
        let (read_end, write_end) = traced(
            start(),
            |_| "pipe2(O_CLOEXEC|O_NONBLOCK)".to_string(),
            nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK),
            |(r, w)| format!("0 [{}, {}]", r.as_raw_fd(), w.as_raw_fd()),
        )?;
        let action = SigAction::new(
            SigHandler::Handler(write_signal_byte),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        for signal in signals {
            PIPE_OF_SIGNAL[*signal as usize].store(write_end.as_raw_fd(), Ordering::SeqCst);
            traced(
                start(),
                |_| format!("sigaction({signal}, {what})"),
                // SAFETY: the handler only calls write(2) and saves/restores errno.
                unsafe { sigaction(*signal, &action) }.map(|_| ()),
                zero,
            )?;
        }
        Ok(SignalPipe {
            read_end,
            _write_end: write_end,
        })
    }

    /// The end to watch for readability.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.read_end.as_fd()
    }

    /// The signals that arrived since the last call, oldest first (reads the pipe until
    /// it is empty; its read end does not block).
    pub fn take(&self) -> SysResult<Vec<Signal>> {
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            match crate::io::read(&self.read_end, &mut buf) {
                Ok(0) => return Ok(got),
                Ok(n) => got.extend(
                    buf[..n]
                        .iter()
                        .filter_map(|b| Signal::try_from(i32::from(*b)).ok()),
                ),
                Err(e) if e.errno == Errno::EAGAIN => return Ok(got),
                Err(e) if e.is_interrupted() => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// SIGINT and SIGTERM as a readable fd, for a multiplexing server's loop (ch12, ch17):
/// the stop pipe becomes readable, and stays so.
#[derive(Debug)]
pub struct StopPipe(SignalPipe);

impl StopPipe {
    /// `pipe2(O_CLOEXEC | O_NONBLOCK)` and `sigaction()` for SIGINT and SIGTERM.
    pub fn install() -> SysResult<StopPipe> {
        SignalPipe::install(
            &[Signal::SIGINT, Signal::SIGTERM],
            "write a byte to the stop pipe",
        )
        .map(StopPipe)
    }

    /// The end to watch for readability.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.0.fd()
    }
}

// ------------------------------------------------------------- the moment of waiting

/// The signals a fork server waits for: a child ended, or a request to stop.
pub const SERVER_SIGNALS: [Signal; 3] = [Signal::SIGCHLD, Signal::SIGINT, Signal::SIGTERM];

/// The signal mask a server lets its signals in with, only while it waits: the mask it
/// had before [`hold_signals`] blocked them.
#[derive(Debug, Clone, Copy)]
pub struct WaitingMask(pub SigSet);

/// `sigprocmask(2)` blocking `signals` from now on, except inside
/// [`crate::io::wait_readable_letting_in`] (ppoll(2)), which lets them in atomically with
/// the wait.
///
/// Why: a server whose signal handler sets a flag (or reaps a child) looks at the flag,
/// then blocks in accept(). A signal that comes between the look and the call is handled
/// before accept() begins, so accept() is not interrupted: the news waits, unheard, until
/// the next client comes, which may be never. With the signals blocked everywhere but in
/// the wait, they can only arrive where they interrupt it. That race is what pselect(2)
/// and ppoll(2) exist for; the book's servers have it.
pub fn hold_signals(signals: &[Signal]) -> SysResult<WaitingMask> {
    let mut set = SigSet::empty();
    for s in signals {
        set.add(*s);
    }
    let mut before = SigSet::empty();
    let names: Vec<String> = signals.iter().map(|s| s.to_string()).collect();
    traced(
        start(),
        |_| format!("sigprocmask(SIG_BLOCK, [{}])", names.join(" ")),
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut before)),
        zero,
    )?;
    Ok(WaitingMask(before))
}

/// `sigprocmask(2)` unblocking every signal: what a child of a server does after fork()
/// (it inherits the mask), so that SIGTERM reaches it wherever it is.
pub fn unblock_all_signals() -> SysResult<()> {
    traced(
        start(),
        |_| "sigprocmask(SIG_SETMASK, [])".to_string(),
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None),
        zero,
    )
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
    fn a_signal_arrives_as_its_number_in_the_pipe() {
        let pipe = SignalPipe::install(&[Signal::SIGUSR2], "test").expect("install failed");
        nix::sys::signal::raise(Signal::SIGUSR2).expect("raise failed");
        assert_eq!(pipe.take().expect("read failed"), vec![Signal::SIGUSR2]);
        assert_eq!(pipe.take().expect("read failed"), vec![]);
    }

    #[test]
    fn sigpipe_is_ignored_after_the_call() {
        ignore_sigpipe().expect("sigaction failed");
        let old = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
        // SAFETY: installs SIG_IGN again (no handler code) only to read the old action.
        let current = unsafe { sigaction(Signal::SIGPIPE, &old) }.expect("sigaction failed");
        assert!(matches!(current.handler(), SigHandler::SigIgn));
    }
}
