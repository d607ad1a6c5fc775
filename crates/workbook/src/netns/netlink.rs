//! Just enough rtnetlink (`man 7 rtnetlink`) to build a small network: bring a link up,
//! make a bridge and veth pairs, give an address, add a default route. What `ip link`,
//! `ip addr` and `ip route` send, without needing `ip` (or root) to send it.
//!
//! A request is a `struct nlmsghdr`, a fixed header of its family (`ifinfomsg`,
//! `ifaddrmsg`, `rtmsg`), then attributes (`struct rtattr`: length, type, value, padded
//! to 4 bytes), which may nest. The kernel answers each request with an acknowledgement
//! (an `NLMSG_ERROR` whose error is 0) or an error, or with the data asked for.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use anyhow::{Context, bail};
use nix::errno::Errno;

// From <linux/netlink.h>, <linux/rtnetlink.h>, <linux/if_link.h>, <linux/if_addr.h>,
// <linux/veth.h>: the numbers of the protocol.
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const IFLA_IFNAME: u16 = 3;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const RTA_OIF: u16 = 4;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_LINK: u8 = 253;
const RTN_UNICAST: u8 = 1;
const IFF_UP: u32 = 0x1;

/// One request being built.
struct Request {
    buf: Vec<u8>,
    open: Vec<usize>,
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

impl Request {
    /// `nlmsghdr` (its length filled in by [`Request::done`]) and the family header.
    fn new(kind: u16, flags: u16, header: &[u8]) -> Request {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_len
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        buf.extend_from_slice(&1u32.to_ne_bytes()); // nlmsg_seq
        buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid: the kernel's
        buf.extend_from_slice(header);
        buf.resize(align4(buf.len()), 0);
        Request {
            buf,
            open: Vec::new(),
        }
    }

    fn attr(mut self, kind: u16, value: &[u8]) -> Request {
        let len = 4 + value.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(value);
        self.buf.resize(align4(self.buf.len()), 0);
        self
    }

    /// A name attribute: the string and its NUL.
    fn name(self, kind: u16, name: &str) -> Request {
        let mut value = name.as_bytes().to_vec();
        value.push(0);
        self.attr(kind, &value)
    }

    /// Opens a nested attribute; [`Request::end`] closes it.
    fn begin(mut self, kind: u16) -> Request {
        self.open.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self
    }

    /// Raw bytes inside a nested attribute (veth's peer carries an `ifinfomsg`).
    fn raw(mut self, bytes: &[u8]) -> Request {
        self.buf.extend_from_slice(bytes);
        self.buf.resize(align4(self.buf.len()), 0);
        self
    }

    fn end(mut self) -> Request {
        let at = self.open.pop().expect("an attribute is open");
        let len = (self.buf.len() - at) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }

