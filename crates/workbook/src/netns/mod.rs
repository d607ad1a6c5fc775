//! Private networks without root: a user namespace of our own (in which we are root,
//! and nowhere else) owning network namespaces of our own, so that a demo, a check or a
//! lab can have loopbacks, bridges and packet filters that nothing outside sees, and
//! that vanish with it. Nothing leaves the machine; nothing needs sudo.
//!
//! Two ways in:
//!
//! * [`enter_private`]: the calling process itself moves into a new user namespace and
//!   network namespace, with its loopback up (`unshare(CLONE_NEWUSER | CLONE_NEWNET)`,
//!   then `/proc/self/uid_map`). Only a single-threaded process may do that: the loss
//!   lab's child, freshly started.
//! * [`Lan`]: a small network of hosts for a process that stays where it is, and may
//!   have threads (the checker): a forked child makes the namespaces and hands them
//!   back as file descriptors (`/proc/self/ns/...`, passed over a socket), then exits.
//!   The namespaces live as long as those descriptors. The hosts are joined by a bridge,
//!   as machines by a switch: `10.14.0.1`, `10.14.0.2`, ... on `eth0`, broadcast
//!   `10.14.0.255`, a default route out of `eth0` (so multicast and `255.255.255.255`
//!   have a way out). Programs start in a host through [`Host::enter`] (`setns()`
//!   between fork and exec); sockets of our own are made in a host by [`Host::socket`].
//!
//! Why this works unprivileged: whoever makes a user namespace is root inside it, and
//! the owner of a user namespace holds every capability over the namespaces it owns,
//! from outside too (user_namespaces(7)). So the network of those namespaces can be
//! configured with rtnetlink ([`netlink`]) by the process that made them, and `nft`
//! run inside them is root there. Where the kernel forbids unprivileged user namespaces
//! (some distributions switch them off), [`NoUserNamespaces`] says so in one line, with
//! the sysctl that allows them.

mod netlink;

use std::io::IoSliceMut;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::Command;
use std::sync::Arc;

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg, socketpair,
};

/// The LAN's broadcast address.
pub const BROADCAST: Ipv4Addr = Ipv4Addr::new(10, 14, 0, 255);

/// The address of host `n` (from 1).
pub fn host_addr(n: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 14, 0, n as u8)
}

/// The kernel refused an unprivileged user namespace; the message says how to allow it.
#[derive(Debug)]
pub struct NoUserNamespaces(pub String);

impl std::fmt::Display for NoUserNamespaces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NoUserNamespaces {}

/// The one line for a refused `unshare(CLONE_NEWUSER)`, with the sysctl that allows it
/// (`wire::how_to_enable`: one text for every part of the workbook that needs this).
fn refused(errno: Errno) -> anyhow::Error {
    anyhow::Error::new(NoUserNamespaces(format!(
        "this system does not let an ordinary user make a user namespace (unshare(CLONE_NEWUSER): {errno}): {}",
        wire::how_to_enable()
    )))
}

/// Whether `error` is the kernel refusing user namespaces (a check is then skipped, not
/// failed).
pub fn is_refused(error: &anyhow::Error) -> bool {
    error.downcast_ref::<NoUserNamespaces>().is_some()
}

/// Moves this process into a user namespace and a network namespace of its own, as root
/// there, with its loopback up (`wire::enter_private` with `Ids::Root`): what `unshare
/// --user --map-root-user --net` and `ip link set lo up` do. Everything it starts from now
/// on is in them too (a program run as root inside keeps its capabilities there: `nft`
/// works). Only a single-threaded process may do this (unshare(2) refuses CLONE_NEWUSER
/// otherwise).
pub fn enter_private() -> anyhow::Result<()> {
    wire::enter_private(wire::Ids::Root).map_err(|r| {
        if r.switched_off {
            refused(r.errno)
        } else {
            anyhow::anyhow!("{r}")
        }
    })
}

