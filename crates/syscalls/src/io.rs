//! read(2), write(2), close(2): the calls every fd shares, sockets included.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

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
pub fn openat2_beneath(dir: impl AsFd, path: &str) -> SysResult<OwnedFd> {
    use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
    let raw = dir.as_fd().as_raw_fd();
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_BENEATH);
    let started = start();
    let result = nix::fcntl::openat2(dir, path, how);
    traced(
        started,
        |_| format!("openat2({raw}, {path:?}, O_RDONLY, RESOLVE_BENEATH)"),
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
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let raw = fd.as_fd().as_raw_fd();
    let ms = crate::millis(timeout);
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    let started = start();
    let result = poll(
        &mut fds,
        PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
    );
    let ready = traced(
        started,
        |_| format!("poll([{raw}: POLLIN], {ms})"),
        result,
        |n| n.to_string(),
    )?;
    Ok(ready > 0)
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
