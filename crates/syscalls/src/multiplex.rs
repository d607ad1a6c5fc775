//! Waiting on many descriptors at once: select(2) (ch12) and epoll(7) (ch17), with the
//! helpers a multiplexing server needs: non-blocking fds (fcntl(2)), a bounded output
//! buffer, a self-pipe that turns SIGINT/SIGTERM into a readable fd, and a higher
//! open-file limit (setrlimit(2)).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::select::FdSet;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal, sigaction};

use crate::error::{SysError, SysResult};
use crate::io::write;
use crate::trace::narrate;

fn fd_list(fds: &[RawFd]) -> String {
    let shown: Vec<String> = fds.iter().map(|f| f.to_string()).collect();
    format!("{{{}}}", shown.join(", "))
}

/// `select(2)` with no timeout: waits until one of `read` is readable or one of
/// `write` is writable, and returns which.
///
/// The fd sets are built anew on every call, because select() overwrites them with its
/// answer. A signal makes it fail with EINTR, and Linux never restarts select(), even
/// with SA_RESTART: callers retry.
pub fn select(
    read: &[BorrowedFd<'_>],
    write: &[BorrowedFd<'_>],
) -> SysResult<(Vec<RawFd>, Vec<RawFd>)> {
    let mut read_set = FdSet::new();
    for fd in read {
        read_set.insert(*fd);
    }
    let mut write_set = FdSet::new();
    for fd in write {
        write_set.insert(*fd);
    }
    let nfds = read
        .iter()
        .chain(write)
        .map(|f| f.as_raw_fd())
        .max()
        .map_or(0, |m| m + 1);
    let result =
        nix::sys::select::select(nfds, Some(&mut read_set), Some(&mut write_set), None, None);
    // FD_ISSET per fd we asked about: constant time each. (Scanning the whole answer
    // set for every fd cost n x FD_SETSIZE steps per call; the bench's idle-900 cell
    // found it.)
    let readable: Vec<RawFd> = read
        .iter()
        .filter(|f| read_set.contains(**f))
        .map(|f| f.as_raw_fd())
        .collect();
    let writable: Vec<RawFd> = write
        .iter()
        .filter(|f| write_set.contains(**f))
        .map(|f| f.as_raw_fd())
        .collect();
    narrate(
        || {
            let r: Vec<RawFd> = read.iter().map(|f| f.as_raw_fd()).collect();
            let w: Vec<RawFd> = write.iter().map(|f| f.as_raw_fd()).collect();
            format!("select({nfds}, {}, {}, NULL)", fd_list(&r), fd_list(&w))
        },
        &result,
        |n| {
            format!(
                "{n} (readable {}, writable {})",
                fd_list(&readable),
                fd_list(&writable)
            )
        },
    );
    result.map_err(|e| SysError::new(format!("select({nfds})"), e))?;
    Ok((readable, writable))
}

/// `fcntl(2)` setting `O_NONBLOCK`: read(), write() and accept() on this fd return
/// EAGAIN instead of waiting. A multiplexing server needs it: one blocked call would
/// stop every client.
pub fn set_nonblocking(fd: impl AsFd) -> SysResult<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let fd = fd.as_fd();
    let raw = fd.as_raw_fd();
    let result = fcntl(fd, FcntlArg::F_GETFL)
        .and_then(|flags| {
            fcntl(
                fd,
                FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
            )
        })
        .map(|_| ());
    narrate(
        || format!("fcntl({raw}, F_SETFL, O_NONBLOCK)"),
        &result,
        |_| "0".into(),
    );
    result.map_err(|e| SysError::new(format!("fcntl({raw}, O_NONBLOCK)"), e))
}

/// Bytes waiting to be written to a non-blocking socket, with a limit.
#[derive(Debug, Default)]
pub struct Outbox {
    buf: Vec<u8>,
}

impl Outbox {
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Writes as much as the socket takes now (until EAGAIN). Returns true when
    /// everything is out.
    pub fn flush(&mut self, fd: impl AsFd) -> SysResult<bool> {
        let fd = fd.as_fd();
        while !self.buf.is_empty() {
            match write(fd, &self.buf) {
                Ok(n) => {
                    self.buf.drain(..n);
                }
                Err(e) if e.errno == Errno::EAGAIN => return Ok(false),
                Err(e) if e.is_interrupted() => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}

// ------------------------------------------------------------------ epoll

/// An epoll instance: the kernel keeps the interest list, so a wait costs nothing per
/// idle descriptor (select copies and scans every fd on every call).
pub struct EpollSet {
    epoll: Epoll,
}

impl std::fmt::Debug for EpollSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EpollSet({})", self.epoll.0.as_raw_fd())
    }
}

fn flag_names(flags: EpollFlags) -> String {
    let mut names = Vec::new();
    for (flag, name) in [
        (EpollFlags::EPOLLIN, "EPOLLIN"),
        (EpollFlags::EPOLLOUT, "EPOLLOUT"),
        (EpollFlags::EPOLLET, "EPOLLET"),
        (EpollFlags::EPOLLHUP, "EPOLLHUP"),
        (EpollFlags::EPOLLERR, "EPOLLERR"),
        (EpollFlags::EPOLLRDHUP, "EPOLLRDHUP"),
    ] {
        if flags.contains(flag) {
            names.push(name);
        }
    }
    names.join("|")
}

pub use nix::sys::epoll::EpollFlags as Interest;

impl EpollSet {
    /// `epoll_create1(EPOLL_CLOEXEC)`.
    pub fn new() -> SysResult<EpollSet> {
        let result = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC);
        let shown = result.as_ref().map(|e| e.0.as_raw_fd()).map_err(|e| *e);
        narrate(
            || "epoll_create1(EPOLL_CLOEXEC)".into(),
            &shown,
            |fd| fd.to_string(),
        );
        Ok(EpollSet {
            epoll: result.map_err(|e| SysError::new("epoll_create1", e))?,
        })
    }

    /// `epoll_ctl(EPOLL_CTL_ADD)`: watch `fd` for `interest`; events carry `fd` back.
    pub fn add(&self, fd: impl AsFd, interest: EpollFlags) -> SysResult<()> {
        let raw = fd.as_fd().as_raw_fd();
        let result = self.epoll.add(fd, EpollEvent::new(interest, raw as u64));
        narrate(
            || {
                format!(
                    "epoll_ctl({}, EPOLL_CTL_ADD, {raw}, {})",
                    self.epoll.0.as_raw_fd(),
                    flag_names(interest)
                )
            },
            &result,
            |_| "0".into(),
        );
        result.map_err(|e| SysError::new(format!("epoll_ctl(ADD {raw})"), e))
    }

    /// `epoll_ctl(EPOLL_CTL_MOD)`: change what `fd` is watched for.
    pub fn modify(&self, fd: impl AsFd, interest: EpollFlags) -> SysResult<()> {
        let raw = fd.as_fd().as_raw_fd();
        let mut event = EpollEvent::new(interest, raw as u64);
        let result = self.epoll.modify(fd, &mut event);
        narrate(
            || {
                format!(
                    "epoll_ctl({}, EPOLL_CTL_MOD, {raw}, {})",
                    self.epoll.0.as_raw_fd(),
                    flag_names(interest)
                )
            },
            &result,
            |_| "0".into(),
        );
        result.map_err(|e| SysError::new(format!("epoll_ctl(MOD {raw})"), e))
    }

    /// `epoll_ctl(EPOLL_CTL_DEL)`. (close() also removes an fd, once no copy is left.)
    pub fn delete(&self, fd: impl AsFd) -> SysResult<()> {
        let raw = fd.as_fd().as_raw_fd();
        let result = self.epoll.delete(fd);
        narrate(
            || {
                format!(
                    "epoll_ctl({}, EPOLL_CTL_DEL, {raw})",
                    self.epoll.0.as_raw_fd()
                )
            },
            &result,
            |_| "0".into(),
        );
        result.map_err(|e| SysError::new(format!("epoll_ctl(DEL {raw})"), e))
    }

    /// `epoll_wait(2)` with no timeout: the ready fds and their events. EINTR is the
    /// caller's to retry.
    pub fn wait(&self, events: &mut [EpollEvent]) -> SysResult<Vec<(RawFd, EpollFlags)>> {
        let result = self.epoll.wait(events, EpollTimeout::NONE);
        let ready: Vec<(RawFd, EpollFlags)> = match &result {
            Ok(n) => events[..*n]
                .iter()
                .map(|e| (e.data() as RawFd, e.events()))
                .collect(),
            Err(_) => Vec::new(),
        };
        narrate(
            || format!("epoll_wait({}, {})", self.epoll.0.as_raw_fd(), events.len()),
            &result,
            |n| {
                let shown: Vec<String> = ready
                    .iter()
                    .map(|(fd, ev)| format!("{fd}:{}", flag_names(*ev)))
                    .collect();
                format!("{n} [{}]", shown.join(", "))
            },
        );
        result.map_err(|e| SysError::new("epoll_wait", e))?;
        Ok(ready)
    }
}

/// Room for events in one epoll_wait().
pub fn event_buffer(n: usize) -> Vec<EpollEvent> {
    vec![EpollEvent::empty(); n]
}

// ------------------------------------------------------------- stop pipe

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

/// A raw 1-byte write for the signal handler (nix's write takes a BorrowedFd, which
/// cannot be made from a raw fd safely inside a handler).
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
        let (read_end, write_end) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)
            .map_err(|e| SysError::new("pipe2", e))?;
        narrate(
            || "pipe2(O_CLOEXEC|O_NONBLOCK)".into(),
            &Ok::<_, Errno>(()),
            |_| format!("0 [{}, {}]", read_end.as_raw_fd(), write_end.as_raw_fd()),
        );
        STOP_PIPE_WRITE.store(write_end.as_raw_fd(), Ordering::SeqCst);
        let action = SigAction::new(
            SigHandler::Handler(write_stop_byte),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        for signal in [Signal::SIGINT, Signal::SIGTERM] {
            // SAFETY: the handler only calls write(2) and saves/restores errno.
            let result = unsafe { sigaction(signal, &action) }.map(|_| ());
            narrate(
                || format!("sigaction({signal}, write a byte to the stop pipe)"),
                &result,
                |_| "0".into(),
            );
            result.map_err(|e| SysError::new(format!("sigaction({signal})"), e))?;
        }
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

/// Blocks SIGINT and SIGTERM in the calling thread (`pthread_sigmask`), so that they go
/// to the main thread, whose accept() they interrupt (ch18's worker threads call this).
pub fn block_stop_signals_in_this_thread() -> SysResult<()> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
        .map_err(|e| SysError::new("pthread_sigmask", e))
}

/// `setrlimit(RLIMIT_NOFILE)`: raises the soft open-file limit to the hard limit.
/// Returns (old soft, new soft).
pub fn raise_open_file_limit() -> SysResult<(u64, u64)> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)
        .map_err(|e| SysError::new("getrlimit(RLIMIT_NOFILE)", e))?;
    let result = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    narrate(
        || format!("setrlimit(RLIMIT_NOFILE, {{{hard}, {hard}}})"),
        &result,
        |_| "0".into(),
    );
    result.map_err(|e| SysError::new("setrlimit(RLIMIT_NOFILE)", e))?;
    Ok((soft, hard))
}
