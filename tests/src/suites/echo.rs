//! Checks of an echo server, shared by every chapter that has one (ch04's iterative
//! server now; the concurrent servers of later chapters reuse them under their own
//! chapter prefix).

use std::time::Duration;

use std::time::Instant;

use crate::check::{Ctx, Evidence, Outcome, Problem, Server, fail};
use crate::peer::{Conn, StalledClient};

use super::pattern;

/// One bug, one message: an echo server that closes a connection before it has echoed
/// everything (it reads once), or echoes other bytes than it read (it writes its whole
/// buffer), fails several echo checks at once. Each such failure carries the same cause,
/// so the report gives the first its hint and points the others back to it. A server
/// that died already carries its death as the cause, which says more.
pub fn echo_cause(problem: Problem, sent: &[u8], got: &[u8], closed: bool) -> Problem {
    let key = if !sent.starts_with(got) {
        "the echo holds bytes other than those sent"
    } else if closed && got.len() < sent.len() {
        "the server closes a connection before it has echoed all it was sent"
    } else {
        return problem;
    };
    match problem {
        Problem::Fail(mut evidence) if evidence.cause.is_none() => {
            evidence.cause = Some(crate::check::Cause {
                key: key.into(),
                hint: None,
            });
            Problem::Fail(evidence)
        }
        other => other,
    }
}

/// Whether a short read ended because the server closed the connection: end of
/// stream, or a reset (a close() with bytes it never read makes the kernel send RST).
fn closed(short: &crate::peer::Short) -> bool {
    short.why.contains("end of stream") || short.why.contains("ECONNRESET")
}

/// Sends `message` on `conn` and expects it back byte for byte.
pub fn round_trip(ctx: &mut Ctx, server: &Server, conn: &mut Conn, message: &[u8]) -> Outcome {
    conn.send(message)
        .map_err(|e| ctx.explain(server, Evidence::new(e).sent(message)))?;
    let got = conn.recv_exact(message.len(), ctx.secs(5.0));
    judge_echo(ctx, server, message, got, "the same bytes back", "")
}

/// Judges what came back for `message`: byte for byte, or the short read explained
/// (`suffix` adds what the sending side saw).
fn judge_echo(
    ctx: &mut Ctx,
    server: &Server,
    message: &[u8],
    got: Result<Vec<u8>, crate::peer::Short>,
    expected: &str,
    suffix: &str,
) -> Outcome {
    match got {
        Ok(got) if got == message => Ok(()),
        Ok(got) => Err(echo_cause(
            Evidence::new("the echo differs from what was sent")
                .sent(message)
                .expected(expected)
                .got(&got)
                .into(),
            message,
            &got,
            false,
        )),
        Err(short) => {
            let problem = ctx.explain(
                server,
                Evidence::new(format!(
                    "{} of {} bytes came back: {}{suffix}",
                    short.got.len(),
                    message.len(),
                    short.why
                ))
                .sent(message)
                .expected(expected)
                .got(&short.got),
            );
            Err(echo_cause(problem, message, &short.got, closed(&short)))
        }
    }
}

