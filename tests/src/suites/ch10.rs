//! ch10: the multi-process echo server and split client, and the process and signal
//! demos observed from outside.

use std::io::Write;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;

use crate::check::{Chapter, Check, Ctx, Evidence, Outcome, Problem, Readme, Server, fail};
use crate::peer::Conn;
use crate::procfs;
use crate::supervise::describe_status;

use crate::report::{list, quote};
use crate::wording;

use super::echo::round_trip;
use super::{client_role, reference_tool_role, tcp_server_role};

/// Where this chapter's hints send the reader.
pub const README: Readme = Readme("crates/ch10-multiprocess/README.md");

/// Where this chapter's hints send the reader.
pub const SIGNALS_README: Readme = Readme("crates/ch10-signals/README.md");

pub fn chapter() -> Chapter {
    Chapter {
        id: "ch10",
        title: "processes, zombies and signals; the multi-process server",
        roles: vec![
            tcp_server_role(
                "server",
                "ch10-multiprocess",
                &["echo-server", "{port}"],
                "./echo_mpserv {port}",
            ),
            client_role(
                "client",
                "ch10-multiprocess",
                &["echo-client", "{host}", "{port}"],
                "./echo_mpclient {host} {port}",
            ),
            reference_tool_role("process-demos", "ch10-multiprocess"),
            reference_tool_role("signal-demos", "ch10-signals"),
        ],
        checks: vec![
            Check {
                name: "concurrent-clients",
                role: "server",
                title: "10 clients connect first, then talk in reverse order: all are served",
                hint: "fork() after accept(): the child serves the client, the parent goes straight back to accept()",
                see: README.at("The multi-process server"),
                run: concurrent_clients,
            },
            Check {
                name: "large-message",
                role: "server",
                title: "1 MiB and 1 byte in one write comes back byte-identical, and nothing after it",
                hint: "read() into a buffer of its real size (sizeof buf, not BUFSIZ) and write every byte you read; keep reading until read() returns 0",
                see: README.at("The multi-process server"),
                run: super::echo::large_message,
            },
            Check {
                name: "burst-no-zombies",
                role: "server",
                title: "20 clients close at once, four times: no zombie child is left",
                hint: "signals do not queue: reap in a loop, while (waitpid(-1, &status, WNOHANG) > 0)",
                see: README.at("Reaping"),
                run: burst_no_zombies,
            },
            Check {
                name: "no-fd-leak",
                role: "server",
                title: "after 200 clients the server's open fds are back to where they were",
                hint: "the parent must close() the client's socket after fork(); the child closes the listening one",
                see: README.at("Who closes what"),
                run: no_fd_leak,
            },
            Check {
                name: "survives-reset",
                role: "server",
                title: "a client that resets mid-echo does not disturb the others",
                hint: "only that client's child sees the reset; the parent and the other children go on",
                see: README.at("The multi-process server"),
                run: survives_reset,
            },
            Check {
                name: "graceful-stop",
                role: "server",
                title: "SIGTERM with two clients connected: exit 0 within 2 s, nothing left behind",
                hint: "catch SIGTERM, stop accepting, end the children, waitpid() every one, then exit 0",
                see: README.at("Stopping"),
                run: graceful_stop,
            },
            Check {
                name: "client-split-io",
                role: "client",
                title: "the split client, given 1,000 lines, prints 1,000 replies in order and exits 0",
                hint: "the writer sends and at end of input shutdown(SHUT_WR)s; the reader prints until end of stream",
                see: README.at("Split I/O"),
                run: client_split_io,
            },
            Check {
                name: "client-server-closes",
                role: "client",
                title: "the server closes in the middle of a reply: the split client ends within 2 s, never spinning",
                hint: "the reader stops at read() = 0 and ends the writer too (kill it, or close and wait), so the client exits",
                see: README.at("Split I/O"),
                run: client_server_closes,
            },
            Check {
                name: "zombie-demo",
                role: "process-demos",
                title: "`zombie`: the child is seen in state Z in /proc, then reaped",
                hint: "a child that has exited stays a zombie until its parent waits for it",
                see: README.at("Zombies"),
                run: zombie_demo,
            },
            Check {
                name: "waitpid-demo",
                role: "process-demos",
                title: "`waitpid`: the parent polls with WNOHANG, then reads status 24",
                hint: "waitpid(pid, &status, WNOHANG) returns 0 while the child runs",
                see: README.at("wait and waitpid"),
                run: waitpid_demo,
            },
            Check {
                name: "remove-zombie-demo",
                role: "signal-demos",
                title: "`remove-zombie`: both children reaped by the SIGCHLD handler, statuses 12 and 24",
                hint: "install a SIGCHLD handler that calls waitpid(); report from the main loop",
                see: SIGNALS_README.at("Reaping"),
                run: remove_zombie_demo,
            },
            Check {
                name: "signal-demo",
                role: "signal-demos",
                title: "`signal`: SIGINT while it runs prints `CTRL+C pressed`",
                hint: "a SIGINT handler replaces the default action (terminate)",
                see: SIGNALS_README.at("Signals"),
                run: signal_demo,
            },
        ],
    }
}

