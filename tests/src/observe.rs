//! What a program under test is doing, read from /proc while it runs: the system call
//! each thread is blocked in and its arguments, whether it sleeps or runs, and what its
//! fds are. The kernel already knows; a report that says `your server is blocked in
//! write(5), the connection of a client that stopped reading` tells a beginner more than
//! any timeout.
//!
//! Files read: `/proc/PID/task/TID/{stat,syscall,wchan}`, `/proc/PID/fd/N`,
//! `/proc/net/{tcp,tcp6}`. Reading `syscall` needs the right to ptrace the process,
//! which the checker has over its own descendants (it is their subreaper and parent).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::procfs;

/// A system call a thread is in, by number and arguments (`/proc/PID/task/TID/syscall`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syscall {
    pub number: i64,
    pub args: [u64; 6],
}

impl Syscall {
    /// The call's name, for the calls a socket program blocks in.
    pub fn name(&self) -> Option<&'static str> {
        syscall_name(self.number)
    }

    /// The fd the call works on, for calls whose first argument is one.
    pub fn fd(&self) -> Option<i32> {
        let name = self.name()?;
        const ON_AN_FD: [&str; 16] = [
            "read",
            "write",
            "readv",
            "writev",
            "recvfrom",
            "sendto",
            "recvmsg",
            "sendmsg",
            "accept",
            "accept4",
            "connect",
            "epoll_wait",
            "epoll_pwait",
            "epoll_pwait2",
            "pread64",
            "pwrite64",
        ];
        ON_AN_FD.contains(&name).then_some(self.args[0] as i32)
    }
}

/// The system calls a socket program waits in, by number on this machine's architecture.
fn syscall_name(number: i64) -> Option<&'static str> {
    #[cfg(target_arch = "x86_64")]
    let table: &[(i64, &str)] = &[
        (0, "read"),
        (1, "write"),
        (2, "open"),
        (7, "poll"),
        (17, "pread64"),
        (18, "pwrite64"),
        (19, "readv"),
        (20, "writev"),
        (23, "select"),
        (34, "pause"),
        (35, "nanosleep"),
        (42, "connect"),
        (43, "accept"),
        (44, "sendto"),
        (45, "recvfrom"),
        (46, "sendmsg"),
        (47, "recvmsg"),
        (61, "wait4"),
        (130, "rt_sigsuspend"),
        (202, "futex"),
        (230, "clock_nanosleep"),
        (232, "epoll_wait"),
        (247, "waitid"),
        (257, "openat"),
        (270, "pselect6"),
        (271, "ppoll"),
        (281, "epoll_pwait"),
        (288, "accept4"),
        (441, "epoll_pwait2"),
    ];
    #[cfg(target_arch = "aarch64")]
    let table: &[(i64, &str)] = &[
        (22, "epoll_pwait"),
        (56, "openat"),
        (63, "read"),
        (64, "write"),
        (65, "readv"),
        (66, "writev"),
        (67, "pread64"),
        (68, "pwrite64"),
        (72, "pselect6"),
        (73, "ppoll"),
        (98, "futex"),
        (101, "nanosleep"),
        (115, "clock_nanosleep"),
        (133, "rt_sigsuspend"),
        (95, "waitid"),
        (202, "accept"),
        (203, "connect"),
        (206, "sendto"),
        (207, "recvfrom"),
        (211, "sendmsg"),
        (212, "recvmsg"),
        (242, "accept4"),
        (260, "wait4"),
        (441, "epoll_pwait2"),
    ];
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let table: &[(i64, &str)] = &[];
    table.iter().find(|(n, _)| *n == number).map(|(_, s)| *s)
}

/// One thread of a program, as /proc shows it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thread {
    pub tid: i32,
    /// `R` running or runnable, `S` sleeping, `D` in an uninterruptible wait, `Z`...
    pub state: char,
    /// The call it is blocked in; None while it runs in user space or when /proc does
    /// not say.
    pub syscall: Option<Syscall>,
}

/// The threads of `pid`, with what each is doing.
pub fn threads(pid: i32) -> Vec<Thread> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out: Vec<Thread> = dir
        .flatten()
        .filter_map(|e| {
            let tid: i32 = e.file_name().to_str()?.parse().ok()?;
            let stat = procfs::task_state(pid, tid)?;
            Some(Thread {
                tid,
                state: stat,
                syscall: read_syscall(pid, tid),
            })
        })
        .collect();
    out.sort_by_key(|t| t.tid);
    out
}

