//! Lines a long-running program writes for people, its log and its trace, written so
//! that writing them never stops it.
//!
//! A server's stdout or stderr may be a pipe or a terminal that nobody reads any more: a
//! log collector that hung, `server | less` left at the first page, a terminal scrolled
//! back (Ctrl-S). Once its buffer is full, a plain write(2) waits, and a server waiting
//! in write() for its *log* serves no one. So each line goes out in one write that cannot
//! wait: when it would, the line is dropped and counted, and the next line that gets
//! through says how many were lost. Losing log lines is a lesser harm than losing every
//! client.
//!
//! How a write is made unable to wait depends on what the stream is (fstat(2), once):
//!
//! * a pipe or a terminal: the stream is opened again, through `/proc/self/fd/N`, with
//!   `O_NONBLOCK`. That is a new open file description of the same pipe or terminal, with
//!   a non-blocking flag of its own. Setting `O_NONBLOCK` on fd 1 itself would change the
//!   description the shell and every other process writing there share, and their
//!   writes would start failing with EAGAIN.
//! * a socket: send(2) with `MSG_DONTWAIT`, which asks the same of one call.
//! * a regular file (or anything else): a plain write(2); a file never waits for a reader.
//!
//! These calls are not narrated: they carry the narration.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::socket::MsgFlags;
use nix::sys::stat::{Mode, SFlag};

/// Where a line goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// How lines reach one stream.
#[derive(Debug)]
enum Route {
    /// Our own non-blocking open file description of the stream's pipe or terminal.
    Private(OwnedFd),
    /// A socket: send(2) with MSG_DONTWAIT on the stream's own fd.
    Socket(RawFd),
    /// A plain write(2) on the stream's own fd.
    Plain(RawFd),
}

/// One stream's route and what it had to drop.
#[derive(Debug)]
struct Sink {
    route: Route,
    /// Lines dropped since the last one that got through.
    dropped: AtomicU64,
    /// The last write took only part of a line, so the next one starts a new line.
    cut: AtomicBool,
}