/// Joins the user namespace `user` and then the network namespace `net` (setns(2)
/// twice): for a child between fork and exec. Async-signal-safe: two system calls,
/// nothing allocated. (The user namespace first: that is what gives the right to join
/// a network namespace it owns; the kernel lets only a single-threaded process join a
/// user namespace, which a child after fork is.)
pub fn join(user: RawFd, net: RawFd) -> std::io::Result<()> {
    // SAFETY: setns(2) on descriptors the caller keeps open; no memory is touched.
    if unsafe { libc::setns(user, libc::CLONE_NEWUSER) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::setns(net, libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

// ---------------------------------------------------------------- the forked helpers
//
// A forked child of a process that may have threads can safely make only
// async-signal-safe calls: another thread may have held a lock (malloc's) at the fork,
// and in the child nobody will ever release it. So the children below make system
// calls only, on memory prepared before the fork, and end with _exit(2).

/// What a helper child reports: a step that failed (0: none) and its errno.
const STEP_OK: u32 = 0;
const STEP_USERNS: u32 = 1;
const STEP_MAPS: u32 = 2;
const STEP_OPEN_NS: u32 = 3;
const STEP_NETNS: u32 = 4;
const STEP_SETNS: u32 = 5;
const STEP_SOCKET: u32 = 6;

/// The most descriptors one helper hands back.
const MAX_FDS: usize = 16;

/// A control-message buffer for [`MAX_FDS`] descriptors, aligned as `struct cmsghdr`.
#[repr(C, align(8))]
struct CmsgBuf([u8; 128]);

/// Sends `step`/`errno` and `fds` over `sock` (sendmsg(2) with SCM_RIGHTS), from a
/// forked child: no allocation.
fn send_report(sock: RawFd, step: u32, errno: i32, fds: &[RawFd]) {
    let mut data = [0u8; 8];
    data[..4].copy_from_slice(&step.to_ne_bytes());
    data[4..].copy_from_slice(&errno.to_ne_bytes());
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    let mut control = CmsgBuf([0; 128]);
    // SAFETY: msghdr is plain data; every pointer set below points at a local that
    // outlives the sendmsg() call, and the control buffer is large enough for
    // CMSG_SPACE(MAX_FDS * 4) (80 bytes) and aligned for cmsghdr.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        let fds = &fds[..fds.len().min(MAX_FDS)];
        if !fds.is_empty() {
            let bytes = std::mem::size_of_val(fds) as u32;
            msg.msg_control = control.0.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(bytes) as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(bytes) as _;
            std::ptr::copy_nonoverlapping(
                fds.as_ptr().cast::<u8>(),
                libc::CMSG_DATA(cmsg),
                bytes as usize,
            );
        }
        libc::sendmsg(sock, &msg, 0);
    }
}

/// Reports a failed step and ends the child.
fn child_fails(sock: RawFd, step: u32) -> ! {
    let errno = Errno::last_raw();
    send_report(sock, step, errno, &[]);
    // SAFETY: _exit(2) ends the child at once, running nothing of the parent's.
    unsafe { libc::_exit(1) }
}

/// Writes `text` to the file `path` in one write(2), from a forked child.
fn child_write(path: &std::ffi::CStr, text: &[u8]) -> bool {
    // SAFETY: a NUL-terminated path and a buffer of its length; the fd is closed here.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return false;
        }
        let written = libc::write(fd, text.as_ptr().cast(), text.len());
        libc::close(fd);
        written == text.len() as isize
    }
}

/// Opens `path` read-only, from a forked child.
fn child_open(path: &std::ffi::CStr) -> RawFd {
    // SAFETY: a NUL-terminated path.
    unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) }
}

/// Forks a helper that runs `child` (which reports over the socket it is given and
/// never returns: it ends with _exit), then receives its report and reaps it.
fn with_helper(what: &str, child: impl FnOnce(RawFd)) -> anyhow::Result<Vec<OwnedFd>> {
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .context("socketpair")?;
    let theirs_raw = theirs.as_raw_fd();
    // SAFETY: the child runs `child`, which makes async-signal-safe system calls only,
    // on memory prepared before the fork, and ends with _exit(2).
    let pid = match unsafe { nix::unistd::fork() }.context("fork")? {
        nix::unistd::ForkResult::Child => {
            child(theirs_raw);
            // SAFETY: _exit(2) ends the child at once (`child` normally ends it itself).
            unsafe { libc::_exit(0) }
        }
        nix::unistd::ForkResult::Parent { child } => child,
    };
    drop(theirs);
    let mut data = [0u8; 8];
    let mut fds = Vec::new();
    let received = {
        let mut iov = [IoSliceMut::new(&mut data)];
        let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
        let msg = recvmsg::<()>(
            ours.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        );
        match msg {
            Ok(msg) => {
                for cmsg in msg.cmsgs().into_iter().flatten() {
                    if let ControlMessageOwned::ScmRights(raw) = cmsg {
                        // SAFETY: descriptors just received, owned by nobody else.
                        fds.extend(
                            raw.into_iter()
                                .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                        );
                    }
                }
                msg.bytes
            }
            Err(e) => {
                let _ = nix::sys::wait::waitpid(pid, None);
                return Err(e).with_context(|| format!("{what}: receive the helper's report"));
            }
        }
    };
    let _ = nix::sys::wait::waitpid(pid, None);
    if received != 8 {
        bail!("{what}: the helper process ended without a report");
    }
    let step = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]);
    let errno = Errno::from_raw(i32::from_ne_bytes([data[4], data[5], data[6], data[7]]));
    match step {
        STEP_OK => Ok(fds),
        STEP_USERNS
            if matches!(
                errno,
                Errno::EPERM | Errno::EACCES | Errno::ENOSPC | Errno::EUSERS
            ) =>
        {
            Err(refused(errno))
        }
        STEP_USERNS => Err(errno).context("unshare(CLONE_NEWUSER | CLONE_NEWNET)"),
        STEP_MAPS => Err(errno).context("write /proc/self/uid_map and gid_map"),
        STEP_OPEN_NS => Err(errno).context("open /proc/self/ns"),
        STEP_NETNS => Err(errno).context("unshare(CLONE_NEWNET)"),
        STEP_SETNS => Err(errno).context("setns() into the private network"),
        STEP_SOCKET => Err(errno).context("socket() in the private network"),
        _ => bail!("{what}: the helper reported step {step}"),
    }
}

