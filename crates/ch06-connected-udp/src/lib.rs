//! # Chapter 6: connected UDP
//!
//! connect() on a UDP socket sends nothing: there is no handshake. It records the peer
//! in the kernel, and that changes three things. write() and read() work (no address
//! each time). The socket receives only from that peer: the kernel drops datagrams from
//! any other address. And errors about the peer come back: a datagram to a port where
//! nothing listens draws an ICMP port-unreachable, which an unconnected socket never
//! hears of, but a connected one gets as ECONNREFUSED from its next read().
//!
//! System calls: `socket(SOCK_DGRAM)`, `connect`, `setsockopt(SO_RCVTIMEO)`, then per
//! line `write` and `read`; the demo adds `bind`, `sendto` and `recvfrom` to play the
//! server and a stranger.
//!
//! Run it: `cargo run -p ch06-connected-udp` (the demo, all in one process), or
//! `... -- client 127.0.0.1 9190` against `cargo run -p ch06-udp-echo -- server 9190`.
//!
//! What the book's C gets wrong: uecho_con_client ignores read()'s -1: after
//! ECONNREFUSED it writes `message[-1] = 0` and prints the old buffer as the server's
//! reply. Ours reports `connection refused` and exits 1. Like ch06's client, ours also
//! retries on a timeout instead of waiting forever for a lost datagram.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use syscalls::{
    Errno, bind, close, connect, getsockname, max_udp_payload, read, recvfrom, sendto,
    set_recv_timeout, udp_socket, write,
};
use workbook::{ClientOpts, TraceOpt, WireOpt};

/// The client's prompt, as the book prints it.
pub const PROMPT: &str = "Insert message(q to quit): ";

/// Chapter 6: connected UDP. With no subcommand, runs a demo of its two facts.
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Role>,
    #[command(flatten)]
    pub trace: TraceOpt,
    #[command(flatten)]
    pub wire: WireOpt,
}

#[derive(Subcommand, Debug)]
pub enum Role {
    /// Connected UDP echo client: connect(), then write() and read() (uecho_con_client)
    Client {
        #[command(flatten)]
        opts: ClientOpts,
        /// How long to wait for a reply before sending again
        #[arg(long, default_value = "1", value_name = "SECONDS")]
        timeout: f64,
        /// How many times to send a line before giving up
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
        tries: u32,
    },
}

/// Runs the subcommand, or the demo when there is none.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    cli.trace.apply();
    match cli.command {
        Some(Role::Client {
            opts,
            timeout,
            tries,
        }) => {
            if !(timeout.is_finite() && timeout > 0.0 && timeout <= 3600.0) {
                bail!("--timeout must be a number of seconds from 0 to 3600, not {timeout}");
            }
            client(opts.addr()?, Duration::from_secs_f64(timeout), tries)
        }
        None => workbook::demo::run_here(&cli.wire, demo),
    }
}

/// The connected client.
pub fn client(server: SocketAddr, timeout: Duration, tries: u32) -> anyhow::Result<()> {
    // 1. socket(SOCK_DGRAM)  2. connect(): no packet is sent; the kernel notes the peer.
    let sock = udp_socket(&server)?;
    connect(&sock, server)?;
    set_recv_timeout(&sock, timeout)?;
    // Room for the largest datagram of the family: read() cuts a longer one silently.
    let mut buf = vec![0u8; max_udp_payload(&server)];
    while let Some(line) = workbook::prompt_line(PROMPT)? {
        if line == "q" || line == "Q" {
            break;
        }
        let message = format!("{line}\n");
        let mut reply = None;
        for _ in 0..tries {
            write(&sock, message.as_bytes())?;
            match read(&sock, &mut buf) {
                Ok(n) => {
                    reply = Some(buf[..n].to_vec());
                    break;
                }
                // The ICMP port-unreachable for our last datagram, reported to us only
                // because the socket is connected.
                Err(e) if e.errno == Errno::ECONNREFUSED => {
                    bail!(
                        "connection refused: nothing is bound to UDP port {} at {}",
                        server.port(),
                        server.ip()
                    )
                }
                Err(e) if e.errno == Errno::EAGAIN || e.is_interrupted() => continue,
                Err(e) => return Err(e.into()),
            }
        }
        let Some(reply) = reply else {
            bail!("no reply from {server} after {tries} tries");
        };
        let reply = String::from_utf8_lossy(&reply);
        println!("Message from server: {}", reply.trim_end_matches('\n'));
    }
    close(sock)?;
    Ok(())
}

/// The demo, in one process so that every socket is visible at once: a peer, a
/// stranger, and a connected socket that hears only the peer; then a connected socket
/// whose peer has nothing bound, which reads ECONNREFUSED.
fn demo() -> anyhow::Result<()> {
    syscalls::trace::enable();
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    println!("1. A connected UDP socket receives only from its peer");
    let peer = udp_socket(&any)?;
    bind(&peer, any)?;
    let stranger = udp_socket(&any)?;
    bind(&stranger, any)?;
    let connected = udp_socket(&any)?;
    connect(&connected, getsockname(&peer)?)?;
    set_recv_timeout(&connected, Duration::from_millis(300))?;
    let me = getsockname(&connected)?;
    sendto(&stranger, b"from a stranger", me)?;
    sendto(&peer, b"from the peer", me)?;
    let mut buf = [0u8; 64];
    let n = read(&connected, &mut buf)?;
    println!(
        "   read: {:?}: the stranger's datagram was dropped by the kernel",
        String::from_utf8_lossy(&buf[..n])
    );
    match read(&connected, &mut buf) {
        Err(e) if e.errno == Errno::EAGAIN => {
            println!("   nothing else arrives: read() timed out (EAGAIN)")
        }
        other => bail!("unexpected second read: {other:?}"),
    }
    // The unconnected peer socket, for contrast, hears from anyone.
    sendto(&stranger, b"hello peer", getsockname(&peer)?)?;
    let (n, from) = recvfrom(&peer, &mut buf)?;
    println!(
        "   an unconnected socket hears anyone: {:?} from {from}",
        String::from_utf8_lossy(&buf[..n])
    );

    println!();
    println!("2. A connected UDP socket hears about its peer's absence");
    // A port with nothing bound: take one from the kernel, then give it back.
    let probe = udp_socket(&any)?;
    bind(&probe, any)?;
    let nobody = getsockname(&probe)?;
    close(probe)?;
    let lonely = udp_socket(&any)?;
    connect(&lonely, nobody)?;
    set_recv_timeout(&lonely, Duration::from_secs(2))?;
    write(&lonely, b"is anyone there?")?;
    match read(&lonely, &mut buf) {
        Err(e) if e.errno == Errno::ECONNREFUSED => {
            println!(
                "   read() failed with ECONNREFUSED: the ICMP port-unreachable, reported to the connected socket"
            )
        }
        other => bail!("expected ECONNREFUSED, got {other:?}"),
    }
    for fd in [lonely, connected, stranger, peer] {
        close(fd).context("close")?;
    }
    Ok(())
}