impl Sink {
    /// The route for `fd`, chosen from what fstat(2) says it is.
    fn for_fd(fd: RawFd) -> Sink {
        // SAFETY: fd 1 and fd 2 stay open for the life of the process (the tests pass an
        // fd they keep open while the sink is used).
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let kind = nix::sys::stat::fstat(borrowed)
            .map(|st| SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()));
        let route = match kind {
            Ok(k) if k == SFlag::S_IFSOCK => Route::Socket(fd),
            Ok(k) if k == SFlag::S_IFIFO || k == SFlag::S_IFCHR => {
                // O_NOCTTY: opening a terminal must not make it our controlling one.
                nix::fcntl::open(
                    format!("/proc/self/fd/{fd}").as_str(),
                    OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOCTTY,
                    Mode::empty(),
                )
                .map_or(Route::Plain(fd), |own| Route::Private(out_of_the_way(own)))
            }
            _ => Route::Plain(fd),
        };
        Sink {
            route,
            dropped: AtomicU64::new(0),
            cut: AtomicBool::new(false),
        }
    }

    /// One write, which never waits. Returns how much was written.
    fn write_once(&self, bytes: &[u8]) -> Result<usize, Errno> {
        match &self.route {
            Route::Private(fd) => nix::unistd::write(fd, bytes),
            Route::Socket(fd) => {
                nix::sys::socket::send(*fd, bytes, MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL)
            }
            Route::Plain(fd) => {
                // SAFETY: as in for_fd, the stream's fd outlives the sink.
                nix::unistd::write(unsafe { BorrowedFd::borrow_raw(*fd) }, bytes)
            }
        }
    }

    /// Writes `text` and a newline in one write, after a note of what was dropped
    /// before it; drops and counts it when the stream cannot take it now.
    fn line(&self, text: &str) {
        let dropped = self.dropped.load(Ordering::Relaxed);
        let cut = self.cut.load(Ordering::Relaxed);
        let mut buf = Vec::with_capacity(text.len() + 80);
        if cut {
            buf.push(b'\n');
        }
        if dropped > 0 {
            buf.extend_from_slice(
                format!("({dropped} lines of output dropped: nobody was reading them)\n")
                    .as_bytes(),
            );
        }
        buf.extend_from_slice(text.as_bytes());
        buf.push(b'\n');
        loop {
            match self.write_once(&buf) {
                Ok(n) => {
                    self.dropped.fetch_sub(dropped, Ordering::Relaxed);
                    self.cut.store(n < buf.len(), Ordering::Relaxed);
                    if n < buf.len() {
                        self.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    return;
                }
                Err(Errno::EINTR) => continue,
                // EAGAIN: full. EPIPE: nobody will ever read it. Either way, not now.
                Err(_) => {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
    }

    #[cfg(test)]
    fn is_private(&self) -> bool {
        matches!(self.route, Route::Private(_))
    }
}

/// Moves our own descriptor up, out of the numbers a program uses and narrates: open()
/// took the lowest free one, which the program's next socket would have had (the demos
/// show `socket(...) = 3`). Above FD_SETSIZE when the limit allows, so that it never takes
/// one of the 1,024 a select() server can watch; else near the top of the limit.
pub fn out_of_the_way(fd: OwnedFd) -> OwnedFd {
    use nix::fcntl::{FcntlArg, fcntl};
    use nix::sys::resource::{Resource, getrlimit};
    use std::os::fd::FromRawFd;
    let soft = getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft);
    let lowest = if soft >= 1024 + 16 {
        1024
    } else {
        soft.saturating_sub(8).max(3)
    };
    match fcntl(&fd, FcntlArg::F_DUPFD_CLOEXEC(lowest as i32)) {
        // SAFETY: fcntl(F_DUPFD_CLOEXEC) just returned this new fd; nothing else owns it.
        // Dropping `fd` closes the low one.
        Ok(high) => unsafe { OwnedFd::from_raw_fd(high) },
        Err(_) => fd,
    }
}

fn sink(stream: Stream) -> &'static Sink {
    static STDOUT: OnceLock<Sink> = OnceLock::new();
    static STDERR: OnceLock<Sink> = OnceLock::new();
    match stream {
        Stream::Stdout => STDOUT.get_or_init(|| Sink::for_fd(std::io::stdout().as_raw_fd())),
        Stream::Stderr => STDERR.get_or_init(|| Sink::for_fd(std::io::stderr().as_raw_fd())),
    }
}

/// Chooses both streams' routes now, while descriptors are still free: a server calls it
/// as it starts (`workbook::announce` does), so that its first log line, perhaps about
/// running out of descriptors, does not find none left to open.
pub fn prepare() {
    sink(Stream::Stdout);
    sink(Stream::Stderr);
}

/// Writes `text` and a newline to `stream` in one write that never waits: the whole
/// line or, when the stream cannot take it now, nothing (counted, and reported by the
/// next line that gets through).
pub fn line(stream: Stream, text: &str) {
    sink(stream).line(text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipe_nobody_reads_drops_lines_instead_of_waiting() {
        let (r, w) = nix::unistd::pipe().expect("pipe failed");
        nix::fcntl::fcntl(&w, nix::fcntl::FcntlArg::F_SETPIPE_SZ(4096)).expect("fcntl failed");
        let sink = Sink::for_fd(w.as_raw_fd());
        assert!(
            sink.is_private(),
            "a pipe gets a private non-blocking route"
        );
        // 200 lines of 100 bytes into one page: without the route, the second page's
        // worth would block this test forever.
        let text = "x".repeat(99);
        for _ in 0..200 {
            sink.line(&text);
        }
        assert!(sink.dropped.load(Ordering::Relaxed) > 100);
        nix::fcntl::fcntl(&r, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
            .expect("fcntl failed");
        let mut buf = vec![0u8; 65536];
        let mut n = 0;
        while let Ok(got) = nix::unistd::read(&r, &mut buf[n..]) {
            if got == 0 {
                break;
            }
            n += got;
        }
        assert!(n <= 4096 && n > 0, "{n} bytes");
        sink.line("after");
        let got = nix::unistd::read(&r, &mut buf).expect("read failed");
        let text = String::from_utf8_lossy(&buf[..got]);
        assert!(
            text.starts_with("(")
                && text.contains("lines of output dropped")
                && text.ends_with("after\n"),
            "{text:?}"
        );
        assert_eq!(sink.dropped.load(Ordering::Relaxed), 0);
        // The pipe's own flags are untouched: only our description is non-blocking.
        let flags = nix::fcntl::fcntl(&w, nix::fcntl::FcntlArg::F_GETFL).expect("fcntl failed");
        assert!(!OFlag::from_bits_truncate(flags).contains(OFlag::O_NONBLOCK));
    }
}
