//! ch11: the echo server that stores what it echoes, through a pipe and a writer process.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::check::{Chapter, Check, Ctx, Evidence, Outcome, Problem, Readme, Server, fail};
use crate::peer::Conn;
use crate::report::{escape, list};

use super::echo::{round_trip, with_prefix};
use super::{pattern, tcp_server_role};

/// Where this chapter's hints send the reader.
pub const README: Readme = Readme("crates/ch11-pipes/README.md");

/// The file the book's writer saves to when no `{file}` is given.
const BOOK_FILE: &str = "echomsg.txt";

pub fn chapter() -> Chapter {
    let mut server = tcp_server_role(
        "server",
        "ch11-pipes",
        &["echo-storeserv", "{port}", "{file}"],
        "./echo_storeserv {port} {file}",
    );
    server.allowed = &["{host}", "{port}", "{file}"];
    Chapter {
        id: "ch11",
        title: "pipes between processes; the echo server that stores what it echoes",
        roles: vec![server],
        checks: vec![
            Check {
                name: "concurrent-echo",
                role: "server",
                title: "10 clients connect first, then talk in reverse order: all are echoed",
                hint: "fork() a child per client after accept(), as in ch10; the child echoes and writes to the pipe, the parent goes back to accept()",
                see: README.at("The store server"),
                run: concurrent_echo,
            },
            Check {
                name: "stores-every-byte",
                role: "server",
                title: "4 clients at once, 3 messages of 20,000 bytes each: after SIGTERM the file holds every byte, in order per client",
                hint: "the writer reads the pipe until read() returns 0 and saves every byte; at shutdown, end the children, close the write end and wait for the writer",
                see: README.at("The writer"),
                run: stores_every_byte,
            },
            Check {
                name: "burst-no-zombies",
                role: "server",
                title: "20 clients close at once, four times: no zombie child is left",
                hint: "signals do not queue: reap in a loop, while (waitpid(-1, &status, WNOHANG) > 0)",
                see: README.at("The store server"),
                run: super::ch10::burst_no_zombies,
            },
            Check {
                name: "writer-ends-with-server",
                role: "server",
                title: "the server killed outright (SIGKILL): its writer sees end of file and ends within 3 s",
                hint: "a pipe's read end sees end of file only once every write end is closed: the writer must close its own copy of the write end",
                see: README.at("End of file on a pipe"),
                run: writer_ends_with_server,
            },
        ],
    }
}

fn concurrent_echo(ctx: &mut Ctx) -> Outcome {
    super::echo::clients_in_reverse(ctx, 10)
}

/// How many clients talk at once in `stores-every-byte`, and what each sends.
const CLIENTS: usize = 4;
const MESSAGES: usize = 3;
const MESSAGE: usize = 20_000;

/// Client `i`'s bytes come from an alphabet of its own (48 byte values, none shared),
/// so that its bytes can be picked out of the file however the writer's chunks of
/// different clients were interleaved.
fn alphabet(i: usize) -> std::ops::Range<u8> {
    let start = 0x20 + 48 * i as u8;
    start..start + 48
}

fn message_of(client: usize, n: usize) -> Vec<u8> {
    let letters = alphabet(client);
    pattern(MESSAGE, 0x1100 + (client * MESSAGES + n) as u64)
        .into_iter()
        .map(|b| letters.start + b % 48)
        .collect()
}

