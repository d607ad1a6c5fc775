//! ch05: the echo client that reads until the whole echo is back, and the operand
//! calculator protocol.

use std::time::{Duration, Instant};

use crate::check::{Chapter, Ctx, Failure, Outcome, Problem, Role, RoleKind, Server, fail};
use crate::peer::{Conn, HarnessServer};
use crate::procfs::{self, Proto};
use crate::pty::TerminalProgram;

use super::{check, client_role, echo, echo::with_prefix, tcp_server_role};

pub fn chapter() -> Chapter {
    Chapter {
        id: "ch05",
        title: "the echo client's read loop; the operand calculator protocol",
        roles: vec![
            tcp_server_role(
                "server",
                "ch05-echo-client-fix",
                &["server", "{port}"],
                "./echo_server {port}",
            ),
            client_role(
                "client",
                "ch05-echo-client-fix",
                &["client", "{host}", "{port}"],
                "./echo_client2 {host} {port}",
            ),
            Role {
                name: "calc-server",
                kind: RoleKind::Server(Proto::Tcp),
                package: "ch05-op-calculator",
                reference_only: false,
                reference: &["calc-server", "{port}"],
                required: &["{port}"],
                allowed: &["{host}", "{port}"],
                example: "./op_server {port}",
            },
            client_role(
                "calc-client",
                "ch05-op-calculator",
                &["calc-client", "{host}", "{port}"],
                "./op_client {host} {port}",
            ),
        ],
        checks: vec![
            check(
                "ch05",
                "large-message",
                "the echo server returns 1 MiB byte-identical",
                "server",
                "read until read() returns 0 and write every byte (ch04 README, \"Reading until end of stream\")",
                echo::large_message,
            ),
            check(
                "ch05",
                "fragmented-reply",
                "replies that arrive in pieces are printed whole and in step",
                "client",
                "an echo is as long as what you sent: read until you have that many bytes (ch05 README, \"The echo client's problem\")",
                fragmented_reply,
            ),
            check(
                "ch05",
                "calc-add",
                "3 + 5 + 7 and negative operands",
                "calc-server",
                "count byte, then count x 4-byte little-endian ints, then the operator; reply with 4 little-endian bytes (ch05 README, \"The protocol\")",
                calc_add,
            ),
            check(
                "ch05",
                "calc-sub",
                "10 - 3 - 2, left to right",
                "calc-server",
                "subtract each operand from the running result, left to right (ch05 README, \"The protocol\")",
                calc_sub,
            ),
            check(
                "ch05",
                "calc-mul",
                "-2 * 3 * 4",
                "calc-server",
                "operands are signed 32-bit (ch05 README, \"The protocol\")",
                calc_mul,
            ),
            check(
                "ch05",
                "calc-overflow",
                "results wrap around like a 32-bit C int",
                "calc-server",
                "compute in 32-bit two's complement: 2147483647 + 1 is -2147483648 (ch05 README, \"Overflow\")",
                calc_overflow,
            ),
            check(
                "ch05",
                "calc-split-request",
                "a request sent one byte per write is answered",
                "calc-server",
                "read until you have 1 byte, then until you have 4N+1 more: one read() may return any part (ch05 README, \"Reading a request\")",
                calc_split_request,
            ),
            check(
                "ch05",
                "calc-truncated",
                "a request cut short (closed or stalled) neither spins nor blocks the next client",
                "calc-server",
                "read() returns 0 when the client has closed: stop there; give a stalled client a deadline (SO_RCVTIMEO) (ch05 README, \"Bad requests\")",
                calc_truncated,
            ),
            check(
                "ch05",
                "calc-bad-operator",
                "an unknown operator or a count of 0 closes that client without a result; the next is served",
                "calc-server",
                "check the operator and the count; close the connection instead of answering garbage (ch05 README, \"Bad requests\")",
                calc_bad_operator,
            ),
            check(
                "ch05",
                "calc-client",
                "the client sends the book's bytes and prints `Operation result: N`",
                "calc-client",
                "send the count as one byte, each operand as 4 little-endian bytes, the operator as one byte (ch05 README, \"The protocol\")",
                calc_client,
            ),
        ],
    }
}

