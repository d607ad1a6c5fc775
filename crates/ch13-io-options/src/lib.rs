//! # Chapter 13: the other I/O functions (다양한 입출력 함수)
//!
//! send() and recv() are write() and read() with flags. `MSG_OOB` sends and reads TCP's
//! urgent data: one byte, the last of the send, delivered out of line while the rest of
//! the send goes in band; the receiver learns of it by SIGURG, once it has told the
//! kernel it owns the socket (fcntl F_SETOWN). `MSG_PEEK` looks at what is waiting
//! without taking it, and `MSG_DONTWAIT` makes one call non-blocking. writev() and
//! readv() write from and read into several buffers in one call; like write() and
//! read(), they may do less than all of it.
//!
//! Subcommands: `oob-send <ip> <port>` and `oob-recv <port>` (oob_send.c, oob_recv.c),
//! `peek-send <ip> <port>` and `peek-recv <port>` (peek_send.c, peek_recv.c), `writev`
//! and `readv` (writev.c, readv.c, with their partial cases), `writev-send <ip> <port>
//! <size>` (a message in three buffers with writev() on a non-blocking socket). No
//! subcommand: the urgent byte, the peek, writev and readv in turn.
//!
//! System calls: `send` and `recv` with `MSG_OOB`, `MSG_PEEK`, `MSG_DONTWAIT`;
//! `fcntl(F_SETOWN)`, `sigaction(SIGURG)`, `pipe2` (the signal arrives as a byte in a
//! pipe), `select`; `writev`, `readv`, `poll`, `fcntl(F_SETFL, O_NONBLOCK)`; and the
//! servers' `socket`, `bind`, `listen`, `accept`.
//!
//! What the book's C gets wrong: oob_recv.c calls printf() in its SIGURG handler (not
//! async-signal-safe), `continue`s on every recv() error (a reset connection loops for
//! ever) and writes `buf[str_len] = 0` one past a full buffer; its output reads as if
//! "890" were the urgent message, when only "0" is. peek_recv.c spins at full CPU until
//! data comes, and for ever when the client closes without sending (recv() returns 0,
//! which its loop ignores). Ours: the SIGURG handler writes a byte to a pipe and the
//! main loop reads the urgent byte; errors end the connection; the peek waits between
//! tries, and end of stream ends it.

use std::io::{IoSlice, IoSliceMut, Write};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use anyhow::bail;
use clap::{Parser, Subcommand};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use syscalls::multiplex::{select, set_nonblocking, set_owner};
use syscalls::{
    Errno, MsgFlags, SignalPipe, StopSignals, accept, bind, close, connect, getsockname, listen,
    pipe, read, readv, recv, send, tcp_socket, wait_readable, wait_writable, write_all, writev,
};
use workbook::{ClientOpts, ServerOpts, TraceOpt};

const BUF_SIZE: usize = 30;

/// Chapter 13: send/recv flags (MSG_OOB, MSG_PEEK, MSG_DONTWAIT) and vectored I/O.
/// With no subcommand, runs the urgent byte, the peek, writev and readv in turn.
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
    /// Sends 123, 4 as urgent data, 567, 890 as urgent data, and closes (oob_send.c)
    OobSend {
        #[command(flatten)]
        opts: ClientOpts,
        /// Seconds between sends, so that each urgent byte is read before the next comes
        /// (the book: none)
        #[arg(long, default_value = "0")]
        pause: f64,
    },
    /// Prints what arrives, and the urgent byte apart, told by SIGURG (oob_recv.c)
    OobRecv(ServerOpts),
    /// Sends 123 and closes (peek_send.c)
    PeekSend(ClientOpts),
    /// Peeks at what waits without taking it, then reads it again (peek_recv.c)
    PeekRecv(ServerOpts),
    /// Two buffers in one writev() to the terminal, then a pipe that takes only part (writev.c)
    Writev,
    /// One readv() from standard input into a 5-byte buffer and a 30-byte one (readv.c)
    Readv,
    /// Sends `size <SIZE>\n`, SIZE bytes (a to z, again and again) and `end\n` with writev() on a non-blocking socket, until all is written
    WritevSend {
        #[command(flatten)]
        opts: ClientOpts,
        /// How many bytes of body to send
        size: usize,
    },
}

