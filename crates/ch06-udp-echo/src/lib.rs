//! # Chapter 6: UDP, the echo server without connections
//!
//! A UDP socket has no connection: the server binds, and each recvfrom() returns one
//! datagram with its sender's address, to which sendto() replies. There is no accept(),
//! no listen(), no end of stream. Datagrams keep their boundaries (one sendto(), one
//! recvfrom()), and may be lost: nothing retransmits them, so a client that waits for a
//! reply must give up some time.
//!
//! System calls: server `socket(SOCK_DGRAM)`, `bind`, then `recvfrom`/`sendto`; client
//! `socket(SOCK_DGRAM)`, `setsockopt(SO_RCVTIMEO)`, then per line `sendto` and
//! `recvfrom` (retried on timeout); `bound-host1`/`bound-host2` show three datagrams
//! arriving as three recvfrom() results.
//!
//! Run it: `cargo run -p ch06-udp-echo` (the demo), or `... -- server 9190` and
//! `... -- client 127.0.0.1 9190`; `--trace` shows each datagram.
//!
//! What the book's C gets wrong: its server receives into a 30-byte buffer, and
//! recvfrom() silently cuts a longer datagram to 30 bytes (the rest is lost); ours
//! receives into the largest UDP payload of the socket's family (65,507 bytes over IPv4,
//! 65,527 over IPv6) and asks recvfrom() to tell a cut (MSG_TRUNC). Its client waits for a
//! reply forever: one lost datagram hangs it. Ours waits 1 s, retries, and gives up
//! with a message. Its client accepts a reply from anyone; ours only from the server.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::bail;
use clap::{Parser, Subcommand};
use syscalls::{
    Errno, StopSignals, bind, close, getsockname, max_udp_payload, recvfrom, recvfrom_trunc,
    sendto, set_recv_timeout, udp_socket,
};
use workbook::{ClientOpts, ServerOpts, TraceOpt, WireOpt};

/// The client's prompt, as the book prints it.
pub const PROMPT: &str = "Insert message(q to quit): ";

/// Chapter 6: UDP echo, datagrams that keep their boundaries and may be lost.
/// With no subcommand, runs a demo: the echo server and client, then bound-host1/2.
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
    /// UDP echo server: each datagram back to its sender, up to 65,507 bytes (uecho_server)
    Server(ServerOpts),
    /// UDP echo client: waits for each reply with a timeout and retries (uecho_client)
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
    /// Binds and, after a delay, receives three datagrams one recvfrom() each (bound_host1)
    BoundHost1 {
        #[command(flatten)]
        opts: ServerOpts,
        /// How long to wait before the first recvfrom(): the datagrams queue meanwhile
        #[arg(long, default_value = "1", value_name = "SECONDS")]
        delay: f64,
    },
    /// Sends three datagrams of different sizes back to back (bound_host2)
    BoundHost2(ClientOpts),
}

/// Runs the subcommand, or the demo when there is none.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    cli.trace.apply();
    match cli.command {
        Some(Role::Server(opts)) => server(&opts),
        Some(Role::Client {
            opts,
            timeout,
            tries,
        }) => client(opts.addr()?, seconds(timeout, "--timeout")?, tries),
        Some(Role::BoundHost1 { opts, delay }) => bound_host1(&opts, seconds(delay, "--delay")?),
        Some(Role::BoundHost2(opts)) => bound_host2(opts.addr()?),
        None => workbook::demo::run(&cli.wire, demo),
    }
}

fn seconds(value: f64, flag: &str) -> anyhow::Result<Duration> {
    if !(value.is_finite() && (0.0..=3600.0).contains(&value)) {
        bail!("{flag} must be a number of seconds from 0 to 3600, not {value}");
    }
    Ok(Duration::from_secs_f64(value))
}

/// The UDP echo server.
pub fn server(opts: &ServerOpts) -> anyhow::Result<()> {
    let stop = StopSignals::install()?;
    // 1. socket(SOCK_DGRAM)  2. bind(): no listen(), no accept(): no connections.
    let sock = udp_socket(&opts.addr())?;
    bind(&sock, opts.addr())?;
    workbook::announce("bound to", getsockname(&sock)?)?;
    // Room for the largest datagram of this family: recvfrom() cuts anything longer than
    // the buffer, and says so only when asked (MSG_TRUNC).
    let mut buf = vec![0u8; max_udp_payload(&opts.addr())];
    while !stop.requested() {
        // 3. recvfrom(): one datagram, whole, and who sent it. 0 bytes is a datagram
        //    too (an empty one), not end of stream: UDP has no stream to end.
        let got = match recvfrom_trunc(&sock, &mut buf) {
            Ok(got) => got,
            Err(e) if e.is_interrupted() => continue,
            Err(e) => return Err(e.into()),
        };
        // A cut datagram is not the one that was sent: say so, and echo nothing.
        if got.is_cut() {
            workbook::log_error!(
                "error: a datagram of {} bytes from {} was cut to the {} bytes of the buffer: not echoed",
                got.sent,
                got.from,
                got.len
            );
            continue;
        }
        // 4. sendto(): back to that sender.
        if let Err(e) = sendto(&sock, &buf[..got.len], got.from) {
            workbook::log_error!("error: reply to {}: {e}", got.from);
        }
    }
    close(sock)?;
    Ok(())
}

