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
    AcceptPause, Errno, Outbox, StopPipe, accept, bind, close, getsockname, ignore_sigpipe, listen,
    raise_open_file_limit, read, tcp_socket,
};
use workbook::{ServerOpts, TraceOpt, WireOpt};

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
    #[command(flatten)]
    pub wire: WireOpt,
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
        None => workbook::demo::run(&cli.wire, demo),
    }
}

struct Client {
    fd: OwnedFd,
    outbox: Outbox,
    /// The client half-closed (read returned 0): nothing more to read. It is closed once
    /// its outbox is empty, never before (rule 1).
    read_closed: bool,
    /// Edge-triggered: the last read loop stopped before EAGAIN (the outbox was full), so
    /// data may be waiting that no new edge will report (rule 2).
    unread: bool,
    /// What the epoll set watches it for now.
    watching: Interest,
}

/// What a client should be watched for in its present state: input while it may still
/// send and its outbox has room, output while something waits for it.
fn wanted(client: &Client, edge: bool) -> Interest {
    let mut flags = Interest::empty();
    if !client.read_closed && !client.outbox.is_full() {
        flags |= Interest::EPOLLIN | Interest::EPOLLRDHUP;
    }
    if !client.outbox.is_empty() {
        flags |= Interest::EPOLLOUT;
    }
    if edge {
        flags |= Interest::EPOLLET;
    }
    flags
}

/// The epoll echo server.
///
/// Three rules keep edge-triggered mode correct by construction (and cost nothing
/// level-triggered):
/// 1. flush before close: a client that half-closed is closed only once its outbox is
///    empty (data and FIN often arrive in one wakeup);
/// 2. re-arm whenever a read loop stops before EAGAIN: EPOLL_CTL_MOD makes the kernel
///    look at the fd again and report what is waiting, as a new edge would;
/// 3. accept until EAGAIN, and when accepting pauses for want of fds, stop watching the
///    listening socket and re-arm it (rule 2 again) when accepting resumes.
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
    let mut listening = true;
    let mut pause = AcceptPause::default();
    let mut clients: BTreeMap<RawFd, Client> = BTreeMap::new();
    let mut events = event_buffer(256);
    let mut buf = vec![0u8; BUF_SIZE];
    'serve: loop {
        // Rule 3: while accepting is paused the listening socket is not watched (its
        // waiting connection would wake a level-triggered loop at once, for ever); when
        // the pause ends, MOD re-arms it and what waited is reported.
        if listening == pause.is_paused() {
            listening = !listening;
            let watch = if listening {
                Interest::EPOLLIN | trigger
            } else {
                Interest::empty()
            };
            epoll.modify(&listener, watch)?;
        }
        let ready = match epoll.wait(&mut events, pause.timeout()) {
            Ok(ready) => ready,
            Err(e) if e.is_interrupted() => continue,
            Err(e) => return Err(e.into()),
        };
        for (fd, flags) in ready {
            if fd == stop.fd().as_raw_fd() {
                break 'serve;
            }
            if fd == listener.as_raw_fd() {
                // Edge-triggered: one wakeup may stand for many connections: accept them
                // all, until EAGAIN (rule 3).
                loop {
                    match accept(&listener) {
                        Ok((client, _peer)) => {
                            pause.accepted();
                            set_nonblocking(&client)?;
                            let mut c = Client {
                                fd: client,
                                outbox: Outbox::new(OUTBOX_LIMIT),
                                read_closed: false,
                                unread: false,
                                watching: Interest::empty(),
                            };
                            c.watching = wanted(&c, edge);
                            epoll.add(&c.fd, c.watching)?;
                            workbook::log_line!("connected client: {}", c.fd.as_raw_fd());
                            clients.insert(c.fd.as_raw_fd(), c);
                        }
                        Err(e) if e.errno == Errno::EAGAIN => break,
                        // A client that left before we took it, or a signal: the queue
                        // may hold more, go on.
                        Err(e) if e.errno == Errno::ECONNABORTED || e.is_interrupted() => {
                            continue;
                        }
                        // Out of fds: pause (the loop's top stops watching the listener).
                        Err(e) if pause.out_of_descriptors(&e) => break,
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
            let gone = match serve_client(client, flags, edge, &mut buf) {
                Ok(()) => client.read_closed && client.outbox.is_empty(),
                Err(_) => true,
            };
            if gone {
                let client = clients.remove(&fd).expect("present");
                epoll.delete(&client.fd)?;
                close(client.fd)?;
                workbook::log_line!("closed client: {fd}");
                pause.descriptor_freed();
                continue;
            }
            // Watch for what the client's state needs now (EPOLLOUT only while something
            // waits: always watching it would wake the loop for nothing). Rule 2: a read
            // loop that stopped before EAGAIN is re-armed even when nothing else changed.
            let want = wanted(client, edge);
            if want != client.watching || (client.unread && want.contains(Interest::EPOLLIN)) {
                epoll.modify(&client.fd, want)?;
                client.watching = want;
                client.unread = false;
            }
        }
    }
    for (_, client) in std::mem::take(&mut clients) {
        close(client.fd)?;
    }
    close(listener)?;
    Ok(())
}

/// Reads and echoes what is ready. Err: the client is gone (reset, or an error).
fn serve_client(
    client: &mut Client,
    flags: Interest,
    edge: bool,
    buf: &mut [u8],
) -> Result<(), syscalls::SysError> {
    if !client.read_closed
        && (flags.contains(Interest::EPOLLIN)
            || flags.intersects(Interest::EPOLLHUP | Interest::EPOLLRDHUP | Interest::EPOLLERR))
    {
        // Level-triggered: one read per wakeup. Edge-triggered: until EAGAIN, because
        // no second wakeup comes for data that is already there.
        loop {
            if client.outbox.is_full() {
                // Stopped before EAGAIN: re-arm once there is room (rule 2).
                client.unread = edge;
                break;
            }
            // Read no more than the outbox can take, so the echo always fits.
            let room = client.outbox.room().min(buf.len());
            match read(&client.fd, &mut buf[..room]) {
                // End of stream: no more reads, but what is read goes out first (rule 1).
                Ok(0) => {
                    client.read_closed = true;
                    break;
                }
                Ok(n) => client
                    .outbox
                    .push(&buf[..n])
                    .expect("read no more than the room left"),
                Err(e) if e.errno == Errno::EAGAIN => break,
                Err(e) if e.is_interrupted() => continue,
                Err(e) => return Err(e),
            }
            if !edge {
                break;
            }
        }
    }
    client.outbox.flush(&client.fd).map(|_| ())
}

/// The demo: the server level-triggered, then edge-triggered, each with two clients.
fn demo() -> anyhow::Result<()> {
    for edge in [false, true] {
        let mut args = vec!["echo-server", "0"];
        if edge {
            args.push("--edge");
        }
        workbook::demo::note(if edge {
            "edge-triggered (--edge):"
        } else {
            "level-triggered:"
        });
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
            workbook::demo::note(&format!("client {i}: echo received"));
        }
        server.wait_for("the server's close of the second client", |l| {
            l.starts_with("closed client:")
        })?;
        server.stop()?;
    }
    let _ = std::io::Write::flush(&mut std::io::stdout());
    Ok(())
}
