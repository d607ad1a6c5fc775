//! A listening socket's queue, asked of the kernel through NETLINK_SOCK_DIAG (what `ss`
//! uses): how many connections wait for accept(), and the backlog they wait in.
//!
//! /proc/net/tcp says the first but not the second, and reading it walks every socket
//! of the machine (milliseconds with thousands in TIME_WAIT); a sock_diag request for
//! LISTEN sockets walks only the listening table. One request, one fixed kernel ABI
//! (linux/inet_diag.h), so it is written here in a few structs rather than through a
//! generic netlink stack. nix has no sock_diag; libc's socket() and the raw structs it is.

use std::mem::size_of;

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
const TCP_LISTEN: u32 = 10;

/// A listening socket's queue: connections waiting for accept(), and the backlog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenQueue {
    pub waiting: u32,
    pub backlog: u32,
}

/// The queue of the TCP socket listening on `port` (IPv4 or IPv6), or None.
pub fn listen_queue(port: u16) -> Option<ListenQueue> {
    [libc::AF_INET, libc::AF_INET6]
        .into_iter()
        .find_map(|family| listening(family as u8, port))
}

fn listening(family: u8, port: u16) -> Option<ListenQueue> {
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
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    #[repr(C)]
    struct Request {
        header: NlMsgHdr,
        body: ReqV2,
    }
    let request = Request {
        header: NlMsgHdr {
            len: size_of::<Request>() as u32,
            kind: SOCK_DIAG_BY_FAMILY,
            flags: (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16,
            seq: 1,
            pid: 0,
        },
        body: ReqV2 {
            family,
            protocol: libc::IPPROTO_TCP as u8,
            states: 1 << TCP_LISTEN,
            ..ReqV2::default()
        },
    };
    // SAFETY: the request is a plain repr(C) value of the given size, alive for the call.
    let sent = unsafe { libc::send(raw, (&raw const request).cast(), size_of::<Request>(), 0) };
    if sent < 0 {
        return None;
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut found = None;
    loop {
        // SAFETY: buf is valid for writes of its length.
        let n = unsafe { libc::recv(raw, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n <= 0 {
            return found;
        }
        let mut at = 0usize;
        let n = n as usize;
        while at + size_of::<NlMsgHdr>() <= n {
            // SAFETY: at least a header's bytes remain; read_unaligned copes with any
            // alignment of the receive buffer.
            let header: NlMsgHdr =
                unsafe { buf.as_ptr().add(at).cast::<NlMsgHdr>().read_unaligned() };
            let len = header.len as usize;
            if len < size_of::<NlMsgHdr>() || at + len > n {
                return found;
            }
            match header.kind {
                NLMSG_DONE | NLMSG_ERROR => return found,
                SOCK_DIAG_BY_FAMILY if len >= size_of::<NlMsgHdr>() + size_of::<DiagMsg>() => {
                    // SAFETY: the message holds a whole inet_diag_msg after its header.
                    let msg: DiagMsg = unsafe {
                        buf.as_ptr()
                            .add(at + size_of::<NlMsgHdr>())
                            .cast::<DiagMsg>()
                            .read_unaligned()
                    };
                    if u16::from_be(msg.id.sport) == port {
                        found = Some(ListenQueue {
                            waiting: msg.rqueue,
                            backlog: msg.wqueue,
                        });
                    }
                }
                _ => {}
            }
            // Messages are aligned to 4 bytes.
            at += (len + 3) & !3;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Our own listener: its backlog as given to listen(2), and a connection not yet
    /// accepted waiting in its queue.
    #[test]
    fn a_listeners_queue_and_backlog_are_seen() {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket failed");
        socket
            .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .expect("bind failed");
        socket.listen(7).expect("listen failed");
        let port = socket.local_addr().unwrap().as_socket().unwrap().port();
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
}
