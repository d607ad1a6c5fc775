//! # Chapter 16: separating the I/O streams (입출력 스트림의 분리)
//!
//! ch15 made two streams of one socket, a reader and a writer. They look separate, but
//! they share one fd: closing the writer (fclose) closes the fd, and with it the whole
//! socket, so the reader can read nothing more and what the peer still sends is lost.
//! The fix is a second fd for the writer, dup(); but closing one of two fds of a socket
//! closes nothing, so the peer never sees end of stream. shutdown(SHUT_WR) on the
//! writer's fd is the half-close (ch07) that sends it, whatever fds remain; then the
//! writer's fclose() closes its own fd, and the reader goes on reading.
//!
//! Subcommands: `sep-serv <port>` (the book's sep_serv.c, its bug kept on purpose: the
//! client's last message is lost), `sep-serv2 <port>` (sep_serv2.c: dup(), shutdown(),
//! fclose(), and the client's message arrives), `sep-clnt <ip> <port>` (sep_clnt.c: it
//! prints what the server sends until end of stream, then replies), `dup` (dup.c: dup(),
//! dup2(), and what closing a copy does to a socket). No subcommand: `dup`, then each
//! server with the client.
//!
//! System calls: `dup`, `dup2`, `shutdown(SHUT_WR)`, `close`, `read` and `write` of the
//! buffered streams; the servers' `socket`, `bind`, `listen`, `accept`,
//! `setsockopt(SO_RCVTIMEO)`; the client's `socket`, `connect`.
//!
//! What the book's C gets wrong: sep_serv.c is wrong on purpose, and the book says so.
//! sep_serv2.c and sep_clnt.c ignore fgets()'s NULL: sep_serv2 prints whatever its buffer
//! held when the client sends nothing, and sep_clnt's two fclose()s close one fd twice.
//! Ours prints only what came, waits at most 5 s for it, and closes each fd once.

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use anyhow::bail;
use clap::{Parser, Subcommand};
use syscalls::{
    Errno, FdStream, Shutdown, StopSignals, accept, bind, close, connect, dup, dup2, getsockname,
    ignore_sigpipe, is_interrupted, listen, read, set_recv_timeout, shutdown, tcp_socket,
    wait_readable, write, write_all,
};
use workbook::{ClientOpts, ServerOpts, TraceOpt};

const BUF_SIZE: usize = 1024;

/// What the book's servers send, line by line.
pub const SERVER_LINES: [&str; 3] = [
    "FROM SERVER: Hi~ client? \n",
    "I love all of the world \n",
    "You are awesome! \n",
];

/// What the book's client replies after end of stream.
pub const CLIENT_REPLY: &str = "FROM CLIENT: Thank you! \n";

/// How long a server waits for the client's reply.
const REPLY_DEADLINE: Duration = Duration::from_secs(10);

/// Chapter 16: separating the I/O streams: fclose() closes the socket; dup() and
/// shutdown() half-close it. With no subcommand, runs dup, then each server and the
/// client.
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Demo>,
    #[command(flatten)]
    pub trace: TraceOpt,
}

#[derive(Subcommand, Debug)]
pub enum Demo {
    /// The book's sep_serv.c, bug kept: fclose(writefp) closes the socket, and the client's reply is lost
    SepServ(ServerOpts),
    /// The book's sep_serv2.c: dup(), shutdown(SHUT_WR), fclose(), and the client's reply arrives
    SepServ2(ServerOpts),
    /// The book's sep_clnt.c: prints what comes until end of stream, then replies
    SepClnt(ClientOpts),
    /// dup() and dup2(), and what closing a copy does to a socket (dup.c)
    Dup,
}

/// Runs the subcommand, or the demo when there is none.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    cli.trace.apply();
    match cli.command {
        Some(Demo::SepServ(opts)) => server(&opts, sep_serv),
        Some(Demo::SepServ2(opts)) => server(&opts, sep_serv2),
        Some(Demo::SepClnt(opts)) => sep_clnt(opts.addr()?),
        Some(Demo::Dup) => dup_demo(),
        None => demo(),
    }
}

