//! # Chapter 9: socket options and TCP from the inside (소켓의 다양한 옵션, TIME_WAIT)
//!
//! The book's socket-option programs, with what the kernel really does:
//!
//! * `sock-type` (`sock_type.c`): SO_TYPE of a TCP and a UDP socket.
//! * `get-buf` (`get_buf.c`): the buffer sizes a socket starts with, and where they come
//!   from.
//! * `set-buf` (`set_buf.c`): asking for 3 KiB buffers gets 6 KiB: Linux doubles what it
//!   is asked for, enforces a floor and a cap.
//! * `nagle` (with `echo-server [--nodelay]` and `nagle-client [--nodelay]`): a request
//!   or reply written in two pieces costs a delayed ACK (about 40 ms) per round trip
//!   with Nagle's algorithm on; TCP_NODELAY cures it. Measured now, on this machine.
//!
//! And three facts the book states and no program of it shows, made visible from the
//! kernel's own table of TCP sockets (what `ss` shows, asked for one socket at a time
//! through sock_diag: `workbook::diag`):
//!
//! * `backlog`: the three-way handshake is completed by the *kernel*, after listen() and
//!   before any accept(). Connections wait, ESTABLISHED, in the listening socket's queue
//!   (at most backlog + 1 on Linux); accept() only takes the oldest off it. When the queue
//!   is full the next SYN is dropped, and that client's connect() waits for its SYN to be
//!   sent again (about a second later).
//! * `states`: one connection through LISTEN, ESTABLISHED, FIN_WAIT2 and CLOSE_WAIT, and
//!   TIME_WAIT on the side that closed first.
//! * `reuseaddr`: a server restarted while its last connection is in TIME_WAIT cannot
//!   bind() its port (EADDRINUSE) unless it sets SO_REUSEADDR.
//!
//! System calls: `socket`, `bind`, `listen`, `connect` (non-blocking), `poll`, `accept`,
//! `close`, `getsockopt(SO_TYPE, SO_RCVBUF, SO_SNDBUF)`, `setsockopt(SO_REUSEADDR,
//! SO_RCVBUF, SO_SNDBUF, TCP_NODELAY)`, `read`, `write`, `fcntl(O_NONBLOCK)`.
//!
//! What the book gets wrong: nothing in its code, but readers come away thinking that
//! accept() performs the handshake (SYN+ACK is sent by the kernel on receipt of the SYN,
//! not when accept() runs), and that getsockopt() returns the buffer size setsockopt()
//! was given (Linux returns twice that); these demos show both.

mod nagle;
mod sockopt;

pub use nagle::RoundTrips;

use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::{Parser, Subcommand};
use syscalls::multiplex::set_nonblocking;
use syscalls::{
    Errno, accept, bind, close, connect, getsockname, listen, set_reuseaddr, tcp_socket,
};
use workbook::{ClientOpts, ServerOpts, TraceOpt, WireOpt};

/// Chapter 9: socket options, the handshake, the backlog queue, TCP states and
/// TIME_WAIT, made visible. With no subcommand, runs every demo.
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Demo>,
    #[command(flatten)]
    pub trace: TraceOpt,
    #[command(flatten)]
    pub wire: WireOpt,
}