/// The maps that make us root inside a new user namespace: our uid and gid outside are
/// 0 inside (`0 UID 1`), nothing else is mapped. Made before the helper forks: the child
/// only writes them (allocation is not async-signal-safe).
fn maps() -> (String, String) {
    (
        format!("0 {} 1\n", nix::unistd::getuid()),
        format!("0 {} 1\n", nix::unistd::getgid()),
    )
}

/// A new user namespace and `nets` network namespaces owned by it, made by a helper
/// child: (the user namespace, the network namespaces).
fn make_namespaces(nets: usize) -> anyhow::Result<(OwnedFd, Vec<OwnedFd>)> {
    if nets == 0 || nets + 1 > MAX_FDS {
        bail!(
            "a private network of 1 to {} namespaces, not {nets}",
            MAX_FDS - 1
        );
    }
    let (uid_map, gid_map) = maps();
    let mut fds = with_helper("make the private network", move |sock| {
        // SAFETY: unshare(2) with constant flags.
        if unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) } != 0 {
            child_fails(sock, STEP_USERNS);
        }
        if !child_write(c"/proc/self/setgroups", b"deny")
            || !child_write(c"/proc/self/uid_map", uid_map.as_bytes())
            || !child_write(c"/proc/self/gid_map", gid_map.as_bytes())
        {
            child_fails(sock, STEP_MAPS);
        }
        let mut fds = [-1 as RawFd; MAX_FDS];
        fds[0] = child_open(c"/proc/self/ns/user");
        fds[1] = child_open(c"/proc/self/ns/net");
        for slot in fds.iter_mut().skip(2).take(nets - 1) {
            // SAFETY: unshare(2) with a constant flag.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                child_fails(sock, STEP_NETNS);
            }
            *slot = child_open(c"/proc/self/ns/net");
        }
        if fds[..nets + 1].iter().any(|fd| *fd < 0) {
            child_fails(sock, STEP_OPEN_NS);
        }
        send_report(sock, STEP_OK, 0, &fds[..nets + 1]);
        // SAFETY: _exit(2) ends the child at once.
        unsafe { libc::_exit(0) }
    })?;
    if fds.len() != nets + 1 {
        bail!(
            "the private network's helper handed back {} namespaces, not {}",
            fds.len(),
            nets + 1
        );
    }
    let user = fds.remove(0);
    Ok((user, fds))
}

/// A socket made inside the network namespace `net` (owned by the user namespace
/// `user`), by a helper child: `socket(domain, ty, protocol)` there. The socket belongs
/// to that namespace for good, whichever process uses it.
fn socket_in(
    user: &OwnedFd,
    net: &OwnedFd,
    domain: libc::c_int,
    ty: libc::c_int,
    protocol: libc::c_int,
) -> anyhow::Result<OwnedFd> {
    let (user, net) = (user.as_raw_fd(), net.as_raw_fd());
    let mut fds = with_helper("make a socket in the private network", move |sock| {
        if join(user, net).is_err() {
            child_fails(sock, STEP_SETNS);
        }
        // SAFETY: socket(2) with the caller's constants.
        let fd = unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, protocol) };
        if fd < 0 {
            child_fails(sock, STEP_SOCKET);
        }
        send_report(sock, STEP_OK, 0, &[fd]);
        // SAFETY: _exit(2) ends the child at once.
        unsafe { libc::_exit(0) }
    })?;
    fds.pop().context("the helper handed back no socket")
}

/// A host of a [`Lan`]: a network namespace with `lo` and `eth0` up, an address, and a
/// default route out of `eth0`.
#[derive(Debug)]
pub struct Host {
    pub name: String,
    pub addr: Ipv4Addr,
    user: Arc<OwnedFd>,
    net: OwnedFd,
}

