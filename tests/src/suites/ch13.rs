//! ch13: send/recv flags and vectored I/O. The urgent byte's receiver, the peeking
//! receiver, and a sender that writes with writev() on a non-blocking socket.

use std::time::{Duration, Instant};

use crate::check::{
    Chapter, Check, Ctx, Evidence, Hint, Outcome, Readme, Role, RoleKind, Server, fail,
};
use crate::observe;
use crate::peer::Conn;
use crate::report::{list, quote};
use crate::wording::{self, Label};

use super::tcp_server_role;

/// Where this chapter's hints send the reader.
pub const README: Readme = Readme("crates/ch13-io-options/README.md");

/// What the book's oob_recv prints before the urgent byte.
const URGENT_MESSAGE: Label = Label {
    book: "Urgent message: ",
};

pub fn chapter() -> Chapter {
    Chapter {
        id: "ch13",
        title: "send/recv flags (MSG_OOB, MSG_PEEK, MSG_DONTWAIT) and readv/writev",
        roles: vec![
            tcp_server_role(
                "oob-recv",
                "ch13-io-options",
                &["oob-recv", "{port}"],
                "./oob_recv {port}",
            ),
            tcp_server_role(
                "peek-recv",
                "ch13-io-options",
                &["peek-recv", "{port}"],
                "./peek_recv {port}",
            ),
            Role {
                name: "writev-send",
                kind: RoleKind::Client,
                package: "ch13-io-options",
                reference_only: false,
                reference: &["writev-send", "{host}", "{port}", "{size}"],
                required: &["{port}", "{size}"],
                allowed: &["{host}", "{port}", "{size}"],
                example: "./writev_send {host} {port} {size}",
            },
        ],
        checks: vec![
            Check {
                name: "urgent-byte-apart",
                role: "oob-recv",
                title: "the book's sends (123, 4 urgent, 567, 890 urgent): 4 and 0 printed as urgent, 12356789 in band",
                hint: "fcntl(sock, F_SETOWN, getpid()) so that SIGURG comes, and read the urgent byte with recv(MSG_OOB): one byte, the last of the send; the rest arrives in band",
                see: README.at("Urgent data is one byte"),
                run: urgent_byte_apart,
            },
            Check {
                name: "peek-then-read",
                role: "peek-recv",
                title: "123 sent: the peek shows it, and the next recv() returns the same bytes again",
                hint: "recv(MSG_PEEK) looks without taking: the bytes stay for the next recv()",
                see: README.at("Peeking"),
                run: peek_then_read,
            },
            Check {
                name: "peek-does-not-wait",
                role: "peek-recv",
                title: "nothing sent for a second: the receiver is never left waiting inside recv()",
                hint: "MSG_PEEK alone waits like any recv(); MSG_PEEK | MSG_DONTWAIT returns at once with EAGAIN when nothing is there",
                see: README.at("Never waiting: MSG_DONTWAIT"),
                run: peek_does_not_wait,
            },
            Check {
                name: "peek-sees-close",
                role: "peek-recv",
                title: "the client closes without sending: the receiver ends within 3 s",
                hint: "recv() returns 0 at end of stream, peeking or not: a loop that waits only for > 0 never ends",
                see: README.at("End of stream while peeking"),
                run: peek_sees_close,
            },
            Check {
                name: "writev-sends-everything",
                role: "writev-send",
                title: "a message in three buffers, larger than every buffer on the way: every byte arrives, in order",
                hint: "writev() returns how much it wrote, which may be less than the total: call it again for the rest, from where it stopped",
                see: README.at("writev writes what it can"),
                run: writev_sends_everything,
            },
        ],
    }
}

/// A receiver's output, told apart: the urgent bytes it printed (after a label that reads
/// as `Urgent message:`) and the digits it printed otherwise, in order.
struct Printed {
    urgent: Vec<String>,
    in_band: String,
}

/// The urgent byte a line shows, when it shows one after a label that reads as the
/// book's `Urgent message:`.
fn urgent_of(line: &str) -> Option<String> {
    let (label, value) = line.trim().rsplit_once(':')?;
    wording::reads_as(label, URGENT_MESSAGE).then(|| value.trim().to_string())
}

fn printed(server: &Server) -> Printed {
    let mut out = Printed {
        urgent: Vec::new(),
        in_band: String::new(),
    };
    for line in server.lines() {
        let line = line.trim();
        if line.starts_with("listening on") {
            continue;
        }
        if let Some(urgent) = urgent_of(line) {
            out.urgent.push(urgent);
            continue;
        }
        // The digits it ended with: the data, whatever label went before it.
        let digits = line.len() - line.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        out.in_band.push_str(&line[line.len() - digits..]);
    }
    out
}

