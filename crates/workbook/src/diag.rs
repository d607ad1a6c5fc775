//! Sockets asked of the kernel through NETLINK_SOCK_DIAG (what `ss` uses): one
//! connection by its addresses, the sockets on one port, a listening socket's queue and
//! backlog.
//!
//! /proc/net/tcp says most of this too, but reading it makes the kernel format a line
//! for every socket of the machine: tens of milliseconds once a test run has left
//! thousands of connections in TIME_WAIT, and a check that watches a connection reads it
//! hundreds of times. A sock_diag request names the one connection it wants (found in
//! the kernel's hash table), or carries a filter on the port (run by the kernel), and
//! says what /proc/net/tcp cannot: the backlog a socket listens with. One request, one
//! fixed kernel ABI (linux/inet_diag.h), so it is written here in a few structs rather
//! than through a generic netlink stack; nix has no sock_diag, so libc's socket() and
//! the raw structs it is. Every function returns None when the kernel does not answer
//! (no sock_diag module); the checker (`harness::procfs`) then falls back to /proc.
//!
//! Who uses it: ch09's demos, which show the states of their own connections as the
//! kernel keeps them (what `ss` shows), and the checker, which watches the connections
//! of the programs it grades.

use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The transport a socket table describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

/// One socket as the kernel describes it, the fields of a row of /proc/net/tcp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketRow {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The kernel's state number: 0x0A is TCP LISTEN, 0x07 is CLOSE (an unconnected
    /// UDP socket), 0x01 ESTABLISHED ([`tcp_state_name`]).
    pub state: u8,
    /// Bytes queued to send (tx_queue) and to read (rx_queue); for a listening socket
    /// rx_queue is the number of connections waiting for accept().
    pub tx_queue: u64,
    pub rx_queue: u64,
    pub inode: u64,
}

/// The kernel's name for a TCP state number (include/net/tcp_states.h).
pub fn tcp_state_name(state: u8) -> &'static str {
    match state {
        0x01 => "ESTABLISHED",
        0x02 => "SYN_SENT",
        0x03 => "SYN_RECV",
        0x04 => "FIN_WAIT1",
        0x05 => "FIN_WAIT2",
        0x06 => "TIME_WAIT",
        0x07 => "CLOSE",
        0x08 => "CLOSE_WAIT",
        0x09 => "LAST_ACK",
        0x0A => "LISTEN",
        0x0B => "CLOSING",
        0x0C => "NEW_SYN_RECV",
        _ => "UNKNOWN",
    }
}

/// `struct nlmsghdr`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct NlMsgHdr {
    len: u32,
    kind: u16,
    flags: u16,
    seq: u32,
    pid: u32,
}

/// `struct inet_diag_sockid`: ports and addresses in network byte order.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct SockId {
    sport: u16,
    dport: u16,
    src: [u32; 4],
    dst: [u32; 4],
    interface: u32,
    cookie: [u32; 2],
}

/// `struct inet_diag_req_v2`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct ReqV2 {
    family: u8,
    protocol: u8,
    ext: u8,
    pad: u8,
    states: u32,
    id: SockId,
}

/// `struct inet_diag_msg`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct DiagMsg {
    family: u8,
    state: u8,
    timer: u8,
    retrans: u8,
    id: SockId,
    expires: u32,
    rqueue: u32,
    wqueue: u32,
    uid: u32,
    inode: u32,
}

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_DONE: u16 = 3;
const NLMSG_ERROR: u16 = 2;
const TCP_LISTEN: u8 = 10;
/// `INET_DIAG_REQ_BYTECODE`: the attribute that carries a filter.
const REQ_BYTECODE: u16 = 1;
/// `INET_DIAG_BC_S_EQ` and `INET_DIAG_BC_D_EQ`: the local or remote port equals.
const BC_S_EQ: u8 = 11;
const BC_D_EQ: u8 = 12;
/// `INET_DIAG_NOCOOKIE`: look a socket up by its addresses alone.
const NO_COOKIE: [u32; 2] = [!0, !0];

