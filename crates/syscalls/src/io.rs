//! read(2), write(2), readv(2), writev(2), close(2): the calls every fd shares, sockets
//! included; open(2), fstat(2), pipe(2), dup(2) and dup2(2), the other ways to get one;
//! and [`FdStream`], an fd for std's buffered streams (C's `fdopen()`).

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use crate::error::SysResult;
use crate::trace::{escape_bytes, start, traced, zero};

/// How many bytes of data a narrated read or write shows.
const SHOWN: usize = 32;

/// `read(2)`: reads at most `buf.len()` bytes; 0 means end of stream.
///
/// One read returns what has arrived so far, which may be less than the peer wrote
/// in one write (TCP keeps no message boundaries: ch02, ch05).
pub fn read(fd: impl AsFd, buf: &mut [u8]) -> SysResult<usize> {
    let raw = fd.as_fd().as_raw_fd();
    let started = start();
    let result = nix::unistd::read(fd, buf);
    traced(
        started,
        |n| match n {
            Some(n) => format!(
                "read({raw}, {}, {})",
                escape_bytes(&buf[..*n], SHOWN),
                buf.len()
            ),
            None => format!("read({raw}, {})", buf.len()),
        },
        result,
        |n| n.to_string(),
    )
}

/// `write(2)`: writes some prefix of `buf` and returns how much; it may be less than
/// all of it (a full socket buffer, a signal), so callers that must send everything
/// use [`write_all`].
pub fn write(fd: impl AsFd, buf: &[u8]) -> SysResult<usize> {
    let raw = fd.as_fd().as_raw_fd();
    let started = start();
    let result = nix::unistd::write(fd, buf);
    traced(
        started,
        |_| format!("write({raw}, {}, {})", escape_bytes(buf, SHOWN), buf.len()),
        result,
        |n| n.to_string(),
    )
}

/// The buffers of a readv/writev as strace shows them: `[{"ABCDEFG", 7}, {"1234567", 7}]`,
/// each with the bytes it holds (for readv, what the call filled in) and its length.
fn iov_list<'a>(buffers: impl Iterator<Item = (&'a [u8], usize)>) -> String {
    let shown: Vec<String> = buffers
        .map(|(bytes, len)| format!("{{{}, {len}}}", escape_bytes(bytes, SHOWN)))
        .collect();
    format!("[{}]", shown.join(", "))
}

