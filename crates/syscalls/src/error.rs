//! The error every call returns: the call, its arguments, and errno.

use std::fmt;

use nix::errno::Errno;

/// A failed system call: what was called, with which arguments, and the errno it gave.
///
/// Displays as `bind 127.0.0.1:9190: EADDRINUSE: Address already in use`: the call's
/// context first, then nix's errno text (name and `strerror`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysError {
    /// The call and its arguments, as `bind 127.0.0.1:9190` or `read(4)`.
    pub call: String,
    /// The errno the call returned.
    pub errno: Errno,
}

impl SysError {
    pub(crate) fn new(call: impl Into<String>, errno: Errno) -> Self {
        SysError {
            call: call.into(),
            errno,
        }
    }

    /// True when the call was interrupted by a signal handler (EINTR): the caller decides
    /// whether to retry or to stop, which is why no function here retries on its own.
    pub fn is_interrupted(&self) -> bool {
        self.errno == Errno::EINTR
    }

    /// True when the peer is gone: it reset the connection (ECONNRESET) or we wrote
    /// after it closed (EPIPE). A server ends that client and keeps serving the others.
    pub fn is_peer_gone(&self) -> bool {
        matches!(self.errno, Errno::ECONNRESET | Errno::EPIPE)
    }
}

impl fmt::Display for SysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.call, self.errno)
    }
}

impl std::error::Error for SysError {}

/// The result of every function in this crate.
pub type SysResult<T> = Result<T, SysError>;