/// Sends one sock_diag request for `family`/`proto` and collects the sockets it answers
/// with. `dump` asks for every socket that matches (`states`, `filter`); without it the
/// kernel looks up the one socket `id` names.
fn ask(
    family: u8,
    proto: Proto,
    dump: bool,
    states: u32,
    id: SockId,
    filter: &[u8],
) -> Option<Vec<DiagMsg>> {
    // SAFETY: socket(2) with constant arguments; the fd is owned by `fd` below.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        )
    };
    if raw < 0 {
        return None;
    }
    // SAFETY: socket(2) just returned this fd; nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // The request: header, inet_diag_req_v2, then the filter as an rtattr (4-byte
    // header: length and type), all 4-byte aligned.
    let attr_len = if filter.is_empty() {
        0
    } else {
        4 + filter.len()
    };
    let total = size_of::<NlMsgHdr>() + size_of::<ReqV2>() + attr_len;
    let mut flags = libc::NLM_F_REQUEST as u16;
    if dump {
        flags |= libc::NLM_F_DUMP as u16;
    }
    let header = NlMsgHdr {
        len: total as u32,
        kind: SOCK_DIAG_BY_FAMILY,
        flags,
        seq: 1,
        pid: 0,
    };
    let body = ReqV2 {
        family,
        protocol: match proto {
            Proto::Tcp => libc::IPPROTO_TCP as u8,
            Proto::Udp => libc::IPPROTO_UDP as u8,
        },
        states,
        id,
        ..ReqV2::default()
    };
    let mut request = Vec::with_capacity(total);
    // SAFETY: both are plain repr(C) values; their bytes are read, not interpreted.
    unsafe {
        request.extend_from_slice(std::slice::from_raw_parts(
            (&raw const header).cast::<u8>(),
            size_of::<NlMsgHdr>(),
        ));
        request.extend_from_slice(std::slice::from_raw_parts(
            (&raw const body).cast::<u8>(),
            size_of::<ReqV2>(),
        ));
    }
    if !filter.is_empty() {
        request.extend_from_slice(&(attr_len as u16).to_ne_bytes());
        request.extend_from_slice(&REQ_BYTECODE.to_ne_bytes());
        request.extend_from_slice(filter);
    }
    // SAFETY: the request buffer is valid for reads of its length during the call.
    let sent = unsafe { libc::send(fd.as_raw_fd(), request.as_ptr().cast(), request.len(), 0) };
    if sent < 0 {
        return None;
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut found = Vec::new();
    loop {
        // SAFETY: buf is valid for writes of its length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n <= 0 {
            return Some(found);
        }
        let n = n as usize;
        let mut at = 0usize;
        while at + size_of::<NlMsgHdr>() <= n {
            // SAFETY: at least a header's bytes remain; read_unaligned copes with any
            // alignment of the receive buffer.
            let header: NlMsgHdr =
                unsafe { buf.as_ptr().add(at).cast::<NlMsgHdr>().read_unaligned() };
            let len = header.len as usize;
            if len < size_of::<NlMsgHdr>() || at + len > n {
                return Some(found);
            }
            match header.kind {
                // ENOENT (no such socket) ends a lookup as an empty answer.
                NLMSG_DONE | NLMSG_ERROR => return Some(found),
                SOCK_DIAG_BY_FAMILY if len >= size_of::<NlMsgHdr>() + size_of::<DiagMsg>() => {
                    // SAFETY: the message holds a whole inet_diag_msg after its header.
                    let msg: DiagMsg = unsafe {
                        buf.as_ptr()
                            .add(at + size_of::<NlMsgHdr>())
                            .cast::<DiagMsg>()
                            .read_unaligned()
                    };
                    found.push(msg);
                    if !dump {
                        return Some(found);
                    }
                }
                _ => {}
            }
            // Messages are aligned to 4 bytes.
            at += (len + 3) & !3;
        }
    }
}