#[derive(Subcommand, Debug)]
pub enum Demo {
    /// Connections complete before accept(); a full queue drops the next SYN; accept() is FIFO
    Backlog {
        /// The listen() backlog
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(i32).range(0..=64))]
        backlog: i32,
        /// How many clients connect (default: two more than fit)
        #[arg(long)]
        clients: Option<usize>,
        /// Wait this long before the first accept(), to look with `ss -ltn` meanwhile
        #[arg(long, default_value = "0", value_name = "SECONDS")]
        pause: f64,
    },
    /// One connection through its states, as the kernel reports them
    States,
    /// bind() during TIME_WAIT: EADDRINUSE without SO_REUSEADDR, success with it
    Reuseaddr,
    /// SO_TYPE of a TCP and a UDP socket (the book's sock_type.c)
    SockType,
    /// The buffer sizes a TCP socket starts with (the book's get_buf.c)
    GetBuf,
    /// Ask for 3 KiB buffers and read back what the kernel set (the book's set_buf.c)
    SetBuf,
    /// Nagle and the delayed ACK: both sides with and without TCP_NODELAY, measured now
    Nagle {
        /// Round trips for each combination
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1000))]
        rounds: u64,
    },
    /// Echo server: answers each line at once, written in two pieces (a header, then a body)
    EchoServer {
        #[command(flatten)]
        opts: ServerOpts,
        /// Set TCP_NODELAY on each client's socket: the reply's second piece goes at once
        #[arg(long)]
        nodelay: bool,
    },
    /// Client: each request in two writes, the whole reply read, each round trip timed
    NagleClient {
        #[command(flatten)]
        opts: ClientOpts,
        /// Set TCP_NODELAY: the request's second piece goes at once
        #[arg(long)]
        nodelay: bool,
        /// How many round trips
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=10000))]
        rounds: u64,
    },
}

/// Runs the demo, or all three when there is none.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    cli.trace.apply();
    // Every subcommand is a demo in this process: with --wire, each runs in a network of
    // its own with its segments shown.
    workbook::demo::run_here(&cli.wire, || match cli.command {
        Some(Demo::Backlog {
            backlog,
            clients,
            pause,
        }) => {
            if !(pause.is_finite() && (0.0..=600.0).contains(&pause)) {
                bail!("--pause must be from 0 to 600 seconds, not {pause}");
            }
            backlog_demo(
                backlog,
                clients.unwrap_or(backlog as usize + 3),
                Duration::from_secs_f64(pause),
            )
        }
        Some(Demo::States) => states(),
        Some(Demo::Reuseaddr) => reuseaddr(),
        Some(Demo::SockType) => sockopt::sock_type(),
        Some(Demo::GetBuf) => sockopt::get_buf(),
        Some(Demo::SetBuf) => sockopt::set_buf(),
        Some(Demo::Nagle { rounds }) => nagle::demo(rounds as usize),
        Some(Demo::EchoServer { opts, nodelay }) => nagle::echo_server(&opts, nodelay),
        Some(Demo::NagleClient {
            opts,
            nodelay,
            rounds,
        }) => nagle::nagle_client(opts.addr()?, nodelay, rounds as usize),
        None => {
            println!("$ ch09-tcp-inside sock-type");
            sockopt::sock_type()?;
            println!("\n$ ch09-tcp-inside get-buf");
            sockopt::get_buf()?;
            println!("\n$ ch09-tcp-inside set-buf");
            sockopt::set_buf()?;
            println!("\n$ ch09-tcp-inside nagle");
            nagle::demo(10)?;
            println!("\n$ ch09-tcp-inside backlog");
            backlog_demo(2, 5, Duration::ZERO)?;
            println!("\n$ ch09-tcp-inside states");
            states()?;
            println!("\n$ ch09-tcp-inside reuseaddr");
            reuseaddr()
        }
    })
}

/// The kernel's name for a TCP state number (what `ss` and /proc/net/tcp show).
pub fn state_name(state: u8) -> &'static str {
    workbook::diag::tcp_state_name(state)
}

/// The state of the socket `local -> remote`, as the kernel reports it now: asked of it
/// through sock_diag, for that one socket, as `ss` asks (reading /proc/net/tcp would make
/// the kernel print every socket of the machine, thousands of them in TIME_WAIT after a
/// busy minute, and take as long).
fn state_of(local: SocketAddr, remote: SocketAddr) -> anyhow::Result<&'static str> {
    Ok(workbook::diag::connection(local, remote).map_or("(gone)", |r| state_name(r.state)))
}

