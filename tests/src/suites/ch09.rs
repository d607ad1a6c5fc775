//! ch09: socket options (the buffer sizes the kernel really sets, Nagle and the delayed
//! ACK), the handshake and backlog queue, TCP states, TIME_WAIT and SO_REUSEADDR,
//! observed from outside: the checker reads /proc/net/tcp itself while our demos run,
//! asks its own sockets what our demos claim, and times our programs from the other end
//! of their connections.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::check::{Chapter, Check, Ctx, Evidence, Outcome, Problem, Readme, Role, RoleKind, fail};
use crate::procfs::{self, Proto};
use crate::supervise::describe_status;

const ESTABLISHED: u8 = 0x01;
const SYN_SENT: u8 = 0x02;
const TIME_WAIT: u8 = 0x06;

fn demo_role(name: &'static str, subcommand: &'static [&'static str]) -> Role {
    Role {
        name,
        kind: RoleKind::Tool,
        package: "ch09-tcp-inside",
        reference_only: true,
        reference: subcommand,
        required: &[],
        allowed: &[],
        example: "(our own binary)",
    }
}

/// A reference-only role of ours that talks to the checker: `nagle-client` against the
/// checker's server, `echo-server` against the checker's client. `{nodelay}` is
/// `--nodelay` in the checks that want TCP_NODELAY and left out in the others.
fn peer_role(
    name: &'static str,
    kind: RoleKind,
    reference: &'static [&'static str],
    allowed: &'static [&'static str],
) -> Role {
    Role {
        name,
        kind,
        package: "ch09-tcp-inside",
        reference_only: true,
        reference,
        required: &["{port}", "{nodelay}"],
        allowed,
        example: "(our own binary)",
    }
}

/// Where this chapter's hints send the reader.
pub const README: Readme = Readme("crates/ch09-tcp-inside/README.md");

/// A median this long shows a delayed ACK waited for (Linux waits at least 40 ms).
const STALLED: Duration = Duration::from_millis(30);

/// A median this short shows nothing waited for an ACK (a loopback round trip takes
/// microseconds; the margin is for a busy machine).
const AT_ONCE: Duration = Duration::from_millis(15);

/// Round trips each Nagle check times.
const ROUNDS: usize = 10;

pub fn chapter() -> Chapter {
    Chapter {
        id: "ch09",
        title: "the handshake, the backlog queue, TCP states and TIME_WAIT",
        roles: vec![
            demo_role("backlog-demo", &["backlog"]),
            demo_role("states-demo", &["states"]),
            demo_role("reuseaddr-demo", &["reuseaddr"]),
            demo_role("set-buf-demo", &["set-buf"]),
            peer_role(
                "nagle-client",
                RoleKind::Client,
                &["nagle-client", "{host}", "{port}", "{nodelay}"],
                &["{host}", "{port}", "{nodelay}"],
            ),
            peer_role(
                "echo-server",
                RoleKind::Server(Proto::Tcp),
                &["echo-server", "{port}", "{nodelay}"],
                &["{host}", "{port}", "{nodelay}"],
            ),
        ],
        checks: vec![
            Check {
                name: "buffer-sizes",
                role: "set-buf-demo",
                title: "the buffer sizes set-buf prints are the kernel's: 3 KiB asked reads back doubled, 1 byte reads back the floor, as the checker's own socket shows",
                hint: "print what getsockopt() returns after setsockopt(), not what you asked for: Linux doubles SO_RCVBUF/SO_SNDBUF and enforces a floor",
                see: README.at("Buffer sizes"),
                run: buffer_sizes,
            },
            Check {
                name: "nagle-stall",
                role: "nagle-client",
                title: "a request written in two pieces with Nagle on: the checker's server sees the second piece about 40 ms after the first, and the client reports that stall",
                hint: "write each request as two write()s with Nagle on (the default): the second waits for the ACK of the first, which the server delays",
                see: README.at("Nagle and the delayed ACK"),
                run: nagle_stall,
            },
            Check {
                name: "nodelay-cure",
                role: "nagle-client",
                title: "with --nodelay the two pieces of each request arrive together, and the client reports round trips well under the stall",
                hint: "setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, 1) on the client's own socket: at level SOL_SOCKET the same number is another option",
                see: README.at("Nagle and the delayed ACK"),
                run: nodelay_cure,
            },
            Check {
                name: "server-nodelay",
                role: "echo-server",
                title: "the echo server's reply in two writes: 40 ms apart with Nagle on, together with --nodelay",
                hint: "set TCP_NODELAY on the socket accept() returned (or on the listening socket before accept()): set on the listening socket afterwards, it reaches no client",
                see: README.at("Nagle and the delayed ACK"),
                run: server_nodelay,
            },
            Check {
                name: "connect-before-accept",
                role: "backlog-demo",
                title: "before any accept(), backlog+1 connections are ESTABLISHED and queued; the next SYN waits",
                hint: "the kernel completes the handshake after listen(); accept() only takes a finished connection off the queue",
                see: README.at("The backlog queue"),
                run: connect_before_accept,
            },
            Check {
                name: "backlog-fifo",
                role: "backlog-demo",
                title: "accept() returns the queued connections in the order they connected",
                hint: "the accept queue is first in, first out",
                see: README.at("The backlog queue"),
                run: backlog_fifo,
            },
            Check {
                name: "time-wait-side",
                role: "states-demo",
                title: "TIME_WAIT is on the side that closed first",
                hint: "the side that sends the first FIN ends in TIME_WAIT for 2 MSL",
                see: README.at("States"),
                run: time_wait_side,
            },
            Check {
                name: "reuseaddr",
                role: "reuseaddr-demo",
                title: "during TIME_WAIT bind() fails with EADDRINUSE; with SO_REUSEADDR on both runs it succeeds",
                hint: "set SO_REUSEADDR before bind() on every run of a server",
                see: README.at("SO_REUSEADDR"),
                run: reuseaddr,
            },
        ],
    }
}

