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
//! Modules: `net` (sockets and their options), `io` (read, write, open, close, poll),
//! `multiplex` (select, epoll, fcntl), `outbox` (what a non-blocking socket could not
//! take yet), `signal` (SIGPIPE and the ways to stop), `process` (fork, waitpid, kill,
//! the SIGCHLD reaper), `resource` (the open-file limit), `trace` (the narration), `output`
//! (log and trace lines written so that they never make the program wait).
//!
//! What this crate is not: a networking library. It hides nothing a chapter teaches;
//! it only adds the narration and the error context that the book's C programs lack.

mod error;
pub mod io;
pub mod multiplex;
pub mod net;
pub mod outbox;
pub mod output;
pub mod process;
pub mod resource;
pub mod signal;
pub mod trace;

pub use error::{SysError, SysResult};
pub use io::{
    close, open_dir, open_read, openat2_beneath, read, regular_file_size, wait_readable, write,
    write_all,
};
pub use net::{
    Shutdown, accept, bind, connect, getsockname, listen, recvfrom, sendto, set_recv_timeout,
    set_reuseaddr, shutdown, socket, tcp_socket, udp_socket,
};
pub use nix::errno::Errno;
pub use outbox::{Outbox, OutboxFull};
pub use process::{Reaper, fork, kill, waitpid};
pub use resource::raise_open_file_limit;
pub use signal::{StopPipe, StopSignals, block_stop_signals_in_this_thread, ignore_sigpipe};