/// Waits (with a deadline) until `fd`'s non-blocking connect() has finished.
fn connected_within(fd: &OwnedFd, limit: Duration) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLOUT)];
    let ms = limit.as_millis() as u16;
    matches!(poll(&mut fds, PollTimeout::from(ms)), Ok(n) if n > 0)
}

/// The backlog demo.
fn backlog_demo(backlog: i32, clients: usize, pause: Duration) -> anyhow::Result<()> {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let listener = tcp_socket(&any)?;
    bind(&listener, any)?;
    listen(&listener, backlog)?;
    let server = getsockname(&listener)?;
    println!("listening on {server} with backlog {backlog}; accept() is not called yet");

    let mut socks: Vec<(OwnedFd, SocketAddr)> = Vec::new();
    for i in 1..=clients {
        let s = tcp_socket(&server)?;
        set_nonblocking(&s)?;
        match connect(&s, server) {
            Ok(()) => {}
            Err(e) if e.errno == Errno::EINPROGRESS => {}
            Err(e) => return Err(e.into()),
        }
        let me = getsockname(&s)?;
        // Give the handshake a moment to happen (loopback: microseconds).
        let done = connected_within(&s, Duration::from_millis(300));
        let state = state_of(me, server)?;
        if done && state == "ESTABLISHED" {
            println!(
                "client {i} (port {}): {state} before any accept()",
                me.port()
            );
        } else {
            println!(
                "client {i} (port {}): connect() pending, {state}: the queue is full, its SYN was dropped",
                me.port()
            );
        }
        socks.push((s, me));
    }
    let queued = workbook::diag::listen_queue(server.port()).map_or(0, |q| q.waiting);
    println!(
        "queued: {queued} completed connections wait in the listen queue (ss -ltn shows it as Recv-Q)"
    );
    if !pause.is_zero() {
        println!(
            "pausing {:.1} s before accept(): try `ss -tn state all '( sport = :{} or dport = :{} )'`",
            pause.as_secs_f64(),
            server.port(),
            server.port()
        );
        let _ = std::io::Write::flush(&mut std::io::stdout());
        // A pause the user asked for, to look from outside; nothing waits on it.
        std::thread::sleep(pause);
    }

    // accept() one at a time: the oldest first.
    let pending: Vec<usize> = (1..=socks.len())
        .filter(|i| {
            state_of(socks[i - 1].1, server)
                .map(|s| s != "ESTABLISHED")
                .unwrap_or(true)
        })
        .collect();
    let mut order = Vec::new();
    let mut room_since: Option<Instant> = None;
    for n in 1..=clients {
        let (conn, peer) = loop {
            match accept(&listener) {
                Ok(got) => break got,
                Err(e) if e.is_interrupted() => continue,
                Err(e) => return Err(e.into()),
            }
        };
        let who = socks
            .iter()
            .position(|(_, a)| *a == peer)
            .map_or(0, |i| i + 1);
        match (pending.contains(&who), room_since) {
            (true, Some(since)) => println!(
                "accept() #{n} -> client {who} (port {}): it got in {:.1} s after the queue had room, when its SYN was sent again",
                peer.port(),
                since.elapsed().as_secs_f64()
            ),
            _ => println!("accept() #{n} -> client {who} (port {})", peer.port()),
        }
        room_since.get_or_insert_with(Instant::now);
        order.push(who);
        close(conn)?;
    }
    // The queued ones come out first, oldest first. The ones whose SYNs were dropped come
    // in when their own retransmission timers fire, in whichever order those fire.
    let queued: Vec<usize> = order
        .iter()
        .copied()
        .filter(|w| !pending.contains(w))
        .collect();
    let fifo = queued.windows(2).all(|w| w[0] < w[1]) && order.starts_with(&queued);
    println!(
        "FIFO: {} (accept() order {order:?}; the queued ones in connect order{})",
        if fifo { "yes" } else { "no" },
        if pending.is_empty() {
            ""
        } else {
            ", then the ones whose SYNs were dropped, as their retransmissions came"
        }
    );
    for (s, _) in socks {
        close(s)?;
    }
    close(listener)?;
    Ok(())
}