/// `writev(2)`: writes several buffers, in order, in one call ("gather"), as if they
/// were one. Like write(), it may write less than all of them (a non-blocking socket with
/// a full buffer, a signal): the caller must look at the count, and call again for the
/// rest, from where this call stopped (ch13).
pub fn writev(fd: impl AsFd, buffers: &[std::io::IoSlice<'_>]) -> SysResult<usize> {
    let raw = fd.as_fd().as_raw_fd();
    let started = start();
    let result = nix::sys::uio::writev(fd, buffers);
    traced(
        started,
        |_| {
            format!(
                "writev({raw}, {}, {})",
                iov_list(buffers.iter().map(|b| (&b[..], b.len()))),
                buffers.len()
            )
        },
        result,
        |n| n.to_string(),
    )
}

/// `readv(2)`: reads into several buffers in one call ("scatter"): the first is filled
/// before anything goes into the second. It returns what has arrived, like read(), so
/// the last buffers it reaches may be filled in part, or not at all (ch13).
pub fn readv(fd: impl AsFd, buffers: &mut [std::io::IoSliceMut<'_>]) -> SysResult<usize> {
    let raw = fd.as_fd().as_raw_fd();
    let count = buffers.len();
    let started = start();
    let result = nix::sys::uio::readv(fd, buffers);
    let shown = |n: Option<&usize>| {
        let mut left = n.copied().unwrap_or(0);
        iov_list(buffers.iter().map(|b| {
            let filled = left.min(b.len());
            left -= filled;
            (&b[..filled], b.len())
        }))
    };
    traced(
        started,
        |n| format!("readv({raw}, {}, {count})", shown(n)),
        result,
        |n| n.to_string(),
    )
}

/// Calls [`write`] until every byte of `buf` is written.
///
/// Not a system call of its own: the loop the book's C leaves out. EINTR is returned to
/// the caller, which knows whether a signal means "stop".
pub fn write_all(fd: impl AsFd, mut buf: &[u8]) -> SysResult<()> {
    let fd = fd.as_fd();
    while !buf.is_empty() {
        let n = write(fd, buf)?;
        buf = &buf[n..];
    }
    Ok(())
}

/// `open(2)` for reading (`O_RDONLY | O_NONBLOCK | O_CLOEXEC`): a file gets the lowest
/// free fd, as a socket does.
///
/// `O_NONBLOCK` so that opening never waits: open() of a FIFO (a named pipe) waits until
/// someone opens it for writing, which may be never. A caller checks with [`fstat`] what
/// it opened; on a regular file the flag changes nothing.
pub fn open_read(path: &std::path::Path) -> SysResult<OwnedFd> {
    use nix::fcntl::OFlag;
    use nix::sys::stat::Mode;
    let started = start();
    let result = nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    );
    traced(
        started,
        |_| {
            format!(
                "open({:?}, O_RDONLY|O_NONBLOCK)",
                path.display().to_string()
            )
        },
        result,
        |fd| fd.as_raw_fd().to_string(),
    )
}

/// `open(2)` for writing (`O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC`, mode 0644): the
/// file is created, or emptied when it exists. A file gets the lowest free fd.
pub fn create(path: &std::path::Path) -> SysResult<OwnedFd> {
    use nix::fcntl::OFlag;
    use nix::sys::stat::Mode;
    let started = start();
    let result = nix::fcntl::open(
        path,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    );
    traced(
        started,
        |_| {
            format!(
                "open({:?}, O_WRONLY|O_CREAT|O_TRUNC, 0644)",
                path.display().to_string()
            )
        },
        result,
        |fd| fd.as_raw_fd().to_string(),
    )
}

/// `pipe(2)`: a one-way channel inside the kernel, as two fds: what is written to the
/// second (the write end) is read from the first (the read end), in order, with no
/// boundaries kept. Both ends survive fork(), so a parent and its child can talk
/// through them (ch11). A read() returns 0 (end of file) only once *every* copy of the
/// write end is closed, in every process: a process that keeps its own copy of the
/// write end open never sees the end.
pub fn pipe() -> SysResult<(OwnedFd, OwnedFd)> {
    traced(
        start(),
        |_| "pipe()".to_string(),
        nix::unistd::pipe(),
        |(r, w)| format!("0 [{}, {}]", r.as_raw_fd(), w.as_raw_fd()),
    )
}

/// `open(2)` of a directory with `O_PATH | O_DIRECTORY`: a handle to resolve paths
/// beneath ([`openat2_beneath`]), not to read.
pub fn open_dir(path: &std::path::Path) -> SysResult<OwnedFd> {
    use nix::fcntl::OFlag;
    use nix::sys::stat::Mode;
    let started = start();
    let result = nix::fcntl::open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    );
    traced(
        started,
        |_| format!("open({:?}, O_PATH|O_DIRECTORY)", path.display().to_string()),
        result,
        |fd| fd.as_raw_fd().to_string(),
    )
}

/// `openat2(2)` with `RESOLVE_BENEATH`: opens `path` relative to `dir` for reading, and
/// the *kernel* refuses (EXDEV) any resolution that would leave `dir`: `..` above it, an
/// absolute path, a symlink pointing outside. No string filtering can promise that:
/// symlinks are resolved by the kernel at open time, not by looking at the name.
///
/// `O_NONBLOCK`, as [`open_read`]: open() of a FIFO beneath the directory would wait for
/// a writer that may never come. The caller asks [`fstat`] what it opened.
pub fn openat2_beneath(dir: impl AsFd, path: &str) -> SysResult<OwnedFd> {
    use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
    let raw = dir.as_fd().as_raw_fd();
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_BENEATH);
    let started = start();
    let result = nix::fcntl::openat2(dir, path, how);
    traced(
        started,
        |_| format!("openat2({raw}, {path:?}, O_RDONLY|O_NONBLOCK, RESOLVE_BENEATH)"),
        result,
        |fd| fd.as_raw_fd().to_string(),
    )
}