/// Sends `bytes` with `flags` from the checker's side (std has no send flags).
fn send_flags(conn: &Conn, bytes: &[u8], flags: nix::sys::socket::MsgFlags) -> Outcome {
    use std::os::fd::AsRawFd;
    nix::sys::socket::send(conn.stream.as_raw_fd(), bytes, flags)
        .map(|_| ())
        .map_err(|e| fail(format!("the checker's send() failed: {e}")))
}

/// Waits until the receiver has printed the urgent byte `byte`.
fn expect_urgent(ctx: &mut Ctx, server: &Server, byte: &str, after: &str) -> Outcome {
    let seen = server
        .terminal
        .wait_for_line(ctx.secs(3.0), |l| urgent_of(l).is_some_and(|u| u == byte));
    if seen.is_some() {
        return Ok(());
    }
    let now = printed(server);
    let message = if now.in_band.contains(byte) {
        format!(
            "{after}, the urgent byte {byte} was printed with the ordinary data, in band ({}): it was read as in-band data",
            quote(&now.in_band)
        )
    } else {
        format!(
            "{after}, no urgent byte {byte} was printed within 3 s: SIGURG never came, or its handler did not read the byte with recv(MSG_OOB)"
        )
    };
    let doing = ctx.doing(server.pid);
    Err(ctx.explain(
        server,
        Evidence::new(message)
            .expected(format!(
                "a line {}",
                quote(&format!("Urgent message: {byte}"))
            ))
            .got(&server.terminal.output())
            .doing(doing),
    ))
}

fn urgent_byte_apart(ctx: &mut Ctx) -> Outcome {
    use nix::sys::socket::MsgFlags;
    let server = ctx.server()?;
    let mut conn = ctx.connect(&server)?;
    conn.nodelay();
    // In-band data first, and wait until it is read: the receiver is then in its loop,
    // past fcntl(F_SETOWN). (Urgent data that came before F_SETOWN would signal no one.)
    conn.send(b"123").map_err(fail)?;
    if !conn.wait_consumed(ctx.secs(5.0)) {
        let doing = ctx.doing(server.pid);
        return Err(ctx.explain(
            &server,
            Evidence::new("your receiver did not read the first bytes (123) within 5 s")
                .doing(doing),
        ));
    }
    send_flags(&conn, b"4", MsgFlags::MSG_OOB)?;
    expect_urgent(ctx, &server, "4", "after send(\"4\", MSG_OOB)")?;
    conn.send(b"567").map_err(fail)?;
    // The next urgent send would replace an urgent byte not yet read: 567 is read first.
    if !conn.wait_consumed(ctx.secs(5.0)) {
        return Err(fail("your receiver did not read 567 within 5 s"));
    }
    send_flags(&conn, b"890", MsgFlags::MSG_OOB)?;
    expect_urgent(
        ctx,
        &server,
        "0",
        "after send(\"890\", MSG_OOB), whose last byte only is urgent",
    )?;
    let _ = conn.stream.shutdown(std::net::Shutdown::Write);
    // The book's receiver ends at end of stream; either way its output is in by now or
    // soon: wait for the in-band 89 that came with the second urgent byte.
    let until = Instant::now() + ctx.secs(3.0);
    while !printed(&server).in_band.ends_with("89") && Instant::now() < until {
        let _ = ctx
            .sup
            .wait_exit(server.spawned.pid, Duration::from_millis(20));
    }
    let now = printed(&server);
    if now.urgent != ["4", "0"] {
        return Err(Evidence::new(format!(
            "your receiver printed {} as urgent",
            list(now.urgent.iter().map(|u| quote(u)))
        ))
        .expected("4, then 0: one urgent byte per send(MSG_OOB), the last of its bytes")
        .got(&server.terminal.output())
        .into());
    }
    if now.in_band != "12356789" {
        return Err(Evidence::new(format!(
            "in band your receiver printed {}",
            quote(&now.in_band)
        ))
        .expected("12356789: everything sent but the two urgent bytes, in order")
        .got(&server.terminal.output())
        .into());
    }
    Ok(())
}

/// The lines of the server's output that show `text`.
fn lines_showing(server: &Server, text: &str) -> usize {
    server
        .lines()
        .iter()
        .filter(|l| wording::find_shown(std::slice::from_ref(*l), text).is_some())
        .count()
}

