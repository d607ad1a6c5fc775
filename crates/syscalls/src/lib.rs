//! # syscalls: the narrated system-call layer
//!
//! Every chapter of the workbook makes its system calls through this crate, so that a
//! reader finds `socket`, `bind`, `listen`, `accept` in the chapter's code in the book's
//! order, and so that each call can narrate itself.
//!
//! One function, one system call, its man page named in its doc comment. Each function:
//!
//! * makes the call through [`nix`] (or `libc` where nix lacks it, said in a comment),
//! * prints it to stderr in strace style when tracing is on (`--trace` or
//!   `WORKBOOK_TRACE=1`): `socket(AF_INET, SOCK_STREAM, 0) = 3`,
//!   `accept(3) = 4 (127.0.0.1:53422)`, `bind(3, 127.0.0.1:9190) = -1 EADDRINUSE (...)`,
//! * returns a [`SysError`] that names the call and its arguments in the same words as
//!   the trace line (one description serves both), so that a binary's error reads
//!   `bind(3, 127.0.0.1:9190): EADDRINUSE: Address already in use`.
//!
//! Modules: `net` (sockets, send/recv with flags, options), `io` (read, write, readv,
//! writev, open, close, pipe, dup, poll, buffered streams),
//! `multiplex` (select, epoll, fcntl), `outbox` (what a non-blocking socket could not
//! take yet), `signal` (SIGPIPE and the ways to stop), `process` (fork, waitpid, kill,
//! the SIGCHLD reaper), `resource` (the open-file limit), `semaphore` (POSIX semaphores,
//! C library calls over futex), `trace` (the narration), `output`
//! (log and trace lines written so that they never make the program wait).
//!
//! What this crate is not: a networking library. It hides nothing a chapter teaches;
//! it only adds the narration and the error context that the book's C programs lack.

mod accept_pause;
mod error;
pub mod io;
pub mod multiplex;
pub mod net;
pub mod outbox;
pub mod output;
pub mod process;
pub mod resource;
pub mod semaphore;
pub mod signal;
pub mod trace;

pub use accept_pause::AcceptPause;
pub use error::{SysError, SysResult};
pub use io::{
    FdStream, FileKind, FileStat, close, create, dup, dup2, fstat, is_interrupted, open_dir,
    open_read, openat2_beneath, pipe, read, readv, regular_file_size, wait_readable,
    wait_readable_letting_in, wait_readable_letting_in_for, wait_writable, write, write_all,
    writev,
};
pub use net::{
    Datagram, MsgFlags, Shutdown, accept, add_membership, bind, connect, get_rcvbuf, get_sndbuf,
    get_sock_type, getsockname, listen, max_udp_payload, recv, recvfrom, recvfrom_trunc, send,
    sendto, set_broadcast, set_linger, set_multicast_ttl, set_rcvbuf, set_recv_timeout,
    set_reuseaddr, set_send_timeout, set_sndbuf, set_tcp_nodelay, shutdown, socket, tcp_socket,
    udp_socket,
};
pub use nix::errno::Errno;
pub use outbox::{Outbox, OutboxFull};
pub use process::{Reaper, fork, kill, waitpid};
pub use resource::raise_open_file_limit;
pub use semaphore::Semaphore;
pub use signal::{
    SERVER_SIGNALS, SignalPipe, StopPipe, StopSignals, WaitingMask,
    block_stop_signals_in_this_thread, hold_signals, ignore_sigpipe, unblock_all_signals,
};

/// A duration as a `timeval`, rounded *up* to the microsecond, so that a short wait never
/// becomes zero: to SO_RCVTIMEO a zero means "wait forever", to select() "do not wait"
/// (and a loop that waits for the rest of a deadline would spin).
pub(crate) fn timeval(d: std::time::Duration) -> nix::sys::time::TimeVal {
    let micros = d.as_nanos().div_ceil(1000);
    nix::sys::time::TimeVal::new(
        (micros / 1_000_000).min(i64::MAX as u128) as nix::sys::time::time_t,
        (micros % 1_000_000) as nix::sys::time::suseconds_t,
    )
}

/// A duration in whole milliseconds for poll(2) and epoll_wait(2), rounded up (as
/// [`timeval`], so that a short wait is not a spin) and capped at what an `int` holds.
pub(crate) fn millis(d: std::time::Duration) -> i32 {
    d.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn short_waits_round_up_not_to_zero() {
        assert_eq!(super::timeval(Duration::from_nanos(100)).tv_usec(), 1);
        assert_eq!(super::timeval(Duration::from_millis(1500)).tv_sec(), 1);
        assert_eq!(super::millis(Duration::from_micros(10)), 1);
        assert_eq!(super::millis(Duration::from_secs(1 << 40)), i32::MAX);
    }
}