/// The UDP echo client: a line, a datagram; wait for the reply from the server only,
/// sending again after each timeout, giving up after `tries`.
pub fn client(server: SocketAddr, timeout: Duration, tries: u32) -> anyhow::Result<()> {
    let any = SocketAddr::new(
        if server.is_ipv4() {
            [0, 0, 0, 0].into()
        } else {
            std::net::Ipv6Addr::UNSPECIFIED.into()
        },
        0,
    );
    let sock = udp_socket(&any)?;
    // recvfrom() waits at most `timeout`, then fails with EAGAIN: our cue to resend.
    set_recv_timeout(&sock, timeout.max(Duration::from_millis(1)))?;
    let mut buf = vec![0u8; max_udp_payload(&server)];
    while let Some(line) = workbook::prompt_line(PROMPT)? {
        if line == "q" || line == "Q" {
            break;
        }
        let message = format!("{line}\n");
        let reply = 'tries: {
            for _ in 0..tries {
                sendto(&sock, message.as_bytes(), server)?;
                loop {
                    match recvfrom_trunc(&sock, &mut buf) {
                        Ok(got) if got.from == server && got.is_cut() => bail!(
                            "the reply from {server} was {} bytes, cut to the {} of the buffer",
                            got.sent,
                            got.len
                        ),
                        // Only the server's reply counts; anyone may send to our port.
                        Ok(got) if got.from == server => {
                            break 'tries Some(buf[..got.len].to_vec());
                        }
                        Ok(got) => {
                            workbook::log_error!(
                                "ignored a datagram from {}, not the server",
                                got.from
                            )
                        }
                        Err(e) if e.errno == Errno::EAGAIN => break,
                        Err(e) if e.is_interrupted() => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            None
        };
        let Some(reply) = reply else {
            bail!("no reply from {server} after {tries} tries");
        };
        let reply = String::from_utf8_lossy(&reply);
        println!("Message from server: {}", reply.trim_end_matches('\n'));
    }
    close(sock)?;
    Ok(())
}

/// The book's bound_host1: bind, wait, then one recvfrom() per datagram.
pub fn bound_host1(opts: &ServerOpts, delay: Duration) -> anyhow::Result<()> {
    let sock = udp_socket(&opts.addr())?;
    bind(&sock, opts.addr())?;
    workbook::announce("bound to", getsockname(&sock)?)?;
    // The lesson needs the three datagrams to be queued before we read: wait, as the
    // book's sleep(5) does, but for `--delay` only.
    std::thread::sleep(delay);
    let mut buf = vec![0u8; max_udp_payload(&opts.addr())];
    for i in 1..=3 {
        let (n, from) = recvfrom(&sock, &mut buf)?;
        println!(
            "Message {i}: {} ({n} bytes from {from})",
            String::from_utf8_lossy(&buf[..n])
        );
    }
    close(sock)?;
    Ok(())
}

/// The book's bound_host2: three datagrams of different sizes, back to back.
pub fn bound_host2(to: SocketAddr) -> anyhow::Result<()> {
    let any = SocketAddr::new([0, 0, 0, 0].into(), 0);
    let sock = udp_socket(&any)?;
    for message in ["Hi!", "I'm another UDP host!", "Nice to meet you"] {
        sendto(&sock, message.as_bytes(), to)?;
    }
    close(sock)?;
    Ok(())
}

/// The demo: the echo server and client, then three datagrams queued and read one by one.
fn demo() -> anyhow::Result<()> {
    let server = workbook::demo::DemoServer::start(&["server", "0"])?;
    let port = server.addr().port().to_string();
    let status = workbook::demo::run_client(
        &["client", "127.0.0.1", &port],
        &["Hello UDP!", "Each line is one datagram", "q"],
        |line| line.starts_with("Message from server: "),
    )?;
    if !status.success() {
        bail!("the demo client ended with {status}");
    }
    server.stop()?;

    let host1 =
        workbook::demo::DemoServer::start_as("host1", &["bound-host1", "0", "--delay", "0.5"])?;
    let port = host1.addr().port().to_string();
    let status =
        workbook::demo::run_side("host2", &["bound-host2", "127.0.0.1", &port], &[], |_| true)?;
    if !status.success() {
        bail!("bound-host2 ended with {status}");
    }
    host1.wait_for("the third message", |l| l.starts_with("Message 3:"))?;
    host1.wait_for("bound-host1's end", |l| l.starts_with("close("))?;
    Ok(())
}