/// Where the server saves: `{file}` when the template uses it, else the book's name in
/// its working directory.
fn stored_file(ctx: &Ctx) -> (PathBuf, Vec<(&'static str, String)>) {
    if ctx.template_uses("{file}") {
        let path = ctx.sup.workdir().join("stored.txt");
        let value = path.to_string_lossy().into_owned();
        (path, vec![("{file}", value)])
    } else {
        (ctx.sup.workdir().join(BOOK_FILE), Vec::new())
    }
}

/// Ends a client cleanly and waits until the server has closed its side: its child has
/// read end of stream, so everything the client sent has gone through its hands.
fn finish_client(ctx: &mut Ctx, server: &Server, mut conn: Conn, who: &str) -> Outcome {
    let _ = conn.stream.shutdown(std::net::Shutdown::Write);
    match conn.recv_to_end(1024, ctx.secs(5.0)) {
        Ok(rest) if rest.is_empty() => Ok(()),
        Ok(rest) => Err(Evidence::new(format!(
            "{who}: after its last echo and its end of stream, {} more bytes came",
            rest.len()
        ))
        .got(&rest)
        .into()),
        Err(short) => Err(ctx.explain(
            server,
            Evidence::new(format!(
                "{who} closed its side; the server did not close its own: {}",
                short.why
            ))
            .expected("end of stream: the child reads 0, closes the client's socket and exits"),
        )),
    }
}

fn stores_every_byte(ctx: &mut Ctx) -> Outcome {
    let (path, extra) = stored_file(ctx);
    let server = ctx.server_of("server", &extra)?;
    let mut conns = Vec::new();
    for _ in 0..CLIENTS {
        conns.push(ctx.connect(&server)?);
    }
    // Round after round, each client sends a message and waits for its echo: the
    // children write to the pipe at the same time, and their chunks interleave.
    let mut sent: Vec<Vec<u8>> = vec![Vec::new(); CLIENTS];
    for n in 0..MESSAGES {
        for (i, conn) in conns.iter_mut().enumerate() {
            let message = message_of(i, n);
            round_trip(ctx, &server, conn, &message).map_err(|p| {
                with_prefix(
                    p,
                    &format!("client {} of {CLIENTS}, message {}", i + 1, n + 1),
                )
            })?;
            sent[i].extend_from_slice(&message);
        }
    }
    for (i, conn) in conns.into_iter().enumerate() {
        finish_client(ctx, &server, conn, &format!("client {}", i + 1))?;
    }
    ctx.expect_clean_stop(&server, ctx.secs(5.0)).map_err(|p| {
        with_prefix(
            p,
            "every client had closed and been closed; then SIGTERM, so that the writer saves what is left and ends",
        )
    })?;
    let total: usize = sent.iter().map(Vec::len).sum();
    let saved = std::fs::read(&path).map_err(|e| {
        Evidence::new(format!(
            "no file to read at {} ({e})",
            if extra.is_empty() {
                format!("{BOOK_FILE} in the server's working directory")
            } else {
                "{file}".to_string()
            }
        ))
        .expected(format!(
            "the {total} bytes the clients sent, saved by the writer"
        ))
    })?;
    compare_saved(&saved, &sent)
}

/// The file against what each client sent: the same bytes in number, and each client's
/// own in the order it sent them.
fn compare_saved(saved: &[u8], sent: &[Vec<u8>]) -> Outcome {
    let total: usize = sent.iter().map(Vec::len).sum();
    let foreign: Vec<u8> = saved
        .iter()
        .copied()
        .filter(|b| !(0..sent.len()).any(|i| alphabet(i).contains(b)))
        .collect();
    if !foreign.is_empty() {
        return Err(Evidence::new(format!(
            "the file holds {} bytes that no client sent",
            foreign.len()
        ))
        .expected("only what the clients sent")
        .got(&foreign[..foreign.len().min(64)])
        .into());
    }
    for (i, theirs) in sent.iter().enumerate() {
        let letters = alphabet(i);
        let kept: Vec<u8> = saved
            .iter()
            .copied()
            .filter(|b| letters.contains(b))
            .collect();
        if &kept == theirs {
            continue;
        }
        let at = kept
            .iter()
            .zip(theirs)
            .position(|(a, b)| a != b)
            .unwrap_or(kept.len().min(theirs.len()));
        let what = if at == kept.len() && kept.len() < theirs.len() {
            format!(
                "the file holds {} of the {} bytes client {} sent, {} of the {total} all sent; the rest was never saved",
                kept.len(),
                theirs.len(),
                i + 1,
                saved.len()
            )
        } else {
            format!(
                "client {}'s bytes in the file differ from what it sent, from its byte {at} on ({} there)",
                i + 1,
                escape(&theirs[at.min(theirs.len() - 1)..][..1], 1)
            )
        };
        return Err(Evidence::new(what)
            .expected(format!(
                "each client's {} bytes, in the order it sent them ({total} in all)",
                theirs.len()
            ))
            .got(&kept[at.min(kept.len())..(at + 32).min(kept.len())])
            .into());
    }
    if saved.len() != total {
        return Err(fail(format!(
            "the file holds {} bytes, the clients sent {total}",
            saved.len()
        )));
    }
    Ok(())
}

fn writer_ends_with_server(ctx: &mut Ctx) -> Outcome {
    let (_, extra) = stored_file(ctx);
    let server = ctx.server_of("server", &extra)?;
    let mut conn = ctx.connect(&server)?;
    round_trip(ctx, &server, &mut conn, b"saved before the end\n")?;
    finish_client(ctx, &server, conn, "the client")?;
    // The client's child has closed its socket; wait until it has also exited and been
    // reaped, so that what is left below the server is its writer (if it has one as a
    // process), seen alive and known as this check's before the kill. (A child that died
    // only after its parent would be re-parented to the checker as a zombie it cannot
    // tell from a parallel check's.)
    let until = Instant::now() + ctx.secs(5.0);
    while crate::procfs::children(server.pid).len() > 1 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = ctx.sup.processes();
    kill(Pid::from_raw(server.pid), Signal::SIGKILL)
        .map_err(|e| fail(format!("kill(SIGKILL): {e}")))?;
    ctx.stated_deadline_starts();
    // Its children serve no client now; what is left is the writer, which ends once it
    // reads end of file: when no write end of the pipe is open any more.
    let deadline = ctx.secs(3.0);
    let until = Instant::now() + deadline;
    loop {
        let left: Vec<_> = ctx
            .sup
            .processes()
            .into_iter()
            .filter(|p| p.state != 'Z' && p.pid != server.pid)
            .collect();
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() >= until {
            let names: Vec<String> = left
                .iter()
                .map(|p| format!("{} ({})", p.pid, p.comm))
                .collect();
            let doing = ctx.doing(left[0].pid);
            return Err(Problem::from(
                Evidence::new(format!(
                    "{deadline:.1?} after your server (pid {}) was killed with SIGKILL, these of its processes were still running: {}",
                    server.pid,
                    list(&names)
                ))
                .expected(
                    "the writer reads end of file (every write end closed: the server's died with it) and exits",
                )
                .doing(doing),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
