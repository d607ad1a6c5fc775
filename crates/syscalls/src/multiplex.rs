//! Waiting on many descriptors at once: select(2) (ch12) and epoll(7) (ch17), and the
//! fcntl(2) that makes a descriptor non-blocking, which a multiplexing server needs for
//! every one it watches (and F_SETOWN, who is signalled for a socket: ch13). (What else such a server uses lives beside its kind: the stop
//! pipe in `signal`, the outbox in `outbox`, the open-file limit in `resource`.)

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

use nix::errno::Errno;

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::select::FdSet;

use crate::error::SysResult;
use crate::trace::{start, traced, zero};

/// Kept at this path for the harness and xtask, which raise their own limit with it.
pub use crate::resource::raise_open_file_limit;

/// A wait's timeout as the trace shows it: `NULL` for none (select's own way to say it),
/// else in seconds.
fn shown_timeout(timeout: Option<Duration>) -> String {
    timeout.map_or("NULL".to_string(), |t| format!("{:.3}s", t.as_secs_f64()))
}

fn fd_list(fds: impl IntoIterator<Item = RawFd>) -> String {
    let shown: Vec<String> = fds.into_iter().map(|f| f.to_string()).collect();
    format!("{{{}}}", shown.join(", "))
}

/// The number of bits in an `fd_set`: select() can watch fds 0 to 1,023 and no more.
pub use nix::sys::select::FD_SETSIZE;