    fn done(mut self) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

/// `struct ifinfomsg`: family, type, index, flags, and which flags to change.
fn ifinfomsg(index: i32, flags: u32, change: u32) -> [u8; 16] {
    let mut m = [0u8; 16];
    m[0] = libc::AF_UNSPEC as u8;
    m[4..8].copy_from_slice(&index.to_ne_bytes());
    m[8..12].copy_from_slice(&flags.to_ne_bytes());
    m[12..16].copy_from_slice(&change.to_ne_bytes());
    m
}

/// Sends `request` on the route socket `sock` and returns the kernel's answer: the data
/// asked for, or nothing for an acknowledgement.
fn call(sock: &OwnedFd, request: Vec<u8>, what: &str) -> anyhow::Result<Vec<u8>> {
    let fd: RawFd = sock.as_raw_fd();
    // SAFETY: `request` is a valid buffer of its length for the duration of the call.
    let sent = unsafe { libc::send(fd, request.as_ptr().cast(), request.len(), 0) };
    if sent < 0 {
        return Err(Errno::last()).with_context(|| format!("netlink: send {what}"));
    }
    let mut answer = vec![0u8; 16 * 1024];
    // SAFETY: `answer` is writable for its whole length.
    let got = unsafe { libc::recv(fd, answer.as_mut_ptr().cast(), answer.len(), 0) };
    if got < 0 {
        return Err(Errno::last())
            .with_context(|| format!("netlink: receive the answer to {what}"));
    }
    answer.truncate(got as usize);
    if answer.len() < 16 {
        bail!("netlink: a short answer to {what}");
    }
    let kind = u16::from_ne_bytes([answer[4], answer[5]]);
    if kind == NLMSG_ERROR {
        let error = i32::from_ne_bytes([answer[16], answer[17], answer[18], answer[19]]);
        if error != 0 {
            return Err(Errno::from_raw(-error)).with_context(|| format!("netlink: {what}"));
        }
        return Ok(Vec::new());
    }
    Ok(answer)
}

/// `ip link set NAME up`.
pub fn link_up(sock: &OwnedFd, name: &str) -> anyhow::Result<()> {
    let request = Request::new(RTM_NEWLINK, NLM_F_ACK, &ifinfomsg(0, IFF_UP, IFF_UP))
        .name(IFLA_IFNAME, name)
        .done();
    call(sock, request, &format!("ip link set {name} up")).map(drop)
}

/// The interface index of `name` (`ip link show NAME`).
pub fn index_of(sock: &OwnedFd, name: &str) -> anyhow::Result<i32> {
    let request = Request::new(RTM_GETLINK, 0, &ifinfomsg(0, 0, 0))
        .name(IFLA_IFNAME, name)
        .done();
    let answer = call(sock, request, &format!("ip link show {name}"))?;
    // nlmsghdr (16 bytes), then ifinfomsg: its index at offset 4.
    let at = 16 + 4;
    answer
        .get(at..at + 4)
        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .with_context(|| format!("netlink: no index for {name}"))
}

/// `ip link add NAME type bridge; ip link set NAME up`.
pub fn add_bridge(sock: &OwnedFd, name: &str) -> anyhow::Result<()> {
    let request = Request::new(
        RTM_NEWLINK,
        NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        &ifinfomsg(0, IFF_UP, IFF_UP),
    )
    .name(IFLA_IFNAME, name)
    .begin(IFLA_LINKINFO)
    .name(IFLA_INFO_KIND, "bridge")
    .end()
    .done();
    call(sock, request, &format!("ip link add {name} type bridge")).map(drop)
}

/// `ip link add NAME master MASTER up type veth peer name PEER netns PEER_NS`: a pair
/// of virtual Ethernet devices, a cable with two ends: NAME here, a port of the bridge
/// MASTER, and PEER in the network namespace `peer_ns`.
pub fn add_veth(
    sock: &OwnedFd,
    name: &str,
    master: i32,
    peer: &str,
    peer_ns: &OwnedFd,
) -> anyhow::Result<()> {
    let request = Request::new(
        RTM_NEWLINK,
        NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        &ifinfomsg(0, IFF_UP, IFF_UP),
    )
    .name(IFLA_IFNAME, name)
    .attr(IFLA_MASTER, &(master as u32).to_ne_bytes())
    .begin(IFLA_LINKINFO)
    .name(IFLA_INFO_KIND, "veth")
    .begin(IFLA_INFO_DATA)
    .begin(VETH_INFO_PEER)
    .raw(&ifinfomsg(0, 0, 0))
    .name(IFLA_IFNAME, peer)
    .attr(IFLA_NET_NS_FD, &(peer_ns.as_raw_fd() as u32).to_ne_bytes())
    .end()
    .end()
    .end()
    .done();
    call(
        sock,
        request,
        &format!("ip link add {name} type veth peer name {peer}"),
    )
    .map(drop)
}

/// `ip addr add ADDR/PREFIX brd BROADCAST dev INDEX`.
pub fn add_address(
    sock: &OwnedFd,
    index: i32,
    addr: Ipv4Addr,
    prefix: u8,
    broadcast: Ipv4Addr,
) -> anyhow::Result<()> {
    let mut header = [0u8; 8];
    header[0] = libc::AF_INET as u8;
    header[1] = prefix;
    header[3] = RT_SCOPE_UNIVERSE;
    header[4..8].copy_from_slice(&(index as u32).to_ne_bytes());
    let request = Request::new(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, &header)
        .attr(IFA_LOCAL, &addr.octets())
        .attr(IFA_ADDRESS, &addr.octets())
        .attr(IFA_BROADCAST, &broadcast.octets())
        .done();
    call(
        sock,
        request,
        &format!("ip addr add {addr}/{prefix} brd {broadcast}"),
    )
    .map(drop)
}

/// `ip route add default dev INDEX`: every destination, multicast and the broadcast
/// address 255.255.255.255 included, goes out of that link.
pub fn add_default_route(sock: &OwnedFd, index: i32) -> anyhow::Result<()> {
    let header = [
        libc::AF_INET as u8,
        0, // dst_len: the default route
        0, // src_len
        0, // tos
        RT_TABLE_MAIN,
        RTPROT_BOOT,
        RT_SCOPE_LINK,
        RTN_UNICAST,
        0,
        0,
        0,
        0, // flags
    ];
    let request = Request::new(RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, &header)
        .attr(RTA_OIF, &(index as u32).to_ne_bytes())
        .done();
    call(sock, request, "ip route add default").map(drop)
}
