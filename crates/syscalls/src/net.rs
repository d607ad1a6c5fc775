//! The socket calls: socket(2), bind(2), listen(2), accept(2), connect(2), shutdown(2),
//! send(2) and recv(2) with flags (MSG_OOB, MSG_PEEK, MSG_DONTWAIT), sendto(2),
//! recvfrom(2) (plain and with MSG_TRUNC), getsockname(2), setsockopt(2), getsockopt(2).
//!
//! Addresses go in and come out as `std::net::SocketAddr`, so chapters read like the
//! book (`127.0.0.1:9190`) while the calls themselves stay nix's.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

use nix::sys::socket::{self as sock, SockaddrStorage};
pub use nix::sys::socket::{AddressFamily, SockType};

use crate::error::SysResult;
use crate::trace::{escape_bytes, start, traced, zero};

/// How many bytes of a datagram a narrated sendto/recvfrom shows.
const SHOWN: usize = 32;

fn family_name(family: AddressFamily) -> &'static str {
    match family {
        AddressFamily::Inet => "AF_INET",
        AddressFamily::Inet6 => "AF_INET6",
        AddressFamily::Unix => "AF_UNIX",
        _ => "AF_?",
    }
}

fn type_name(ty: SockType) -> &'static str {
    match ty {
        SockType::Stream => "SOCK_STREAM",
        SockType::Datagram => "SOCK_DGRAM",
        SockType::Raw => "SOCK_RAW",
        _ => "SOCK_?",
    }
}

/// The nix form of an address, for the calls that take one.
fn to_nix(addr: &SocketAddr) -> SockaddrStorage {
    match addr {
        SocketAddr::V4(v4) => SockaddrStorage::from(*v4),
        SocketAddr::V6(v6) => SockaddrStorage::from(*v6),
    }
}

/// The std form of an address the kernel gave back (IPv4 or IPv6 only).
fn from_nix(addr: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = addr.as_sockaddr_in() {
        Some(SocketAddr::V4(SocketAddrV4::from(*v4)))
    } else {
        addr.as_sockaddr_in6()
            .map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
    }
}

fn family_of(addr: &SocketAddr) -> AddressFamily {
    match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    }
}

/// `socket(2)`: a new, unbound socket. The kernel gives it the lowest free fd number.
pub fn socket(family: AddressFamily, ty: SockType) -> SysResult<OwnedFd> {
    traced(
        start(),
        |_| format!("socket({}, {}, 0)", family_name(family), type_name(ty)),
        sock::socket(family, ty, sock::SockFlag::empty(), None),
        |fd| fd.as_raw_fd().to_string(),
    )
}

/// A TCP socket (`SOCK_STREAM`) of the family that `addr` needs.
pub fn tcp_socket(addr: &SocketAddr) -> SysResult<OwnedFd> {
    socket(family_of(addr), SockType::Stream)
}

/// A UDP socket (`SOCK_DGRAM`) of the family that `addr` needs.
pub fn udp_socket(addr: &SocketAddr) -> SysResult<OwnedFd> {
    socket(family_of(addr), SockType::Datagram)
}

/// `bind(2)`: gives the socket its local address. Port 0 asks the kernel for a free
/// port; [`getsockname`] tells which one it chose.
pub fn bind(fd: impl AsFd, addr: SocketAddr) -> SysResult<()> {
    let raw = fd.as_fd().as_raw_fd();
    traced(
        start(),
        |_| format!("bind({raw}, {addr})"),
        sock::bind(raw, &to_nix(&addr)),
        zero,
    )
}

/// `listen(2)`: marks the socket as one that accepts connections. From here on the
/// kernel completes three-way handshakes by itself and queues the connections, at most
/// about `backlog` of them, until accept() takes them (ch09 shows it).
pub fn listen(fd: impl AsFd, backlog: i32) -> SysResult<()> {
    let fd = fd.as_fd();
    let raw = fd.as_raw_fd();
    traced(
        start(),
        |_| format!("listen({raw}, {backlog})"),
        sock::Backlog::new(backlog).and_then(|b| sock::listen(&fd, b)),
        zero,
    )
}