/// What kind of file an fd refers to, as `st_mode` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Regular,
    Directory,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    Symlink,
    Unknown,
}

impl std::fmt::Display for FileKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FileKind::Regular => "a regular file",
            FileKind::Directory => "a directory",
            FileKind::Fifo => "a FIFO (named pipe)",
            FileKind::Socket => "a socket",
            FileKind::CharDevice => "a character device",
            FileKind::BlockDevice => "a block device",
            FileKind::Symlink => "a symbolic link",
            FileKind::Unknown => "a file of unknown kind",
        })
    }
}

/// What [`fstat`] tells: the file's kind and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStat {
    pub kind: FileKind,
    /// In bytes (for a regular file, how much a read to the end returns now).
    pub size: u64,
}

/// `fstat(2)`: what the fd refers to, and its size.
pub fn fstat(fd: impl AsFd) -> SysResult<FileStat> {
    use nix::sys::stat::SFlag;
    let raw = fd.as_fd().as_raw_fd();
    let started = start();
    let result = nix::sys::stat::fstat(fd.as_fd()).map(|st| {
        let kind = match SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) {
            SFlag::S_IFREG => FileKind::Regular,
            SFlag::S_IFDIR => FileKind::Directory,
            SFlag::S_IFIFO => FileKind::Fifo,
            SFlag::S_IFSOCK => FileKind::Socket,
            SFlag::S_IFCHR => FileKind::CharDevice,
            SFlag::S_IFBLK => FileKind::BlockDevice,
            SFlag::S_IFLNK => FileKind::Symlink,
            _ => FileKind::Unknown,
        };
        FileStat {
            kind,
            size: st.st_size as u64,
        }
    });
    traced(
        started,
        |_| format!("fstat({raw})"),
        result,
        |st| format!("0 ({}, {} bytes)", st.kind, st.size),
    )
}

/// [`fstat`] for the one question most callers have: the size, if it is a regular file.
pub fn regular_file_size(fd: impl AsFd) -> SysResult<Option<u64>> {
    let st = fstat(fd)?;
    Ok((st.kind == FileKind::Regular).then_some(st.size))
}

/// `poll(2)` on one fd for input, up to `timeout`: true when it is readable (or closed).
pub fn wait_readable(fd: impl AsFd, timeout: std::time::Duration) -> SysResult<bool> {
    poll_one(fd.as_fd(), nix::poll::PollFlags::POLLIN, "POLLIN", timeout)
}

/// `poll(2)` on one fd for output, up to `timeout`: true when it can take more (or has
/// failed: the next write says why). A program with a non-blocking socket waits here
/// when its last write() took less than it was given.
pub fn wait_writable(fd: impl AsFd, timeout: std::time::Duration) -> SysResult<bool> {
    poll_one(
        fd.as_fd(),
        nix::poll::PollFlags::POLLOUT,
        "POLLOUT",
        timeout,
    )
}

/// `ppoll(2)` on one fd for input, with the signal mask `letting_in` for the time of the
/// wait (the mask the process had before [`crate::signal::hold_signals`]): true when the
/// fd is readable. A signal held outside the wait is delivered inside it, the wait ends
/// with EINTR, and the caller looks at what the signal did: the look and the wait can no
/// longer miss each other. No time limit.
pub fn wait_readable_letting_in(
    fd: impl AsFd,
    letting_in: &crate::signal::WaitingMask,
) -> SysResult<bool> {
    use nix::poll::{PollFd, PollFlags, ppoll};
    let raw = fd.as_fd().as_raw_fd();
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    let started = start();
    let result = ppoll(&mut fds, None, Some(letting_in.0));
    let ready = traced(
        started,
        |_| {
            let shown: Vec<String> = letting_in.0.iter().map(|s| s.to_string()).collect();
            format!("ppoll([{raw}: POLLIN], NULL, [{}])", shown.join(" "))
        },
        result,
        |n| n.to_string(),
    )?;
    Ok(ready > 0)
}