/// Bytes the server wrote past an echo it has finished: they went out in the write()
/// that carried the echo's last bytes, so they are all here once the server's side of
/// the connection has nothing left unacknowledged (loopback delivers as it sends). Up to
/// 64 of them, peeked without waiting.
fn bytes_past_the_echo(conn: &Conn, deadline: Duration) -> Vec<u8> {
    let (Ok(local), Ok(peer)) = (conn.stream.local_addr(), conn.stream.peer_addr()) else {
        return Vec::new();
    };
    let until = Instant::now() + deadline;
    while crate::procfs::connection(peer, local).is_some_and(|row| row.tx_queue > 0)
        && Instant::now() < until
    {
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut extra = vec![0; 64];
    let _ = conn.stream.set_nonblocking(true);
    let n = conn.stream.peek(&mut extra).unwrap_or(0);
    let _ = conn.stream.set_nonblocking(false);
    extra.truncate(n);
    extra
}

/// A line, then another on the same connection: each comes back as sent and nothing
/// else does (a server that writes its whole buffer puts its garbage before the second
/// echo).
pub fn echo_line(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    let mut conn = ctx.connect(&server)?;
    round_trip(ctx, &server, &mut conn, b"Hello, echo server!\n")?;
    round_trip(ctx, &server, &mut conn, b"and a second line\n")
        .map_err(|p| with_prefix(p, "the second line on the same connection"))
}

/// 1 MiB and 1 byte in one write comes back byte-identical, and nothing after it. The
/// checker writes from a second thread while it reads, as the server echoes while it
/// still receives.
///
/// The extra byte makes the server's last read() short whatever its buffer's size (a
/// power of two never divides 2^20 + 1), so a server that writes its whole buffer
/// always writes bytes it never read: after the echo when every earlier read() filled
/// the buffer (as on a busy machine, where data piles up between reads), in the middle
/// otherwise. With exactly 1 MiB, a slow enough server of that kind echoed correctly.
pub fn large_message(ctx: &mut Ctx) -> Outcome {
    const SIZE: usize = (1 << 20) + 1;
    let server = ctx.server()?;
    let mut conn = ctx.connect(&server)?;
    let message = pattern(SIZE, 0x5eed_0004);
    let mut writer = conn
        .stream
        .try_clone()
        .map_err(|e| fail(format!("dup socket: {e}")))?;
    let to_send = message.clone();
    let sender = std::thread::spawn(move || std::io::Write::write_all(&mut writer, &to_send));
    let received = conn
        .recv_exact_progressing(SIZE, ctx.secs(10.0), ctx.secs(120.0))
        .map(|mut got| {
            if got == message {
                got.extend(bytes_past_the_echo(&conn, ctx.secs(2.0)));
            }
            got
        });
    // Unblock the writer if the server stopped reading, then collect it.
    let _ = conn.stream.shutdown(std::net::Shutdown::Both);
    let _ = sender.join();
    match received {
        Ok(got) if got == message => Ok(()),
        // Bytes it never read come in the middle of the echo or, when every read()
        // filled the buffer, after it: one bug, said one way ("differs from byte N on",
        // N = 1048577 for bytes after it), whichever way the timing went.
        Ok(got) => {
            let at = got
                .iter()
                .zip(&message)
                .position(|(a, b)| a != b)
                .unwrap_or(SIZE.min(got.len()));
            let from = at.saturating_sub(if at == SIZE { 16 } else { 0 });
            Err(echo_cause(
                Evidence::new(format!(
                    "the echo of a {SIZE}-byte message differs from byte {at} on"
                ))
                .sent(&message[from.min(SIZE)..(from + 32).min(SIZE)])
                .expected("the same bytes back, and nothing after them")
                .got(&got[from.min(got.len())..(from + 32).min(got.len())])
                .into(),
                &message,
                &got,
                false,
            ))
        }
        Err(short) => {
            // A server that closes while the checker still sends is seen to close by an
            // end of stream or by a reset, whichever of its FIN and the RST its unread
            // bytes cause comes first: one fact, said one way.
            let why = if closed(&short) {
                "the server closed the connection (end of stream, or a reset: it closed with bytes unread)".to_string()
            } else {
                short.why.clone()
            };
            let problem = ctx.explain(
                &server,
                Evidence::new(format!(
                    "only {} of {SIZE} bytes came back: {why}",
                    short.got.len(),
                ))
                .sent(&message[..64])
                .expected("all 1,048,577 bytes back (one read() returns only what has arrived: loop until read() returns 0)"),
            );
            Err(echo_cause(problem, &message, &short.got, closed(&short)))
        }
    }
}

/// One byte per write, TCP_NODELAY, each sent only once the server has read the one
/// before (seen in /proc/net/tcp): every read() the server makes returns one byte, for
/// certain, so a server that reads once echoes exactly one.
pub fn byte_at_a_time(ctx: &mut Ctx) -> Outcome {
    let message = b"one byte per write, each its own segment\n";
    let server = ctx.server()?;
    let mut conn = ctx.connect(&server)?;
    conn.nodelay();
    let mut send_error = None;
    let mut in_step = true;
    for byte in message {
        if let Err(e) = conn.send(std::slice::from_ref(byte)) {
            send_error = Some(e);
            break;
        }
        // Not consumed within the wait: the server is slow or has stopped reading (the
        // comparison below says which); the rest goes without waiting.
        if in_step {
            in_step = conn.wait_consumed(ctx.secs(1.0));
        }
    }
    let sending = send_error
        .map(|e| format!(" (sending stopped: {e})"))
        .unwrap_or_default();
    let got = conn.recv_exact(message.len(), ctx.secs(5.0));
    judge_echo(
        ctx,
        &server,
        message,
        got,
        "every byte back, each echoed as it arrives",
        &sending,
    )
}

/// Five clients, one after another, each served in turn.
pub fn sequential_clients(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    for i in 1..=5 {
        let mut conn = ctx
            .connect(&server)
            .map_err(|p| with_prefix(p, &format!("client {i} of 5")))?;
        let line = format!("client {i} of 5\n");
        round_trip(ctx, &server, &mut conn, line.as_bytes())
            .map_err(|p| with_prefix(p, &format!("client {i} of 5")))?;
        drop(conn);
    }
    Ok(())
}

/// A client that resets mid-conversation does not stop the server: the next one is
/// served.
///
/// The reset comes after a complete round trip, while the server waits in read() with
/// nothing in flight, so what is tested is exactly one thing: read() returning -1
/// (ECONNRESET) ends that client, not the server. (With data in flight the server
/// might meet the reset in write() instead, and SIGPIPE is `peer-stops-reading`'s
/// business.)
pub fn abrupt_disconnect(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    let mut first = ctx.connect(&server)?;
    round_trip(ctx, &server, &mut first, b"I will vanish\n")?;
    first.reset();
    let mut next = ctx.connect(&server).map_err(|p| {
        with_prefix(
            p,
            "after a client reset its connection (SO_LINGER 0), the next client",
        )
    })?;
    round_trip(ctx, &server, &mut next, b"are you still there?\n").map_err(|p| {
        with_prefix(
            p,
            "after a client reset its connection (SO_LINGER 0), the next client",
        )
    })
}

/// A client sends without reading any echo until every buffer between it and the
/// server is full, then closes: the kernel answers the server with a reset. A server
/// that writes to that connection again gets EPIPE, and SIGPIPE, which kills a server
/// that has not ignored it. The next client must be served.
///
/// The outcome must not depend on timing (a server fast enough to read everything
/// before the reset, then seeing only ECONNRESET in read(), would pass by luck). So the
/// client closes only once the server has bytes it has not read (seen in
/// /proc/net/tcp): it reads them after the reset and echoes them, which is two writes
/// to a reset connection, the second one EPIPE. Then the checker waits until the server
/// has either closed its side or died before trying the next client.
pub fn peer_stops_reading(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    let stalled =
        StalledClient::fill(server.addr, 64 << 20, ctx.secs(0.3), ctx.secs(20.0)).map_err(fail)?;
    let sent = stalled.sent;
    let until = std::time::Instant::now() + ctx.secs(5.0);
    while stalled.unread_by_server().is_some_and(|n| n == 0) && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    let unread = stalled.unread_by_server().unwrap_or(0);
    let probe = StalledProbe::of(&stalled);
    stalled.close();
    // The server closes its side (it handled the error) or dies (SIGPIPE); either way
    // its socket leaves /proc/net/tcp. Until then the next client would only race it.
    let until = std::time::Instant::now() + ctx.secs(10.0);
    while probe.server_side_open() && ctx.server_gone(&server).is_none() {
        if std::time::Instant::now() >= until {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let context = format!(
        "a client sent {sent} bytes without reading the echo and closed while {unread} of them were still unread by the server; the next client"
    );
    let mut next = ctx.connect(&server).map_err(|p| with_prefix(p, &context))?;
    round_trip(ctx, &server, &mut next, b"next client\n").map_err(|p| with_prefix(p, &context))?;
    Ok(())
}

/// The two ends of a stalled client's connection, kept to watch the server's side
/// after the client has closed.
struct StalledProbe {
    local: std::net::SocketAddr,
    server: std::net::SocketAddr,
}

impl StalledProbe {
    fn of(stalled: &StalledClient) -> StalledProbe {
        let addr = |a: std::io::Result<socket2::SockAddr>| {
            a.ok()
                .and_then(|a| a.as_socket())
                .unwrap_or_else(|| std::net::SocketAddr::from(([0, 0, 0, 0], 0)))
        };
        StalledProbe {
            local: addr(stalled.socket.local_addr()),
            server: addr(stalled.socket.peer_addr()),
        }
    }

    fn server_side_open(&self) -> bool {
        crate::procfs::sockets_on(crate::procfs::Proto::Tcp, self.local.port())
            .iter()
            .any(|r| r.local.port() == self.server.port() && r.remote == self.local)
    }
}

/// Puts `prefix` (what the check was doing: `client 2 of 5`) before a failure's
/// message. When the message is a death or a failed start (`your server exited with
/// status 0`), the cause stays first and the prefix goes with what the checker saw.
pub fn with_prefix(problem: crate::check::Problem, prefix: &str) -> crate::check::Problem {
    match problem {
        crate::check::Problem::Fail(mut f) => {
            let root_first = f
                .cause
                .as_ref()
                .is_some_and(|c| c.key.starts_with("died") || c.key.starts_with("startup"));
            if root_first {
                f.seen = Some(match f.seen.take() {
                    Some(seen) => format!("{prefix}: {seen}"),
                    None => prefix.to_string(),
                });
            } else {
                f.message = format!("{prefix}: {}", f.message);
            }
            crate::check::Problem::Fail(f)
        }
        skip => skip,
    }
}

/// `n` clients connect first, then talk in the reverse order of connecting: a server
/// that serves one client at a time is still busy with the first.
///
/// They connect one at a time, each taken off the listen queue before the next comes,
/// so that what is tested is serving many at once, not accepting a burst (which
/// ch17/burst-after-stop tests on purpose: without this pacing, whether a burst formed
/// would depend on how fast the server ran).
pub fn clients_in_reverse(ctx: &mut Ctx, n: usize) -> Outcome {
    let server = ctx.server()?;
    let mut conns = paced_connect(ctx, &server, n)?;
    expect_all_accepted(ctx, &server, n)?;
    for (i, conn) in conns.iter_mut().enumerate().rev() {
        let line = format!("connected {} of {n}, talking {}\n", i + 1, n - i);
        round_trip(ctx, &server, conn, line.as_bytes()).map_err(|p| {
            with_prefix(
                p,
                &format!(
                    "{n} clients connected; the one connected {}th talked {}",
                    i + 1,
                    if i + 1 == n {
                        "first".to_string()
                    } else {
                        format!("{}th", n - i)
                    }
                ),
            )
        })?;
    }
    Ok(())
}

/// How many connections wait in the server's listen queue (NETLINK_SOCK_DIAG).
pub(super) fn waiting(server: &Server) -> u32 {
    workbook::diag::listen_queue(server.addr.port()).map_or(0, |q| q.waiting)
}

/// Waits until no connection waits in the server's listen queue. Returns false, early,
/// when one waits while the server sleeps (it is not accepting now: an iterative server
/// busy with another client), or after 5 s (scaled).
pub(super) fn wait_queue_empty(ctx: &Ctx, server: &Server) -> bool {
    let until = Instant::now() + ctx.secs(5.0);
    let mut asleep_since: Option<Instant> = None;
    loop {
        if waiting(server) == 0 {
            return true;
        }
        let asleep = crate::observe::threads(server.pid)
            .iter()
            .all(|t| t.state != 'R');
        asleep_since = if asleep {
            asleep_since.or(Some(Instant::now()))
        } else {
            None
        };
        if asleep_since.is_some_and(|s| s.elapsed() >= Duration::from_millis(100))
            || Instant::now() >= until
        {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// `n` connections, one at a time, each accepted before the next is made; once the
/// server is seen not accepting, the rest without waiting.
pub fn paced_connect(ctx: &mut Ctx, server: &Server, n: usize) -> Result<Vec<Conn>, Problem> {
    let mut conns = Vec::with_capacity(n);
    let mut pacing = true;
    for i in 0..n {
        conns.push(
            ctx.connect(server)
                .map_err(|p| with_prefix(p, &format!("connection {} of {n}", i + 1)))?,
        );
        if pacing {
            pacing = wait_queue_empty(ctx, server);
        }
    }
    Ok(conns)
}

/// Stops a process (SIGSTOP) until dropped (SIGCONT), whatever happens in between.
pub(super) struct Stopped(i32);

impl Stopped {
    /// Sends SIGSTOP and waits (up to `deadline`) until every thread shows state `T` in
    /// /proc. Only then has the stop been taken: a thread woken by SIGSTOP must still run
    /// to take it, and a connection arriving before it runs would hand its epoll_wait()
    /// an event instead of the EINTR a stop gives.
    pub(super) fn new(pid: i32, deadline: Duration) -> Stopped {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGSTOP,
        );
        let until = Instant::now() + deadline;
        while Instant::now() < until {
            let threads = crate::observe::threads(pid);
            if threads.is_empty() || threads.iter().all(|t| t.state == 'T' || t.state == 't') {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Stopped(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0),
            nix::sys::signal::Signal::SIGCONT,
        );
    }
}

/// `n` connections, as many as the server's listen queue holds arriving together: their
/// non-blocking connects are started while the server is stopped, so the kernel queues
/// them all before the server runs again; the rest connect one after another. The
/// queue's size is the listener's backlog (NETLINK_SOCK_DIAG), so a server with the
/// book's listen(5) gets a burst of 6, never a dropped SYN.
pub fn burst_connect(ctx: &mut Ctx, server: &Server, n: usize) -> Result<Vec<Conn>, Problem> {
    use socket2::{Domain, Socket, Type};
    let backlog =
        workbook::diag::listen_queue(server.addr.port()).map_or(0, |q| q.backlog as usize);
    let burst = n.min(backlog + 1).max(1);
    let mut sockets = Vec::with_capacity(burst);
    // Stopped while it waits for clients (asleep in epoll_wait(), select(), accept()...),
    // as an idle server is when Ctrl-Z comes: then what the stop does to that call is
    // certain, not a matter of timing (a server stopped in the middle of a printf() to
    // its terminal would see no EINTR).
    let waiting_calls: Vec<&str> = crate::observe::MULTIPLEXERS
        .iter()
        .copied()
        .chain(["accept", "accept4"])
        .collect();
    let until = Instant::now() + ctx.secs(5.0);
    while Instant::now() < until && !crate::observe::asleep_in(server.pid, &waiting_calls) {
        std::thread::sleep(Duration::from_millis(2));
    }
    {
        let _stopped = Stopped::new(server.pid, ctx.secs(2.0));
        for _ in 0..burst {
            let socket = Socket::new(Domain::IPV4, Type::STREAM, None)
                .map_err(|e| fail(format!("socket: {e}")))?;
            socket
                .set_nonblocking(true)
                .map_err(|e| fail(format!("set non-blocking: {e}")))?;
            match socket.connect(&server.addr.into()) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
                Err(e) => return Err(fail(format!("connect to {}: {e}", server.addr))),
            }
            sockets.push(socket);
        }
        // Let the kernel finish the handshakes its backlog takes (a condition, not a
        // guess: the established count stops growing).
        let until = Instant::now() + ctx.secs(2.0);
        let mut last = usize::MAX;
        let mut still = 0;
        while Instant::now() < until && still < 5 {
            let established =
                crate::procfs::sockets_on(crate::procfs::Proto::Tcp, server.addr.port())
                    .iter()
                    .filter(|r| r.remote.port() == server.addr.port() && r.state == 0x01)
                    .count();
            if established == last {
                still += 1;
            } else {
                (last, still) = (established, 0);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let until = Instant::now() + ctx.secs(10.0);
    let mut conns = Vec::with_capacity(n);
    for (i, socket) in sockets.into_iter().enumerate() {
        let left = until.saturating_duration_since(Instant::now());
        let mut fds = [nix::poll::PollFd::new(
            std::os::fd::AsFd::as_fd(&socket),
            nix::poll::PollFlags::POLLOUT,
        )];
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let ready = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)).unwrap_or(0);
        let error = socket.take_error().ok().flatten();
        if ready == 0 || error.is_some() {
            let why = error.map_or_else(
                || "it did not complete within 10 s".to_string(),
                |e| e.to_string(),
            );
            return Err(ctx.explain(
                server,
                Evidence::new(format!(
                    "connection {} of {burst}, arriving with the others at once, failed: {why}",
                    i + 1
                )),
            ));
        }
        socket
            .set_nonblocking(false)
            .map_err(|e| fail(format!("set blocking: {e}")))?;
        conns.push(Conn::from_stream(socket.into(), &ctx.recorder).watching(server.spawned.pid));
    }
    for i in burst..n {
        conns.push(
            ctx.connect(server)
                .map_err(|p| with_prefix(p, &format!("connection {} of {n}", i + 1)))?,
        );
    }
    Ok(conns)
}

/// Waits until the server has accepted every connection of a burst: its listen queue
/// (the LISTEN socket's receive queue in /proc/net/tcp) is empty. Ends early, on
/// evidence, when connections wait in the queue, the queue has not moved for a second
/// and the server sleeps: nothing will accept them.
pub fn expect_all_accepted(ctx: &mut Ctx, server: &Server, n: usize) -> Outcome {
    queue_drains(ctx, server).map_err(|now| {
        Evidence::new(format!(
            "{now} of {n} connections that arrived together are still waiting in your server's listen queue, never accept()ed"
        ))
        .expected("every waiting connection accept()ed at once: accept until none is left (EAGAIN), and never serve one client to its end before accepting the next")
        .doing(ctx.doing(server.pid))
        .into()
    })
}

/// Waits (up to 5 s, scaled) until no connection waits in the server's listen queue.
/// Err(n) when n still wait then, or earlier, once the queue has not moved for a second
/// while the server sleeps: nothing will accept them.
pub(super) fn queue_drains(ctx: &Ctx, server: &Server) -> Result<(), u32> {
    let until = Instant::now() + ctx.secs(5.0);
    let (mut last, mut since) = (waiting(server), Instant::now());
    loop {
        let now = waiting(server);
        if now == 0 {
            return Ok(());
        }
        if now != last {
            (last, since) = (now, Instant::now());
        }
        let stuck = since.elapsed() >= Duration::from_secs(1)
            && crate::observe::runnable_fraction(server.pid, Duration::from_millis(200))
                .is_some_and(|f| f < 0.2);
        if stuck || Instant::now() >= until {
            return Err(now);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A client resets its connection while others are connected: they are unaffected,
/// and a new one is served.
pub fn reset_among_others(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    // One at a time, each taken off the listen queue before the next: this check is
    // about a reset, not about accepting a burst (concurrent-clients is).
    let mut a = ctx.connect(&server)?;
    wait_queue_empty(ctx, &server);
    let mut b = ctx.connect(&server)?;
    wait_queue_empty(ctx, &server);
    round_trip(ctx, &server, &mut a, b"client A\n")?;
    round_trip(ctx, &server, &mut b, b"client B\n")?;
    a.reset();
    round_trip(ctx, &server, &mut b, b"client B, after A reset\n")
        .map_err(|p| with_prefix(p, "after client A reset its connection"))?;
    let mut c = ctx.connect(&server)?;
    round_trip(ctx, &server, &mut c, b"client C, new after the reset\n")
        .map_err(|p| with_prefix(p, "after client A reset its connection"))
}

/// After `warm` clients, then `more`, each one at a time, the server's fd count comes
/// back within 3 of what it was after the warm-up, polled to a deadline.
pub fn fds_come_back(ctx: &mut Ctx, warm: usize, more: usize) -> Outcome {
    let server = ctx.server()?;
    let one = |ctx: &mut Ctx, i: usize| -> Outcome {
        let mut conn = ctx.connect(&server)?;
        round_trip(ctx, &server, &mut conn, format!("client {i}\n").as_bytes())
    };
    for i in 0..warm {
        one(ctx, i)?;
    }
    let count = || {
        crate::procfs::fd_count(server.pid).ok_or_else(|| fail("the server's /proc/PID/fd is gone"))
    };
    let baseline = count()?;
    for i in 0..more {
        one(ctx, warm + i)?;
    }
    let until = std::time::Instant::now() + ctx.secs(5.0);
    loop {
        let now = count()?;
        if now <= baseline + 3 {
            return Ok(());
        }
        if std::time::Instant::now() >= until {
            return Err(Evidence::new(format!(
                "your server (pid {}) had {baseline} open fds after {warm} clients and still {now} after {more} more had come and gone",
                server.pid
            ))
            .expected(format!("at most {} (the baseline + 3): close() each client's socket when it leaves", baseline + 3))
            .into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