/// The first `host:port` in a line that starts with `prefix`.
fn addr_after(text: &str, prefix: &str) -> Option<SocketAddr> {
    text.lines()
        .find(|l| l.starts_with(prefix))?
        .split_whitespace()
        .find_map(|w| w.trim_end_matches([':', ',', ';']).parse().ok())
}

fn connect_before_accept(ctx: &mut Ctx) -> Outcome {
    let demo = ctx.start_tool(&["--backlog", "2", "--clients", "5", "--pause", "2"])?;
    demo.wait_for_line(ctx.secs(10.0), |l| l.starts_with("pausing"))
        .ok_or_else(|| {
            Evidence::new("the demo never reached its pause before accept()").got(&demo.output())
        })?;
    let out = demo.lines().join("\n");
    let server = addr_after(&out, "listening on")
        .ok_or_else(|| Evidence::new("no `listening on ADDR` line").got(out.as_bytes()))?;
    // Observed now, by us, while the demo has not called accept().
    let rows = procfs::sockets_on(Proto::Tcp, server.port());
    let queued = rows
        .iter()
        .find(|r| r.local == server && r.state == procfs::TCP_LISTEN)
        .map_or(0, |r| r.rx_queue);
    let clients: Vec<_> = rows.iter().filter(|r| r.remote == server).collect();
    let established = clients.iter().filter(|r| r.state == ESTABLISHED).count();
    let pending = clients.iter().filter(|r| r.state == SYN_SENT).count();
    if queued != 3 || established != 3 || pending != 2 {
        return Err(Evidence::new(format!(
            "with backlog 2 and no accept() yet, /proc/net/tcp shows {queued} queued, {established} clients ESTABLISHED, {pending} in SYN_SENT"
        ))
        .expected("3 queued (backlog + 1), 3 clients ESTABLISHED, 2 in SYN_SENT")
        .got(out.as_bytes())
        .into());
    }
    Ok(())
}