/// `accept(2)`: takes the oldest completed connection off the listening socket's
/// queue, waiting for one if there is none. Returns a new fd for that one client and
/// the client's address, which the same call fills in (no getpeername(2) after it:
/// the bench counted that extra system call per connection).
pub fn accept(fd: impl AsFd) -> SysResult<(OwnedFd, SocketAddr)> {
    use nix::sys::socket::SockaddrLike;
    let raw = fd.as_fd().as_raw_fd();
    // SAFETY: an all-zero sockaddr_storage is a valid (AF_UNSPEC) value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let started = start();
    // libc, not nix: nix's accept() returns only the fd, and the peer's address would
    // cost a getpeername(2) more per connection.
    // SAFETY: storage and len are valid for writes and len holds storage's size, as
    // accept(2) requires; the fd it returns is new and owned by no one else.
    let result = nix::errno::Errno::result(unsafe {
        libc::accept(
            raw,
            (&raw mut storage).cast::<libc::sockaddr>(),
            &raw mut len,
        )
    })
    .map(|client| {
        // SAFETY: accept(2) just returned this fd; nothing else owns it.
        let client = unsafe { OwnedFd::from_raw_fd(client) };
        // SAFETY: accept(2) wrote an address of `len` bytes into storage.
        let peer = unsafe {
            SockaddrStorage::from_raw((&raw const storage).cast::<libc::sockaddr>(), Some(len))
        }
        .and_then(|a| from_nix(&a));
        // Not an IP address (a Unix socket): show the unspecified address rather than
        // fail the accept that did succeed.
        (
            client,
            peer.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
        )
    });
    traced(
        started,
        |_| format!("accept({raw})"),
        result,
        |(client, peer)| format!("{} ({peer})", client.as_raw_fd()),
    )
}

/// `connect(2)`: on TCP, the three-way handshake with `addr`; on UDP, only fixes the
/// peer (ch06).
pub fn connect(fd: impl AsFd, addr: SocketAddr) -> SysResult<()> {
    let raw = fd.as_fd().as_raw_fd();
    traced(
        start(),
        |_| format!("connect({raw}, {addr})"),
        sock::connect(raw, &to_nix(&addr)),
        zero,
    )
}

/// Which direction [`shutdown`] closes.
pub use nix::sys::socket::Shutdown;

/// `shutdown(2)`: closes one direction of a connection. `Shutdown::Write` sends FIN
/// (the peer reads end of stream) while we can still read: half-close (ch07).
pub fn shutdown(fd: impl AsFd, how: Shutdown) -> SysResult<()> {
    let raw = fd.as_fd().as_raw_fd();
    let name = match how {
        Shutdown::Read => "SHUT_RD",
        Shutdown::Write => "SHUT_WR",
        Shutdown::Both => "SHUT_RDWR",
    };
    traced(
        start(),
        |_| format!("shutdown({raw}, {name})"),
        sock::shutdown(raw, how),
        zero,
    )
}

/// `getsockname(2)`: the local address the socket is bound to, e.g. the port that
/// bind() to port 0 was given.
pub fn getsockname(fd: impl AsFd) -> SysResult<SocketAddr> {
    let raw = fd.as_fd().as_raw_fd();
    traced(
        start(),
        |_| format!("getsockname({raw})"),
        sock::getsockname::<SockaddrStorage>(raw)
            .and_then(|a| from_nix(&a).ok_or(nix::errno::Errno::EAFNOSUPPORT)),
        |a| a.to_string(),
    )
}

/// `sendto(2)`: sends one datagram to `addr`. UDP keeps its boundary: the receiver's
/// recvfrom() gets exactly this datagram (ch02, ch06).
pub fn sendto(fd: impl AsFd, buf: &[u8], addr: SocketAddr) -> SysResult<usize> {
    let raw = fd.as_fd().as_raw_fd();
    traced(
        start(),
        |_| {
            format!(
                "sendto({raw}, {}, {}, {addr})",
                escape_bytes(buf, SHOWN),
                buf.len()
            )
        },
        sock::sendto(raw, buf, &to_nix(&addr), sock::MsgFlags::empty()),
        |n| n.to_string(),
    )
}

/// The flags [`send`] and [`recv`] take.
pub use nix::sys::socket::MsgFlags;