/// Runs the subcommand, or the demo when there is none.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    cli.trace.apply();
    match cli.command {
        Some(Demo::OobSend { opts, pause }) => oob_send(opts.addr()?, seconds(pause)?),
        Some(Demo::OobRecv(opts)) => oob_recv(&opts),
        Some(Demo::PeekSend(opts)) => peek_send(opts.addr()?),
        Some(Demo::PeekRecv(opts)) => peek_recv(&opts),
        Some(Demo::Writev) => writev_demo(),
        Some(Demo::Readv) => readv_demo(),
        Some(Demo::WritevSend { opts, size }) => writev_send(opts.addr()?, size),
        None => demo(),
    }
}

fn seconds(seconds: f64) -> anyhow::Result<Duration> {
    if !(seconds.is_finite() && (0.0..=60.0).contains(&seconds)) {
        bail!("--pause must be from 0 to 60 seconds, not {seconds}");
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `socket()`, `bind()`, `listen()`, the first line, then `accept()` of one client, as
/// the book's receivers do. `go_on` is asked before each accept() whether to go on (it
/// may wait for the listening socket or a stop); None when it said no.
fn accept_one(
    opts: &ServerOpts,
    mut go_on: impl FnMut(&OwnedFd) -> anyhow::Result<bool>,
) -> anyhow::Result<Option<OwnedFd>> {
    // 1. socket()  2. bind()  3. listen()
    let listener = tcp_socket(&opts.addr())?;
    bind(&listener, opts.addr())?;
    listen(&listener, opts.backlog)?;
    workbook::announce("listening on", getsockname(&listener)?)?;
    // 4. accept()
    let client = loop {
        if !go_on(&listener)? {
            break None;
        }
        match accept(&listener) {
            Ok((client, _)) => break Some(client),
            Err(e) if e.is_interrupted() || e.errno == Errno::ECONNABORTED => continue,
            Err(e) => return Err(e.into()),
        }
    };
    close(listener)?;
    Ok(client)
}

/// What ended a wait: the fds that are readable, and the signals that came.
struct Woken {
    readable: Vec<std::os::fd::RawFd>,
    urgent: bool,
    stop: bool,
}

/// Waits with select() until `fd` or the signal pipe is readable, and takes the signals
/// out of the pipe: SIGURG (urgent data came) or a stop (SIGINT, SIGTERM).
fn wait_for(fd: &OwnedFd, signals: &SignalPipe) -> anyhow::Result<Woken> {
    let readable = loop {
        match select(&[fd.as_fd(), signals.fd()], &[], None) {
            Ok((readable, _)) => break readable,
            Err(e) if e.is_interrupted() => continue,
            Err(e) => return Err(e.into()),
        }
    };
    let mut woken = Woken {
        readable,
        urgent: false,
        stop: false,
    };
    if woken.readable.contains(&signals.fd().as_raw_fd()) {
        for signal in signals.take()? {
            match signal {
                Signal::SIGURG => woken.urgent = true,
                _ => woken.stop = true,
            }
        }
    }
    Ok(woken)
}

// ------------------------------------------------------------------ urgent data

/// The book's oob_send.c.
fn oob_send(server: SocketAddr, pause: Duration) -> anyhow::Result<()> {
    let sock = tcp_socket(&server)?;
    connect(&sock, server)?;
    for (bytes, flags) in [
        (&b"123"[..], MsgFlags::empty()),
        (b"4", MsgFlags::MSG_OOB),
        (b"567", MsgFlags::empty()),
        // Only the last byte, 0, is urgent: 8 and 9 go in band.
        (b"890", MsgFlags::MSG_OOB),
    ] {
        send(&sock, bytes, flags)?;
        std::thread::sleep(pause);
    }
    close(sock)?;
    Ok(())
}

/// The book's oob_recv.c: in-band data printed as it comes, the urgent byte apart.
///
/// The book reads the urgent byte in the SIGURG handler and printf()s it there. Ours
/// keeps the handler to async-signal-safe work: it writes the signal's number to a pipe
/// ([`SignalPipe`]), and the main loop, which waits for the socket and the pipe together
/// with select(), reads the urgent byte with `recv(MSG_OOB)` when the pipe says SIGURG
/// came. (Waiting in recv() and looking at a flag instead would miss a SIGURG that lands
/// between the look and the recv().)
pub fn oob_recv(opts: &ServerOpts) -> anyhow::Result<()> {
    // SIGURG, and the stop signals, arrive as bytes in a pipe watched with the socket.
    let signals = SignalPipe::install(
        &[Signal::SIGURG, Signal::SIGINT, Signal::SIGTERM],
        "write its number to the signal pipe",
    )?;
    let Some(sock) = accept_one(opts, |listener| Ok(!wait_for(listener, &signals)?.stop))? else {
        return Ok(());
    };
    // 5. fcntl(F_SETOWN): this process is the one told (SIGURG) of urgent data.
    set_owner(&sock, Pid::this())?;
    let mut buf = [0u8; BUF_SIZE];
    loop {
        // 6. Wait for data or a signal, whichever comes first.
        let woken = wait_for(&sock, &signals)?;
        if woken.urgent {
            read_urgent(&sock)?;
        }
        if woken.stop {
            break;
        }
        if woken.readable.contains(&sock.as_raw_fd()) {
            // 7. recv(): in-band data. It stops before the urgent byte, never through it.
            let n = recv(&sock, &mut buf, MsgFlags::empty())?;
            if n == 0 {
                break;
            }
            println!("{}", text(&buf[..n]));
        }
    }
    close(sock)?;
    Ok(())
}

/// `recv(MSG_OOB)`: the urgent byte, out of line.
fn read_urgent(sock: &OwnedFd) -> anyhow::Result<()> {
    let mut urgent = [0u8; BUF_SIZE];
    match recv(sock, &mut urgent, MsgFlags::MSG_OOB) {
        Ok(n) => println!("Urgent message: {}", text(&urgent[..n])),
        // EINVAL: no urgent byte to read any more (a newer urgent send replaced it before
        // we got here, and it went back into the stream). EAGAIN: the urgent pointer came
        // ahead of its byte, which the next segment brings.
        Err(e) if matches!(e.errno, Errno::EINVAL | Errno::EAGAIN) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

// ------------------------------------------------------------------ peeking

/// The book's peek_send.c.
fn peek_send(server: SocketAddr) -> anyhow::Result<()> {
    let sock = tcp_socket(&server)?;
    connect(&sock, server)?;
    write_all(&sock, b"123")?;
    close(sock)?;
    Ok(())
}

/// How long the peek loop waits between tries, doing nothing (a real program would do
/// its other work there).
const BETWEEN_PEEKS: Duration = Duration::from_millis(100);

/// The book's peek_recv.c: peek until something waits, then read the same bytes again.
pub fn peek_recv(opts: &ServerOpts) -> anyhow::Result<()> {
    let stop = StopSignals::install()?;
    let Some(sock) = accept_one(opts, |_| Ok(!stop.requested()))? else {
        return Ok(());
    };
    let mut buf = [0u8; BUF_SIZE];
    let mut said = false;
    // 5. recv(MSG_PEEK | MSG_DONTWAIT): look without taking, and without waiting.
    let n = loop {
        match recv(&sock, &mut buf, MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT) {
            Ok(0) => {
                // End of stream: the book's loop ignores it, and spins for ever.
                println!("The client closed the connection without sending anything");
                close(sock)?;
                return Ok(());
            }
            Ok(n) => break n,
            Err(e) if e.errno == Errno::EAGAIN => {
                if !said {
                    println!("Nothing to read yet: the program can do other work meanwhile");
                    said = true;
                }
                // The book tries again at once, at full CPU. We wait up to 100 ms for the
                // socket instead: another program would do its other work here.
                match wait_readable(&sock, BETWEEN_PEEKS) {
                    Err(e) if !e.is_interrupted() => return Err(e.into()),
                    _ => {}
                }
            }
            Err(e) if e.is_interrupted() => {}
            Err(e) => return Err(e.into()),
        }
        if stop.requested() {
            close(sock)?;
            return Ok(());
        }
    };
    println!("Buffering {n} bytes: {}", text(&buf[..n]));
    // 6. recv() again, no flags: the same bytes, taken this time.
    let n = recv(&sock, &mut buf, MsgFlags::empty())?;
    println!("Read again: {}", text(&buf[..n]));
    close(sock)?;
    Ok(())
}

// ------------------------------------------------------------------ readv and writev

/// What is left of `parts` once `done` bytes of them are written: the buffers not yet
/// reached whole, the one writing stopped in from where it stopped.
pub fn rest<'a>(parts: &[&'a [u8]], mut done: usize) -> Vec<IoSlice<'a>> {
    let mut out = Vec::new();
    for part in parts {
        if done >= part.len() {
            done -= part.len();
        } else {
            out.push(IoSlice::new(&part[done..]));
            done = 0;
        }
    }
    out
}

/// The book's writev.c, then what it does not show: a writev() that writes only part.
fn writev_demo() -> anyhow::Result<()> {
    // What println!() holds must go out before writev() writes to the same fd.
    std::io::stdout().flush()?;
    let stdout = std::io::stdout();
    // 1. writev(1, ...): two buffers, one call.
    let n = writev(
        stdout.as_fd(),
        &[IoSlice::new(b"ABCDEFG"), IoSlice::new(b"1234567")],
    )?;
    println!();
    println!("Write bytes: {n}");
    // 2. The partial case: a non-blocking pipe with room for less than we give it.
    let (read_end, write_end) = pipe()?;
    set_nonblocking(&write_end)?;
    set_nonblocking(&read_end)?;
    let body = vec![b'x'; 256 * 1024];
    let parts: [&[u8]; 3] = [b"header\n", &body, b"end\n"];
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let mut written = writev(&write_end, &rest(&parts, 0))?;
    println!(
        "writev() of {total} bytes in 3 buffers into a pipe: it wrote {written}, all the pipe had room for"
    );
    let mut calls = 1;
    let mut drain = vec![0u8; 64 * 1024];
    while written < total {
        // The reader's side takes what is in the pipe (here, we do) ...
        loop {
            match read(&read_end, &mut drain) {
                Ok(n) if n > 0 => continue,
                Err(e) if e.errno != Errno::EAGAIN => return Err(e.into()),
                _ => break,
            }
        }
        // ... and writev() is called again for the rest, from where it stopped.
        written += writev(&write_end, &rest(&parts, written))?;
        calls += 1;
    }
    println!(
        "after {calls} writev() calls, each from where the last one stopped, all {total} bytes were written"
    );
    Ok(())
}

/// The book's readv.c: one readv() from standard input into two buffers.
fn readv_demo() -> anyhow::Result<()> {
    let mut first = [0u8; 5];
    let mut second = [0u8; BUF_SIZE];
    let stdin = std::io::stdin();
    let n = readv(
        stdin.as_fd(),
        &mut [IoSliceMut::new(&mut first), IoSliceMut::new(&mut second)],
    )?;
    println!("Read bytes: {n}");
    println!(
        "First message: {}",
        text(&first[..n.min(first.len())]).trim_end()
    );
    println!(
        "Second message: {}",
        text(&second[..n.saturating_sub(first.len())]).trim_end()
    );
    if n <= first.len() {
        println!(
            "(readv() fills the first buffer before the second: this time the second got nothing)"
        );
    }
    Ok(())
}

/// The body `writev-send` sends: `a` to `z`, again and again, `size` bytes.
pub fn body_of(size: usize) -> Vec<u8> {
    (0..size).map(|i| b'a' + (i % 26) as u8).collect()
}

/// Sends a header, a body and a trailer with writev() on a non-blocking socket, calling
/// it again for whatever each call did not write.
pub fn writev_send(server: SocketAddr, size: usize) -> anyhow::Result<()> {
    let header = format!("size {size}\n");
    let body = body_of(size);
    let parts: [&[u8]; 3] = [header.as_bytes(), &body, b"end\n"];
    let total: usize = parts.iter().map(|p| p.len()).sum();
    // 1. socket()  2. connect()
    let sock = tcp_socket(&server)?;
    connect(&sock, server)?;
    // 3. Non-blocking: a writev() that would wait writes what fits now and returns.
    set_nonblocking(&sock)?;
    let mut sent = 0;
    while sent < total {
        // 4. writev() of what is left, from where the last call stopped.
        match writev(&sock, &rest(&parts, sent)) {
            Ok(n) => {
                sent += n;
                println!("writev() wrote {n} bytes: {sent} of {total}");
            }
            Err(e) if e.errno == Errno::EAGAIN || e.is_interrupted() => {}
            Err(e) => return Err(e.into()),
        }
        if sent < total {
            // 5. Wait until the socket can take more.
            wait_writable(&sock, Duration::from_secs(3600))?;
        }
    }
    println!("Write bytes: {sent}");
    close(sock)?;
    Ok(())
}

// ------------------------------------------------------------------ the demo

/// The demo: urgent data, the peek, writev and readv.
fn demo() -> anyhow::Result<()> {
    // Urgent data: with a pause between sends, each urgent byte is read before the next
    // urgent send replaces it.
    let server = workbook::demo::DemoServer::start_as("oob-recv", &["oob-recv", "0"])?;
    let port = server.addr().port().to_string();
    side_ok(
        "oob-send",
        &["oob-send", "127.0.0.1", &port, "--pause", "0.2"],
        &[],
    )?;
    server.wait_for("the second urgent byte", |l| l == "Urgent message: 0")?;
    server.stop()?;
    let server = workbook::demo::DemoServer::start_as("peek-recv", &["peek-recv", "0"])?;
    let port = server.addr().port().to_string();
    side_ok("peek-send", &["peek-send", "127.0.0.1", &port], &[])?;
    server.wait_for("the second read", |l| l.starts_with("Read again: "))?;
    server.stop()?;
    side_ok("writev", &["writev"], &[])?;
    side_ok("readv", &["readv"], &["I like TCP/IP socket programming~"])?;
    side_ok("readv", &["readv"], &["Hi"])?;
    Ok(())
}

fn side_ok(side: &'static str, args: &[&str], inputs: &[&str]) -> anyhow::Result<()> {
    let status = workbook::demo::run_side(side, args, inputs, |_| true)?;
    if !status.success() {
        bail!("the {side} demo ended with {status}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rest_starts_where_writing_stopped() {
        let parts: [&[u8]; 3] = [b"ab", b"cdef", b"g"];
        let shown =
            |done| -> Vec<Vec<u8>> { rest(&parts, done).iter().map(|s| s.to_vec()).collect() };
        assert_eq!(shown(0), [b"ab".to_vec(), b"cdef".to_vec(), b"g".to_vec()]);
        assert_eq!(shown(3), [b"def".to_vec(), b"g".to_vec()]);
        assert_eq!(shown(6), [b"g".to_vec()]);
        assert!(shown(7).is_empty());
    }
}