fn peek_then_read(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    let mut conn = ctx.connect(&server)?;
    conn.send(b"123").map_err(fail)?;
    let until = Instant::now() + ctx.secs(5.0);
    while lines_showing(&server, "123") < 2 && Instant::now() < until {
        let printed = server.terminal.line_count();
        server
            .terminal
            .wait_for_more_lines(printed, Duration::from_millis(50));
    }
    let shown = lines_showing(&server, "123");
    if shown >= 2 {
        return Ok(());
    }
    let message = if shown == 1 {
        "your receiver printed 123 once: the second recv() did not get it again (a recv() without MSG_PEEK takes the bytes)"
    } else {
        "your receiver printed no line showing 123 within 5 s"
    };
    let doing = ctx.doing(server.pid);
    Err(ctx.explain(
        &server,
        Evidence::new(message)
            .sent(b"123")
            .expected("\"Buffering 3 bytes: 123\" (the peek), then \"Read again: 123\"")
            .got(&server.terminal.output())
            .doing(doing),
    ))
}

/// The recv-type call a thread of `pid` is asleep in, with its flags, if any.
fn asleep_receiving(pid: i32) -> Option<String> {
    observe::threads(pid).into_iter().find_map(|t| {
        let call = t.syscall?;
        let name = call.name()?;
        if t.state != 'S' || !["recvfrom", "recvmsg", "read"].contains(&name) {
            return None;
        }
        let flags = if name == "recvfrom" {
            let f = call.args[3] as i32;
            let mut names = Vec::new();
            if f & libc::MSG_PEEK != 0 {
                names.push("MSG_PEEK");
            }
            if f & libc::MSG_DONTWAIT != 0 {
                names.push("MSG_DONTWAIT");
            }
            format!(
                ", {}",
                if names.is_empty() {
                    "0".into()
                } else {
                    names.join("|")
                }
            )
        } else {
            String::new()
        };
        Some(format!("{name}({}{flags})", call.args[0] as i32))
    })
}

fn peek_does_not_wait(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    let mut conn = ctx.connect(&server)?;
    if !conn.wait_accepted(server.pid, ctx.secs(5.0)) {
        return Err(fail(
            "your receiver did not accept the connection within 5 s",
        ));
    }
    // A second with nothing sent. A receiver that peeks with MSG_DONTWAIT is never asleep
    // in recv() for long (it is between tries, or asleep in poll() or sleep()); one that
    // peeks without it sits in recv() until data comes.
    let window = Duration::from_secs(1);
    let long = Duration::from_millis(500);
    let started = Instant::now();
    let mut since: Option<(Instant, String)> = None;
    while started.elapsed() < window {
        since = match (asleep_receiving(server.pid), since) {
            (Some(_), Some(kept)) => Some(kept),
            (Some(call), None) => Some((Instant::now(), call)),
            (None, _) => None,
        };
        if let Some((from, call)) = &since
            && from.elapsed() >= long
        {
            let call = call.clone();
            let _ = conn.send(b"123");
            return Err(Evidence::new(format!(
                "with nothing sent, your receiver waited inside {call} for {long:.1?} and more: its peek blocks"
            ))
            .expected("recv(MSG_PEEK | MSG_DONTWAIT): -1 with EAGAIN at once when nothing is there, and other work meanwhile")
            .into());
        }
        // A sampling interval, not synchronisation.
        std::thread::sleep(Duration::from_millis(10));
    }
    conn.send(b"123").map_err(fail)?;
    Ok(())
}

fn peek_sees_close(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    let conn = ctx.connect(&server)?;
    if !conn.wait_accepted(server.pid, ctx.secs(5.0)) {
        return Err(fail(
            "your receiver did not accept the connection within 5 s",
        ));
    }
    drop(conn);
    ctx.stated_deadline_starts();
    let deadline = ctx.secs(3.0);
    if ctx.sup.wait_exit(server.spawned.pid, deadline).is_some() {
        return Ok(());
    }
    let spinning =
        observe::runnable_fraction(server.pid, Duration::from_millis(200)).is_some_and(|f| f > 0.5);
    let doing = ctx.doing(server.pid);
    Err(Evidence::new(format!(
        "your receiver was still running {deadline:.1?} after the client closed without sending anything{}",
        if spinning { ", looping" } else { "" }
    ))
    .expected("recv() returns 0 (end of stream): stop peeking, close, and end")
    .got(&server.terminal.output())
    .doing(doing)
    .into())
}

/// How much the kernel lets a TCP socket's send buffer grow (tcp_wmem's maximum).
fn send_buffer_max() -> usize {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|t| t.split_whitespace().nth(2)?.parse().ok())
        .unwrap_or(4 << 20)
}

/// What `writev-send` sends for a body of `size` bytes.
fn message(size: usize) -> Vec<u8> {
    let mut out = format!("size {size}\n").into_bytes();
    out.extend((0..size).map(|i| b'a' + (i % 26) as u8));
    out.extend_from_slice(b"end\n");
    out
}