impl Host {
    /// A new socket of this host's (`SOCK_DGRAM`, `SOCK_STREAM`), for the program's own
    /// use: it sends and receives on this host's network, whichever thread uses it.
    pub fn socket(&self, ty: SockType) -> anyhow::Result<OwnedFd> {
        socket_in(&self.user, &self.net, libc::AF_INET, ty as libc::c_int, 0)
    }

    /// The descriptors a child joins to run on this host: (user namespace, network
    /// namespace), for [`join`]. They stay open as long as the host.
    pub fn fds(&self) -> (RawFd, RawFd) {
        (self.user.as_raw_fd(), self.net.as_raw_fd())
    }

    /// Makes `command` start on this host: between fork and exec, the child joins the
    /// host's namespaces.
    pub fn enter(&self, command: &mut Command) {
        use std::os::unix::process::CommandExt;
        let (user, net) = self.fds();
        // SAFETY: `join` makes two system calls and allocates nothing; the descriptors
        // stay open while the host lives, which is past the spawn.
        unsafe {
            command.pre_exec(move || join(user, net));
        }
    }
}

/// A small network of hosts joined by a bridge, private to this process (see the
/// module's documentation). Dropping it closes the descriptors; the namespaces go once
/// no process is in them any more.
#[derive(Debug)]
pub struct Lan {
    pub hosts: Vec<Host>,
    /// The switch: a network namespace with the bridge `br0`, a port per host.
    #[allow(dead_code)]
    switch: OwnedFd,
}

impl Lan {
    /// `n` hosts, `host1` .. `hostN` at `10.14.0.1` .. `10.14.0.N`, on one bridge.
    pub fn new(n: usize) -> anyhow::Result<Lan> {
        let (user, mut nets) = make_namespaces(n + 1)?;
        let user = Arc::new(user);
        let switch = nets.remove(0);
        let route = |net: &OwnedFd| {
            socket_in(
                &user,
                net,
                libc::AF_NETLINK,
                libc::SOCK_RAW,
                libc::NETLINK_ROUTE,
            )
        };
        let sw = route(&switch)?;
        netlink::add_bridge(&sw, "br0")?;
        let bridge = netlink::index_of(&sw, "br0")?;
        let mut hosts = Vec::with_capacity(n);
        for (i, net) in nets.into_iter().enumerate() {
            let name = format!("host{}", i + 1);
            let addr = host_addr(i + 1);
            netlink::add_veth(&sw, &format!("port{}", i + 1), bridge, "eth0", &net)?;
            let here = route(&net)?;
            netlink::link_up(&here, "lo")?;
            netlink::link_up(&here, "eth0")?;
            let eth0 = netlink::index_of(&here, "eth0")?;
            netlink::add_address(&here, eth0, addr, 24, BROADCAST)?;
            netlink::add_default_route(&here, eth0)?;
            hosts.push(Host {
                name,
                addr,
                user: user.clone(),
                net,
            });
        }
        Ok(Lan { hosts, switch })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two hosts of a private LAN: a datagram from one reaches the other by its address,
    /// and the broadcast address reaches it too (with SO_BROADCAST).
    #[test]
    fn two_hosts_talk_over_the_bridge() {
        let lan = match Lan::new(2) {
            Ok(lan) => lan,
            Err(e) if is_refused(&e) => {
                println!("SKIP: {e}");
                return;
            }
            Err(e) => panic!("{e:#}"),
        };
        let a = std::net::UdpSocket::from(lan.hosts[0].socket(SockType::Datagram).expect("socket"));
        let b = lan.hosts[1].socket(SockType::Datagram).expect("socket");
        syscalls::bind(&b, "0.0.0.0:9190".parse().unwrap()).expect("bind");
        let b = std::net::UdpSocket::from(b);
        b.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        a.send_to(b"hello", (lan.hosts[1].addr, 9190))
            .expect("sendto");
        let mut buf = [0u8; 16];
        let (n, from) = b.recv_from(&mut buf).expect("recvfrom");
        assert_eq!(
            (&buf[..n], from.ip()),
            (&b"hello"[..], std::net::IpAddr::V4(lan.hosts[0].addr))
        );
        let refused = a.send_to(b"all", (BROADCAST, 9190)).unwrap_err();
        assert_eq!(
            refused.raw_os_error(),
            Some(libc::EACCES),
            "broadcast without SO_BROADCAST"
        );
        a.set_broadcast(true).expect("SO_BROADCAST");
        a.send_to(b"all", (BROADCAST, 9190))
            .expect("sendto broadcast");
        let (n, _) = b.recv_from(&mut buf).expect("recvfrom");
        assert_eq!(&buf[..n], b"all");
    }
}
