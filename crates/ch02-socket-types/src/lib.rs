//! # Chapter 2: socket types, and what a message boundary is
//!
//! A TCP socket (`SOCK_STREAM`) carries a stream of bytes: the server writes
//! `Hello World!` in *one* write(), and the client reads it back *one byte per read()*,
//! twelve reads, and nothing is lost or out of order. How the bytes were written says
//! nothing about how they are read. A UDP socket (`SOCK_DGRAM`) carries datagrams:
//! three sendto() calls arrive as exactly three recvfrom() results.
//!
//! System calls: server `socket`, `bind`, `listen`, `accept`, one `write`, `close`;
//! client `socket`, `connect`, `read` with a 1-byte buffer until it returns 0;
//! `datagrams`: two `socket(SOCK_DGRAM)`, `bind`, three `sendto`, three `recvfrom`.
//!
//! Run it: `cargo run -p ch02-socket-types` (the demo), `... -- server 9190` with
//! `... -- client 127.0.0.1 9190`, `... -- datagrams`; `--trace` shows every call.
//!
//! What the book's C gets wrong: its tcp_client reads into a 30-byte array with no
//! bound check on the index and prints with `%s` without a terminating NUL when the
//! server sends 30 bytes or more; ours has a limit and prints exactly what came.

use std::net::SocketAddr;

use anyhow::bail;
use clap::{Parser, Subcommand};
use syscalls::{
    StopSignals, accept, bind, close, connect, getsockname, ignore_sigpipe, listen, read, recvfrom,
    sendto, tcp_socket, udp_socket, write,
};
use workbook::{ClientOpts, ServerOpts, TraceOpt, WireOpt};

/// What the server sends, in one write().
pub const MESSAGE: &[u8] = b"Hello World!";

/// The most the client reads before it gives up: every read has a limit.
const MAX_MESSAGE: usize = 64 * 1024;

/// The three datagrams of `datagrams`, of different sizes (the book's bound_host2).
const DATAGRAMS: [&str; 3] = ["Hi!", "I'm another UDP host!", "Nice to meet you"];

/// Chapter 2: TCP has no message boundaries, UDP keeps them.
/// With no subcommand, runs a demo of both.
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
    /// Writes `Hello World!` to each client in one write() (the book's tcp_server)
    Server(ServerOpts),
    /// Reads one byte per read() and counts the reads (the book's tcp_client)
    Client(ClientOpts),
    /// Three sendto() calls, three recvfrom() results: UDP keeps boundaries
    Datagrams,
}

/// Runs the subcommand, or the demo when there is none.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    cli.trace.apply();
    match cli.command {
        Some(Role::Server(opts)) => server(&opts),
        Some(Role::Client(opts)) => client(opts.addr()?),
        Some(Role::Datagrams) => datagrams(),
        None => workbook::demo::run(&cli.wire, demo),
    }
}

/// The server: one write() of the whole message per client.
pub fn server(opts: &ServerOpts) -> anyhow::Result<()> {
    let stop = StopSignals::install()?;
    ignore_sigpipe()?;
    // 1. socket()  2. bind()  3. listen()
    let listener = tcp_socket(&opts.addr())?;
    bind(&listener, opts.addr())?;
    listen(&listener, opts.backlog)?;
    workbook::announce("listening on", getsockname(&listener)?)?;
    while !stop.requested() {
        // 4. accept()
        let (client, peer) = match accept(&listener) {
            Ok(accepted) => accepted,
            Err(e) if e.is_interrupted() => continue,
            Err(e) => return Err(e.into()),
        };
        // 5. One write() of all 12 bytes: the kernel may still deliver them in pieces.
        match write(&client, MESSAGE) {
            Ok(n) if n < MESSAGE.len() => {
                eprintln!("error: client {peer}: short write of {n} bytes")
            }
            Ok(_) => {}
            Err(e) => eprintln!("error: client {peer}: {e}"),
        }
        close(client)?;
    }
    close(listener)?;
    Ok(())
}

/// The client: one byte per read(), counting the reads, until end of stream.
pub fn client(server: SocketAddr) -> anyhow::Result<()> {
    let sock = tcp_socket(&server)?;
    connect(&sock, server)?;
    let mut message = Vec::new();
    let mut reads = 0u64;
    let mut byte = [0u8; 1];
    loop {
        // A 1-byte buffer: each read() returns at most one byte, however it was sent.
        let n = read(&sock, &mut byte)?;
        if n == 0 {
            break;
        }
        reads += 1;
        message.push(byte[0]);
        if message.len() > MAX_MESSAGE {
            bail!("server {server} sent more than {MAX_MESSAGE} bytes");
        }
    }
    println!("Message from server: {}", String::from_utf8_lossy(&message));
    println!("Function read call count: {reads}");
    close(sock)?;
    Ok(())
}

/// Three datagrams sent back to back arrive as three recvfrom() results, each whole.
pub fn datagrams() -> anyhow::Result<()> {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let receiver = udp_socket(&any)?;
    bind(&receiver, any)?;
    let to = getsockname(&receiver)?;
    let sender = udp_socket(&any)?;
    for text in DATAGRAMS {
        sendto(&sender, text.as_bytes(), to)?;
    }
    println!(
        "sent {} datagrams with {} sendto() calls",
        DATAGRAMS.len(),
        DATAGRAMS.len()
    );
    // A buffer as large as the largest UDP datagram: a smaller one would cut it.
    let mut buf = vec![0u8; 65_507];
    for i in 1..=DATAGRAMS.len() {
        let (n, from) = recvfrom(&receiver, &mut buf)?;
        println!(
            "recvfrom() #{i}: {n} bytes from {from}: {}",
            String::from_utf8_lossy(&buf[..n])
        );
    }
    println!(
        "{} recvfrom() calls, one per datagram: UDP keeps message boundaries",
        DATAGRAMS.len()
    );
    close(sender)?;
    close(receiver)?;
    Ok(())
}

/// The demo: one write on the server's side, twelve reads on the client's; then UDP.
fn demo() -> anyhow::Result<()> {
    let server = workbook::demo::DemoServer::start(&["server", "0"])?;
    let port = server.addr().port().to_string();
    let status = workbook::demo::run_client(&["client", "127.0.0.1", &port], &[], |_| true)?;
    if !status.success() {
        bail!("the demo client ended with {status}");
    }
    server.wait_for("the server's close of the client", |line| {
        line.starts_with("close(")
    })?;
    server.stop()?;
    let status = workbook::demo::run_side("udp", &["datagrams"], &[], |_| true)?;
    if !status.success() {
        bail!("the datagrams demo ended with {status}");
    }
    Ok(())
}
