//! Nagle's algorithm and the delayed ACK, measured.
//!
//! * `echo-server <port> [--nodelay]`: an iterative server that answers each complete
//!   line at once with the same line, written in two pieces (its first half, then the
//!   rest), as a server that writes a header and then a body does.
//! * `nagle-client <ip> <port> [--nodelay] [--rounds N]`: writes each request in two
//!   pieces (`request `, then `N\n`), reads the whole reply, and times the round trip.
//! * `nagle`: the demo, both sides with and without TCP_NODELAY, measured now.
//!
//! Nagle's algorithm (on by default) holds a small write while earlier data is not yet
//! acknowledged. The receiver of that earlier data delays its ACK (up to 40 ms on
//! Linux) in the hope of sending it along with a reply; but a server has no reply to a
//! request it has only half of, and a client has nothing to say to half a reply. So the
//! second piece waits for an ACK that waits for the second piece: one delayed-ACK timeout
//! per piece, about 40 ms a round trip, on a loopback that answers in microseconds.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use anyhow::bail;
use syscalls::{
    StopSignals, SysError, accept, bind, close, connect, getsockname, ignore_sigpipe, listen, read,
    set_tcp_nodelay, tcp_socket, write_all,
};
use workbook::ServerOpts;

/// How much one read() asks for; also the longest line answered whole.
const BUF_SIZE: usize = 4096;

/// The echo server: one client after another, each line answered at once in two writes.
pub fn echo_server(opts: &ServerOpts, nodelay: bool) -> anyhow::Result<()> {
    let stop = StopSignals::install()?;
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
        // 5. setsockopt(TCP_NODELAY) on the client's socket, the one we write to. (Set
        //    on the listening socket before accept(), Linux would copy it to every
        //    accepted socket too; set there *after* accept(), it reaches no one.)
        if nodelay {
            set_tcp_nodelay(&client, true)?;
        }
        match serve(&client) {
            Ok(()) => {}
            Err(e) if e.is_interrupted() => {}
            Err(e) => workbook::log_error!("error: client {peer}: {e}"),
        }
        close(client)?;
    }
    close(listener)?;
    Ok(())
}

/// Answers every complete line `client` sends, until it closes its side.
fn serve(client: &OwnedFd) -> Result<(), SysError> {
    let mut buf = vec![0u8; BUF_SIZE];
    let mut have = 0;
    loop {
        let n = read(client, &mut buf[have..])?;
        if n == 0 {
            return Ok(());
        }
        have += n;
        while let Some(end) = buf[..have].iter().position(|b| *b == b'\n') {
            reply(client, &buf[..=end])?;
            buf.copy_within(end + 1..have, 0);
            have -= end + 1;
        }
        // A line longer than the buffer is answered as far as it goes.
        if have == buf.len() {
            reply(client, &buf[..have])?;
            have = 0;
        }
    }
}

/// One reply in two writes: the first half, then the rest.
fn reply(client: &OwnedFd, line: &[u8]) -> Result<(), SysError> {
    let half = (line.len() / 2).max(1).min(line.len());
    write_all(client, &line[..half])?;
    if half < line.len() {
        write_all(client, &line[half..])?;
    }
    Ok(())
}

/// The measured round trips of one run.
#[derive(Debug, Clone)]
pub struct RoundTrips {
    pub times: Vec<Duration>,
}

impl RoundTrips {
    fn sorted(&self) -> Vec<Duration> {
        let mut times = self.times.clone();
        times.sort();
        times
    }

    pub fn median(&self) -> Duration {
        let sorted = self.sorted();
        sorted.get(sorted.len() / 2).copied().unwrap_or_default()
    }

    pub fn min(&self) -> Duration {
        self.sorted().first().copied().unwrap_or_default()
    }

    pub fn max(&self) -> Duration {
        self.sorted().last().copied().unwrap_or_default()
    }
}

/// Milliseconds, as the demo prints them.
fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Reads until `buf` holds a whole line; returns its length.
fn read_line(sock: &OwnedFd, buf: &mut [u8]) -> anyhow::Result<usize> {
    let mut have = 0;
    while !buf[..have].contains(&b'\n') {
        if have == buf.len() {
            bail!("a reply longer than {} bytes without a newline", buf.len());
        }
        let n = read(sock, &mut buf[have..])?;
        if n == 0 {
            bail!("the server closed the connection in the middle of a reply");
        }
        have += n;
    }
    Ok(have)
}

/// `rounds` requests, each written in two pieces, each reply read whole and timed.
pub fn round_trips(server: SocketAddr, nodelay: bool, rounds: usize) -> anyhow::Result<RoundTrips> {
    // 1. socket()
    let sock = tcp_socket(&server)?;
    // 2. setsockopt(TCP_NODELAY): before connect() or after, it holds from the next write.
    if nodelay {
        set_tcp_nodelay(&sock, true)?;
    }
    // 3. connect()
    connect(&sock, server)?;
    let mut times = Vec::with_capacity(rounds);
    let mut buf = vec![0u8; BUF_SIZE];
    for i in 1..=rounds {
        let request = format!("request {i}\n");
        let (head, tail) = request.split_at("request ".len());
        let started = Instant::now();
        // 4. Two write()s: the second is small and follows unacknowledged data.
        write_all(&sock, head.as_bytes())?;
        write_all(&sock, tail.as_bytes())?;
        // 5. read() until the whole reply is in.
        let n = read_line(&sock, &mut buf)?;
        times.push(started.elapsed());
        if &buf[..n] != request.as_bytes() {
            bail!(
                "the reply to {:?} was {:?}",
                request,
                String::from_utf8_lossy(&buf[..n])
            );
        }
    }
    close(sock)?;
    Ok(RoundTrips { times })
}

/// The client role: the round trips, then one line with the figures.
pub fn nagle_client(server: SocketAddr, nodelay: bool, rounds: usize) -> anyhow::Result<()> {
    let trips = round_trips(server, nodelay, rounds)?;
    println!(
        "{rounds} round trips, each request in 2 writes, {}: median {} (min {}, max {})",
        if nodelay {
            "TCP_NODELAY on"
        } else {
            "Nagle on (the default)"
        },
        ms(trips.median()),
        ms(trips.min()),
        ms(trips.max())
    );
    Ok(())
}

/// The demo: every combination of TCP_NODELAY on the client and on the server, each
/// against a server of its own (a child process), measured now.
pub fn demo(rounds: usize) -> anyhow::Result<()> {
    println!(
        "each request written in 2 pieces, each reply written in 2 pieces, {rounds} round trips a row, measured now:"
    );
    println!(
        "  {:<14} {:<14} {:>10} {:>10}",
        "client", "server", "median", "max"
    );
    let name = |nodelay: bool| if nodelay { "TCP_NODELAY" } else { "Nagle" };
    for (client_nodelay, server_nodelay) in
        [(false, false), (true, false), (false, true), (true, true)]
    {
        let mut args = vec!["echo-server", "0"];
        if server_nodelay {
            args.push("--nodelay");
        }
        let server = workbook::demo::DemoServer::start_quiet(&args)?;
        let trips = round_trips(server.addr(), client_nodelay, rounds)?;
        server.stop()?;
        println!(
            "  {:<14} {:<14} {:>10} {:>10}",
            name(client_nodelay),
            name(server_nodelay),
            ms(trips.median()),
            ms(trips.max())
        );
    }
    println!(
        "each side that writes in pieces with Nagle on waits, per piece, for the other side's delayed ACK (40 ms on Linux);"
    );
    println!(
        "TCP_NODELAY on the side that writes in pieces sends each piece at once (better still: one write per message)"
    );
    Ok(())
}