/// `/proc/PID/task/TID/syscall`: `nr arg1 ... arg6 sp pc` while blocked, `running`
/// while it runs, `-1 sp pc` outside any call.
fn read_syscall(pid: i32, tid: i32) -> Option<Syscall> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/syscall")).ok()?;
    let mut words = text.split_whitespace();
    let number: i64 = words.next()?.parse().ok()?;
    if number < 0 {
        return None;
    }
    let mut args = [0u64; 6];
    for arg in &mut args {
        *arg = u64::from_str_radix(words.next()?.trim_start_matches("0x"), 16).ok()?;
    }
    Some(Syscall { number, args })
}

/// What an fd of a process is, in a report's words: `the terminal`, `a socket
/// 127.0.0.1:9190 <-> 127.0.0.1:53422`, a path.
pub fn fd_target(pid: i32, fd: i32) -> Option<FdTarget> {
    let link = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()?;
    let link = link.to_string_lossy().into_owned();
    if let Some(inode) = link
        .strip_prefix("socket:[")
        .and_then(|s| s.strip_suffix(']'))
        .and_then(|s| s.parse::<u64>().ok())
    {
        let row = workbook::diag::tcp_by_inode(inode).or_else(|| {
            procfs::sockets(procfs::Proto::Tcp)
                .into_iter()
                .find(|r| r.inode == inode)
        });
        return Some(match row {
            Some(row) if row.state == procfs::TCP_LISTEN => FdTarget::Listening(row.local),
            Some(row) => FdTarget::Connection {
                local: row.local,
                remote: row.remote,
                unread: row.rx_queue,
                unsent: row.tx_queue,
            },
            None => FdTarget::Other(link),
        });
    }
    if link.starts_with("/dev/pts/") || link.starts_with("/dev/tty") {
        return Some(FdTarget::Terminal);
    }
    Some(FdTarget::Other(link))
}

/// What an fd is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FdTarget {
    Terminal,
    Listening(SocketAddr),
    Connection {
        local: SocketAddr,
        remote: SocketAddr,
        /// Bytes the program has not read yet.
        unread: u64,
        /// Bytes the program wrote that the peer has not acknowledged.
        unsent: u64,
    },
    Other(String),
}

/// What `pid` is doing now, in a sentence: the call it is blocked in and what its fd
/// is, or that it is running, or gone. A program with threads says it of each (its
/// first thread, then up to three others whose state differs, busiest first): in a
/// thread-per-client server the main thread waits in accept() while the one that is
/// stuck is another.
///
/// `name` names the checker's own connections (`client 3`), by their local address.
pub fn doing(pid: i32, name: &dyn Fn(SocketAddr) -> Option<String>) -> String {
    let threads = threads(pid);
    if threads.is_empty() {
        return format!("process {pid} is gone");
    }
    if threads.iter().all(|t| t.state == 'Z') {
        return format!("process {pid} has exited (a zombie its parent has not reaped)");
    }
    let first = threads.iter().find(|t| t.tid == pid).unwrap_or(&threads[0]);
    let main = thread_doing(pid, first, name);
    if threads.len() == 1 {
        return main;
    }
    // The others, those blocked on a connection or running first: where a stuck client
    // is served.
    let mut others: Vec<(u8, i32, String)> = threads
        .iter()
        .filter(|t| t.tid != first.tid && t.state != 'Z')
        .map(|t| {
            let what = thread_doing(pid, t, name);
            // A thread waiting on another (futex: a lock, a condition, a runtime's
            // idle worker) says nothing of the world; it is only counted.
            let rank = if t.state == 'R' {
                0
            } else if what.contains("connection") {
                1
            } else if what.starts_with("blocked in futex") {
                3
            } else {
                2
            };
            (rank, t.tid, what)
        })
        .filter(|(_, _, what)| *what != main)
        .collect();
    others.sort();
    let shown: Vec<&(u8, i32, String)> = others.iter().filter(|o| o.0 < 3).take(3).collect();
    let mut parts = vec![format!("{main} (its first thread, of {})", threads.len())];
    for (_, tid, what) in &shown {
        parts.push(format!("thread {tid} is {what}"));
    }
    if others.len() > shown.len() && !shown.is_empty() {
        parts.push(format!("and {} more threads", others.len() - shown.len()));
    }
    parts.join("; ")
}

