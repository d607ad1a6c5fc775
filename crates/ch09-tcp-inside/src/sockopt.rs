//! The book's three socket-option programs: `sock_type.c` (SO_TYPE), `get_buf.c` (the
//! buffer sizes a socket starts with) and `set_buf.c` (asking for other sizes, and
//! reading back what the kernel really set).

use std::net::SocketAddr;

use anyhow::Context;
use syscalls::net::SockType;
use syscalls::{
    close, get_rcvbuf, get_sndbuf, get_sock_type, set_rcvbuf, set_sndbuf, tcp_socket, udp_socket,
};

/// What `set_buf` asks for: the book's 3 KiB.
pub const ASKED: usize = 3 * 1024;

/// What `set_buf` asks for to show the floor: one byte.
pub const TINY: usize = 1;

/// What `set_buf` asks for to show the cap: 64 MiB, above any default `rmem_max`.
pub const HUGE: usize = 64 * 1024 * 1024;

fn any() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 0))
}

/// A value of /proc/sys, as its text (`4096 131072 33554432`), for the explanations.
fn sysctl(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// The socket type's number as the C headers define it.
fn type_number(ty: SockType) -> i32 {
    ty as i32
}

/// `sock_type.c`: SO_TYPE of a TCP socket and of a UDP socket. A socket's type is fixed
/// by socket(); SO_TYPE can be read, never set.
pub fn sock_type() -> anyhow::Result<()> {
    println!("SOCK_STREAM: {}", type_number(SockType::Stream));
    println!("SOCK_DGRAM: {}", type_number(SockType::Datagram));
    // 1. socket() twice: one of each type.
    let tcp_sock = tcp_socket(&any())?;
    let udp_sock = udp_socket(&any())?;
    // 2. getsockopt(SO_TYPE) on each.
    let one = get_sock_type(&tcp_sock)?;
    let two = get_sock_type(&udp_sock)?;
    println!("Socket type one: {}", type_number(one));
    println!("Socket type two: {}", type_number(two));
    println!("SO_TYPE is read-only: a socket's type is decided once, by socket()");
    close(tcp_sock)?;
    close(udp_sock)?;
    Ok(())
}

/// `get_buf.c`: the buffer sizes a new TCP socket starts with, and where they come from.
pub fn get_buf() -> anyhow::Result<()> {
    let sock = tcp_socket(&any())?;
    let rcv = get_rcvbuf(&sock)?;
    let snd = get_sndbuf(&sock)?;
    println!("Input buffer size: {rcv}");
    println!("Output buffer size: {snd}");
    println!(
        "a TCP socket starts with the middle values of net.ipv4.tcp_rmem ({}) and tcp_wmem ({});",
        sysctl("/proc/sys/net/ipv4/tcp_rmem"),
        sysctl("/proc/sys/net/ipv4/tcp_wmem")
    );
    println!(
        "while it is connected the kernel grows them as the connection needs (autotuning), up to the third value"
    );
    close(sock)?;
    Ok(())
}

/// Asks for `size` bytes of each buffer on `sock` and returns what the kernel set
/// (receive, send).
fn ask(sock: &std::os::fd::OwnedFd, size: usize) -> anyhow::Result<(usize, usize)> {
    set_rcvbuf(sock, size)?;
    set_sndbuf(sock, size)?;
    Ok((get_rcvbuf(sock)?, get_sndbuf(sock)?))
}

/// `set_buf.c`: asks for 3 KiB buffers and reads back what the kernel set, then asks
/// for one byte (the floor) and for 64 MiB (the cap).
pub fn set_buf() -> anyhow::Result<()> {
    let sock = tcp_socket(&any())?;
    println!("setsockopt(SO_RCVBUF, {ASKED}) and setsockopt(SO_SNDBUF, {ASKED}), then getsockopt:");
    let (rcv, snd) = ask(&sock, ASKED)?;
    println!("Input buffer size: {rcv}");
    println!("Output buffer size: {snd}");
    if rcv == 2 * ASKED && snd == 2 * ASKED {
        println!(
            "doubled: Linux keeps twice what it is asked for and uses the extra half for its own bookkeeping (man 7 socket)"
        );
    } else {
        println!("not twice {ASKED}: this kernel's floor or cap decided (see below)");
    }
    let (rcv, snd) = ask(&sock, TINY)?;
    println!(
        "asked {TINY}: SO_RCVBUF {rcv}, SO_SNDBUF {snd}: the kernel's floor, whatever is asked"
    );
    let (rcv, snd) = ask(&sock, HUGE)?;
    println!(
        "asked {HUGE}: SO_RCVBUF {rcv}, SO_SNDBUF {snd}: capped at net.core.rmem_max ({}) and wmem_max ({}), then doubled",
        sysctl("/proc/sys/net/core/rmem_max"),
        sysctl("/proc/sys/net/core/wmem_max")
    );
    println!(
        "a size set by hand stays: the kernel no longer grows this socket's buffers as it needs"
    );
    close(sock).context("close the socket")?;
    Ok(())
}