/// `select(2)`: waits until one of `read` is readable or one of `write` is writable, or
/// `timeout` has passed (None: no limit), and returns which (none at a timeout).
///
/// The fd sets are built anew on every call, because select() overwrites them with its
/// answer. A signal makes it fail with EINTR, and Linux never restarts select(), even
/// with SA_RESTART: callers retry.
///
/// An `fd_set` has [`FD_SETSIZE`] bits, and an fd at or above it cannot be put in one
/// (C's FD_SET writes past the set's end; nix panics). Such an fd fails the call with
/// EINVAL before it is made: a server must not take a connection it cannot watch (ch12).
pub fn select(
    read: &[BorrowedFd<'_>],
    write: &[BorrowedFd<'_>],
    timeout: Option<Duration>,
) -> SysResult<(Vec<RawFd>, Vec<RawFd>)> {
    let fits = |fd: &BorrowedFd<'_>| (fd.as_raw_fd() as usize) < FD_SETSIZE;
    let mut read_set = FdSet::new();
    let mut write_set = FdSet::new();
    let too_high = !(read.iter().all(fits) && write.iter().all(fits));
    if !too_high {
        for fd in read {
            read_set.insert(*fd);
        }
        for fd in write {
            write_set.insert(*fd);
        }
    }
    let nfds = read
        .iter()
        .chain(write)
        .map(|f| f.as_raw_fd())
        .max()
        .map_or(0, |m| m + 1);
    let mut tv = timeout.map(crate::timeval);
    let started = start();
    let result = if too_high {
        Err(Errno::EINVAL)
    } else {
        nix::sys::select::select(
            nfds,
            Some(&mut read_set),
            Some(&mut write_set),
            None,
            tv.as_mut(),
        )
    }
    .map(|n| {
        // FD_ISSET per fd we asked about: constant time each. (Scanning the whole
        // answer set for every fd cost n x FD_SETSIZE steps per call; the bench's
        // idle-900 cell found it.)
        let ready = |fds: &[BorrowedFd<'_>], set: &FdSet<'_>| -> Vec<RawFd> {
            fds.iter()
                .filter(|f| set.contains(**f))
                .map(|f| f.as_raw_fd())
                .collect()
        };
        (n, ready(read, &read_set), ready(write, &write_set))
    });
    let (_, readable, writable) = traced(
        started,
        |_| {
            format!(
                "select({nfds}, {}, {}, {})",
                fd_list(read.iter().map(|f| f.as_raw_fd())),
                fd_list(write.iter().map(|f| f.as_raw_fd())),
                shown_timeout(timeout)
            )
        },
        result,
        |(n, readable, writable)| {
            format!(
                "{n} (readable {}, writable {})",
                fd_list(readable.iter().copied()),
                fd_list(writable.iter().copied())
            )
        },
    )?;
    Ok((readable, writable))
}

/// `fcntl(2)` setting `O_NONBLOCK`: read(), write() and accept() on this fd return
/// EAGAIN instead of waiting. A multiplexing server needs it: one blocked call would
/// stop every client.
pub fn set_nonblocking(fd: impl AsFd) -> SysResult<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let fd = fd.as_fd();
    let raw = fd.as_raw_fd();
    traced(
        start(),
        |_| format!("fcntl({raw}, F_SETFL, O_NONBLOCK)"),
        fcntl(fd, FcntlArg::F_GETFL)
            .and_then(|flags| {
                fcntl(
                    fd,
                    FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
                )
            })
            .map(|_| ()),
        zero,
    )
}

/// `fcntl(2)` with `F_SETOWN`: which process the kernel sends SIGURG (urgent data has
/// arrived, ch13) and SIGIO for this socket. A new socket has no owner, so without this
/// call nobody is told of urgent data. libc, not nix: nix has no F_SETOWN.
pub fn set_owner(fd: impl AsFd, pid: nix::unistd::Pid) -> SysResult<()> {
    let raw = fd.as_fd().as_raw_fd();
    traced(
        start(),
        |_| format!("fcntl({raw}, F_SETOWN, {pid})"),
        // SAFETY: F_SETOWN takes an int and touches no memory of ours.
        Errno::result(unsafe { libc::fcntl(raw, libc::F_SETOWN, pid.as_raw()) }).map(|_| ()),
        zero,
    )
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
        let epoll = traced(
            start(),
            |_| "epoll_create1(EPOLL_CLOEXEC)".to_string(),
            Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC),
            |e| e.0.as_raw_fd().to_string(),
        )?;
        Ok(EpollSet { epoll })
    }

    fn raw(&self) -> RawFd {
        self.epoll.0.as_raw_fd()
    }

    /// `epoll_ctl(EPOLL_CTL_ADD)`: watch `fd` for `interest`; events carry `fd` back.
    pub fn add(&self, fd: impl AsFd, interest: EpollFlags) -> SysResult<()> {
        let raw = fd.as_fd().as_raw_fd();
        traced(
            start(),
            |_| {
                format!(
                    "epoll_ctl({}, EPOLL_CTL_ADD, {raw}, {})",
                    self.raw(),
                    flag_names(interest)
                )
            },
            self.epoll.add(fd, EpollEvent::new(interest, raw as u64)),
            zero,
        )
    }

    /// `epoll_ctl(EPOLL_CTL_MOD)`: change what `fd` is watched for. It also re-arms an
    /// edge-triggered fd: the kernel looks at the fd's state anew and reports it if it
    /// is ready now, as if the edge had just happened.
    pub fn modify(&self, fd: impl AsFd, interest: EpollFlags) -> SysResult<()> {
        let raw = fd.as_fd().as_raw_fd();
        let mut event = EpollEvent::new(interest, raw as u64);
        traced(
            start(),
            |_| {
                format!(
                    "epoll_ctl({}, EPOLL_CTL_MOD, {raw}, {})",
                    self.raw(),
                    flag_names(interest)
                )
            },
            self.epoll.modify(fd, &mut event),
            zero,
        )
    }

    /// `epoll_ctl(EPOLL_CTL_DEL)`. (close() also removes an fd, once no copy is left.)
    pub fn delete(&self, fd: impl AsFd) -> SysResult<()> {
        let raw = fd.as_fd().as_raw_fd();
        traced(
            start(),
            |_| format!("epoll_ctl({}, EPOLL_CTL_DEL, {raw})", self.raw()),
            self.epoll.delete(fd),
            zero,
        )
    }

    /// `epoll_wait(2)`: the ready fds and their events, waiting at most `timeout` (None:
    /// no limit; an empty list after a timeout). EINTR is the caller's to retry.
    pub fn wait(
        &self,
        events: &mut [EpollEvent],
        timeout: Option<Duration>,
    ) -> SysResult<Vec<(RawFd, EpollFlags)>> {
        let capacity = events.len();
        let ms = timeout.map(crate::millis);
        let limit = ms.map_or(EpollTimeout::NONE, |ms| {
            EpollTimeout::try_from(ms).unwrap_or(EpollTimeout::MAX)
        });
        let started = start();
        let result = self.epoll.wait(events, limit).map(|n| {
            events[..n]
                .iter()
                .map(|e| (e.data() as RawFd, e.events()))
                .collect::<Vec<_>>()
        });
        traced(
            started,
            |_| match ms {
                Some(ms) => format!("epoll_wait({}, {capacity}, {ms})", self.raw()),
                None => format!("epoll_wait({}, {capacity})", self.raw()),
            },
            result,
            |ready| {
                let shown: Vec<String> = ready
                    .iter()
                    .map(|(fd, ev)| format!("{fd}:{}", flag_names(*ev)))
                    .collect();
                format!("{} [{}]", ready.len(), shown.join(", "))
            },
        )
    }
}

/// Room for events in one epoll_wait().
pub fn event_buffer(n: usize) -> Vec<EpollEvent> {
    vec![EpollEvent::empty(); n]
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn select_times_out_and_refuses_an_fd_it_cannot_hold() {
        let (r, _w) = nix::unistd::pipe().expect("pipe failed");
        let (readable, _) =
            select(&[r.as_fd()], &[], Some(Duration::from_millis(1))).expect("select failed");
        assert!(readable.is_empty(), "nothing was written");
        let high = nix::fcntl::fcntl(&r, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(FD_SETSIZE as i32));
        let Ok(high) = high else {
            return; // the open-file limit is at FD_SETSIZE or below: nothing to try
        };
        // SAFETY: fcntl just returned this fd, owned by no one else.
        let high = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(high) };
        let err = select(&[high.as_fd()], &[], None).unwrap_err();
        assert_eq!(err.errno, Errno::EINVAL);
        assert!(err.to_string().starts_with("select("), "{err}");
    }
}