fn backlog_fifo(ctx: &mut Ctx) -> Outcome {
    let run = ctx.tool(&["--backlog", "2", "--clients", "5"])?;
    let out = run.stdout_text();
    let port = |l: &str| {
        l.split("(port ")
            .nth(1)
            .and_then(|r| r.split(')').next())
            .and_then(|p| p.parse::<u16>().ok())
    };
    let connected: Vec<u16> = out
        .lines()
        .filter(|l| l.starts_with("client "))
        .filter_map(port)
        .collect();
    let accepted: Vec<u16> = out
        .lines()
        .filter(|l| l.starts_with("accept() #"))
        .filter_map(port)
        .collect();
    // The queued ones (backlog + 1 = 3) come out first, in the order they connected. The
    // two whose SYNs were dropped come in when their own retransmission timers fire,
    // which may be in either order.
    let queued = 3.min(connected.len());
    let mut late_connected = connected[queued..].to_vec();
    let mut late_accepted = accepted.get(queued..).unwrap_or_default().to_vec();
    late_connected.sort();
    late_accepted.sort();
    if connected.len() != 5
        || accepted.len() != 5
        || accepted[..queued] != connected[..queued]
        || late_accepted != late_connected
    {
        return Err(Evidence::new(
            "the ports accept() returned are not the ports that connected, in order",
        )
        .expected(format!(
            "accept order {} (the connect order; the last two, whose SYNs were dropped, in either order)",
            crate::report::list(&connected)
        ))
        .got(format!("accept order {}\n{out}", crate::report::list(&accepted)).as_bytes())
        .into());
    }
    if run.code() != Some(0) {
        return Err(fail(format!(
            "the demo {}",
            crate::supervise::describe_status(&run.status)
        )));
    }
    Ok(())
}

fn time_wait_side(ctx: &mut Ctx) -> Outcome {
    let run = ctx.tool(&[])?;
    let out = run.stdout_text();
    let server = addr_after(&out, "server ")
        .ok_or_else(|| Evidence::new("no `server ADDR` line").got(&run.stdout))?;
    let client = addr_after(&out, "client ")
        .ok_or_else(|| Evidence::new("no `client ADDR` line").got(&run.stdout))?;
    // The demo has exited; TIME_WAIT outlives it (60 s), so we can look ourselves.
    let rows = procfs::sockets_on(Proto::Tcp, server.port());
    let on_client = rows
        .iter()
        .any(|r| r.local == client && r.remote == server && r.state == TIME_WAIT);
    let on_server = rows
        .iter()
        .any(|r| r.local == server && r.remote == client && r.state == TIME_WAIT);
    if !on_client || on_server {
        return Err(Evidence::new(format!(
            "the client {client} closed first, but /proc/net/tcp shows TIME_WAIT on {}",
            match (on_client, on_server) {
                (true, true) => "both sides",
                (false, true) => "the server's side",
                _ => "neither side",
            }
        ))
        .expected(format!("TIME_WAIT on {client} only"))
        .got(&run.stdout)
        .into());
    }
    Ok(())
}

fn reuseaddr(ctx: &mut Ctx) -> Outcome {
    let run = ctx.tool(&[])?;
    let out = run.stdout_text();
    let old = addr_after(&out, "a server without SO_REUSEADDR").ok_or_else(|| {
        Evidence::new("no line about the server without SO_REUSEADDR").got(&run.stdout)
    })?;
    // Our own bind(), without SO_REUSEADDR, on the port the demo left in TIME_WAIT.
    let probe = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .map_err(|e| fail(e.to_string()))?;
    let ours = probe.bind(&old.into());
    let in_use = matches!(&ours, Err(e) if e.kind() == std::io::ErrorKind::AddrInUse);
    let lines_ok = out.contains("restart without SO_REUSEADDR: bind(")
        && out.contains("fails: EADDRINUSE")
        && out.contains("succeeds");
    if !in_use || !lines_ok {
        return Err(Evidence::new(format!(
            "after the demo, our own bind({old}) without SO_REUSEADDR {}",
            if in_use { "failed with EADDRINUSE, as it should" } else { "succeeded: no TIME_WAIT holds that port" }
        ))
        .expected("TIME_WAIT on the server's port; EADDRINUSE without SO_REUSEADDR; success with it on both runs")
        .got(&run.stdout)
        .into());
    }
    Ok(())
}

/// A number after `label` on the first line that has it: `Input buffer size: 6144`.
fn number_after(text: &str, label: &str) -> Option<usize> {
    text.lines().find_map(|l| {
        let rest = &l[l.find(label)? + label.len()..];
        let digits: String = rest
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        digits.parse().ok()
    })
}

/// What the kernel sets on the checker's own TCP socket when asked for `size` bytes of
/// each buffer: (receive, send).
fn kernel_sets(size: usize) -> Result<(usize, usize), Problem> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .map_err(|e| fail(format!("socket: {e}")))?;
    sock.set_recv_buffer_size(size)
        .and_then(|()| sock.set_send_buffer_size(size))
        .map_err(|e| fail(format!("setsockopt: {e}")))?;
    Ok((
        sock.recv_buffer_size().map_err(|e| fail(e.to_string()))?,
        sock.send_buffer_size().map_err(|e| fail(e.to_string()))?,
    ))
}