/// What one thread of `pid` is doing, in words.
fn thread_doing(pid: i32, t: &Thread, name: &dyn Fn(SocketAddr) -> Option<String>) -> String {
    if t.state == 'R' {
        return "running (not blocked in any system call)".to_string();
    }
    let Some(call) = t.syscall else {
        return "running (not blocked in any system call)".to_string();
    };
    let call_name = call.name().unwrap_or("a system call");
    match call.fd() {
        Some(fd) => {
            let what = fd_target(pid, fd)
                .map(|target| describe_target(&target, name))
                .unwrap_or_else(|| "an fd that is gone".into());
            format!("blocked in {call_name}({fd}), fd {fd} being {what}")
        }
        None => format!("blocked in {call_name}()"),
    }
}

fn describe_target(target: &FdTarget, name: &dyn Fn(SocketAddr) -> Option<String>) -> String {
    match target {
        FdTarget::Terminal => "the terminal (waiting for typed input)".into(),
        FdTarget::Listening(addr) => format!("the listening socket on {addr}"),
        FdTarget::Connection {
            remote,
            unread,
            unsent,
            ..
        } => {
            let who = name(*remote).unwrap_or_else(|| format!("the connection to {remote}"));
            let mut parts = Vec::new();
            if *unsent > 0 {
                parts.push(format!("{unsent} bytes it wrote still unacknowledged"));
            }
            if *unread > 0 {
                parts.push(format!("{unread} bytes waiting for it to read"));
            }
            if parts.is_empty() {
                who
            } else {
                format!("{who}, with {}", parts.join(" and "))
            }
        }
        FdTarget::Other(path) => match path.as_str() {
            "anon_inode:[eventpoll]" => "its epoll instance".into(),
            "anon_inode:[signalfd]" => "its signalfd".into(),
            "anon_inode:[eventfd]" => "its eventfd".into(),
            p if p.starts_with("pipe:") => "a pipe".into(),
            p => p.to_string(),
        },
    }
}

/// The calls that wait for many fds at once.
pub const MULTIPLEXERS: [&str; 7] = [
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "select",
    "pselect6",
    "poll",
    "ppoll",
];

/// Whether a thread of `pid` is asleep in one of `calls`.
pub fn asleep_in(pid: i32, calls: &[&str]) -> bool {
    threads(pid).iter().any(|t| {
        t.state == 'S'
            && t.syscall
                .and_then(|c| c.name())
                .is_some_and(|n| calls.contains(&n))
    })
}

/// Whether every thread of `pid` is asleep in a system call (none running), seen twice
/// `gap` apart: the program waits for something outside it.
pub fn asleep(pid: i32, gap: Duration) -> bool {
    let sleeping = || {
        let t = threads(pid);
        !t.is_empty() && t.iter().all(|t| t.state == 'S' || t.state == 'D')
    };
    if !sleeping() {
        return false;
    }
    std::thread::sleep(gap);
    sleeping()
}