fn connect_many(ctx: &mut Ctx, server: &Server, n: usize) -> Result<Vec<Conn>, Problem> {
    (0..n).map(|_| ctx.connect(server)).collect()
}

fn concurrent_clients(ctx: &mut Ctx) -> Outcome {
    super::echo::clients_in_reverse(ctx, 10)
}

/// The server's children in state Z.
fn zombies(server: &Server) -> Vec<i32> {
    procfs::children(server.pid)
        .into_iter()
        .filter(|c| c.state == 'Z')
        .map(|c| c.pid)
        .collect()
}

/// 20 clients close at once, four times; no child of the server may stay a zombie
/// (also ch11's store server, whose writer is a child that stays alive).
pub fn burst_no_zombies(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    for burst in 1..=4 {
        let mut conns = connect_many(ctx, &server, 20)?;
        // A round trip each: every child exists and waits in read() before the burst.
        for (i, conn) in conns.iter_mut().enumerate() {
            round_trip(
                ctx,
                &server,
                conn,
                format!("burst {burst}, client {i}\n").as_bytes(),
            )?;
        }
        // All 20 close at the same instant: 20 children exit together.
        drop(conns);
        let until = Instant::now() + ctx.secs(5.0);
        loop {
            let z = zombies(&server);
            if z.is_empty() {
                break;
            }
            if Instant::now() >= until {
                return Err(Evidence::new(format!(
                    "after burst {burst} of 4 (20 clients closing at once), {} children of your server were still zombies 5 s later: pids {}",
                    z.len(),
                    list(&z)
                ))
                .expected("no child in state Z (all reaped)")
                .into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    Ok(())
}

fn no_fd_leak(ctx: &mut Ctx) -> Outcome {
    super::echo::fds_come_back(ctx, 10, 200)
}

fn survives_reset(ctx: &mut Ctx) -> Outcome {
    super::echo::reset_among_others(ctx)
}

fn graceful_stop(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    let mut conns = connect_many(ctx, &server, 2)?;
    for (i, conn) in conns.iter_mut().enumerate() {
        round_trip(ctx, &server, conn, format!("client {i}\n").as_bytes())?;
    }
    ctx.expect_clean_stop(&server, ctx.secs(2.0))
}

fn client_split_io(ctx: &mut Ctx) -> Outcome {
    const LINES: usize = 1000;
    let server = ctx.harness_server()?;
    let client = ctx.client(server.addr, &[])?;
    let received = super::ch04::echo_for_client(ctx, &server)?;
    let mut keyboard = client.keyboard().map_err(|e| fail(format!("{e:#}")))?;
    let typist = std::thread::spawn(move || {
        for i in 1..=LINES {
            if writeln!(keyboard, "line {i:04}").is_err() {
                return;
            }
        }
        // Ctrl-D at the start of a line: end of input.
        let _ = keyboard.write_all(b"\x04");
    });
    // Waits for the exit, but not for nothing: a client that goes on sending after end
    // of input (the book's writer resends its last line) will not exit.
    let typed = LINES * "line 0000\n".len();
    let until = Instant::now() + ctx.secs(20.0);
    let status = loop {
        if let Some(status) = ctx
            .sup
            .wait_exit(client.spawned.pid, Duration::from_millis(50))
        {
            break Some(status);
        }
        let sent = received.load(std::sync::atomic::Ordering::Relaxed);
        if sent > typed + 4096 {
            let _ = typist.join();
            return Err(Evidence::new(format!(
                "your client sent {} bytes more than the {LINES} lines typed: after end of input it sends again and again",
                sent - typed
            ))
            .expected("end of input (Ctrl-D): shutdown(SHUT_WR), the reader prints what is left, exit 0")
            .doing(ctx.doing(client.spawned.pid))
            .into());
        }
        if Instant::now() >= until {
            break None;
        }
    };
    let _ = typist.join();
    // The lesson is the stream: every line back, in order. The book's reader prints
    // its label once per read(), not once per line, so the labels are taken out first,
    // wherever they stand and however they are worded.
    let output = String::from_utf8_lossy(&client.output_now()).replace('\r', "");
    let (text, labels) = wording::strip_labels(&output, wording::MESSAGE_FROM_SERVER);
    if let Some(note) = wording::labels_note(&labels, wording::MESSAGE_FROM_SERVER) {
        ctx.note(note);
    }
    let replies = numbered_lines(&text);
    let expected: Vec<String> = (1..=LINES).map(|i| format!("line {i:04}")).collect();
    if let Some(at) = (0..LINES).find(|i| replies.get(*i) != Some(&expected[*i])) {
        let mut evidence = Evidence::new(format!(
            "{} of {LINES} lines came back in order; then {}",
            at,
            replies
                .get(at)
                .map_or("nothing more".to_string(), |r| format!(
                    "{} came instead of {}",
                    quote(r),
                    quote(&expected[at])
                ))
        ))
        .expected("every line typed printed back, in the order typed")
        .got(&client.output());
        if status.is_none() {
            evidence = evidence.doing(ctx.doing(client.spawned.pid));
        }
        return Err(evidence.into());
    }
    match status {
        Some(WaitStatus::Exited(_, 0)) => Ok(()),
        Some(status) => Err(fail(format!(
            "after end of input and every reply, your client {}",
            describe_status(&status)
        ))),
        None => Err(Evidence::new(
            "your client printed every reply but was still running 20 s after end of input",
        )
        .doing(ctx.doing(client.spawned.pid))
        .into()),
    }
}

/// The `line NNNN` texts in `text`, in order, wherever they stand.
fn numbered_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("line ") {
        let number: String = rest[at + 5..].chars().take(4).collect();
        if number.len() == 4 && number.chars().all(|c| c.is_ascii_digit()) {
            out.push(format!("line {number}"));
            rest = &rest[at + 9..];
        } else {
            rest = &rest[at + 5..];
        }
    }
    out
}

fn zombie_demo(ctx: &mut Ctx) -> Outcome {
    let demo = ctx.start_tool(&["zombie", "--seconds", "1"])?;
    let pid = demo.spawned.pid;
    // The demo leaves its zombie for a second: it must be seen in state Z for 300 ms
    // in a row (a child that is reaped the instant it exits is a zombie for microseconds).
    let until = Instant::now() + ctx.secs(5.0);
    let mut seen_since: Option<(i32, Instant)> = None;
    let zombie = loop {
        let z = procfs::children(pid)
            .into_iter()
            .find(|c| c.state == 'Z')
            .map(|c| c.pid);
        seen_since = match (z, seen_since) {
            (Some(z), Some((s, since))) if s == z => Some((s, since)),
            (Some(z), _) => Some((z, Instant::now())),
            (None, _) => None,
        };
        if let Some((z, since)) = seen_since
            && since.elapsed() >= Duration::from_millis(300)
        {
            break z;
        }
        if Instant::now() >= until {
            return Err(Evidence::new(
                "no child of the demo stayed in state Z (a zombie) for 300 ms",
            )
            .expected("a child that has exited and is not yet waited for, seen in /proc/PID/stat")
            .got(&demo.output())
            .into());
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    match ctx.sup.wait_exit(pid, ctx.secs(10.0)) {
        Some(WaitStatus::Exited(_, 0)) => {}
        other => return Err(fail(demo_ended(other))),
    }
    if procfs::stat(zombie).is_some_and(|p| p.ppid == pid) {
        return Err(fail(format!("the zombie {zombie} was never reaped")));
    }
    Ok(())
}

/// How a demo ended, or that it did not, in words.
fn demo_ended(status: Option<WaitStatus>) -> String {
    match status {
        Some(status) => format!("the demo {}", describe_status(&status)),
        None => "the demo was still running 10 s later".to_string(),
    }
}

fn expect_lines(run: &crate::check::ToolRun, wanted: &[&str]) -> Outcome {
    let out = run.stdout_text();
    for w in wanted {
        if !out.lines().any(|l| l.trim_end() == *w) {
            return Err(
                Evidence::new(format!("`{}` did not print {}", run.command, quote(w)))
                    .got(&run.stdout)
                    .into(),
            );
        }
    }
    if run.code() != Some(0) {
        return Err(fail(format!(
            "`{}` {}",
            run.command,
            describe_status(&run.status)
        )));
    }
    Ok(())
}

fn waitpid_demo(ctx: &mut Ctx) -> Outcome {
    let run = ctx.tool(&["waitpid", "--seconds", "1"])?;
    let polls = run
        .stdout_text()
        .lines()
        .filter(|l| l.starts_with("sleep "))
        .count();
    if polls < 2 {
        return Err(Evidence::new(format!("the parent polled {polls} times while the child worked for 1 s"))
            .expected("several \"sleep 0.2sec.\" lines: waitpid(WNOHANG) returns 0 at once while the child runs")
            .got(&run.stdout)
            .into());
    }
    expect_lines(&run, &["Child send 24"])
}

fn remove_zombie_demo(ctx: &mut Ctx) -> Outcome {
    let run = ctx.tool(&["remove-zombie", "--seconds", "0.5"])?;
    expect_lines(&run, &["Child send: 12", "Child send: 24"])?;
    let out = run.stdout_text();
    let started: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("Child proc id: "))
        .collect();
    let removed: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("removed proc id: "))
        .collect();
    let mut a = started.clone();
    let mut b = removed.clone();
    a.sort();
    b.sort();
    if a != b || a.len() != 2 {
        return Err(Evidence::new(format!(
            "children started: {}; removed: {}",
            list(&started),
            list(&removed)
        ))
        .expected("both children removed")
        .into());
    }
    Ok(())
}

fn signal_demo(ctx: &mut Ctx) -> Outcome {
    let demo = ctx.start_tool(&["signal", "--seconds", "1"])?;
    // "wait..." first: the handlers are installed before it is printed.
    if demo
        .wait_for_line(ctx.secs(5.0), |l| l == "wait...")
        .is_none()
    {
        return Err(Evidence::new("the demo never printed \"wait...\"")
            .got(&demo.output())
            .into());
    }
    kill(Pid::from_raw(demo.spawned.pid), Signal::SIGINT)
        .map_err(|e| fail(format!("kill(SIGINT): {e}")))?;
    if demo
        .wait_for_line(ctx.secs(2.0), |l| l == "CTRL+C pressed")
        .is_none()
    {
        let status = ctx.sup.status(demo.spawned.pid);
        return Err(Evidence::new(format!(
            "after SIGINT the demo did not print \"CTRL+C pressed\"{}",
            status
                .map(|s| format!("; it {}", describe_status(&s)))
                .unwrap_or_default()
        ))
        .got(&demo.output())
        .into());
    }
    match ctx.sup.wait_exit(demo.spawned.pid, ctx.secs(10.0)) {
        Some(WaitStatus::Exited(_, 0)) => Ok(()),
        other => Err(fail(demo_ended(other))),
    }
}

fn client_server_closes(ctx: &mut Ctx) -> Outcome {
    let talk = super::clients::Talk::Echo {
        label: wording::MESSAGE_FROM_SERVER,
    };
    super::clients::server_closes(ctx, talk, &[])
}