/// [`wait_readable_letting_in`] with a time limit (`None`: none): true when the fd is
/// readable, false when the time ran out. A server that also has work to do at a time
/// (a pause that ends, a timer) waits with it.
pub fn wait_readable_letting_in_for(
    fd: impl AsFd,
    letting_in: &crate::signal::WaitingMask,
    timeout: Option<std::time::Duration>,
) -> SysResult<bool> {
    use nix::poll::{PollFd, PollFlags, ppoll};
    use nix::sys::time::TimeSpec;
    let raw = fd.as_fd().as_raw_fd();
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    let started = start();
    let result = ppoll(&mut fds, timeout.map(TimeSpec::from), Some(letting_in.0));
    let ready = traced(
        started,
        |_| {
            let shown: Vec<String> = letting_in.0.iter().map(|s| s.to_string()).collect();
            let limit = timeout.map_or("NULL".to_string(), |t| format!("{:.3}s", t.as_secs_f64()));
            format!("ppoll([{raw}: POLLIN], {limit}, [{}])", shown.join(" "))
        },
        result,
        |n| n.to_string(),
    )?;
    Ok(ready > 0)
}

fn poll_one(
    fd: std::os::fd::BorrowedFd<'_>,
    events: nix::poll::PollFlags,
    shown: &str,
    timeout: std::time::Duration,
) -> SysResult<bool> {
    use nix::poll::{PollFd, PollTimeout, poll};
    let raw = fd.as_raw_fd();
    let ms = crate::millis(timeout);
    let mut fds = [PollFd::new(fd, events)];
    let started = start();
    let result = poll(
        &mut fds,
        PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
    );
    let ready = traced(
        started,
        |_| format!("poll([{raw}: {shown}], {ms})"),
        result,
        |n| n.to_string(),
    )?;
    Ok(ready > 0)
}

/// `dup(2)`: a second fd for the same open file (or socket), the lowest number free. The
/// two share everything but their number: the file offset, the flags, the connection. A
/// socket is closed (FIN sent) only when its *last* fd is closed; shutdown(2) acts on the
/// connection whatever fds it has (ch16).
pub fn dup(fd: impl AsFd) -> SysResult<OwnedFd> {
    let raw = fd.as_fd().as_raw_fd();
    traced(
        start(),
        |_| format!("dup({raw})"),
        nix::unistd::dup(fd),
        |copy| copy.as_raw_fd().to_string(),
    )
}

/// `dup2(2)`: a copy of `fd` under the number `number`, closing whatever `number` was
/// before (ch16's dup2(fd, 7)). libc, not nix: nix's dup2() needs the target as an
/// `OwnedFd` already, and its dup2_raw() does not check the result for -1.
///
/// # Safety
///
/// `number` must not be an fd that something else owns (an `OwnedFd`, a `File`, std's
/// standard streams): the returned `OwnedFd` becomes its only owner, and whatever used
/// the number before would use, or close, the copy.
pub unsafe fn dup2(fd: impl AsFd, number: RawFd) -> SysResult<OwnedFd> {
    use std::os::fd::FromRawFd;
    let raw = fd.as_fd().as_raw_fd();
    let started = start();
    // SAFETY: dup2 takes two ints and touches no memory of ours.
    let result = nix::errno::Errno::result(unsafe { libc::dup2(raw, number) })
        // SAFETY: dup2() just made this fd, and the caller promises no one else owns it.
        .map(|copy| unsafe { OwnedFd::from_raw_fd(copy) });
    traced(
        started,
        |_| format!("dup2({raw}, {number})"),
        result,
        |copy| copy.as_raw_fd().to_string(),
    )
}

/// `close(2)`: gives the descriptor back to the kernel; its number is free for reuse.
///
/// Dropping an `OwnedFd` also closes it, silently; chapters call this where the book
/// calls close(), so that the call is seen.
pub fn close(fd: OwnedFd) -> SysResult<()> {
    let raw = fd.as_raw_fd();
    traced(
        start(),
        |_| format!("close({raw})"),
        nix::unistd::close(fd),
        zero,
    )
}

// ------------------------------------------------------------------ buffered streams

