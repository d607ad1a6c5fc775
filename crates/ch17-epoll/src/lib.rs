//! # Chapter 17: epoll (epoll의 이해와 활용)
//!
//! select() hands the kernel the whole fd set on every call and scans all of it, so its
//! cost grows with the number of connections, busy or idle. epoll keeps the interest list
//! in the kernel (epoll_ctl once per fd) and epoll_wait() returns only the ready ones.
//!
//! Level-triggered (the default): epoll_wait() reports an fd as long as it is readable,
//! so one read per wakeup is fine. Edge-triggered (`--edge`, EPOLLET): it reports only
//! *changes*, once; the server must read (and accept) until EAGAIN, or the rest of the
//! data waits for a wakeup that never comes.
//!
//! Subcommand: `echo-server <port> [--edge]` (the book's echo_epollserv and
//! echo_EPETserv). No subcommand: the server and a few clients, level- then
//! edge-triggered.
//!
//! System calls: `setrlimit(RLIMIT_NOFILE)`, `socket`, `bind`, `listen`,
//! `epoll_create1`, `epoll_ctl` (ADD, MOD, DEL), `epoll_wait`, `accept`,
//! `fcntl(O_NONBLOCK)`, `read`, `write`, `close`.
//!
//! What the book's C gets wrong: its edge-triggered server reads with a 4-byte buffer
//! in a loop but writes with a blocking write() to a non-blocking socket and ignores the
//! EAGAIN it gets when the client is not reading, losing data; epoll_wait's EINTR is an
//! error to it. Ours keeps unwritten bytes in an outbox and waits for EPOLLOUT.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use anyhow::bail;
use clap::{Parser, Subcommand};
use syscalls::multiplex::{EpollSet, Interest, event_buffer, set_nonblocking};
use syscalls::{
    Errno, Outbox, StopPipe, accept, bind, close, getsockname, ignore_sigpipe, listen,
    raise_open_file_limit, read, tcp_socket,
};
use workbook::{ServerOpts, TraceOpt};

const BUF_SIZE: usize = 4096;

/// How much echo may wait for a client that is not reading before the server stops
/// reading from it (backpressure).
pub const OUTBOX_LIMIT: usize = 256 * 1024;

/// Chapter 17: an epoll echo server, level- and edge-triggered.
/// With no subcommand, runs a demo of both.
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Role>,
    #[command(flatten)]
    pub trace: TraceOpt,
}

#[derive(Subcommand, Debug)]
pub enum Role {
    /// Echo server on epoll (echo_epollserv; with --edge, echo_EPETserv)
    EchoServer {
        #[command(flatten)]
        opts: ServerOpts,
        /// Edge-triggered (EPOLLET): read and accept until EAGAIN on every wakeup
        #[arg(long)]
        edge: bool,
    },
}

/// Runs the subcommand, or the demo when there is none.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    cli.trace.apply();
    match cli.command {
        Some(Role::EchoServer { opts, edge }) => echo_server(&opts, edge),
        None => demo(),
    }
}

struct Client {
    fd: OwnedFd,
    outbox: Outbox,
    /// Whether EPOLLOUT is in its interest set now.
    watching_out: bool,
    /// Whether EPOLLIN is (off while its outbox is over the limit).
    watching_in: bool,
}

/// The interest set for a client in its current state.
fn interest(client: &Client, edge: bool) -> Interest {
    let mut flags = Interest::EPOLLRDHUP;
    if client.watching_in {
        flags |= Interest::EPOLLIN;
    }
    if client.watching_out {
        flags |= Interest::EPOLLOUT;
    }
    if edge {
        flags |= Interest::EPOLLET;
    }
    flags
}

