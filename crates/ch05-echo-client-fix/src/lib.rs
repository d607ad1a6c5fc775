//! # Chapter 5: the echo client's problem, fixed
//!
//! Chapter 4's client sends a line and calls read() once, printing whatever that read
//! returned. TCP keeps no message boundaries, so the reply may arrive in pieces and the
//! client prints half a line, then the other half as the reply to the *next* line. The
//! fix needs one fact: an echo comes back as long as what was sent. So the client
//! counts: it reads until it has received as many bytes as it wrote (the book's
//! echo_client2).
//!
//! System calls: client `socket`, `connect`, then per line `write` once and `read` in a
//! loop until the count is reached; server as in chapter 4 (`socket`, `bind`, `listen`,
//! `accept`, `read`/`write` until 0), so that this chapter runs on its own.
//!
//! Run it: `cargo run -p ch05-echo-client-fix` (the demo), or `... -- server 9190` and
//! `... -- client 127.0.0.1 9190`; `--trace` shows the reads that make up one reply.
//!
//! What the book's C gets wrong: echo_client2 adds `recv_cnt` to `recv_len` without
//! checking for -1 or 0, so a server that closes or fails mid-reply makes it loop
//! forever; ours stops with an error. Its buffer holds BUF_SIZE-1 bytes and a longer
//! input line overflows the count; ours sends any line up to the input limit and reads
//! the whole echo.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;

use anyhow::bail;
use clap::{Parser, Subcommand};
use syscalls::{
    StopSignals, SysError, accept, bind, close, connect, getsockname, ignore_sigpipe, listen, read,
    tcp_socket, write_all,
};
use workbook::{ClientOpts, ServerOpts, TraceOpt, WireOpt};

const BUF_SIZE: usize = 1024;

/// The client's prompt, as in chapter 4.
pub const PROMPT: &str = "Input message(Q to quit): ";

/// Chapter 5: the echo client that reads until every byte came back.
/// With no subcommand, runs a demo with a long line that comes back in pieces.
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
    /// The iterative echo server of chapter 4, so this chapter runs on its own
    Server(ServerOpts),
    /// Echo client that reads until it has as many bytes as it sent (echo_client2)
    Client(ClientOpts),
}

/// Runs the subcommand, or the demo when there is none.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    cli.trace.apply();
    match cli.command {
        Some(Role::Server(opts)) => server(&opts),
        Some(Role::Client(opts)) => client(opts.addr()?),
        None => workbook::demo::run(&cli.wire, demo),
    }
}

/// The client: one write per line, then reads until the whole echo is back.
pub fn client(server: SocketAddr) -> anyhow::Result<()> {
    // 1. socket()  2. connect()
    let sock = tcp_socket(&server)?;
    connect(&sock, server)?;
    println!("Connected...........");
    let mut buf = [0u8; BUF_SIZE];
    while let Some(line) = workbook::prompt_line(PROMPT)? {
        if line == "q" || line == "Q" {
            break;
        }
        let message = format!("{line}\n");
        write_all(&sock, message.as_bytes())?;
        // The fix: the echo is exactly as long as what we sent, so read until we have
        // that many bytes, however many reads it takes.
        let mut reply = Vec::with_capacity(message.len());
        while reply.len() < message.len() {
            let want = (message.len() - reply.len()).min(BUF_SIZE);
            let n = read(&sock, &mut buf[..want])?;
            if n == 0 {
                bail!(
                    "server {server} closed the connection after {} of {} bytes of the echo",
                    reply.len(),
                    message.len()
                );
            }
            reply.extend_from_slice(&buf[..n]);
        }
        let reply = String::from_utf8_lossy(&reply);
        println!("Message from server: {}", reply.trim_end_matches('\n'));
    }
    close(sock)?;
    Ok(())
}

/// Chapter 4's iterative echo server, unchanged (this chapter's lesson is the client).
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
        match echo(&client) {
            Ok(()) => {}
            Err(e) if e.is_interrupted() => {}
            Err(e) => workbook::log_error!("error: client {peer}: {e}"),
        }
        close(client)?;
    }
    close(listener)?;
    Ok(())
}

fn echo(client: &OwnedFd) -> Result<(), SysError> {
    let mut buf = [0u8; BUF_SIZE];
    loop {
        let n = read(client, &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        write_all(client, &buf[..n])?;
    }
}

/// The demo: a line longer than one read's buffer comes back in several reads and is
/// still printed whole.
fn demo() -> anyhow::Result<()> {
    let server = workbook::demo::DemoServer::start(&["server", "0"])?;
    let port = server.addr().port().to_string();
    let long_line = "0123456789".repeat(150);
    let status = workbook::demo::run_client(
        &["client", "127.0.0.1", &port],
        &["Hello, chapter 5!", &long_line, "Q"],
        |line| line.starts_with("Message from server: "),
    )?;
    if !status.success() {
        bail!("the demo client ended with {status}");
    }
    server.wait_for("the server's close of the client", |line| {
        line.starts_with("close(")
    })?;
    server.stop()
}