/// Whether the client has stopped writing for now: it has ended, or it is asleep in a
/// call that writes or waits for room.
fn stopped_writing(ctx: &mut Ctx, pid: i32) -> bool {
    const WAITS: [&str; 10] = [
        "write",
        "writev",
        "sendto",
        "sendmsg",
        "poll",
        "ppoll",
        "select",
        "pselect6",
        "epoll_wait",
        "epoll_pwait",
    ];
    ctx.sup.status(pid).is_some() || observe::asleep_in(pid, &WAITS)
}

fn writev_sends_everything(ctx: &mut Ctx) -> Outcome {
    // Larger than the client's send buffer can grow and our receive buffer together, so
    // that a non-blocking writev() cannot write it all at once.
    let size = 2 * send_buffer_max() + (1 << 20);
    let expected = message(size);
    let server = ctx.harness_server()?;
    socket2::SockRef::from(&server.listener)
        .set_recv_buffer_size(4096)
        .map_err(|e| fail(format!("setsockopt(SO_RCVBUF): {e}")))?;
    let client = ctx.client(server.addr, &[("{size}", size.to_string())])?;
    let pid = client.spawned.pid;
    let mut conn = server.accept(ctx.secs(10.0)).map_err(fail)?;
    // Nothing is read until the client has written what it could and stopped: then
    // whatever it does next (write the rest, or not) is its own doing.
    let (mine, theirs) = (
        conn.stream.local_addr().map_err(|e| fail(e.to_string()))?,
        conn.stream.peer_addr().map_err(|e| fail(e.to_string()))?,
    );
    let until = Instant::now() + ctx.secs(10.0);
    while Instant::now() < until {
        let arrived = crate::procfs::unread_at(theirs, mine).is_some_and(|n| n > 0);
        if arrived && stopped_writing(ctx, pid) {
            // Seen twice, a moment apart: not a passing instant.
            std::thread::sleep(Duration::from_millis(20));
            if stopped_writing(ctx, pid) {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let got = match conn.recv_to_end(expected.len() + 4096, ctx.secs(60.0)) {
        Ok(got) => got,
        Err(short) => {
            return Err(Evidence::new(format!(
                "{} of {} bytes arrived, then: {}",
                short.got.len(),
                expected.len(),
                short.why
            ))
            .expected("the whole message, then the connection closed")
            .doing(ctx.doing(pid))
            .into());
        }
    };
    if got == expected {
        return ctx.expect_exit_zero(pid, "after sending everything");
    }
    let at = got
        .iter()
        .zip(&expected)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(expected.len()));
    if at == got.len() && got.len() < expected.len() {
        return Err(Evidence::new(format!(
            "{} of {} bytes arrived, then end of stream: your client's writev() wrote less than it was given, and the rest was never sent",
            got.len(),
            expected.len()
        ))
        .expected("every byte: when writev() returns less than the total, call it again for the rest")
        .into());
    }
    // A body that is not the README's pattern from its first byte is the sender's own
    // choice of bytes, not a writev() that lost its place (that still sends the pattern,
    // out of place): a wording mismatch, said as one, with the count that arrived.
    let header = format!("size {size}\n");
    let body = &got[header.len().min(got.len())..];
    if got.starts_with(header.as_bytes()) && !body.starts_with(&expected[header.len()..][..26]) {
        return Err(Evidence::new(format!(
            "{} of {} bytes arrived, but the {size} after \"size {size}\\n\" are not the README's pattern, the letters a to z again and again: only in that pattern can the checker see a byte out of place",
            got.len(),
            expected.len()
        ))
        .expected(format!(
            "\"size {size}\\n\", then {size} bytes abcdefghijklmnopqrstuvwxyzabc... (byte i is 'a' + i % 26), then \"end\\n\""
        ))
        .got(&body[..32.min(body.len())])
        .cause(
            "the body is not the README's pattern",
            Some(Hint {
                text: "fill the N bytes with the letters a to z, again and again (byte i is 'a' + i % 26), as the README says; then whether every byte arrives in order can be checked",
                see: README.at("writev writes what it can"),
            }),
        )
        .into());
    }
    Err(Evidence::new(format!(
        "the bytes that arrived differ from the message from byte {at} on, of {}",
        expected.len()
    ))
    .expected(format!(
        "\"size {size}\\n\", then {size} bytes a to z again and again, then \"end\\n\"; the next writev() starts where the last one stopped"
    ))
    .got(&got[at..(at + 32).min(got.len())])
    .into())
}
