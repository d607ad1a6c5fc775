//! # Chapter 1: hello, socket
//!
//! The smallest server there is: it accepts a connection, writes `Hello World!`, and
//! closes it. The client connects, reads until the server closes, and prints
//! `Message from server: Hello World!`. The `fds` subcommand shows what a socket is to
//! a process: a file descriptor, numbered like any file's (the workbook's lsof
//! exercise).
//!
//! System calls: server `socket`, `bind`, `listen`, `accept`, `write`, `close`; client
//! `socket`, `connect`, `read` until 0, `close`; `fds` adds `open`.
//!
//! Run it: `cargo run -p ch01-hello` (the demo), `... -- server 9190` with
//! `... -- client 127.0.0.1 9190`, `... -- fds`; add `--trace` to see every call.
//!
//! What the book's C gets wrong: its server writes `sizeof(message)` bytes, which
//! counts the string's terminating NUL, so a `\0` goes on the wire after
//! `Hello World!`; ours writes exactly the 12 bytes of the text. Its client reads once
//! and assumes the whole greeting came; ours reads until end of stream.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use syscalls::{
    StopSignals, accept, bind, close, connect, getsockname, ignore_sigpipe, listen, read,
    tcp_socket, write_all,
};
use workbook::{ClientOpts, ServerOpts, TraceOpt, WireOpt};

/// What the server sends: the text only, no terminating NUL.
pub const GREETING: &[u8] = b"Hello World!";

/// The most the client accepts from the server before it gives up: every read has a
/// limit, and a greeting is short.
const MAX_REPLY: usize = 64 * 1024;

/// Chapter 1: the hello server and client, and the fd numbers a process gets.
/// With no subcommand, runs a demo of both and of `fds`.
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
    /// Hello server: greets every client with `Hello World!` until SIGINT/SIGTERM (hello_server)
    Server(ServerOpts),
    /// Hello client: prints what the server sends (hello_client)
    Client(ClientOpts),
    /// Opens a file and two sockets and shows their fd numbers, as lsof would (fd_seri)
    Fds,
}

/// Runs the subcommand, or the demo when there is none.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    cli.trace.apply();
    match cli.command {
        Some(Role::Server(opts)) => server(&opts),
        Some(Role::Client(opts)) => client(opts.addr()?),
        Some(Role::Fds) => fds(),
        None => workbook::demo::run(&cli.wire, demo),
    }
}

/// The hello server: one greeting per connection.
pub fn server(opts: &ServerOpts) -> anyhow::Result<()> {
    let stop = StopSignals::install()?;
    // A client that resets before our write would otherwise kill us (ch04 explains).
    ignore_sigpipe()?;

    // 1. socket()
    let listener = tcp_socket(&opts.addr())?;
    // 2. bind()
    bind(&listener, opts.addr())?;
    // 3. listen()
    listen(&listener, opts.backlog)?;
    workbook::announce("listening on", getsockname(&listener)?)?;

    while !stop.requested() {
        // 4. accept()
        let (client, peer) = match accept(&listener) {
            Ok(accepted) => accepted,
            Err(e) if e.is_interrupted() => continue,
            Err(e) => return Err(e.into()),
        };
        // 5. write(): the 12 bytes of the text, not sizeof() with its NUL.
        if let Err(e) = write_all(&client, GREETING) {
            eprintln!("error: client {peer}: {e}");
        }
        // 6. close(): the client reads end of stream and knows the greeting is whole.
        close(client)?;
    }
    close(listener)?;
    Ok(())
}

/// The hello client: reads until the server closes the connection.
pub fn client(server: SocketAddr) -> anyhow::Result<()> {
    // 1. socket()
    let sock = tcp_socket(&server)?;
    // 2. connect()
    connect(&sock, server)?;

    // 3. read() until it returns 0: one read may return only part of what was sent.
    let mut message = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = read(&sock, &mut buf)?;
        if n == 0 {
            break;
        }
        message.extend_from_slice(&buf[..n]);
        if message.len() > MAX_REPLY {
            bail!("server {server} sent more than {MAX_REPLY} bytes; a greeting is short");
        }
    }
    println!("Message from server: {}", String::from_utf8_lossy(&message));
    // 4. close()
    close(sock)?;
    Ok(())
}

/// Shows the fd numbers the kernel hands out: 0, 1, 2 are taken before main() runs,
/// so a new file and two sockets get 3, 4 and 5, the lowest free numbers.
pub fn fds() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("workbook-fds-{}", std::process::id()));
    let file = std::fs::File::create(&dir).with_context(|| format!("open {}", dir.display()))?;
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let tcp = tcp_socket(&any)?;
    let udp = syscalls::udp_socket(&any)?;
    println!("file descriptor 1: {} (a file)", file.as_raw_fd());
    println!("file descriptor 2: {} (a TCP socket)", tcp.as_raw_fd());
    println!("file descriptor 3: {} (a UDP socket)", udp.as_raw_fd());
    println!();
    println!(
        "/proc/self/fd, as `lsof -p {}` would show it:",
        std::process::id()
    );
    println!("{:<4} {:<8} NAME", "FD", "TYPE");
    let mut entries: Vec<(i32, String)> = std::fs::read_dir("/proc/self/fd")
        .context("read /proc/self/fd")?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let fd = e.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(e.path()).ok()?;
            Some((fd, target.display().to_string()))
        })
        .collect();
    entries.sort();
    let own_listing = format!("/proc/{}/fd", std::process::id());
    for (fd, target) in entries {
        let note = if target == own_listing {
            "   (the directory handle this listing reads through)"
        } else {
            ""
        };
        let kind = if target.starts_with("socket:") {
            "sock"
        } else if target.starts_with("pipe:") {
            "FIFO"
        } else if target.starts_with("/dev/") {
            "CHR"
        } else if target.starts_with("anon_inode:") {
            "a_inode"
        } else {
            "REG"
        };
        println!("{fd:<4} {kind:<8} {target}{note}");
    }
    close(udp)?;
    close(tcp)?;
    drop(file);
    std::fs::remove_file(&dir).with_context(|| format!("remove {}", dir.display()))?;
    Ok(())
}

/// The demo: the server as a child process, the client as another, then `fds`.
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
    // fds runs as a child too, so that the table shows a fresh process's descriptors
    // rather than the demo's own pipes.
    let status = workbook::demo::run_side("fds", &["fds"], &[], |_| true)?;
    if !status.success() {
        bail!("the fds demo ended with {status}");
    }
    Ok(())
}