/// An address of a diag message's socket id.
fn address(family: u8, words: [u32; 4], port_be: u16) -> SocketAddr {
    let port = u16::from_be(port_be);
    let ip: IpAddr = if i32::from(family) == libc::AF_INET6 {
        let mut bytes = [0u8; 16];
        for (chunk, word) in bytes.chunks_mut(4).zip(words) {
            chunk.copy_from_slice(&word.to_ne_bytes());
        }
        Ipv6Addr::from(bytes).into()
    } else {
        Ipv4Addr::from(words[0].to_ne_bytes()).into()
    };
    SocketAddr::new(ip, port)
}

/// The words of an address as a socket id holds them (network byte order).
fn words(ip: IpAddr) -> [u32; 4] {
    let mut out = [0u32; 4];
    match ip {
        IpAddr::V4(v4) => out[0] = u32::from_ne_bytes(v4.octets()),
        IpAddr::V6(v6) => {
            for (word, chunk) in out.iter_mut().zip(v6.octets().chunks(4)) {
                *word = u32::from_ne_bytes(chunk.try_into().expect("4 bytes"));
            }
        }
    }
    out
}

fn row_of(msg: &DiagMsg) -> SocketRow {
    SocketRow {
        local: address(msg.family, msg.id.src, msg.id.sport),
        remote: address(msg.family, msg.id.dst, msg.id.dport),
        state: msg.state,
        tx_queue: u64::from(msg.wqueue),
        rx_queue: u64::from(msg.rqueue),
        inode: u64::from(msg.inode),
    }
}

/// The TCP connection from `local` to `remote`, looked up by its addresses: its state,
/// queues and inode, as /proc/net/tcp would show its row.
pub fn connection(local: SocketAddr, remote: SocketAddr) -> Option<SocketRow> {
    let family = match local {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    } as u8;
    let id = SockId {
        sport: local.port().to_be(),
        dport: remote.port().to_be(),
        src: words(local.ip()),
        dst: words(remote.ip()),
        cookie: NO_COOKIE,
        ..SockId::default()
    };
    let found = ask(family, Proto::Tcp, false, !0, id, &[])?;
    Some(found.first().map(row_of)).flatten()
}

/// The filter "the local port is `port` or the remote port is", laid out as `ss` lays
/// out an OR. Each comparison is an op and a second op whose `no` field holds the port;
/// the kernel runs the ops with offsets in bytes, `yes` when the comparison holds and `no`
/// when not, and accepts a socket when it lands exactly on the end (20 bytes here),
/// rejects when past it. Its audit wants every `no` target reachable along the `yes`
/// jumps, hence the JMP between the two (a JMP always takes its `no`):
///
/// ```text
///  0  S_EQ  yes 8 (to the JMP)  no 12 (to D_EQ)
///  4  port
///  8  JMP   yes 4               no 12 (to the end: accept)
/// 12  D_EQ  yes 8 (the end)     no 12 (past the end: reject)
/// 16  port
/// ```
fn port_filter(port: u16) -> Vec<u8> {
    const BC_JMP: u8 = 1;
    let op = |code: u8, yes: u8, no: u16| {
        let mut b = vec![code, yes];
        b.extend_from_slice(&no.to_ne_bytes());
        b
    };
    let mut filter = Vec::with_capacity(20);
    filter.extend(op(BC_S_EQ, 8, 12));
    filter.extend(op(0, 0, port));
    filter.extend(op(BC_JMP, 4, 12));
    filter.extend(op(BC_D_EQ, 8, 12));
    filter.extend(op(0, 0, port));
    filter
}

/// Every socket of `proto` whose local or remote port is `port`, IPv4 and IPv6, in any
/// state (TIME_WAIT included).
pub fn on_port(proto: Proto, port: u16) -> Option<Vec<SocketRow>> {
    let filter = port_filter(port);
    let mut rows = Vec::new();
    for family in [libc::AF_INET, libc::AF_INET6] {
        let found = ask(family as u8, proto, true, !0, SockId::default(), &filter)?;
        rows.extend(found.iter().map(row_of));
    }
    Some(rows)
}