/// The states demo: the client closes first.
fn states() -> anyhow::Result<()> {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let listener = tcp_socket(&any)?;
    bind(&listener, any)?;
    listen(&listener, 1)?;
    let server = getsockname(&listener)?;
    let show = |what: &str, local: SocketAddr, remote: SocketAddr| -> anyhow::Result<()> {
        println!("{what:<44} {}", state_of(local, remote)?);
        Ok(())
    };
    println!(
        "{:<44} {}",
        format!("server {server} after listen()"),
        state_name(0x0A)
    );
    let client = tcp_socket(&server)?;
    connect(&client, server)?;
    let c = getsockname(&client)?;
    let (conn, _) = accept(&listener)?;
    show(&format!("client {c} after connect()"), c, server)?;
    show("server side after accept()", server, c)?;
    close(client)?;
    // The FIN is sent and acknowledged: wait (with a deadline) for the states to settle.
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until && state_of(server, c)? != "CLOSE_WAIT" {
        std::thread::sleep(Duration::from_millis(5));
    }
    show("client after its close() (it closed first)", c, server)?;
    show("server side, not closed yet", server, c)?;
    close(conn)?;
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until && state_of(c, server)? != "TIME_WAIT" {
        std::thread::sleep(Duration::from_millis(5));
    }
    show("client after the server's close()", c, server)?;
    show("server side after its close()", server, c)?;
    println!(
        "TIME_WAIT is on port {}, the side that closed first; it lasts 60 s on Linux",
        c.port()
    );
    close(listener)?;
    Ok(())
}

/// A server that accepts one connection and closes it first (as a server stopped with
/// Ctrl-C does), leaving TIME_WAIT on its own port. Returns that port.
fn server_closes_first(reuse: bool) -> anyhow::Result<SocketAddr> {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let listener = tcp_socket(&any)?;
    set_reuseaddr(&listener, reuse)?;
    bind(&listener, any)?;
    listen(&listener, 1)?;
    let server = getsockname(&listener)?;
    let client = tcp_socket(&server)?;
    connect(&client, server)?;
    let c = getsockname(&client)?;
    let (conn, _) = accept(&listener)?;
    close(conn)?;
    close(listener)?;
    close(client)?;
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until && state_of(server, c)? != "TIME_WAIT" {
        std::thread::sleep(Duration::from_millis(5));
    }
    println!(
        "a server {} SO_REUSEADDR closed first: its connection {server} -> {c} is in {}",
        if reuse { "with" } else { "without" },
        state_of(server, c)?
    );
    Ok(server)
}

/// bind() on `addr` again, with or without SO_REUSEADDR; prints and returns the result.
fn restart(addr: SocketAddr, reuse: bool) -> anyhow::Result<bool> {
    let again = tcp_socket(&addr)?;
    set_reuseaddr(&again, reuse)?;
    let ok = match bind(&again, addr) {
        Ok(()) => true,
        Err(e) if e.errno == Errno::EADDRINUSE => false,
        Err(e) => return Err(e.into()),
    };
    println!(
        "  restart {} SO_REUSEADDR: bind({addr}) {}",
        if reuse { "with" } else { "without" },
        if ok { "succeeds" } else { "fails: EADDRINUSE" }
    );
    close(again)?;
    Ok(ok)
}

/// The reuseaddr demo: TIME_WAIT on the server's own port blocks a restart, unless both
/// the old server and the new one set SO_REUSEADDR (Linux asks it of both sockets).
fn reuseaddr() -> anyhow::Result<()> {
    let old = server_closes_first(false)?;
    let without = restart(old, false)?;
    let with = restart(old, true)?;
    let old = server_closes_first(true)?;
    let both = restart(old, true)?;
    if without || !both {
        bail!("unexpected: without {without}, with {with}, both {both}");
    }
    println!("SO_REUSEADDR: set it on every run of a server, so that the next run can bind");
    Ok(())
}