fn buffer_sizes(ctx: &mut Ctx) -> Outcome {
    let run = ctx.tool(&[])?;
    let out = run.stdout_text();
    let (rcv, snd) = kernel_sets(3072)?;
    let (rcv_floor, snd_floor) = kernel_sets(1)?;
    let printed = (
        number_after(&out, "Input buffer size:"),
        number_after(&out, "Output buffer size:"),
    );
    let floor_line = out
        .lines()
        .find(|l| l.starts_with("asked 1:"))
        .unwrap_or("");
    let printed_floor = (
        number_after(floor_line, "SO_RCVBUF"),
        number_after(floor_line, "SO_SNDBUF"),
    );
    if printed != (Some(rcv), Some(snd)) || printed_floor != (Some(rcv_floor), Some(snd_floor)) {
        let shown = |n: Option<usize>| n.map_or("nothing".to_string(), |n| n.to_string());
        return Err(Evidence::new(format!(
            "asked for 3072 bytes, the demo says the kernel set {} (receive) and {} (send); asked for 1, {} and {}",
            shown(printed.0),
            shown(printed.1),
            shown(printed_floor.0),
            shown(printed_floor.1)
        ))
        .expected(format!(
            "what the checker's own socket reads back: {rcv} and {snd} for 3072 (doubled), {rcv_floor} and {snd_floor} for 1 (the floor)"
        ))
        .got(&run.stdout)
        .into());
    }
    if run.code() != Some(0) {
        return Err(fail(format!("the demo {}", describe_status(&run.status))));
    }
    Ok(())
}

/// The median of `times`.
fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// One line from `stream`, and how long after its first byte its newline came.
fn timed_line(
    stream: &mut TcpStream,
    until: Instant,
) -> Result<Option<(Vec<u8>, Duration)>, String> {
    let mut line = Vec::new();
    let mut first: Option<Instant> = None;
    let mut byte = [0u8; 512];
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "no whole line within the deadline; had {}",
                crate::report::quote(&String::from_utf8_lossy(&line))
            ));
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        let n = match stream.read(&mut byte) {
            Ok(0) if line.is_empty() => return Ok(None),
            Ok(0) => return Err("the connection closed in the middle of a line".into()),
            Ok(n) => n,
            Err(e) => return Err(format!("read: {e}")),
        };
        first.get_or_insert_with(Instant::now);
        line.extend_from_slice(&byte[..n]);
        if line.ends_with(b"\n") {
            return Ok(Some((line, first.map_or(Duration::ZERO, |f| f.elapsed()))));
        }
        if line.len() > 4096 {
            return Err("a line longer than 4096 bytes".into());
        }
    }
}

/// Plays the server for our `nagle-client` (`nodelay` or not): answers each request at
/// once, in one write, and measures how long each request's second piece came after its
/// first. Returns those gaps and the client's run.
fn serve_the_client(ctx: &mut Ctx, nodelay: bool) -> Result<(Vec<Duration>, String), Problem> {
    let server = ctx.harness_server()?;
    let extra: Vec<(&'static str, String)> = if nodelay {
        vec![("{nodelay}", "--nodelay".to_string())]
    } else {
        Vec::new()
    };
    let client = ctx.client(server.addr, &extra)?;
    let conn = server.accept(ctx.secs(10.0)).map_err(fail)?;
    let mut stream = conn.stream;
    stream.set_nodelay(true).map_err(|e| fail(e.to_string()))?;
    let until = Instant::now() + ctx.secs(20.0);
    let mut gaps = Vec::new();
    while let Some((line, gap)) = timed_line(&mut stream, until).map_err(|e| {
        Evidence::new(format!("while the checker served your client: {e}")).got(&client.output())
    })? {
        gaps.push(gap);
        stream
            .write_all(&line)
            .map_err(|e| fail(format!("write the reply: {e}")))?;
    }
    ctx.expect_exit_zero(client.spawned.pid, "after its round trips")?;
    let _ = client.wait_for_line(ctx.secs(1.0), |l| l.contains("median"));
    Ok((gaps, client.lines().join("\n")))
}