/// The TCP socket whose inode is `inode` (what /proc/PID/fd shows as `socket:[N]`), IPv4
/// or IPv6, in any state. The kernel has no index by inode, so this is a dump of every
/// socket, sent as binary records: still far cheaper than /proc/net/tcp's lines.
pub fn tcp_by_inode(inode: u64) -> Option<SocketRow> {
    [libc::AF_INET, libc::AF_INET6]
        .into_iter()
        .find_map(|family| {
            let found = ask(family as u8, Proto::Tcp, true, !0, SockId::default(), &[])?;
            found
                .iter()
                .find(|m| u64::from(m.inode) == inode)
                .map(row_of)
        })
}

/// A listening socket's queue: connections waiting for accept(), and the backlog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenQueue {
    pub waiting: u32,
    pub backlog: u32,
}

/// The queue of the TCP socket listening on `port` (IPv4 or IPv6), or None. (For a
/// listening socket the kernel reports the accept queue as `rqueue` and the backlog
/// given to listen(2) as `wqueue`.)
pub fn listen_queue(port: u16) -> Option<ListenQueue> {
    let filter = port_filter(port);
    [libc::AF_INET, libc::AF_INET6]
        .into_iter()
        .find_map(|family| {
            let found = ask(
                family as u8,
                Proto::Tcp,
                true,
                1 << TCP_LISTEN,
                SockId::default(),
                &filter,
            )?;
            found
                .iter()
                .find(|m| u16::from_be(m.id.sport) == port)
                .map(|m| ListenQueue {
                    waiting: m.rqueue,
                    backlog: m.wqueue,
                })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Our own listener: its backlog as given to listen(2), and a connection not yet
    /// accepted waiting in its queue.
    #[test]
    fn a_listeners_queue_and_backlog_are_seen() {
        use nix::sys::socket::{
            AddressFamily, Backlog, SockFlag, SockType, SockaddrIn, bind, getsockname, listen,
            socket,
        };
        let socket = socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .expect("socket failed");
        bind(
            std::os::fd::AsRawFd::as_raw_fd(&socket),
            &SockaddrIn::new(127, 0, 0, 1, 0),
        )
        .expect("bind failed");
        listen(&socket, Backlog::new(7).expect("a backlog")).expect("listen failed");
        let port = getsockname::<SockaddrIn>(std::os::fd::AsRawFd::as_raw_fd(&socket))
            .expect("getsockname failed")
            .port();
        assert_eq!(
            listen_queue(port),
            Some(ListenQueue {
                waiting: 0,
                backlog: 7
            })
        );
        let _client = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect failed");
        assert_eq!(listen_queue(port).map(|q| q.waiting), Some(1));
    }

    /// A connection is found by its addresses, with the bytes its program has not read,
    /// and the port filter finds both of its ends and the listener, nothing else.
    #[test]
    fn a_connection_is_found_by_its_addresses_and_by_its_port() {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind failed");
        let server = listener.local_addr().unwrap();
        let mut client = std::net::TcpStream::connect(server).expect("connect failed");
        let (accepted, _) = listener.accept().expect("accept failed");
        let local = client.local_addr().unwrap();
        client.write_all(b"twelve bytes").expect("write failed");
        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut row = None;
        while std::time::Instant::now() < until {
            row = connection(server, local);
            if row.as_ref().is_some_and(|r| r.rx_queue == 12) {
                break;
            }
        }
        let row = row.expect("the server side is found");
        assert_eq!((row.local, row.remote, row.rx_queue), (server, local, 12));
        // Others of the machine may use the same port number as a source port for
        // connections of their own: only ours are counted.
        let on_port = on_port(Proto::Tcp, server.port()).expect("sock_diag answers");
        assert!(
            on_port
                .iter()
                .all(|r| r.local.port() == server.port() || r.remote.port() == server.port())
        );
        let ours = on_port
            .iter()
            .filter(|r| r.local == server || r.remote == server)
            .count();
        assert_eq!(ours, 3, "listener and both ends");
        assert_eq!(
            connection(local, SocketAddr::from(([127, 0, 0, 1], 1))),
            None
        );
        drop(accepted);
    }
}