/// The epoll echo server.
pub fn echo_server(opts: &ServerOpts, edge: bool) -> anyhow::Result<()> {
    // Many connections need many fds: raise the soft limit to the hard one, and say so.
    let (old, new) = raise_open_file_limit()?;
    if new > old {
        workbook::log_error!("raised the open-file limit from {old} to {new}");
    }
    let stop = StopPipe::install()?;
    ignore_sigpipe()?;
    // 1. socket()  2. bind()  3. listen()
    let listener = tcp_socket(&opts.addr())?;
    bind(&listener, opts.addr())?;
    listen(&listener, opts.backlog)?;
    set_nonblocking(&listener)?;
    workbook::announce("listening on", getsockname(&listener)?)?;
    // 4. epoll_create1(), then the listening socket and the stop pipe into its set.
    let epoll = EpollSet::new()?;
    let trigger = if edge {
        Interest::EPOLLET
    } else {
        Interest::empty()
    };
    epoll.add(&listener, Interest::EPOLLIN | trigger)?;
    epoll.add(stop.fd(), Interest::EPOLLIN)?;
    let mut clients: BTreeMap<RawFd, Client> = BTreeMap::new();
    let mut events = event_buffer(256);
    let mut buf = vec![0u8; BUF_SIZE];
    'serve: loop {
        let ready = match epoll.wait(&mut events) {
            Ok(ready) => ready,
            Err(e) if e.is_interrupted() => continue,
            Err(e) => return Err(e.into()),
        };
        for (fd, flags) in ready {
            if fd == stop.fd().as_raw_fd() {
                break 'serve;
            }
            if fd == listener.as_raw_fd() {
                // Edge-triggered: one wakeup may stand for many connections: accept them all.
                loop {
                    match accept(&listener) {
                        Ok((client, _peer)) => {
                            set_nonblocking(&client)?;
                            let c = Client {
                                fd: client,
                                outbox: Outbox::new(OUTBOX_LIMIT),
                                watching_out: false,
                                watching_in: true,
                            };
                            epoll.add(&c.fd, interest(&c, edge))?;
                            workbook::log_line!("connected client: {}", c.fd.as_raw_fd());
                            clients.insert(c.fd.as_raw_fd(), c);
                        }
                        Err(e) if matches!(e.errno, Errno::EAGAIN | Errno::ECONNABORTED) => break,
                        Err(e) if e.is_interrupted() => continue,
                        Err(e) if matches!(e.errno, Errno::EMFILE | Errno::ENFILE) => {
                            workbook::log_error!("error: {e}");
                            break;
                        }
                        Err(e) => return Err(e.into()),
                    }
                    if !edge {
                        break;
                    }
                }
                continue;
            }
            let Some(client) = clients.get_mut(&fd) else {
                continue;
            };
            match serve_client(client, flags, edge, &mut buf) {
                Ok(true) => {
                    // Watch for EPOLLOUT only while there is something to write, and stop
                    // reading while too much is waiting (the client must read first).
                    let want_out = !client.outbox.is_empty();
                    let want_in = !client.outbox.is_full();
                    if want_out != client.watching_out || want_in != client.watching_in {
                        client.watching_out = want_out;
                        client.watching_in = want_in;
                        epoll.modify(&client.fd, interest(client, edge))?;
                    }
                }
                Ok(false) | Err(_) => {
                    let client = clients.remove(&fd).expect("present");
                    epoll.delete(&client.fd)?;
                    close(client.fd)?;
                    workbook::log_line!("closed client: {fd}");
                }
            }
        }
    }
    for (_, client) in std::mem::take(&mut clients) {
        close(client.fd)?;
    }
    close(listener)?;
    Ok(())
}

/// Reads and echoes what is ready. Ok(false): the client is gone.
fn serve_client(
    client: &mut Client,
    flags: Interest,
    edge: bool,
    buf: &mut [u8],
) -> Result<bool, syscalls::SysError> {
    if flags.contains(Interest::EPOLLIN)
        || flags.intersects(Interest::EPOLLHUP | Interest::EPOLLRDHUP | Interest::EPOLLERR)
    {
        // Level-triggered: one read per wakeup. Edge-triggered: until EAGAIN, because
        // no second wakeup comes for data that is already there.
        loop {
            if client.outbox.is_full() {
                break;
            }
            // Read no more than the outbox can take, so the echo always fits.
            let room = client.outbox.room().min(buf.len());
            match read(&client.fd, &mut buf[..room]) {
                Ok(0) => return Ok(false),
                Ok(n) => client
                    .outbox
                    .push(&buf[..n])
                    .expect("read no more than the room left"),
                Err(e) if e.errno == Errno::EAGAIN => break,
                Err(e) if e.is_interrupted() => continue,
                Err(e) if e.is_peer_gone() => return Ok(false),
                Err(e) => return Err(e),
            }
            if !edge {
                break;
            }
        }
    }
    match client.outbox.flush(&client.fd) {
        Ok(_) => Ok(true),
        Err(e) if e.is_peer_gone() => Ok(false),
        Err(e) => Err(e),
    }
}

/// The demo: the server level-triggered, then edge-triggered, each with two clients.
fn demo() -> anyhow::Result<()> {
    for edge in [false, true] {
        let mut args = vec!["echo-server", "0"];
        if edge {
            args.push("--edge");
        }
        println!(
            "{}",
            if edge {
                "edge-triggered (--edge):"
            } else {
                "level-triggered:"
            }
        );
        let server = workbook::demo::DemoServer::start(&args)?;
        let addr = server.addr();
        for i in 1..=2 {
            let stream = std::net::TcpStream::connect(addr)?;
            let line = format!("hello from client {i}\n");
            std::io::Write::write_all(&mut &stream, line.as_bytes())?;
            let mut back = vec![0u8; line.len()];
            std::io::Read::read_exact(&mut &stream, &mut back)?;
            if back != line.as_bytes() {
                bail!("the echo differs");
            }
            println!("client {i}: echo received");
        }
        server.wait_for("the server's close of the second client", |l| {
            l.starts_with("closed client:")
        })?;
        server.stop()?;
    }
    let _ = std::io::Write::flush(&mut std::io::stdout());
    Ok(())
}
