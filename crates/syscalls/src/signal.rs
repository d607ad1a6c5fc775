//! sigaction(2) for the two signal lessons every server needs: SIGPIPE, and stopping
//! cleanly on SIGINT/SIGTERM.

use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

use crate::error::{SysError, SysResult};
use crate::trace::narrate;

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
    // SAFETY: SIG_IGN installs no handler code, so nothing can run in signal context.
    let result = unsafe { sigaction(Signal::SIGPIPE, &ignore) }.map(|_| ());
    narrate(
        || "sigaction(SIGPIPE, SIG_IGN)".to_string(),
        &result,
        |_| "0".into(),
    );
    result.map_err(|e| SysError::new("sigaction(SIGPIPE, SIG_IGN)", e))
}

static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn request_stop(_signal: std::ffi::c_int) {
    // Only an atomic store: the one kind of work that is async-signal-safe here. The
    // main loop sees the flag when its blocking call returns EINTR.
    STOP_REQUESTED.store(true, Ordering::SeqCst);
}

/// SIGINT and SIGTERM as a request to stop, for servers that must exit 0 after closing
/// their sockets (DESIGN.md: long-running servers stop cleanly).
#[derive(Debug, Clone, Copy)]
pub struct StopSignals;

impl StopSignals {
    /// `sigaction(2)` for SIGINT and SIGTERM with a handler that sets a flag and
    /// *without* `SA_RESTART`, so a blocked accept() or read() returns EINTR and the
    /// server's loop can look at [`StopSignals::requested`].
    ///
    /// A signal that lands between the loop's look at the flag and its next blocking
    /// call is seen only when that call returns (the next client). Closing that gap
    /// needs the signal to arrive as an fd (a self-pipe or signalfd, with select/epoll:
    /// ch12, ch17); the iterative servers accept the gap to stay as simple as the book.
    pub fn install() -> SysResult<StopSignals> {
        let action = SigAction::new(
            SigHandler::Handler(request_stop),
            SaFlags::empty(),
            SigSet::empty(),
        );
        for signal in [Signal::SIGINT, Signal::SIGTERM] {
            // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
            let result = unsafe { sigaction(signal, &action) }.map(|_| ());
            narrate(
                || format!("sigaction({signal}, handler, flags 0: no SA_RESTART)"),
                &result,
                |_| "0".into(),
            );
            result.map_err(|e| SysError::new(format!("sigaction({signal})"), e))?;
        }
        Ok(StopSignals)
    }

    /// True once SIGINT or SIGTERM has arrived.
    pub fn requested(&self) -> bool {
        STOP_REQUESTED.load(Ordering::SeqCst)
    }
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
