//! ch05: the echo client that reads until the whole echo is back, and the operand
//! calculator protocol.

use std::time::{Duration, Instant};

use crate::check::{
    Chapter, Check, Ctx, Evidence, Outcome, Problem, Readme, Role, RoleKind, Server, fail,
};
use crate::peer::Conn;
use crate::procfs::Proto;
use crate::pty::TerminalProgram;

use crate::report::quote;
use crate::wording;

use super::{client_role, echo, echo::with_prefix, tcp_server_role};

/// Where this chapter's hints send the reader.
pub const CALC_README: Readme = Readme("crates/ch05-op-calculator/README.md");

/// Where this chapter's hints send the reader.
pub const ECHO_README: Readme = Readme("crates/ch05-echo-client-fix/README.md");

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
            Check {
                name: "large-message",
                role: "server",
                title: "the echo server returns 1 MiB and 1 byte byte-identical, and nothing after it",
                hint: "read until read() returns 0 and write every byte",
                see: super::ch04::README.at("Reading until end of stream"),
                run: echo::large_message,
            },
            Check {
                name: "fragmented-reply",
                role: "client",
                title: "replies that arrive in pieces are printed whole and in step",
                hint: "an echo is as long as what you sent: read until you have that many bytes",
                see: ECHO_README.at("The echo client's problem"),
                run: fragmented_reply,
            },
            Check {
                name: "client-eof",
                role: "client",
                title: "end of input (Ctrl-D) ends the echo client with status 0 within 2 s",
                hint: "fgets() returns NULL at end of input: stop there instead of sending the old line again",
                see: ECHO_README.at("End of input and a closed server"),
                run: echo_client_eof,
            },
            Check {
                name: "client-server-closes",
                role: "client",
                title: "the server closes in the middle of a reply: the echo client ends within 2 s, never spinning",
                hint: "in the read loop, read() returning 0 means the server closed: stop; adding 0 to the count forever spins at 100% of a CPU",
                see: ECHO_README.at("End of input and a closed server"),
                run: echo_client_server_closes,
            },
            Check {
                name: "calc-add",
                role: "calc-server",
                title: "3 + 5 + 7 and negative operands",
                hint: "count byte, then count x 4-byte little-endian ints, then the operator; reply with 4 little-endian bytes",
                see: CALC_README.at("The protocol"),
                run: calc_add,
            },
            Check {
                name: "calc-sub",
                role: "calc-server",
                title: "10 - 3 - 2, left to right",
                hint: "subtract each operand from the running result, left to right",
                see: CALC_README.at("The protocol"),
                run: calc_sub,
            },
            Check {
                name: "calc-mul",
                role: "calc-server",
                title: "-2 * 3 * 4",
                hint: "operands are signed 32-bit",
                see: CALC_README.at("The protocol"),
                run: calc_mul,
            },
            Check {
                name: "calc-overflow",
                role: "calc-server",
                title: "results wrap around like a 32-bit C int",
                hint: "compute in 32-bit two's complement: 2147483647 + 1 is -2147483648",
                see: CALC_README.at("Overflow"),
                run: calc_overflow,
            },
            Check {
                name: "calc-split-request",
                role: "calc-server",
                title: "a request sent one byte per write is answered",
                hint: "read until you have 1 byte, then until you have 4N+1 more: one read() may return any part",
                see: CALC_README.at("Reading a request"),
                run: calc_split_request,
            },
            Check {
                name: "calc-truncated",
                role: "calc-server",
                title: "a request cut short (closed or stalled) neither spins nor blocks the next client",
                hint: "read() returns 0 when the client has closed: stop there; give each request a deadline, so that a stalled client is closed",
                see: CALC_README.at("Bad requests"),
                run: calc_truncated,
            },
            Check {
                name: "calc-dribble",
                role: "calc-server",
                title: "a client that sends one byte of its request every 0.5 s, never finishing, does not hold the server: the next client is answered within 10 s",
                hint: "a timeout per read() (SO_RCVTIMEO set once, Python's settimeout) starts again with every byte, so a client that sends a byte now and then holds the server forever: fix one deadline for the whole request when you accept(), and before each read() wait only for what is left of it",
                see: CALC_README.at("Bad requests"),
                run: calc_dribble,
            },
            Check {
                name: "calc-bad-operator",
                role: "calc-server",
                title: "an unknown operator or a count of 0 closes that client without a result; the next is served",
                hint: "check the operator and the count; close the connection instead of answering garbage",
                see: CALC_README.at("Bad requests"),
                run: calc_bad_operator,
            },
            Check {
                name: "calc-client",
                role: "calc-client",
                title: "the client sends the book's bytes and prints `Operation result: N`",
                hint: "send the count as one byte, each operand as 4 little-endian bytes, the operator as one byte",
                see: CALC_README.at("The protocol"),
                run: calc_client,
            },
            Check {
                name: "calc-client-eof",
                role: "calc-client",
                title: "end of input before the request is complete: the client ends within 2 s",
                hint: "scanf() returns EOF at end of input: stop (say so, exit 1) instead of sending a request made of garbage and waiting for its answer",
                see: CALC_README.at("The client at the edges"),
                run: calc_client_eof,
            },
            Check {
                name: "calc-client-server-closes",
                role: "calc-client",
                title: "the server closes after 2 of the 4 result bytes: the client ends within 2 s, never spinning",
                hint: "read until you have 4 bytes or read() returns 0; at 0 the server is gone: say so and exit",
                see: CALC_README.at("The client at the edges"),
                run: calc_client_server_closes,
            },
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

