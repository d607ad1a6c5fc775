//! Checks of an echo server, shared by every chapter that has one (ch04's iterative
//! server now; the concurrent servers of later chapters reuse them under their own
//! chapter prefix).

use std::time::Duration;

use crate::check::{Ctx, Evidence, Outcome, Server, fail};
use crate::peer::{Conn, StalledClient};

use super::pattern;

/// Sends `message` on `conn` and expects it back byte for byte.
pub fn round_trip(ctx: &mut Ctx, server: &Server, conn: &mut Conn, message: &[u8]) -> Outcome {
    conn.send(message)
        .map_err(|e| ctx.explain(server, Evidence::new(e).sent(message)))?;
    match conn.recv_exact(message.len(), ctx.secs(5.0)) {
        Ok(got) if got == message => Ok(()),
        Ok(got) => Err(Evidence::new("the echo differs from what was sent")
            .sent(message)
            .expected("the same bytes back")
            .got(&got)
            .into()),
        Err(short) => Err(ctx.explain(
            server,
            Evidence::new(format!(
                "{} of {} bytes came back: {}",
                short.got.len(),
                message.len(),
                short.why
            ))
            .sent(message)
            .expected("the same bytes back")
            .got(&short.got),
        )),
    }
}

/// One line, one echo.
pub fn echo_line(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    let mut conn = ctx.connect(&server)?;
    round_trip(ctx, &server, &mut conn, b"Hello, echo server!\n")
}

/// 1 MiB in one write comes back byte-identical. The checker writes from a second
/// thread while it reads, as the server echoes while it still receives.
pub fn large_message(ctx: &mut Ctx) -> Outcome {
    const SIZE: usize = 1 << 20;
    let server = ctx.server()?;
    let mut conn = ctx.connect(&server)?;
    let message = pattern(SIZE, 0x5eed_0004);
    let mut writer = conn
        .stream
        .try_clone()
        .map_err(|e| fail(format!("dup socket: {e}")))?;
    let to_send = message.clone();
    let sender = std::thread::spawn(move || std::io::Write::write_all(&mut writer, &to_send));
    let received = conn.recv_exact(SIZE, ctx.secs(30.0));
    // Unblock the writer if the server stopped reading, then collect it.
    let _ = conn.stream.shutdown(std::net::Shutdown::Both);
    let _ = sender.join();
    match received {
        Ok(got) if got == message => Ok(()),
        Ok(got) => {
            let at = got.iter().zip(&message).position(|(a, b)| a != b).unwrap_or(0);
            Err(Evidence::new(format!("the echo of a 1 MiB message differs from byte {at} on"))
                .expected(format!("byte {at} = {:#04x}", message[at]))
                .got(&got[at..(at + 32).min(got.len())])
                .into())
        }
        Err(short) => Err(ctx.explain(
            &server,
            Evidence::new(format!(
                "only {} of {SIZE} bytes came back: {}",
                short.got.len(),
                short.why
            ))
            .sent(&message[..64])
            .expected("all 1,048,576 bytes back (one read() returns only what has arrived: loop until read() returns 0)"),
        )),
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
    match conn.recv_exact(message.len(), ctx.secs(5.0)) {
        Ok(got) if got == message => Ok(()),
        Ok(got) => Err(Evidence::new("the echo differs from what was sent")
            .sent(message)
            .got(&got)
            .into()),
        Err(short) => {
            let sending = send_error
                .map(|e| format!(" (sending stopped: {e})"))
                .unwrap_or_default();
            Err(ctx.explain(
                &server,
                Evidence::new(format!(
                    "{} of {} bytes came back: {}{sending}",
                    short.got.len(),
                    message.len(),
                    short.why
                ))
                .sent(message)
                .expected("every byte back, each echoed as it arrives")
                .got(&short.got),
            ))
        }
    }
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
/// message. When the message states a root cause (`your server exited with status 0`),
/// the cause stays first and the prefix goes with what the checker saw.
pub fn with_prefix(problem: crate::check::Problem, prefix: &str) -> crate::check::Problem {
    match problem {
        crate::check::Problem::Fail(mut f) => {
            if f.cause.is_some() {
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
pub fn clients_in_reverse(ctx: &mut Ctx, n: usize) -> Outcome {
    let server = ctx.server()?;
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        conns.push(ctx.connect(&server)?);
    }
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

/// A client resets its connection while others are connected: they are unaffected,
/// and a new one is served.
pub fn reset_among_others(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    let mut a = ctx.connect(&server)?;
    let mut b = ctx.connect(&server)?;
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