/// The part both servers share: `socket()`, `bind()`, `listen()`, then `accept()` and
/// `serve` for one client after another, until SIGINT or SIGTERM.
fn server(opts: &ServerOpts, serve: fn(OwnedFd) -> std::io::Result<()>) -> anyhow::Result<()> {
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
            Err(e) if e.is_interrupted() || e.errno == Errno::ECONNABORTED => continue,
            Err(e) => return Err(e.into()),
        };
        // A client that never replies must not hold the server for ever.
        set_recv_timeout(&client, REPLY_DEADLINE)?;
        match serve(client) {
            Ok(()) => {}
            Err(e) if is_interrupted(&e) => {}
            Err(e) => workbook::log_error!("error: client {peer}: {e}"),
        }
    }
    close(listener)?;
    Ok(())
}

/// Writes the book's three lines into the writer stream, and flushes them.
fn send_lines(writefp: &mut impl Write) -> std::io::Result<()> {
    for line in SERVER_LINES {
        writefp.write_all(line.as_bytes())?;
    }
    writefp.flush()
}

/// Reads the client's reply, one line, and prints it; says so when nothing came.
fn print_reply(readfp: &mut impl BufRead) -> std::io::Result<()> {
    let mut reply = Vec::new();
    let n = readfp.take(BUF_SIZE as u64).read_until(b'\n', &mut reply)?;
    if n == 0 {
        workbook::log_line!("the client closed without replying");
    } else {
        workbook::log_line!("{}", String::from_utf8_lossy(&reply).trim_end());
    }
    Ok(())
}

/// The book's sep_serv.c, its bug kept: one fd under both streams, and fclose(writefp)
/// closes it.
fn sep_serv(client: OwnedFd) -> std::io::Result<()> {
    let number = client.as_raw_fd();
    // 5. fdopen(clnt_sock, "w"): the writer owns the socket's one fd ...
    let mut writefp = BufWriter::new(FdStream::from(client));
    send_lines(&mut writefp)?;
    // 6. fclose(writefp): the buffer goes out, then close(): the socket's only fd. The
    //    client reads end of stream, as meant, but the connection is gone both ways.
    drop(writefp);
    // 7. fgets(buf, sizeof(buf), readfp): ... and the reader, fdopen(clnt_sock, "r") on
    //    the same number, reads a closed fd. (Rust would not let a reader outlive the fd
    //    its writer closed; we keep the number and read it anyway, as the C does.)
    // SAFETY: the number was closed just above and nothing has been opened since, so it
    // belongs to no one: read() fails with EBADF, which is the bug shown.
    let closed = unsafe { BorrowedFd::borrow_raw(number) };
    let mut buf = [0u8; BUF_SIZE];
    match read(closed, &mut buf) {
        Ok(n) => workbook::log_line!("{}", String::from_utf8_lossy(&buf[..n]).trim_end()),
        Err(e) => workbook::log_line!(
            "the client's reply is lost: {e} (fclose(writefp) closed the socket's only fd)"
        ),
    }
    Ok(())
}

/// The book's sep_serv2.c: the writer gets its own fd (dup), shutdown(SHUT_WR) sends end
/// of stream, and the reader hears the reply.
fn sep_serv2(client: OwnedFd) -> std::io::Result<()> {
    // 5. fdopen(dup(clnt_sock), "w"): the writer's own fd ...
    let mut writefp = BufWriter::new(FdStream::from(dup(&client).map_err(to_io)?));
    // ... and fdopen(clnt_sock, "r"): the reader keeps the original.
    let readfp = FdStream::from(client);
    send_lines(&mut writefp)?;
    // 6. shutdown(fileno(writefp), SHUT_WR): end of stream for the client. Closing the
    //    writer's fd alone would not send it: the reader's fd still holds the socket.
    shutdown(writefp.get_ref().fd(), Shutdown::Write).map_err(to_io)?;
    // 7. fclose(writefp): closes the copy; the socket lives on through the reader's fd.
    drop(writefp);
    // 8. fgets() and fputs(buf, stdout): the reply sent after end of stream.
    print_reply(&mut BufReader::new(&readfp))?;
    // 9. fclose(readfp): the last fd; the socket is closed.
    drop(readfp);
    Ok(())
}

fn to_io(e: syscalls::SysError) -> std::io::Error {
    std::io::Error::other(e)
}