/// The checker's echo server sends the first half of each reply at once and holds the
/// rest until the client has printed a line or a second has passed. A client that
/// prints after one read() has printed half a reply by then, every time. The reply is
/// found whatever the label before it ([`crate::wording`]).
fn fragmented_reply(ctx: &mut Ctx) -> Outcome {
    let server = ctx.harness_server()?;
    let mut client = ctx.client(server.addr, &[])?;
    let mut conn = server.accept(ctx.secs(10.0)).map_err(fail)?;
    conn.nodelay();
    for (i, line) in LINES.iter().enumerate() {
        let before = client.line_count();
        let before_bytes = client.output_now().len();
        client
            .type_text(&format!("{line}\n"))
            .map_err(|e| fail(format!("{e:#}")))?;
        let sent = conn
            .recv_until(b'\n', 64 * 1024, ctx.secs(10.0))
            .map_err(|short| {
                Evidence::new(format!(
                    "your client did not send line {} whole: {}",
                    i + 1,
                    short.why
                ))
                .expected(format!("{} and a newline", quote(line)))
                .got(&short.got)
            })?;
        let half = sent.len() / 2;
        let first_half = String::from_utf8_lossy(&sent[..half]).into_owned();
        conn.send(&sent[..half]).map_err(fail)?;
        // Hold the rest until the client has printed a line (it should not have) or is
        // waiting (asleep in a call: for the rest of the echo, or for the keyboard after
        // printing half). Its state decides, not a guess at how fast it runs.
        // First the half must have been read (the client's receive queue is empty),
        // then the client must be asleep again or have printed.
        conn.wait_consumed(ctx.secs(5.0));
        let until = Instant::now() + ctx.secs(5.0);
        while Instant::now() < until
            && !client.wait_for_more_lines(before, Duration::from_millis(20))
            && !crate::observe::asleep(client.spawned.pid, Duration::from_millis(50))
        {}
        // Whatever it printed meanwhile, the line it may not have ended included
        // (`printf("Message from server: %s", half)` prints no newline), up to this
        // moment: not only what the terminal's reader thread has collected so far.
        let output = client.output_now();
        let early =
            String::from_utf8_lossy(&output[before_bytes.min(output.len())..]).replace('\r', "");
        conn.send(&sent[half..]).map_err(fail)?;
        if early.contains(first_half.trim_end()) && !first_half.trim().is_empty() {
            return Err(Evidence::new(format!(
                "line {} came back as {} then {} (two writes); your client printed the reply before it was whole",
                i + 1,
                crate::report::escape(&sent[..half], 200),
                crate::report::escape(&sent[half..], 200)
            ))
            .sent(&sent)
            .expected(format!("the whole reply on one line: {}", quote(line)))
            .got(early.as_bytes())
            .into());
        }
        ctx.expect_reply(&client, wording::MESSAGE_FROM_SERVER, line, ctx.secs(5.0))
            .map_err(|p| with_prefix(p, &format!("line {} of {}", i + 1, LINES.len())))?;
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
                .map_err(|e| ctx.explain(server, Evidence::new(e).sent(bytes)))?;
            if i < 2 {
                conn.wait_consumed(ctx.secs(1.0));
            }
        }
    } else {
        conn.send(bytes)
            .map_err(|e| ctx.explain(server, Evidence::new(e).sent(bytes)))?;
    }
    match conn.recv_exact(4, deadline) {
        Ok(got) => Ok(i32::from_le_bytes(got.try_into().expect("4 bytes"))),
        Err(short) => Err(ctx.explain(
            server,
            Evidence::new(format!("no 4-byte result: {}", short.why))
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
            return Err(Evidence::new(message)
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

/// How much of a second the server spent runnable, in percent: a server that loops on
/// read() returning 0 is runnable all the time, however little CPU a busy machine gives
/// it; one that waits in read() or accept() sleeps.
fn runnable_percent_over_a_second(server: &Server) -> Option<u64> {
    crate::observe::runnable_fraction(server.pid, Duration::from_secs(1))
        .map(|f| (f * 100.0).round() as u64)
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
    if let Some(busy) = runnable_percent_over_a_second(&server)
        && busy > 80
    {
        return Err(Evidence::new(format!(
            "after a client sent 6 of 14 bytes and closed, your server was running for {busy}% of the next second instead of waiting: it loops on read() returning 0"
        ))
        .sent(partial)
        .into());
    }
    drop(cut);
    next_client_served(
        ctx,
        &server,
        "after a request cut short by a close",
        ctx.secs(10.0),
    )?;

    // A request that stalls: the client sends part and then nothing, connection open.
    let mut stalled = ctx.connect(&server)?;
    stalled.send(partial).map_err(fail)?;
    if let Some(busy) = runnable_percent_over_a_second(&server)
        && busy > 80
    {
        return Err(fail(format!(
            "while a client stalled half-way through a request, your server was running for {busy}% of a second instead of waiting: it loops on a read() that fails"
        )));
    }
    next_client_served(
        ctx,
        &server,
        "while a client stalled half-way through its request (connection open)",
        ctx.secs(20.0),
    )?;
    drop(stalled);
    Ok(())
}

/// The next client's `3 + 5 + 7` is answered 15, after what `context` says happened.
fn next_client_served(
    ctx: &mut Ctx,
    server: &Server,
    context: &str,
    deadline: Duration,
) -> Outcome {
    let got = ask(ctx, server, &request(&[3, 5, 7], b'+'), false, deadline)
        .map_err(|p| with_prefix(p, &format!("{context}, the next client")))?;
    if got != 15 {
        return Err(fail(format!("{context}, 3 + 5 + 7 gave {got}")));
    }
    Ok(())
}

/// How often the dribbling client of `calc-dribble` sends a byte.
const DRIBBLE_EVERY: Duration = Duration::from_millis(500);

/// A client sends its request one byte every 0.5 s (TCP_NODELAY: a segment each), a
/// request of 100 operands that would take over 3 minutes to finish; meanwhile the next
/// client asks 3 + 5 + 7 and must have its answer within 10 s. An iterative server that
/// bounds each read() only (SO_RCVTIMEO set once) is held as long as the dribbler likes:
/// every byte restarts its timeout. One deadline for the whole request cuts it off.
fn calc_dribble(ctx: &mut Ctx) -> Outcome {
    use std::sync::mpsc;
    let server = ctx.server()?;
    let dribbler = ctx.connect(&server)?;
    dribbler.nodelay();
    let mut writer = dribbler
        .stream
        .try_clone()
        .map_err(|e| fail(format!("dup socket: {e}")))?;
    let slow = request(&[1; 100], b'+');
    let (stop, stopped) = mpsc::channel::<()>();
    // The dribbler: a byte, then a pause; it ends when the server closes its connection
    // (the send fails) or the check tells it to. The pause is the client's pace, the
    // behaviour under test, not a wait for anything.
    let pacer = std::thread::spawn(move || -> usize {
        use std::io::Write;
        let mut sent = 0;
        for byte in &slow {
            if writer.write_all(std::slice::from_ref(byte)).is_err() {
                break;
            }
            sent += 1;
            if stopped.recv_timeout(DRIBBLE_EVERY) != Err(mpsc::RecvTimeoutError::Timeout) {
                break;
            }
        }
        sent
    });
    let deadline = ctx.secs(10.0);
    ctx.stated_deadline_starts();
    let answer = ask(ctx, &server, &request(&[3, 5, 7], b'+'), false, deadline);
    let _ = stop.send(());
    let sent = pacer.join().unwrap_or(0);
    let context = format!(
        "while a client sent its request one byte every 0.5 s ({sent} of 402 bytes so far, the request never complete), the next client"
    );
    let got = answer.map_err(|p| {
        let p = with_prefix(p, &context);
        match p {
            Problem::Fail(mut evidence) if evidence.doing.is_none() => {
                evidence.doing = Some(ctx.doing(server.pid));
                Problem::Fail(evidence)
            }
            other => other,
        }
    })?;
    drop(dribbler);
    if got != 15 {
        return Err(fail(format!("{context} asked 3 + 5 + 7 and got {got}")));
    }
    Ok(())
}

/// A bad request must end that client's connection with no result.
fn expect_refused(ctx: &mut Ctx, server: &Server, bytes: &[u8], what: &str) -> Outcome {
    let mut conn: Conn = ctx.connect(server)?;
    conn.send(bytes).map_err(fail)?;
    match conn.recv_to_end(64, ctx.secs(10.0)) {
        Ok(got) if got.is_empty() => Ok(()),
        Ok(got) => Err(Evidence::new(format!(
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
            Evidence::new(format!("{what}: {}", short.why))
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
    next_client_served(ctx, &server, "after two bad requests", ctx.secs(10.0))
}

fn calc_client(ctx: &mut Ctx) -> Outcome {
    let server = ctx.harness_server()?;
    let mut client = ctx.client(server.addr, &[])?;
    client
        .type_text("3\n5\n-7\n100\n*\n")
        .map_err(|e| fail(format!("{e:#}")))?;
    let mut conn = server.accept(ctx.secs(10.0)).map_err(fail)?;
    let expected = request(&[5, -7, 100], b'*');
    let got = conn
        .recv_exact(expected.len(), ctx.secs(10.0))
        .map_err(|short| {
            Evidence::new(format!(
                "your client's request was not complete: {}",
                short.why
            ))
            .expected(crate::report::escape(&expected, 64))
            .got(&short.got)
        })?;
    if got != expected {
        return Err(Evidence::new("your client's request is not in the book's format (count, little-endian operands, operator)")
            .expected(crate::report::escape(&expected, 64))
            .got(&got)
            .into());
    }
    conn.send(&(-3500i32).to_le_bytes()).map_err(fail)?;
    expect_result(ctx, &client, -3500)?;
    ctx.expect_exit_zero(client.spawned.pid, "after printing the result")
}

/// Waits until the client prints the result `n` after a label of any wording (the
/// book's `Operation result: `), or exits.
fn expect_result(ctx: &mut Ctx, client: &TerminalProgram, n: i64) -> Outcome {
    let until = Instant::now() + ctx.secs(5.0);
    loop {
        let lines = client.lines();
        if let Some((got, shown)) = wording::find_number(&lines, wording::OPERATION_RESULT)
            && got == n
        {
            if let Some(note) = shown.note(wording::OPERATION_RESULT) {
                ctx.note(note);
            }
            return Ok(());
        }
        let exited = ctx.sup.status(client.spawned.pid).is_some();
        if exited || Instant::now() >= until {
            if let Some((got, shown)) = wording::find_number(
                &wording::lines_of(&client.output_now()),
                wording::OPERATION_RESULT,
            ) && got == n
            {
                if let Some(note) = shown.note(wording::OPERATION_RESULT) {
                    ctx.note(note);
                }
                return Ok(());
            }
            let mut evidence = Evidence::new(format!(
                "your client did not print the result {n} the server sent"
            ))
            .expected(format!(
                "a line {} (or the number after another label)",
                quote(&format!("{}{n}", wording::OPERATION_RESULT.book))
            ))
            .got(&client.output());
            if !exited {
                evidence = evidence.doing(ctx.doing(client.spawned.pid));
            }
            return Err(evidence.into());
        }
        let _ = client.wait_for_line(Duration::from_millis(50), |_| false);
    }
}

fn echo_client_eof(ctx: &mut Ctx) -> Outcome {
    let talk = super::clients::Talk::Echo {
        label: wording::MESSAGE_FROM_SERVER,
    };
    super::clients::end_of_input(ctx, talk, &[])
}

fn echo_client_server_closes(ctx: &mut Ctx) -> Outcome {
    let talk = super::clients::Talk::Echo {
        label: wording::MESSAGE_FROM_SERVER,
    };
    super::clients::server_closes(ctx, talk, &[])
}

fn calc_client_eof(ctx: &mut Ctx) -> Outcome {
    super::clients::end_of_input(ctx, super::clients::Talk::Calc, &[])
}

fn calc_client_server_closes(ctx: &mut Ctx) -> Outcome {
    super::clients::server_closes(ctx, super::clients::Talk::Calc, &[])
}