/// Waits, `deadline` at most, until `pid` is seen [`asleep`] or has ended (gone, or a
/// zombie): a program that has settled, waiting for something outside it. Whether it
/// fell asleep before the deadline.
pub fn wait_asleep(pid: i32, deadline: Duration) -> bool {
    let until = Instant::now() + deadline;
    loop {
        if asleep(pid, Duration::from_millis(20)) {
            return true;
        }
        if threads(pid).iter().all(|t| t.state == 'Z') || Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The calls that write to an fd.
const WRITES: [&str; 5] = ["write", "writev", "sendto", "sendmsg", "pwrite64"];

/// A thread of `pid` blocked writing to the connection whose other end is `remote`: its
/// tid, the call's name and the fd.
pub fn blocked_writing_to(pid: i32, remote: SocketAddr) -> Option<(i32, &'static str, i32)> {
    let inode = procfs::sockets_on(procfs::Proto::Tcp, remote.port())
        .into_iter()
        .find(|r| r.remote == remote)?
        .inode;
    threads(pid).into_iter().find_map(|t| {
        let call = t.syscall?;
        let name = call.name()?;
        if t.state == 'R' || !WRITES.contains(&name) {
            return None;
        }
        let fd = call.fd()?;
        (fd_inode(pid, fd) == Some(inode)).then_some((t.tid, name, fd))
    })
}

/// The socket inode behind fd `fd` of `pid` (the link `socket:[N]` in /proc/PID/fd).
pub fn fd_inode(pid: i32, fd: i32) -> Option<u64> {
    let link = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()?;
    link.to_str()?
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// How much of `window` the process's threads were runnable (state R), sampled every
/// few milliseconds: near 1.0 for a program spinning in a loop, near 0 for one waiting
/// in a system call. Unlike CPU time, it does not fall when a busy machine gives the
/// spinner less CPU: a spinner waiting for a CPU is still runnable.
pub fn runnable_fraction(pid: i32, window: Duration) -> Option<f64> {
    let until = Instant::now() + window;
    let (mut samples, mut runnable) = (0u32, 0u32);
    while Instant::now() < until {
        let states: Vec<char> = threads(pid).iter().map(|t| t.state).collect();
        if states.is_empty() {
            return None;
        }
        samples += 1;
        if states.contains(&'R') {
            runnable += 1;
        }
        // A sampling interval, not synchronisation.
        std::thread::sleep(Duration::from_millis(4));
    }
    (samples > 0).then(|| f64::from(runnable) / f64::from(samples))
}

/// Whether `call` waits without a time limit, judged from its arguments: an
/// `epoll_wait` with timeout -1, a `select` without a timeval, `accept`, `futex` with no
/// timeout. A read or write on a socket is not counted: SO_RCVTIMEO or SO_SNDTIMEO may
/// end it, and /proc cannot tell. Reads and writes on a pipe or the terminal have no
/// such limit.
fn waits_without_limit(pid: i32, call: &Syscall) -> bool {
    let int = |v: u64| v as u32 as i32;
    match call.name() {
        Some("epoll_wait" | "epoll_pwait") => int(call.args[3]) < 0,
        Some("epoll_pwait2") => call.args[3] == 0,
        Some("poll") => int(call.args[2]) < 0,
        Some("ppoll") => call.args[2] == 0,
        Some("select" | "pselect6") => call.args[4] == 0,
        Some("futex") => call.args[3] == 0,
        Some("accept" | "accept4" | "wait4" | "waitid" | "pause" | "rt_sigsuspend") => true,
        Some("read" | "write" | "readv" | "writev") => call
            .fd()
            .and_then(|fd| fd_target(pid, fd))
            .is_some_and(|t| match t {
                FdTarget::Terminal => true,
                FdTarget::Other(path) => path.starts_with("pipe:"),
                _ => false,
            }),
        _ => false,
    }
}

/// The receive timeout (SO_RCVTIMEO) of socket `fd` of process `pid`, read from a copy
/// of the fd that pidfd_getfd(2) makes in this process (Linux 5.6; the checker is the
/// program's ancestor, which may do it). None when it cannot be read.
fn receive_timeout(pid: i32, fd: i32) -> Option<Duration> {
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if pidfd < 0 {
        return None;
    }
    // SAFETY: pidfd_open returned a new fd that nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as i32) };
    // SAFETY: pidfd_getfd takes a pidfd, the target's fd number and flags, and returns
    // a new fd of ours or -1.
    let copy = unsafe {
        libc::syscall(
            libc::SYS_pidfd_getfd,
            std::os::fd::AsRawFd::as_raw_fd(&pidfd),
            fd,
            0,
        )
    };
    if copy < 0 {
        return None;
    }
    // SAFETY: pidfd_getfd returned a new fd that nothing else owns.
    let copy = unsafe { OwnedFd::from_raw_fd(copy as i32) };
    nix::sys::socket::getsockopt(&copy, nix::sys::socket::sockopt::ReceiveTimeout)
        .ok()
        .map(|tv| {
            Duration::from_secs(tv.tv_sec().max(0) as u64)
                + Duration::from_micros(tv.tv_usec().max(0) as u64)
        })
}

/// The calls that read from an fd.
const READS: [&str; 5] = ["read", "readv", "recvfrom", "recvmsg", "pread64"];

/// What the processes of the tree rooted at `root` that hold socket `row` are doing,
/// when all of them wait for something outside: every thread asleep in a read on that
/// very socket or in a call without a time limit. `Some(Some(call))` names the read on
/// the socket, `Some(None)` when none reads it; None when something still might happen:
/// the socket has bytes to read or in flight, a thread runs, or one waits with a time
/// limit (or might: a read or write on another socket, whose SO_RCVTIMEO /proc cannot
/// show), or no process of the tree holds the socket.
fn all_wait_on(root: i32, row: &procfs::SocketRow) -> Option<(i32, Option<String>)> {
    if row.rx_queue > 0 || row.tx_queue > 0 {
        return None;
    }
    let holders: Vec<i32> = procfs::subtree(root)
        .into_iter()
        .filter(|p| p.state != 'Z' && procfs::socket_inodes(p.pid).contains(&row.inode))
        .map(|p| p.pid)
        .collect();
    let mut reading = None;
    for &pid in &holders {
        for t in threads(pid) {
            if t.state == 'Z' {
                continue;
            }
            if t.state != 'S' {
                return None;
            }
            let call = t.syscall?;
            let on_it = call
                .fd()
                .is_some_and(|fd| fd_inode(pid, fd) == Some(row.inode));
            match call.name() {
                // A read with a receive timeout (SO_RCVTIMEO) ends by itself, and the
                // program may then answer or close: that is what a request deadline
                // looks like from outside.
                Some(name) if on_it && READS.contains(&name) => {
                    let fd = call.fd().unwrap_or(-1);
                    if receive_timeout(pid, fd).is_some_and(|t| !t.is_zero()) {
                        return None;
                    }
                    reading = Some(format!("{name}({fd})"));
                }
                _ if waits_without_limit(pid, &call) => {}
                _ => return None,
            }
        }
    }
    Some((*holders.first()?, reading))
}

/// Evidence that nothing more can come on the checker's connection from `ours` (its
/// local address) to a program of the tree rooted at `root`, read from /proc now, or
/// None when something still might ([`all_wait_on`]). When nothing might, the program
/// has read everything sent and will write nothing more until something outside it
/// happens: the checker, which is waiting, is that something. Call it twice, apart,
/// before concluding: the readings are a snapshot.
pub fn nothing_can_come(root: i32, ours: SocketAddr, theirs: SocketAddr) -> Option<String> {
    let row = procfs::connection(theirs, ours)?;
    let (holder, reading) = all_wait_on(root, &row)?;
    Some(match reading {
        Some(call) => format!(
            "nothing more can come: your program has read every byte sent and is blocked in {call} on this connection, waiting for more"
        ),
        None => format!(
            "nothing more can come: your program has read every byte sent, has nothing in flight on this connection, and waits without a time limit (it is {})",
            doing(holder, &|_| None)
        ),
    })
}

/// Evidence that a UDP program of the tree rooted at `root`, bound to `port`, will send
/// nothing more until a datagram comes: its socket holds none unread, and it sleeps in a
/// read on that very socket (it took what was sent, and waits for the next), every other
/// thread in a call without a time limit. As with [`nothing_can_come`], call it twice,
/// apart.
pub fn udp_nothing_can_come(root: i32, port: u16) -> Option<String> {
    let row = procfs::sockets_on(procfs::Proto::Udp, port)
        .into_iter()
        .find(|r| r.local.port() == port)?;
    let call = all_wait_on(root, &row)?.1?;
    Some(format!(
        "nothing more can come: your program has taken every datagram sent to it and is blocked in {call}, waiting for the next"
    ))
}

/// Whether the program's side of the checker's connection from `ours` to `theirs` is
/// non-blocking (O_NONBLOCK in /proc/PID/fdinfo/FD of the first fd of the tree rooted
/// at `root` that holds it); None when no such fd is found.
pub fn connection_is_nonblocking(root: i32, ours: SocketAddr, theirs: SocketAddr) -> Option<bool> {
    const O_NONBLOCK: u64 = 0o4000;
    let inode = procfs::connection(theirs, ours)?.inode;
    procfs::subtree(root).into_iter().find_map(|p| {
        let fds = std::fs::read_dir(format!("/proc/{}/fd", p.pid)).ok()?;
        fds.flatten().find_map(|e| {
            let fd: i32 = e.file_name().to_str()?.parse().ok()?;
            if fd_inode(p.pid, fd) != Some(inode) {
                return None;
            }
            let info = std::fs::read_to_string(format!("/proc/{}/fdinfo/{fd}", p.pid)).ok()?;
            let flags = info
                .lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 8).ok())?;
            Some(flags & O_NONBLOCK != 0)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    /// The receive timeout is read from a copy of another process's fd (here our own
    /// process's, which pidfd_getfd allows as well).
    #[test]
    fn receive_timeout_reads_so_rcvtimeo_through_a_copy_of_the_fd() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let me = std::process::id() as i32;
        assert_eq!(
            receive_timeout(me, stream.as_raw_fd()),
            Some(Duration::ZERO)
        );
        stream
            .set_read_timeout(Some(Duration::from_millis(2500)))
            .unwrap();
        assert_eq!(
            receive_timeout(me, stream.as_raw_fd()),
            Some(Duration::from_millis(2500))
        );
    }
}
