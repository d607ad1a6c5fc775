//! Checks every interactive client role gets, whatever its chapter: end of input, and a
//! server that closes in the middle of a reply. The book's clients fail both in the
//! same ways: `echo_client.c` sends its last line again forever at end of input,
//! `echo_client2.c` spins at 100% of a CPU on `read() = 0`, and a chat client that
//! never looks at `read()`'s 0 floods the room.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::check::{Ctx, Evidence, Outcome, fail};
use crate::peer::Conn;
use crate::pty::TerminalProgram;
use crate::supervise::describe_status;
use crate::wording::Label;

/// How a client talks to its server, as far as these checks need it.
#[derive(Debug, Clone, Copy)]
pub enum Talk {
    /// Lines typed are sent and echoed (ch04, ch05, ch10).
    Echo { label: Label },
    /// Lines typed are sent as `[NAME] line`; the room relays lines (ch12).
    Chat,
    /// The book's op_client: a count, the operands and an operator are typed, a request
    /// of `1 + 4n + 1` bytes is sent, a 4-byte result comes back (ch05).
    Calc,
}

/// What is typed for one exchange, and how many bytes of request the server waits for
/// before it answers (None: a line).
fn typed(talk: Talk) -> (&'static str, Option<usize>) {
    match talk {
        Talk::Echo { .. } => ("a line before the end\n", None),
        Talk::Chat => ("a line before the end\n", None),
        Talk::Calc => ("2\n3\n4\n+\n", Some(1 + 2 * 4 + 1)),
    }
}

/// The checker's server side: counts every byte the client sends after `accept`,
/// echoing lines when asked, until the client closes (at most 64 MiB).
fn count_received(mut conn: Conn, echo: bool) -> Arc<AtomicUsize> {
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut buf = [0u8; 4096];
        while counter.load(Ordering::Relaxed) < 64 << 20 {
            match conn.stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    counter.fetch_add(n, Ordering::Relaxed);
                    if echo && conn.stream.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            }
        }
    });
    received
}