/// Flags as strace shows them: `MSG_OOB`, `MSG_PEEK|MSG_DONTWAIT`, `0`.
fn msg_flag_names(flags: MsgFlags) -> String {
    let names: Vec<&str> = [
        (MsgFlags::MSG_OOB, "MSG_OOB"),
        (MsgFlags::MSG_PEEK, "MSG_PEEK"),
        (MsgFlags::MSG_DONTWAIT, "MSG_DONTWAIT"),
        (MsgFlags::MSG_WAITALL, "MSG_WAITALL"),
    ]
    .into_iter()
    .filter(|(flag, _)| flags.contains(*flag))
    .map(|(_, name)| name)
    .collect();
    if names.is_empty() {
        "0".into()
    } else {
        names.join("|")
    }
}

/// `send(2)`: write() with flags, on a connected socket. With `MSG_OOB`, TCP marks the
/// *last* byte of `buf` as urgent (out-of-band) data: one byte, whatever the length of
/// `buf`; the bytes before it go in band, as with write() (ch13).
pub fn send(fd: impl AsFd, buf: &[u8], flags: MsgFlags) -> SysResult<usize> {
    let raw = fd.as_fd().as_raw_fd();
    traced(
        start(),
        |_| {
            format!(
                "send({raw}, {}, {}, {})",
                escape_bytes(buf, SHOWN),
                buf.len(),
                msg_flag_names(flags)
            )
        },
        sock::send(raw, buf, flags),
        |n| n.to_string(),
    )
}

/// `recv(2)`: read() with flags (ch13). `MSG_PEEK` returns the bytes waiting without
/// taking them: the next recv() returns them again. `MSG_DONTWAIT` makes this one call
/// non-blocking: EAGAIN instead of waiting when nothing is there. `MSG_OOB` reads the
/// urgent byte, out of line (EINVAL when there is none, or it was read already).
pub fn recv(fd: impl AsFd, buf: &mut [u8], flags: MsgFlags) -> SysResult<usize> {
    let raw = fd.as_fd().as_raw_fd();
    let started = start();
    let result = sock::recv(raw, buf, flags);
    traced(
        started,
        |n| match n {
            Some(n) => format!(
                "recv({raw}, {}, {}, {})",
                escape_bytes(&buf[..*n], SHOWN),
                buf.len(),
                msg_flag_names(flags)
            ),
            None => format!("recv({raw}, {}, {})", buf.len(), msg_flag_names(flags)),
        },
        result,
        |n| n.to_string(),
    )
}

/// The largest UDP payload a datagram to or from `addr` can carry: 65,535 bytes of IP
/// packet less the 20 of an IPv4 header and the 8 of UDP's (65,507), or, over IPv6, whose
/// 65,535-byte payload length does not count its own 40-byte header, less UDP's 8 only
/// (65,527). (IPv6 jumbograms, larger, need a hop-by-hop option no loopback sends.)
pub fn max_udp_payload(addr: &SocketAddr) -> usize {
    match addr {
        SocketAddr::V4(_) => 65_535 - 20 - 8,
        SocketAddr::V6(_) => 65_535 - 8,
    }
}

/// One datagram [`recvfrom_trunc`] received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram {
    /// How many bytes are in the buffer.
    pub len: usize,
    /// How long the datagram was: more than `len` when the buffer was too small, and the
    /// rest of it is lost.
    pub sent: usize,
    /// Who sent it.
    pub from: SocketAddr,
}

impl Datagram {
    /// True when the datagram did not fit the buffer and was cut.
    pub fn is_cut(&self) -> bool {
        self.sent > self.len
    }
}

/// `recvfrom(2)`: receives one datagram and its sender's address. A datagram larger
/// than `buf` is cut and the rest is lost, silently: give a buffer of
/// [`max_udp_payload`], or ask [`recvfrom_trunc`], which tells.
pub fn recvfrom(fd: impl AsFd, buf: &mut [u8]) -> SysResult<(usize, SocketAddr)> {
    recvfrom_flags(fd.as_fd(), buf, 0).map(|d| (d.len, d.from))
}

/// `recvfrom(2)` with `MSG_TRUNC`: as [`recvfrom`], and the call returns the datagram's
/// own length even when the buffer held less, so a cut is seen ([`Datagram::is_cut`]).
pub fn recvfrom_trunc(fd: impl AsFd, buf: &mut [u8]) -> SysResult<Datagram> {
    recvfrom_flags(fd.as_fd(), buf, libc::MSG_TRUNC)
}