/// The median the client printed: `... median 43.95 ms ...`.
fn printed_median(out: &str) -> Option<Duration> {
    let at = out.find("median ")? + "median ".len();
    let number: String = out[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    number
        .parse::<f64>()
        .ok()
        .map(|ms| Duration::from_secs_f64(ms / 1000.0))
}

fn nagle_stall(ctx: &mut Ctx) -> Outcome {
    let (gaps, out) = serve_the_client(ctx, false)?;
    let seen = median(&gaps);
    let reported = printed_median(&out);
    if gaps.len() < ROUNDS || seen < STALLED || reported.is_none_or(|r| r < STALLED) {
        return Err(Evidence::new(format!(
            "over {} requests, the second piece reached the checker's server {} after the first (median); the client reported a median of {}",
            gaps.len(),
            ms(seen),
            reported.map_or("nothing".into(), ms)
        ))
        .expected(format!(
            "{ROUNDS} requests, each in two pieces, the second about 40 ms (at least {}) after the first, and the client saying so",
            ms(STALLED)
        ))
        .got(out.as_bytes())
        .into());
    }
    Ok(())
}

fn nodelay_cure(ctx: &mut Ctx) -> Outcome {
    let (gaps, out) = serve_the_client(ctx, true)?;
    let seen = median(&gaps);
    let reported = printed_median(&out);
    if gaps.len() < ROUNDS || seen >= AT_ONCE || reported.is_none_or(|r| r >= AT_ONCE) {
        return Err(Evidence::new(format!(
            "with --nodelay, over {} requests, the second piece reached the checker's server {} after the first (median); the client reported a median of {}",
            gaps.len(),
            ms(seen),
            reported.map_or("nothing".into(), ms)
        ))
        .expected(format!(
            "{ROUNDS} requests, both pieces of each arriving together (under {}), and round trips as short",
            ms(AT_ONCE)
        ))
        .got(out.as_bytes())
        .into());
    }
    Ok(())
}

/// Plays a client of our echo server: each request in one write, TCP_NODELAY on the
/// checker's side, and how long each reply's second piece came after its first.
fn reply_gaps(ctx: &mut Ctx, nodelay: bool) -> Result<Vec<Duration>, Problem> {
    let extra: Vec<(&'static str, String)> = if nodelay {
        vec![("{nodelay}", "--nodelay".to_string())]
    } else {
        Vec::new()
    };
    let server = ctx.server_of("echo-server", &extra)?;
    let conn = ctx.connect(&server)?;
    let mut stream = conn.stream;
    stream.set_nodelay(true).map_err(|e| fail(e.to_string()))?;
    let until = Instant::now() + ctx.secs(20.0);
    let mut gaps = Vec::new();
    for i in 1..=ROUNDS {
        let request = format!("request {i}\n");
        stream
            .write_all(request.as_bytes())
            .map_err(|e| ctx.explain(&server, Evidence::new(format!("write: {e}"))))?;
        let got =
            timed_line(&mut stream, until).map_err(|e| ctx.explain(&server, Evidence::new(e)))?;
        match got {
            Some((line, gap)) if line == request.as_bytes() => gaps.push(gap),
            Some((line, _)) => {
                return Err(Evidence::new("the server's reply is not the request")
                    .expected(crate::report::quote(&request))
                    .got(&line)
                    .into());
            }
            None => {
                return Err(ctx.explain(
                    &server,
                    Evidence::new(format!(
                        "the server closed the connection after {} replies",
                        i - 1
                    )),
                ));
            }
        }
    }
    Ok(gaps)
}

fn server_nodelay(ctx: &mut Ctx) -> Outcome {
    let with_nagle = median(&reply_gaps(ctx, false)?);
    let with_nodelay = median(&reply_gaps(ctx, true)?);
    if with_nagle < STALLED || with_nodelay >= AT_ONCE {
        return Err(Evidence::new(format!(
            "the reply's second piece came {} after its first without --nodelay, {} with it (medians of {ROUNDS})",
            ms(with_nagle),
            ms(with_nodelay)
        ))
        .expected(format!(
            "at least {} without --nodelay (Nagle waits for the checker's delayed ACK), under {} with it",
            ms(STALLED),
            ms(AT_ONCE)
        ))
        .into());
    }
    Ok(())
}