/// End of input (Ctrl-D) after one exchange: the client exits with status 0 within
/// 2 s, and sends nothing more meanwhile.
pub fn end_of_input(ctx: &mut Ctx, talk: Talk, extra: &[(&'static str, String)]) -> Outcome {
    let server = ctx.harness_server()?;
    let mut client = ctx.client(server.addr, extra)?;
    // The book's op_client connects only once its request is typed; the others at once.
    let received = match talk {
        Talk::Calc => Arc::new(AtomicUsize::new(0)),
        Talk::Echo { .. } | Talk::Chat => {
            let conn = server.accept(ctx.secs(10.0)).map_err(fail)?;
            count_received(conn, matches!(talk, Talk::Echo { .. }))
        }
    };
    let (line, _) = typed(talk);
    if let Talk::Echo { .. } = talk {
        // One exchange first, so the client is in its loop; its reply's wording is
        // another check's business: the echo's arrival and a line printed suffice.
        let printed = client.line_count();
        client.type_text(line).map_err(|e| fail(format!("{e:#}")))?;
        let until = Instant::now() + ctx.secs(5.0);
        while received.load(Ordering::Relaxed) < line.len() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        client.wait_for_more_lines(printed, ctx.secs(2.0));
    }
    let before = received.load(Ordering::Relaxed);
    // The clock starts once the client waits for input: a program still starting (an
    // interpreter loading its modules on a busy machine, runnable all the while) has not
    // had its chance to see the end yet, and would look like one that spins.
    crate::observe::wait_asleep(client.spawned.pid, ctx.secs(10.0));
    client.end_input().map_err(|e| fail(format!("{e:#}")))?;
    ctx.stated_deadline_starts();
    let deadline = ctx.secs(2.0);
    let until = Instant::now() + deadline;
    loop {
        if let Some(status) = ctx
            .sup
            .wait_exit(client.spawned.pid, Duration::from_millis(50))
        {
            return match (talk, status) {
                (_, nix::sys::wait::WaitStatus::Exited(_, 0)) => Ok(()),
                // A calculator given half a request may say so and exit 1.
                (Talk::Calc, nix::sys::wait::WaitStatus::Exited(_, _)) => Ok(()),
                (_, status) => Err(Evidence::new(format!(
                    "at end of input your client {}",
                    describe_status(&status)
                ))
                .expected("exit status 0: end of input is the end, as q is")
                .into()),
            };
        }
        let after = received.load(Ordering::Relaxed).saturating_sub(before);
        // A flood is not worth waiting out the deadline for.
        if after > 4096 || Instant::now() >= until {
            return Err(still_running(
                ctx,
                &client,
                deadline,
                after,
                "end of input (Ctrl-D)",
            ));
        }
    }
}

/// The report for a client still running after what should have ended it: what it
/// sent meanwhile, and what it is doing (spinning, or blocked where).
fn still_running(
    ctx: &mut Ctx,
    client: &TerminalProgram,
    deadline: Duration,
    sent_after: usize,
    after: &str,
) -> crate::check::Problem {
    let spinning =
        crate::observe::runnable_fraction(client.spawned.pid, Duration::from_millis(500))
            .is_some_and(|f| f > 0.8);
    let mut message = format!("your client was still running {deadline:.1?} after {after}");
    if sent_after > 0 {
        message.push_str(&format!(
            "; meanwhile it sent {sent_after} more bytes: it sends again and again"
        ));
    }
    if spinning {
        message.push_str(
            "; it is spinning (runnable all the time): it loops on a read() that returns 0",
        );
    }
    Evidence::new(message)
        .expected("the client notices, says so if need be, and exits")
        .got(&client.output())
        .doing(ctx.doing(client.spawned.pid))
        .into()
}

/// The server closes in the middle of a reply: the client notices end of stream and
/// ends within 2 s (any exit status; not killed by a signal, never spinning). A client
/// that reads once per line notices only at its next read, so when it waits for input
/// the checker types one more line.
pub fn server_closes(ctx: &mut Ctx, talk: Talk, extra: &[(&'static str, String)]) -> Outcome {
    let server = ctx.harness_server()?;
    let mut client = ctx.client(server.addr, extra)?;
    let (line, request) = typed(talk);
    // Typed before the accept: the book's op_client connects once its request is typed.
    client.type_text(line).map_err(|e| fail(format!("{e:#}")))?;
    let mut conn = server.accept(ctx.secs(10.0)).map_err(fail)?;
    let got = match request {
        Some(n) => conn.recv_exact(n, ctx.secs(10.0)).map_err(|s| s.got),
        None => conn
            .recv_until(b'\n', 64 * 1024, ctx.secs(10.0))
            .map_err(|s| s.got),
    };
    let got = got.map_err(|got| {
        Evidence::new("your client did not send what was typed")
            .expected(crate::report::quote(line))
            .got(&got)
    })?;
    // Half of the reply, then the close: FIN, end of stream.
    let half: Vec<u8> = match talk {
        Talk::Echo { .. } => got[..got.len() / 2].to_vec(),
        Talk::Chat => b"[bob] half a li".to_vec(),
        Talk::Calc => 9i32.to_le_bytes()[..2].to_vec(),
    };
    conn.send(&half).map_err(fail)?;
    drop(conn);
    ctx.stated_deadline_starts();
    let deadline = ctx.secs(2.0);
    let mut retyped = false;
    let mut until = Instant::now() + deadline;
    loop {
        if let Some(status) = ctx
            .sup
            .wait_exit(client.spawned.pid, Duration::from_millis(50))
        {
            return match status {
                nix::sys::wait::WaitStatus::Exited(..) => Ok(()),
                status => Err(Evidence::new(format!(
                    "after the server closed the connection your client {}",
                    describe_status(&status)
                ))
                .expected("it sees end of stream (read() returns 0) and exits")
                .into()),
            };
        }
        if Instant::now() < until {
            continue;
        }
        let doing = crate::observe::doing(client.spawned.pid, &|_| None);
        if !retyped && doing.contains("the terminal") {
            // It waits for the next line, as a client that reads once per line does:
            // the next one shows whether it notices the close.
            retyped = true;
            let _ = client.type_text("one more line\n");
            ctx.stated_deadline_starts();
            until = Instant::now() + deadline;
            continue;
        }
        let after = if retyped {
            "the server closed the connection in the middle of a reply and one more line was typed"
        } else {
            "the server closed the connection in the middle of a reply"
        };
        return Err(still_running(ctx, &client, deadline, 0, after));
    }
}