// ---------------------------------------------------------------- the echo client

/// The lines the client is given; the replies come back in two pieces each.
const LINES: [&str; 3] = [
    "Hello, fragmented world!",
    "the second line comes back in two pieces too",
    "third",
];

/// The reply lines the client has printed so far: the text from `Message from server:`
/// on (a reply may follow a prompt on the same line).
fn replies(client: &TerminalProgram) -> Vec<String> {
    client
        .lines()
        .iter()
        .filter_map(|l| l.find("Message from server:").map(|at| l[at..].to_string()))
        .collect()
}

/// Waits until the client has printed `n` replies, up to `limit`.
fn wait_replies(client: &TerminalProgram, n: usize, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    loop {
        if replies(client).len() >= n {
            return true;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let _ = client.wait_for_line(left.min(Duration::from_millis(20)), |_| false);
    }
}

/// The checker's echo server sends the first half of each reply at once and holds the
/// rest until the client has printed a reply or a second has passed. A client that
/// prints after one read() has printed half a line by then, every time.
fn fragmented_reply(ctx: &mut Ctx) -> Outcome {
    let server = HarnessServer::start().map_err(fail)?;
    let mut client = ctx.client(server.addr, &[])?;
    let mut conn = server.accept(ctx.secs(10.0)).map_err(fail)?;
    conn.nodelay();
    for (i, line) in LINES.iter().enumerate() {
        client
            .type_text(&format!("{line}\n"))
            .map_err(|e| fail(format!("{e:#}")))?;
        let sent = conn
            .recv_until(b'\n', 64 * 1024, ctx.secs(10.0))
            .map_err(|short| {
                Failure::new(format!(
                    "your client did not send line {} whole: {}",
                    i + 1,
                    short.why
                ))
                .expected(format!("{line:?} and a newline"))
                .got(&short.got)
            })?;
        let half = sent.len() / 2;
        conn.send(&sent[..half]).map_err(fail)?;
        // Hold the rest until the client printed (it should not have) or a second.
        wait_replies(&client, i + 1, Duration::from_secs(1));
        conn.send(&sent[half..]).map_err(fail)?;
        if !wait_replies(&client, i + 1, ctx.secs(5.0)) {
            return Err(
                Failure::new(format!("your client printed no reply to line {}", i + 1))
                    .got(&client.output())
                    .into(),
            );
        }
        let expected = format!("Message from server: {line}");
        let printed = replies(&client)[i].clone();
        if printed != expected {
            return Err(Failure::new(format!(
                "line {} came back as {:?} then {:?} (two writes); your client printed the reply before it was whole",
                i + 1,
                String::from_utf8_lossy(&sent[..half]),
                String::from_utf8_lossy(&sent[half..])
            ))
            .sent(&sent)
            .expected(format!("a line {expected:?}"))
            .got(printed.as_bytes())
            .into());
        }
    }
    client
        .type_text("Q\n")
        .map_err(|e| fail(format!("{e:#}")))?;
    ctx.expect_exit_zero(client.spawned.pid, "after Q")
}

// ---------------------------------------------------------------- the calculator

/// A request in the book's wire format.
fn request(operands: &[i32], operator: u8) -> Vec<u8> {
    let mut out = vec![operands.len() as u8];
    for x in operands {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.push(operator);
    out
}

/// Sends `bytes` on a new connection (one byte per write when `split`) and reads the
/// 4-byte result.
fn ask(
    ctx: &mut Ctx,
    server: &Server,
    bytes: &[u8],
    split: bool,
    deadline: Duration,
) -> Result<i32, Problem> {
    let mut conn = ctx.connect(server)?;
    if split {
        // One byte per write. The count byte and the first operand byte each go once
        // the server has read the one before, so a server that reads the body with one
        // read() gets a single byte: caught every time. The rest follow without waiting,
        // so a slow but correct server is not held past its own read deadline.
        conn.nodelay();
        for (i, b) in bytes.iter().enumerate() {
            conn.send(std::slice::from_ref(b))
                .map_err(|e| ctx.explain(server, Failure::new(e).sent(bytes)))?;
            if i < 2 {
                conn.wait_consumed(ctx.secs(1.0));
            }
        }
    } else {
        conn.send(bytes)
            .map_err(|e| ctx.explain(server, Failure::new(e).sent(bytes)))?;
    }
    match conn.recv_exact(4, deadline) {
        Ok(got) => Ok(i32::from_le_bytes(got.try_into().expect("4 bytes"))),
        Err(short) => Err(ctx.explain(
            server,
            Failure::new(format!("no 4-byte result: {}", short.why))
                .sent(bytes)
                .expected("a 4-byte little-endian result")
                .got(&short.got),
        )),
    }
}

/// Asks for each calculation on a fresh connection and compares the results.
fn expect_results(ctx: &mut Ctx, cases: &[(&[i32], u8, i32)], split: bool) -> Outcome {
    let server = ctx.server()?;
    for (operands, operator, expected) in cases {
        let bytes = request(operands, *operator);
        let got = ask(ctx, &server, &bytes, split, ctx.secs(5.0))?;
        if got != *expected {
            let shown: Vec<String> = operands.iter().map(i32::to_string).collect();
            let mut message = format!(
                "{} gave {got}",
                shown.join(&format!(" {} ", *operator as char))
            );
            if i32::from_be_bytes(got.to_le_bytes()) == *expected {
                message
                    .push_str(" (the right value in big-endian: this protocol is little-endian)");
            }
            return Err(Failure::new(message)
                .sent(&bytes)
                .expected(format!(
                    "{expected} ({})",
                    crate::report::escape(&expected.to_le_bytes(), 8)
                ))
                .got(&got.to_le_bytes())
                .into());
        }
    }
    Ok(())
}

fn calc_add(ctx: &mut Ctx) -> Outcome {
    // 200 + 100 carries from the low byte: the one case byte order cannot hide.
    expect_results(
        ctx,
        &[
            (&[3, 5, 7], b'+', 15),
            (&[-10, 4], b'+', -6),
            (&[200, 100], b'+', 300),
        ],
        false,
    )
}

fn calc_sub(ctx: &mut Ctx) -> Outcome {
    expect_results(
        ctx,
        &[(&[10, 3, 2], b'-', 5), (&[1, 300], b'-', -299)],
        false,
    )
}

fn calc_mul(ctx: &mut Ctx) -> Outcome {
    expect_results(ctx, &[(&[-2, 3, 4], b'*', -24), (&[7], b'*', 7)], false)
}

fn calc_overflow(ctx: &mut Ctx) -> Outcome {
    expect_results(
        ctx,
        &[
            (&[i32::MAX, 1], b'+', i32::MIN),
            (&[65536, 65536], b'*', 0),
            (&[i32::MIN, 1], b'-', i32::MAX),
        ],
        false,
    )
}

fn calc_split_request(ctx: &mut Ctx) -> Outcome {
    expect_results(ctx, &[(&[250, 10, 3], b'+', 263)], true)
}

/// The server's CPU use over one second, as a percentage of one CPU.
fn cpu_percent_over_a_second(server: &Server) -> Option<u64> {
    let before = procfs::stat(server.pid)?.cpu_ticks;
    // A measurement window, not synchronisation: we want the CPU time it takes.
    std::thread::sleep(Duration::from_secs(1));
    let after = procfs::stat(server.pid)?.cpu_ticks;
    Some((after - before) * 100 / procfs::ticks_per_second())
}

fn calc_truncated(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    // The follow-up requests are sums without carries, which byte order cannot change:
    // this check tests truncation only.
    let partial = &request(&[1, 2, 3], b'+')[..6];

    // A request cut short by a close: read() returns 0 from then on.
    let mut cut = ctx.connect(&server)?;
    cut.send(partial).map_err(fail)?;
    let _ = cut.stream.shutdown(std::net::Shutdown::Write);
    if let Some(cpu) = cpu_percent_over_a_second(&server)
        && cpu > 50
    {
        return Err(Failure::new(format!(
            "after a client sent 6 of 14 bytes and closed, your server used {cpu}% of a CPU for a second: it loops on read() returning 0"
        ))
        .sent(partial)
        .into());
    }
    drop(cut);
    let got = ask(
        ctx,
        &server,
        &request(&[3, 5, 7], b'+'),
        false,
        ctx.secs(10.0),
    )
    .map_err(|p| with_prefix(p, "after a request cut short by a close, the next client"))?;
    if got != 15 {
        return Err(fail(format!(
            "after a request cut short, 3 + 5 + 7 gave {got}"
        )));
    }

    // A request that stalls: the client sends part and then nothing, connection open.
    let mut stalled = ctx.connect(&server)?;
    stalled.send(partial).map_err(fail)?;
    if let Some(cpu) = cpu_percent_over_a_second(&server)
        && cpu > 50
    {
        return Err(fail(format!(
            "while a client stalled half-way through a request, your server used {cpu}% of a CPU"
        )));
    }
    let got = ask(ctx, &server, &request(&[3, 5, 7], b'+'), false, ctx.secs(20.0)).map_err(|p| {
        with_prefix(p, "while a client stalled half-way through its request (connection open), the next client")
    })?;
    drop(stalled);
    if got != 15 {
        return Err(fail(format!(
            "while a client stalled, 3 + 5 + 7 gave {got}"
        )));
    }
    Ok(())
}

/// A bad request must end that client's connection with no result.
fn expect_refused(ctx: &mut Ctx, server: &Server, bytes: &[u8], what: &str) -> Outcome {
    let mut conn: Conn = ctx.connect(server)?;
    conn.send(bytes).map_err(fail)?;
    match conn.recv_to_end(64, ctx.secs(10.0)) {
        Ok(got) if got.is_empty() => Ok(()),
        Ok(got) => Err(Failure::new(format!(
            "{what} was answered, as if it were a valid request"
        ))
        .sent(bytes)
        .expected("the connection closed with no result")
        .got(&got)
        .into()),
        // A reset also closes the connection without a result.
        Err(short) if short.got.is_empty() && short.why.contains("reset") => Ok(()),
        Err(short) => Err(ctx.explain(
            server,
            Failure::new(format!("{what}: {}", short.why))
                .sent(bytes)
                .expected("the connection closed with no result")
                .got(&short.got),
        )),
    }
}

fn calc_bad_operator(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    expect_refused(
        ctx,
        &server,
        &request(&[8, 2], b'/'),
        "a request with the unknown operator '/'",
    )?;
    expect_refused(ctx, &server, &[0], "a request with operand count 0")?;
    let got = ask(
        ctx,
        &server,
        &request(&[3, 5, 7], b'+'),
        false,
        ctx.secs(10.0),
    )
    .map_err(|p| with_prefix(p, "after two bad requests, the next client"))?;
    if got != 15 {
        return Err(fail(format!(
            "after two bad requests, 3 + 5 + 7 gave {got}"
        )));
    }
    Ok(())
}

fn calc_client(ctx: &mut Ctx) -> Outcome {
    let server = HarnessServer::start().map_err(fail)?;
    let mut client = ctx.client(server.addr, &[])?;
    client
        .type_text("3\n5\n-7\n100\n*\n")
        .map_err(|e| fail(format!("{e:#}")))?;
    let mut conn = server.accept(ctx.secs(10.0)).map_err(fail)?;
    let expected = request(&[5, -7, 100], b'*');
    let got = conn
        .recv_exact(expected.len(), ctx.secs(10.0))
        .map_err(|short| {
            Failure::new(format!(
                "your client's request was not complete: {}",
                short.why
            ))
            .expected(crate::report::escape(&expected, 64))
            .got(&short.got)
        })?;
    if got != expected {
        return Err(Failure::new("your client's request is not in the book's format (count, little-endian operands, operator)")
            .expected(crate::report::escape(&expected, 64))
            .got(&got)
            .into());
    }
    conn.send(&(-3500i32).to_le_bytes()).map_err(fail)?;
    ctx.expect_line(&client, "Operation result: -3500", ctx.secs(5.0))?;
    ctx.expect_exit_zero(client.spawned.pid, "after printing the result")
}