/// The book's sep_clnt.c: print what comes until end of stream, then reply.
pub fn sep_clnt(server: SocketAddr) -> anyhow::Result<()> {
    // 1. socket()  2. connect()
    let sock = tcp_socket(&server)?;
    connect(&sock, server)?;
    let stream = FdStream::from(sock);
    let mut readfp = BufReader::new(&stream);
    let mut line = Vec::new();
    // 3. fgets() until NULL: every line, then end of stream (the server's half-close).
    loop {
        line.clear();
        if (&mut readfp)
            .take(BUF_SIZE as u64)
            .read_until(b'\n', &mut line)?
            == 0
        {
            break;
        }
        print!("{}", String::from_utf8_lossy(&line));
    }
    std::io::stdout().flush()?;
    // 4. fputs() and fflush(): the reply, on the direction still open.
    let mut writefp = BufWriter::new(&stream);
    writefp.write_all(CLIENT_REPLY.as_bytes())?;
    writefp.flush()?;
    // 5. fclose() of both: one fd, closed once.
    drop(writefp);
    drop(readfp);
    stream.close()?;
    Ok(())
}

/// The book's dup.c, then what it means for a socket: a copy's close() ends nothing,
/// shutdown() ends the direction whatever copies there are.
fn dup_demo() -> anyhow::Result<()> {
    std::io::stdout().flush()?;
    let stdout = std::io::stdout();
    // 1. dup(1): a second fd for the terminal (or pipe) fd 1 is.
    let cfd1 = dup(stdout.as_fd())?;
    // 2. dup2(cfd1, 7): a third, numbered 7.
    // SAFETY: fd 7 is not open in this program, so the copy is its only owner.
    let cfd2 = unsafe { dup2(&cfd1, 7) }?;
    println!("fd1={}, fd2={}", cfd1.as_raw_fd(), cfd2.as_raw_fd());
    std::io::stdout().flush()?;
    write(&cfd1, b"Hi~! \n")?;
    write(&cfd2, b"Nice day~ \n")?;
    close(cfd1)?;
    close(cfd2)?;
    // 3. The copies are closed; fd 1 is still open, and still writes.
    write(stdout.as_fd(), b"Hi~! \n")?;
    // 4. The same with a socket: a copy closed, the connection stays; shutdown() ends it.
    let listener = tcp_socket(&"127.0.0.1:0".parse()?)?;
    bind(&listener, "127.0.0.1:0".parse()?)?;
    listen(&listener, 1)?;
    let addr = getsockname(&listener)?;
    let near = tcp_socket(&addr)?;
    connect(&near, addr)?;
    let (far, _) = accept(&listener)?;
    let copy = dup(&near)?;
    close(copy)?;
    let ended = wait_readable(&far, Duration::from_millis(100))?;
    println!(
        "a copy of the socket closed: the other end sees {}",
        if ended {
            "end of stream (it should not!)"
        } else {
            "nothing, the connection is open through the other fd"
        }
    );
    shutdown(&near, Shutdown::Write)?;
    let mut buf = [0u8; 16];
    let n = read(&far, &mut buf)?;
    println!(
        "shutdown(SHUT_WR) on the one left: the other end reads {n} (end of stream), and could still answer"
    );
    write_all(&far, b"answer")?;
    let n = read(&near, &mut buf)?;
    println!("the answer arrives: {}", String::from_utf8_lossy(&buf[..n]));
    for fd in [near, far, listener] {
        close(fd)?;
    }
    Ok(())
}

/// The demo: dup, then the book's two servers with its client.
fn demo() -> anyhow::Result<()> {
    side_ok("dup", &["dup"])?;
    for (name, args) in [("sep-serv", "sep-serv"), ("sep-serv2", "sep-serv2")] {
        let server = workbook::demo::DemoServer::start_as(name, &[args, "0"])?;
        let port = server.addr().port().to_string();
        side_ok("sep-clnt", &["sep-clnt", "127.0.0.1", &port])?;
        server.wait_for("what became of the reply", |l| {
            l.starts_with("FROM CLIENT") || l.starts_with("the client")
        })?;
        server.stop()?;
    }
    Ok(())
}

fn side_ok(side: &'static str, args: &[&str]) -> anyhow::Result<()> {
    let status = workbook::demo::run_side(side, args, &[], |_| true)?;
    if !status.success() {
        bail!("the {side} demo ended with {status}");
    }
    Ok(())
}