/// Both recvfrom()s. libc, not nix: nix's recvfrom() takes no flags.
fn recvfrom_flags(fd: BorrowedFd<'_>, buf: &mut [u8], flags: libc::c_int) -> SysResult<Datagram> {
    use nix::sys::socket::SockaddrLike;
    let raw = fd.as_raw_fd();
    // SAFETY: an all-zero sockaddr_storage is a valid (AF_UNSPEC) value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let started = start();
    // SAFETY: buf is valid for writes of buf.len() bytes, storage and len for the
    // address, len holding storage's size, as recvfrom(2) requires.
    let result = nix::errno::Errno::result(unsafe {
        libc::recvfrom(
            raw,
            buf.as_mut_ptr().cast(),
            buf.len(),
            flags,
            (&raw mut storage).cast::<libc::sockaddr>(),
            &raw mut len,
        )
    })
    .map(|sent| {
        // SAFETY: recvfrom(2) wrote an address of `len` bytes into storage.
        let from = unsafe {
            SockaddrStorage::from_raw((&raw const storage).cast::<libc::sockaddr>(), Some(len))
        }
        .and_then(|a| from_nix(&a))
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        let sent = sent as usize;
        Datagram {
            len: sent.min(buf.len()),
            sent,
            from,
        }
    });
    let shown_flags = if flags == libc::MSG_TRUNC {
        ", MSG_TRUNC"
    } else {
        ""
    };
    traced(
        started,
        |got| match got {
            Some(d) => format!(
                "recvfrom({raw}, {}, {}{shown_flags})",
                escape_bytes(&buf[..d.len], SHOWN),
                buf.len()
            ),
            None => format!("recvfrom({raw}, {}{shown_flags})", buf.len()),
        },
        result,
        |d| format!("{} ({})", d.sent, d.from),
    )
}

// --------------------------------------------------------------- socket options

/// `setsockopt(2)`, once for every option below: `shown` is the level, the option and
/// the value as strace prints them (`SOL_SOCKET, SO_REUSEADDR, 1`).
fn setsockopt<O: sock::SetSockOpt>(
    fd: BorrowedFd<'_>,
    opt: O,
    value: &O::Val,
    shown: String,
) -> SysResult<()> {
    let raw = fd.as_raw_fd();
    traced(
        start(),
        |_| format!("setsockopt({raw}, {shown})"),
        sock::setsockopt(&fd, opt, value),
        zero,
    )
}

