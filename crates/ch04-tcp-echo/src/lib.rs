//! # Chapter 4: a TCP echo server and client
//!
//! The server is *iterative*: it serves one client from accept() to end of stream, then
//! the next, until SIGINT or SIGTERM. The client sends each line you type and prints
//! what comes back.
//!
//! System calls, in the book's order: server `socket`, `bind`, `listen`, then `accept`,
//! `read`/`write` until `read` returns 0, `close`; client `socket`, `connect`, then
//! `write`/`read` per line, `close`. Also `sigaction` twice: SIGPIPE ignored, and
//! SIGINT/SIGTERM turned into a clean stop.
//!
//! Run it: `cargo run -p ch04-tcp-echo` (the demo), or `... -- server 9190` and
//! `... -- client 127.0.0.1 9190` in two terminals; add `--trace` to see every call.
//!
//! What the book's C gets wrong, and what we do instead:
//! * its client loops forever at end of input (fgets() returns NULL and the old line is
//!   sent again); ours stops;
//! * its server dies of SIGPIPE when a client closes without reading its echo; ours
//!   ignores SIGPIPE, sees EPIPE, and serves the next client;
//! * its server treats read() returning -1 (a reset connection) as data; ours ends that
//!   client and goes on.
//!
//! Kept on purpose: the client calls read() *once* per line and prints whatever that
//! read returned. TCP keeps no message boundaries, so a long line can come back in
//! pieces and the client prints half of it. That is the flaw chapter 5 fixes
//! (`ch05/fragmented-reply` catches it).

use std::net::SocketAddr;
use std::os::fd::OwnedFd;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use syscalls::{
    StopSignals, SysError, accept, bind, close, connect, getsockname, ignore_sigpipe, listen, read,
    tcp_socket, write_all,
};
use workbook::{ClientOpts, ServerOpts, TraceOpt, WireOpt};

/// The book's BUF_SIZE: how much one read() asks for.
const BUF_SIZE: usize = 1024;

/// The client's prompt, as the book prints it.
pub const PROMPT: &str = "Input message(Q to quit): ";

/// Chapter 4: an iterative TCP echo server and the book's echo client.
/// With no subcommand, runs a demo of the two talking, every system call narrated.
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
    /// Echo server: serves one client after another until SIGINT/SIGTERM (the book's echo_server)
    Server(ServerOpts),
    /// Echo client: sends each line typed, prints the reply; Q, q or end of input quits (echo_client)
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

/// The iterative echo server.
pub fn server(opts: &ServerOpts) -> anyhow::Result<()> {
    let stop = StopSignals::install()?;
    // A client that closes before reading its echo would otherwise kill us with
    // SIGPIPE on our next write(); see syscalls::ignore_sigpipe for why Rust hides this.
    ignore_sigpipe()?;

    // 1. socket()
    let listener = tcp_socket(&opts.addr())?;
    // 2. bind()
    bind(&listener, opts.addr())?;
    // 3. listen()
    listen(&listener, opts.backlog)?;
    workbook::announce("listening on", getsockname(&listener)?)?;

    let mut served = 0u64;
    while !stop.requested() {
        // 4. accept(): one client at a time; the next waits in the backlog queue.
        let (client, peer) = match accept(&listener) {
            Ok(accepted) => accepted,
            Err(e) if e.is_interrupted() => continue,
            Err(e) => return Err(e.into()),
        };
        served += 1;
        workbook::log_line!("Connected client {served}");
        match echo(&client) {
            Ok(()) => {}
            // SIGINT/SIGTERM while serving: the loop's condition ends the server.
            Err(e) if e.is_interrupted() => {}
            // This client reset the connection or stopped reading: end it, serve the next.
            Err(e) => workbook::log_error!("error: client {peer}: {e}"),
        }
        close(client)?;
    }
    close(listener)?;
    Ok(())
}

/// Echoes everything one client sends until it closes its side (read() returns 0).
/// Every byte read is written back, however the write is split (write_all).
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

/// The book's echo client, with its single read() per line kept (see the crate docs).
pub fn client(server: SocketAddr) -> anyhow::Result<()> {
    // 1. socket()
    let sock = tcp_socket(&server)?;
    // 2. connect()
    connect(&sock, server)?;
    println!("Connected...........");

    let mut buf = [0u8; BUF_SIZE];
    while let Some(line) = workbook::prompt_line(PROMPT)? {
        if line == "q" || line == "Q" {
            break;
        }
        write_all(&sock, format!("{line}\n").as_bytes())?;
        // The book's flaw, kept for chapter 5: one read(), whatever it returns.
        let n = read(&sock, &mut buf)?;
        if n == 0 {
            bail!("server {server} closed the connection");
        }
        let reply = String::from_utf8_lossy(&buf[..n]);
        println!("Message from server: {}", reply.trim_end_matches('\n'));
    }
    close(sock).context("close the connection")?;
    Ok(())
}

/// The demo: our server as a child process, our client typing two lines and `Q`.
fn demo() -> anyhow::Result<()> {
    let server = workbook::demo::DemoServer::start(&["server", "0"])?;
    let port = server.addr().port().to_string();
    let status = workbook::demo::run_client(
        &["client", "127.0.0.1", &port],
        &["Hello socket!", "How are you?", "Q"],
        |line| line.starts_with("Message from server: "),
    )?;
    if !status.success() {
        bail!("the demo client ended with {status}");
    }
    // The server's read() returns 0 once the client's close() reaches it; wait for
    // the server to close its end too, so the transcript shows both sides finish.
    server.wait_for("the server's close of the client", |line| {
        line.starts_with("close(")
    })?;
    server.stop()
}