/// An fd as a stream of bytes for std's buffered I/O (`BufReader`, `BufWriter`,
/// `LineWriter`): what `std::fs::File` is, an fd with `Read` and `Write`, but with every
/// read(2) and write(2) it makes narrated, and its close(2) when it is dropped.
///
/// C's standard I/O in Rust terms (ch15, ch16): `BufReader::new(FdStream::from(fd))` is
/// `fdopen(fd, "r")`, `BufWriter::new(...)` is `fdopen(fd, "w")`, [`FdStream::fd`] is
/// `fileno()`, `flush()` is `fflush()`, and dropping the stream is `fclose()`: the buffer
/// is written out, then the fd is closed. `&FdStream` reads and writes too, so one fd can
/// have a reader and a writer at once, as the book's sockets have two `FILE*`s.
///
/// EINTR is passed up, not retried (std's buffered readers retry an
/// `ErrorKind::Interrupted`; this one's kind is `Other`): a stop signal must be able to
/// end a wait. [`sys_error`] finds the call that failed in an `io::Error`.
#[derive(Debug)]
pub struct FdStream {
    fd: Option<OwnedFd>,
}

impl From<OwnedFd> for FdStream {
    fn from(fd: OwnedFd) -> FdStream {
        FdStream { fd: Some(fd) }
    }
}

impl FdStream {
    /// The fd underneath: C's `fileno()`.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd
            .as_ref()
            .expect("an FdStream holds its fd until dropped")
            .as_fd()
    }

    /// Closes the fd now, saying whether close(2) succeeded (dropping does the same,
    /// silently).
    pub fn close(mut self) -> SysResult<()> {
        match self.fd.take() {
            Some(fd) => close(fd),
            None => Ok(()),
        }
    }
}

impl Drop for FdStream {
    fn drop(&mut self) {
        if let Some(fd) = self.fd.take() {
            let _ = close(fd);
        }
    }
}

/// A failed call as the `io::Error` std's traits need, keeping the [`SysError`] inside.
fn to_io(e: crate::error::SysError) -> std::io::Error {
    let kind = match e.errno {
        // Not `Interrupted`, which std's buffered readers retry: see [`FdStream`].
        nix::errno::Errno::EINTR => std::io::ErrorKind::Other,
        errno => std::io::Error::from_raw_os_error(errno as i32).kind(),
    };
    std::io::Error::new(kind, e)
}

/// The failed call inside an `io::Error` that an [`FdStream`] returned, if it is one.
pub fn sys_error(e: &std::io::Error) -> Option<&crate::error::SysError> {
    e.get_ref()?.downcast_ref()
}

/// Whether an `io::Error` from an [`FdStream`] is a call a signal interrupted (EINTR): a
/// stop, for a server that installed [`crate::StopSignals`].
pub fn is_interrupted(e: &std::io::Error) -> bool {
    sys_error(e).is_some_and(|e| e.is_interrupted())
}

impl std::io::Read for &FdStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        read(self.fd(), buf).map_err(to_io)
    }
}

impl std::io::Write for &FdStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        write(self.fd(), buf).map_err(to_io)
    }

    /// Nothing to do: an fd has no buffer of ours (the kernel's is not flushed by
    /// anything but the network).
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl std::io::Read for FdStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        (&*self).read(buf)
    }
}