/// The socket options the chapters set, one line each: its name, its value's type,
/// and how the call shows it. Each becomes a function `name(fd, value)`.
macro_rules! socket_options {
    ($($(#[$doc:meta])* $name:ident($value:ident: $ty:ty) => $opt:expr, $val:expr, $shown:expr;)*) => {$(
        $(#[$doc])*
        pub fn $name(fd: impl AsFd, $value: $ty) -> SysResult<()> {
            setsockopt(fd.as_fd(), $opt, &$val, $shown)
        }
    )*};
}

socket_options! {
    /// `SO_REUSEADDR`: lets bind() take a port whose last connection is still in
    /// TIME_WAIT, so a restarted server does not fail with EADDRINUSE (ch09).
    set_reuseaddr(on: bool) => sock::sockopt::ReuseAddr, on, format!("SOL_SOCKET, SO_REUSEADDR, {}", on as i32);
    /// `SO_RCVTIMEO`: a blocking read() or accept() on this socket waits at most
    /// `timeout`, then fails with EAGAIN. A server uses it so that a client that sends
    /// half a request and stalls cannot hold it forever. Rounded up to the microsecond:
    /// a short timeout never becomes 0, which SO_RCVTIMEO takes for "no timeout".
    set_recv_timeout(timeout: Duration) => sock::sockopt::ReceiveTimeout, crate::timeval(timeout), format!("SOL_SOCKET, SO_RCVTIMEO, {:.3}s", timeout.as_secs_f64());
    /// `SO_LINGER`: what close() does with data not yet sent. `Some(0)` makes close()
    /// discard it and send RST instead of FIN: the peer reads ECONNRESET, not end of
    /// stream, which is how a server says "what you got is not all there was" (ch07).
    set_linger(linger: Option<Duration>) => sock::sockopt::Linger, linger_of(linger), format!("SOL_SOCKET, SO_LINGER, {{l_onoff={}, l_linger={}}}", linger.is_some() as i32, linger.map_or(0, |d| d.as_secs()));
    /// `SO_SNDTIMEO`: a blocking write() on this socket waits at most `timeout` for
    /// room in the send buffer, then fails with EAGAIN (or returns what it wrote so
    /// far). A thread-per-client server uses it so that a client that never reads
    /// cannot hold the thread that writes to it forever (ch18's chat room). Rounded up,
    /// as SO_RCVTIMEO.
    set_send_timeout(timeout: Duration) => sock::sockopt::SendTimeout, crate::timeval(timeout), format!("SOL_SOCKET, SO_SNDTIMEO, {:.3}s", timeout.as_secs_f64());
    /// `SO_RCVBUF`: asks for a receive buffer of `size` bytes. Linux doubles what it is
    /// given (the other half pays for its own bookkeeping), enforces a floor and caps it at
    /// `net.core.rmem_max`; [`get_rcvbuf`] tells what it really set (ch09).
    set_rcvbuf(size: usize) => sock::sockopt::RcvBuf, size, format!("SOL_SOCKET, SO_RCVBUF, {size}");
    /// `SO_SNDBUF`: asks for a send buffer of `size` bytes; doubled, floored and capped
    /// (`net.core.wmem_max`) as SO_RCVBUF.
    set_sndbuf(size: usize) => sock::sockopt::SndBuf, size, format!("SOL_SOCKET, SO_SNDBUF, {size}");
    /// `TCP_NODELAY`: turns Nagle's algorithm off, so that a small write() is sent at once
    /// even while earlier data waits for its acknowledgement (ch09).
    set_tcp_nodelay(on: bool) => sock::sockopt::TcpNoDelay, on, format!("IPPROTO_TCP, TCP_NODELAY, {}", on as i32);
    /// `SO_BROADCAST`: allows sendto() to a broadcast address; without it the kernel
    /// refuses such a datagram with EACCES (ch14).
    set_broadcast(on: bool) => sock::sockopt::Broadcast, on, format!("SOL_SOCKET, SO_BROADCAST, {}", on as i32);
    /// `IP_MULTICAST_TTL`: how many routers a multicast datagram from this socket may
    /// cross. The default, 1, keeps it on the sender's own network (ch14).
    set_multicast_ttl(ttl: u8) => sock::sockopt::IpMulticastTtl, ttl, format!("IPPROTO_IP, IP_MULTICAST_TTL, {ttl}");
}

/// `IP_ADD_MEMBERSHIP`: joins the multicast group `group` on the interface with address
/// `interface` (`0.0.0.0`: the one the routing table picks for the group). From then on
/// the host accepts the group's datagrams, and this socket receives those sent to its
/// port (ch14).
pub fn add_membership(fd: impl AsFd, group: Ipv4Addr, interface: Ipv4Addr) -> SysResult<()> {
    setsockopt(
        fd.as_fd(),
        sock::sockopt::IpAddMembership,
        &sock::IpMembershipRequest::new(group, Some(interface)),
        format!(
            "IPPROTO_IP, IP_ADD_MEMBERSHIP, {{imr_multiaddr={group}, imr_interface={interface}}}"
        ),
    )
}

/// `getsockopt(2)`, once for every option below: `shown` is the level and the option
/// (`SOL_SOCKET, SO_RCVBUF`), `value` how the result shows.
fn getsockopt<O: sock::GetSockOpt>(
    fd: BorrowedFd<'_>,
    opt: O,
    shown: &str,
    value: impl Fn(&O::Val) -> String,
) -> SysResult<O::Val> {
    let raw = fd.as_raw_fd();
    traced(
        start(),
        |got| match got {
            Some(v) => format!("getsockopt({raw}, {shown}, [{}])", value(v)),
            None => format!("getsockopt({raw}, {shown})"),
        },
        sock::getsockopt(&fd, opt),
        zero,
    )
}

/// `getsockopt(SO_TYPE)`: the socket's type, as socket() was given it (ch09).
pub fn get_sock_type(fd: impl AsFd) -> SysResult<SockType> {
    getsockopt(
        fd.as_fd(),
        sock::sockopt::SockType,
        "SOL_SOCKET, SO_TYPE",
        |t| type_name(*t).to_string(),
    )
}

/// `getsockopt(SO_RCVBUF)`: the receive buffer's size as the kernel keeps it (the doubled
/// value, see [`set_rcvbuf`]).
pub fn get_rcvbuf(fd: impl AsFd) -> SysResult<usize> {
    getsockopt(
        fd.as_fd(),
        sock::sockopt::RcvBuf,
        "SOL_SOCKET, SO_RCVBUF",
        |n| n.to_string(),
    )
}

/// `getsockopt(SO_SNDBUF)`: the send buffer's size as the kernel keeps it.
pub fn get_sndbuf(fd: impl AsFd) -> SysResult<usize> {
    getsockopt(
        fd.as_fd(),
        sock::sockopt::SndBuf,
        "SOL_SOCKET, SO_SNDBUF",
        |n| n.to_string(),
    )
}

/// A linger time as the `linger` SO_LINGER takes: on, and for how many seconds, or off.
fn linger_of(linger: Option<Duration>) -> libc::linger {
    libc::linger {
        l_onoff: linger.is_some() as libc::c_int,
        l_linger: linger.map_or(0, |d| {
            d.as_secs().min(libc::c_int::MAX as u64) as libc::c_int
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{read, write_all};

    fn loopback_any_port() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 0))
    }

    #[test]
    fn a_tcp_connection_through_every_call_and_its_reset() {
        let listener = tcp_socket(&loopback_any_port()).expect("socket failed");
        bind(&listener, loopback_any_port()).expect("bind failed");
        listen(&listener, 128).expect("listen failed");
        let addr = getsockname(&listener).expect("getsockname failed");
        assert_ne!(addr.port(), 0, "the kernel chose a port");

        let client = tcp_socket(&addr).expect("socket failed");
        connect(&client, addr).expect("connect failed");
        let (served, peer) = accept(&listener).expect("accept failed");
        assert_eq!(peer, getsockname(&client).expect("getsockname failed"));

        write_all(&client, b"ping").expect("write_all failed");
        shutdown(&client, Shutdown::Write).expect("shutdown failed");
        let mut buf = [0u8; 8];
        assert_eq!(read(&served, &mut buf).expect("read failed"), 4);
        assert_eq!(read(&served, &mut buf).expect("read at FIN failed"), 0);

        // SO_LINGER 0: close() sends RST, and the client reads ECONNRESET, not the end.
        set_linger(&served, Some(Duration::ZERO)).expect("setsockopt failed");
        crate::io::close(served).expect("close failed");
        let err = read(&client, &mut buf).unwrap_err();
        assert_eq!(err.errno, nix::errno::Errno::ECONNRESET);
    }

    #[test]
    fn peek_leaves_the_bytes_and_oob_takes_one_byte_out_of_line() {
        let listener = tcp_socket(&loopback_any_port()).expect("socket failed");
        bind(&listener, loopback_any_port()).expect("bind failed");
        listen(&listener, 1).expect("listen failed");
        let addr = getsockname(&listener).expect("getsockname failed");
        let client = tcp_socket(&addr).expect("socket failed");
        connect(&client, addr).expect("connect failed");
        let (served, _) = accept(&listener).expect("accept failed");
        let mut buf = [0u8; 8];
        let err = recv(
            &served,
            &mut buf,
            MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT,
        )
        .unwrap_err();
        assert_eq!(err.errno, nix::errno::Errno::EAGAIN);
        send(&client, b"123", MsgFlags::empty()).expect("send failed");
        send(&client, b"890", MsgFlags::MSG_OOB).expect("send failed");
        // In band: 1, 2, 3, 8, 9; the urgent byte is the last one sent, 0. Wait until all
        // five in-band bytes are there (the peek shows them without taking them).
        while recv(&served, &mut buf, MsgFlags::MSG_PEEK).expect("peek failed") < 5 {}
        assert_eq!(
            recv(&served, &mut buf, MsgFlags::MSG_OOB).expect("recv(MSG_OOB) failed"),
            1
        );
        assert_eq!(buf[0], b'0');
        // The in-band bytes around it, without it.
        let n = recv(&served, &mut buf, MsgFlags::empty()).expect("recv failed");
        assert_eq!(&buf[..n], b"12389");
    }

    #[test]
    fn bind_to_a_taken_port_names_the_address_and_errno() {
        let first = tcp_socket(&loopback_any_port()).expect("socket failed");
        bind(&first, loopback_any_port()).expect("bind failed");
        listen(&first, 1).expect("listen failed");
        let taken = getsockname(&first).expect("getsockname failed");

        let second = tcp_socket(&taken).expect("socket failed");
        let err = bind(&second, taken).unwrap_err();
        assert_eq!(err.errno, nix::errno::Errno::EADDRINUSE);
        assert_eq!(
            err.to_string(),
            format!(
                "bind({}, {taken}): EADDRINUSE: Address already in use",
                second.as_raw_fd()
            )
        );
    }

    #[test]
    fn datagrams_keep_their_boundaries() {
        let a = udp_socket(&loopback_any_port()).expect("socket failed");
        bind(&a, loopback_any_port()).expect("bind failed");
        let b = udp_socket(&loopback_any_port()).expect("socket failed");
        bind(&b, loopback_any_port()).expect("bind failed");
        let a_addr = getsockname(&a).expect("getsockname failed");
        let b_addr = getsockname(&b).expect("getsockname failed");

        sendto(&b, b"one", a_addr).expect("sendto failed");
        sendto(&b, b"three", a_addr).expect("sendto failed");
        let mut buf = [0u8; 64];
        assert_eq!(
            recvfrom(&a, &mut buf).expect("recvfrom failed"),
            (3, b_addr)
        );
        assert_eq!(
            recvfrom(&a, &mut buf).expect("recvfrom failed"),
            (5, b_addr)
        );
    }

    #[test]
    fn a_datagram_larger_than_the_buffer_is_seen_cut() {
        let a = udp_socket(&loopback_any_port()).expect("socket failed");
        bind(&a, loopback_any_port()).expect("bind failed");
        let a_addr = getsockname(&a).expect("getsockname failed");
        sendto(&a, &[7u8; 100], a_addr).expect("sendto failed");
        sendto(&a, &[7u8; 10], a_addr).expect("sendto failed");
        let mut buf = [0u8; 10];
        let cut = recvfrom_trunc(&a, &mut buf).expect("recvfrom failed");
        assert_eq!((cut.len, cut.sent, cut.is_cut()), (10, 100, true));
        let whole = recvfrom_trunc(&a, &mut buf).expect("recvfrom failed");
        assert!(!whole.is_cut());
        assert_eq!(max_udp_payload(&a_addr), 65_507);
        assert_eq!(max_udp_payload(&"[::1]:0".parse().unwrap()), 65_527);
    }

    #[test]
    fn a_receive_timeout_turns_a_stalled_read_into_eagain() {
        let a = udp_socket(&loopback_any_port()).expect("socket failed");
        bind(&a, loopback_any_port()).expect("bind failed");
        set_recv_timeout(&a, std::time::Duration::from_millis(20)).expect("setsockopt failed");
        let err = read(&a, &mut [0u8; 8]).unwrap_err();
        assert_eq!(err.errno, nix::errno::Errno::EAGAIN);
    }

    /// Linux doubles a buffer size it is given, and getsockopt() returns the double.
    #[test]
    fn a_buffer_size_reads_back_doubled() {
        let fd = tcp_socket(&loopback_any_port()).expect("socket failed");
        set_rcvbuf(&fd, 3072).expect("setsockopt failed");
        set_sndbuf(&fd, 3072).expect("setsockopt failed");
        assert_eq!(get_rcvbuf(&fd).expect("getsockopt failed"), 6144);
        assert_eq!(get_sndbuf(&fd).expect("getsockopt failed"), 6144);
        assert_eq!(
            get_sock_type(&fd).expect("getsockopt failed"),
            SockType::Stream
        );
    }

    #[test]
    fn reuseaddr_can_be_set() {
        let fd = tcp_socket(&loopback_any_port()).expect("socket failed");
        set_reuseaddr(&fd, true).expect("setsockopt failed");
        assert!(sock::getsockopt(&fd, sock::sockopt::ReuseAddr).expect("getsockopt failed"));
    }
}