impl std::io::Write for FdStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        (&*self).write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        (&*self).flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read_through_a_pipe() {
        let (r, w) = nix::unistd::pipe().expect("pipe failed");
        write_all(&w, b"hello").expect("write_all failed");
        close(w).expect("close failed");
        let mut buf = [0u8; 16];
        assert_eq!(read(&r, &mut buf).expect("read failed"), 5);
        assert_eq!(&buf[..5], b"hello");
        assert_eq!(read(&r, &mut buf).expect("read at end failed"), 0);
    }

    #[test]
    fn a_copy_made_by_dup_or_dup2_writes_into_the_same_pipe() {
        let (r, w) = pipe().expect("pipe failed");
        let copy = dup(&w).expect("dup failed");
        // SAFETY: 100 is not open in this test process, so the copy is its only owner.
        let numbered = unsafe { dup2(&w, 100) }.expect("dup2 failed");
        assert_eq!(numbered.as_raw_fd(), 100);
        for fd in [&w, &copy, &numbered] {
            write_all(fd, b"x").expect("write failed");
        }
        close(w).expect("close failed");
        close(copy).expect("close failed");
        let mut buf = [0u8; 8];
        assert_eq!(read(&r, &mut buf).expect("read failed"), 3);
        // One copy is still open: no end of file yet.
        assert!(!wait_readable(&r, std::time::Duration::ZERO).expect("poll failed"));
        close(numbered).expect("close failed");
        assert_eq!(read(&r, &mut buf).expect("read failed"), 0);
    }

    #[test]
    fn a_buffered_writer_writes_once_when_flushed_and_closes_when_dropped() {
        use std::io::{BufRead, BufReader, BufWriter, Write};
        let (r, w) = pipe().expect("pipe failed");
        let mut writer = BufWriter::new(FdStream::from(w));
        writer.write_all(b"one ").expect("write failed");
        writer.write_all(b"line\n").expect("write failed");
        // Still in the buffer: nothing has reached the pipe.
        assert!(!wait_readable(&r, std::time::Duration::ZERO).expect("poll failed"));
        writer.flush().expect("flush failed");
        drop(writer);
        let mut reader = BufReader::new(FdStream::from(r));
        let mut line = String::new();
        reader.read_line(&mut line).expect("read failed");
        assert_eq!(line, "one line\n");
        // The writer's drop closed the write end: end of file.
        assert_eq!(reader.read_line(&mut line).expect("read failed"), 0);
    }

    #[test]
    fn writev_gathers_and_readv_scatters_in_order() {
        use std::io::{IoSlice, IoSliceMut};
        let (r, w) = pipe().expect("pipe failed");
        let n = writev(&w, &[IoSlice::new(b"ABCDEFG"), IoSlice::new(b"1234567")])
            .expect("writev failed");
        assert_eq!(n, 14);
        let (mut first, mut second) = ([0u8; 5], [0u8; 100]);
        let n = readv(
            &r,
            &mut [IoSliceMut::new(&mut first), IoSliceMut::new(&mut second)],
        )
        .expect("readv failed");
        assert_eq!(n, 14);
        assert_eq!(&first, b"ABCDE");
        assert_eq!(&second[..9], b"FG1234567");
    }

    #[test]
    fn a_pipe_ends_only_when_every_write_end_is_closed() {
        let (r, w) = pipe().expect("pipe failed");
        let copy = w.try_clone().expect("dup failed");
        write_all(&w, b"ab").expect("write_all failed");
        close(w).expect("close failed");
        let mut buf = [0u8; 4];
        assert_eq!(read(&r, &mut buf).expect("read failed"), 2);
        // One copy of the write end is still open: no end of file yet.
        assert!(!wait_readable(&r, std::time::Duration::from_millis(10)).expect("poll failed"));
        close(copy).expect("close failed");
        assert_eq!(read(&r, &mut buf).expect("read at end failed"), 0);
    }

    #[test]
    fn a_fifo_opens_without_waiting_and_says_what_it_is() {
        let dir = std::env::temp_dir().join(format!("syscalls-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create_dir");
        let fifo = dir.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo failed");
        let fd = open_read(&fifo).expect("open of a FIFO with no writer returns at once");
        assert_eq!(fstat(&fd).expect("fstat failed").kind, FileKind::Fifo);
        let dir_fd = open_read(&dir).expect("a directory opens for reading");
        assert_eq!(regular_file_size(&dir_fd).expect("fstat failed"), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn open_names_the_path_when_it_fails() {
        let err = open_read(std::path::Path::new("/no/such/file")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "open(\"/no/such/file\", O_RDONLY|O_NONBLOCK): ENOENT: No such file or directory"
        );
    }

    #[test]
    fn a_failed_call_names_itself_and_its_errno() {
        let (r, w) = nix::unistd::pipe().expect("pipe failed");
        drop(r);
        // SIGPIPE is ignored by the Rust test runtime, so the write fails with EPIPE.
        let err = write(&w, b"x").unwrap_err();
        assert!(err.is_peer_gone());
        let text = err.to_string();
        assert!(text.starts_with("write("), "{text}");
        assert!(text.ends_with("EPIPE: Broken pipe"), "{text}");
    }
}
