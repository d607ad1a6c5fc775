//! ch07: half-close. The server sends a file, shutdown(SHUT_WR)s, and still reads the
//! client's last word.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::wait::WaitStatus;

use crate::check::{
    Chapter, Check, Ctx, Evidence, Outcome, Problem, Readme, Role, RoleKind, Server, fail,
};
use crate::procfs::{self, Proto};
use crate::supervise::{Spawned, describe_status};

use super::pattern;

const THANK_YOU: &[u8] = b"Thank you\0";

/// Where this chapter's hints send the reader.
pub const README: Readme = Readme("crates/ch07-half-close/README.md");

pub fn chapter() -> Chapter {
    Chapter {
        id: "ch07",
        title: "half-close: shutdown(SHUT_WR) and the last word",
        roles: vec![
            Role {
                name: "server",
                kind: RoleKind::Server(Proto::Tcp),
                package: "ch07-half-close",
                reference_only: false,
                reference: &["server", "{port}", "{file}"],
                required: &["{port}", "{file}"],
                allowed: &["{host}", "{port}", "{file}"],
                example: "./file_server {port} {file}",
            },
            Role {
                name: "client",
                kind: RoleKind::Client,
                package: "ch07-half-close",
                reference_only: false,
                reference: &["client", "{host}", "{port}", "{out}"],
                required: &["{port}"],
                allowed: &["{host}", "{port}", "{out}"],
                example: "./file_client {host} {port} {out}",
            },
        ],
        checks: vec![
            Check {
                name: "file-intact",
                role: "server",
                title: "a 5 MiB random file arrives byte-identical, then end of stream",
                hint: "send every byte read from the file (write what read() returned, not the buffer size), then shutdown(SHUT_WR)",
                see: README.at("Sending a file"),
                run: file_intact,
            },
            Check {
                name: "thank-you-after-eof",
                role: "server",
                title: "the client's reply, sent after end of stream, is read and printed",
                hint: "shutdown(SHUT_WR), not close(): close() ends both directions and the client's Thank you is lost",
                see: README.at("Half-close"),
                run: thank_you_after_eof,
            },
            Check {
                name: "not-a-file",
                role: "server",
                title: "given a FIFO, then a directory, as {file}: refused (a line on stderr and a non-zero exit before listening, or the connection reset), never 0 bytes and end of stream as if the file were empty, never a hang",
                hint: "only a regular file can be sent: open it with O_NONBLOCK (a FIFO's open() waits for a writer), ask fstat() what you opened, and refuse anything but S_ISREG with one line on stderr and exit(1), before listening",
                see: README.at("Sending a file"),
                run: not_a_file,
            },
            Check {
                name: "client-saves-and-thanks",
                role: "client",
                title: "the client saves the whole file and sends `Thank you` after end of stream",
                hint: "read until read() returns 0, write everything to the file, then send the 10 bytes \"Thank you\\0\"",
                see: README.at("The client"),
                run: client_saves_and_thanks,
            },
        ],
    }
}

/// Writes `bytes` to a new file in the check's working directory.
fn make_file(ctx: &Ctx, name: &str, bytes: &[u8]) -> Result<PathBuf, crate::check::Problem> {
    let path = ctx.sup.workdir().join(name);
    std::fs::write(&path, bytes).map_err(|e| fail(format!("write {}: {e}", path.display())))?;
    Ok(path)
}

fn file_intact(ctx: &mut Ctx) -> Outcome {
    let content = pattern(5 << 20, 0x0707);
    let path = make_file(ctx, "to_send.bin", &content)?;
    let server = ctx.server_of("server", &[("{file}", path.to_string_lossy().into_owned())])?;
    let mut conn = ctx.connect(&server)?;
    let received = conn.recv_to_end(6 << 20, ctx.secs(30.0));
    // Be polite either way: the server may be waiting for it.
    let _ = conn.send(THANK_YOU);
    match received {
        Ok(got) if got == content => Ok(()),
        Ok(got) => {
            let at = got
                .iter()
                .zip(&content)
                .position(|(a, b)| a != b)
                .unwrap_or(got.len().min(content.len()));
            Err(Evidence::new(format!(
                "the file arrived as {} bytes of {}, differing from byte {at} on",
                got.len(),
                content.len()
            ))
            .expected(format!(
                "5,242,880 bytes identical to {{file}}; byte {at} is {:#04x}",
                content.get(at).copied().unwrap_or(0)
            ))
            .got(&got[at.min(got.len())..(at + 32).min(got.len())])
            .into())
        }
        Err(short) => Err(ctx.explain(
            &server,
            Evidence::new(format!(
                "{} of {} bytes, then: {}",
                short.got.len(),
                content.len(),
                short.why
            ))
            .expected("the whole file, then end of stream (shutdown(SHUT_WR))"),
        )),
    }
}

fn thank_you_after_eof(ctx: &mut Ctx) -> Outcome {
    let content = b"A short text file for the half-close check.\n".repeat(100);
    let path = make_file(ctx, "to_send.txt", &content)?;
    let server = ctx.server_of("server", &[("{file}", path.to_string_lossy().into_owned())])?;
    let mut conn = ctx.connect(&server)?;
    // End of stream first: only then does the last word go out.
    let got = conn.recv_to_end(1 << 20, ctx.secs(10.0)).map_err(|short| {
        ctx.explain(
            &server,
            Evidence::new(format!("no end of stream after the file: {}", short.why))
                .expected("the file, then end of stream"),
        )
    })?;
    if got != content {
        return Err(fail(format!(
            "the file arrived as {} bytes of {}",
            got.len(),
            content.len()
        )));
    }
    conn.send(THANK_YOU).map_err(|e| {
        fail(format!(
            "sending Thank you after end of stream failed ({e}): the server closed the whole connection instead of half of it"
        ))
    })?;
    let _ = conn.stream.shutdown(std::net::Shutdown::Write);
    ctx.expect_server_line(&server, "Message from client: Thank you", ctx.secs(5.0))
        .map_err(|p| {
            super::echo::with_prefix(
                p,
                "the client read end of stream, then sent \"Thank you\\0\"",
            )
        })
}

/// What a server given something else than a regular file did first.
enum Start {
    /// It listens: what it sends the first client decides.
    Listening(Server),
    /// It exited before it listened.
    Exited(WaitStatus),
    /// Every thread of it has slept for a second without listening: it waits for
    /// something outside (a FIFO's open() waits for a writer), and nothing will come.
    Asleep(String),
}

/// Starts the server with `file` as {file} and waits until it listens, exits, or is
/// seen asleep, without listening, for a second (in state S all along, so not merely
/// slow: a program waiting for a CPU is runnable).
fn start_with(ctx: &mut Ctx, file: &std::path::Path) -> Result<(Start, Spawned), Problem> {
    let port = crate::peer::free_port().map_err(fail)?;
    let terminal = ctx.start_role(
        "server",
        &[
            ("{host}", "127.0.0.1".into()),
            ("{port}", port.to_string()),
            ("{file}", file.to_string_lossy().into_owned()),
        ],
    )?;
    let spawned = terminal.spawned.clone();
    let deadline = ctx.secs(10.0);
    let until = Instant::now() + deadline;
    let mut asleep_since: Option<Instant> = None;
    loop {
        if let Some(row) = procfs::ready_socket(Proto::Tcp, port)
            && let Some(holder) = ctx
                .sup
                .processes()
                .into_iter()
                .find(|p| p.state != 'Z' && procfs::socket_inodes(p.pid).contains(&row.inode))
        {
            let server = Server {
                addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
                pid: holder.pid,
                spawned: spawned.clone(),
                terminal: std::sync::Arc::new(terminal),
            };
            return Ok((Start::Listening(server), spawned));
        }
        if let Some(status) = ctx.sup.status(spawned.pid) {
            return Ok((Start::Exited(status), spawned));
        }
        let living: Vec<i32> = ctx
            .sup
            .processes()
            .into_iter()
            .filter(|p| p.state != 'Z')
            .map(|p| p.pid)
            .collect();
        let asleep = !living.is_empty()
            && living.iter().all(|&pid| {
                let threads = crate::observe::threads(pid);
                !threads.is_empty() && threads.iter().all(|t| t.state == 'S')
            });
        asleep_since = if asleep {
            asleep_since.or(Some(Instant::now()))
        } else {
            None
        };
        if asleep_since.is_some_and(|s| s.elapsed() >= Duration::from_secs(1)) {
            let doing = ctx.doing(spawned.pid);
            return Ok((Start::Asleep(doing), spawned));
        }
        if Instant::now() >= until {
            return Err(Evidence::new(format!(
                "your server neither listened nor exited within {deadline:.1?}"
            ))
            .doing(ctx.doing(spawned.pid))
            .into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A FIFO, then a directory, as {file}. A directory opens, but read() fails with EISDIR;
/// a FIFO with no writer reads as empty, and its open() without O_NONBLOCK waits for a
/// writer. Either way there is no file to send, and the protocol has no length: a clean
/// end of stream after 0 bytes tells the client "here is your file, it is empty". A
/// server may refuse at start (a line on stderr, a non-zero exit, before listening) or,
/// once listening, refuse the connection with a reset (SO_LINGER 0, then close()).
fn not_a_file(ctx: &mut Ctx) -> Outcome {
    let dir = ctx.sup.workdir().join("a-directory");
    std::fs::create_dir(&dir).map_err(|e| fail(format!("mkdir {}: {e}", dir.display())))?;
    std::fs::write(dir.join("inside.txt"), b"a file inside the directory\n")
        .map_err(|e| fail(format!("write into {}: {e}", dir.display())))?;
    let fifo = ctx.sup.workdir().join("a-fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU)
        .map_err(|e| fail(format!("mkfifo {}: {e}", fifo.display())))?;
    refused(ctx, &fifo, "a FIFO (named pipe) nobody writes to", true)?;
    refused(ctx, &dir, "a directory", false)
}

/// Starts the server with `path`, which is `what`, and expects a refusal. `first`: the
/// first program the check starts, whose stderr a failure's report shows by itself.
fn refused(ctx: &mut Ctx, path: &std::path::Path, what: &str, first: bool) -> Outcome {
    let (start, spawned) = start_with(ctx, path)?;
    // The report's stderr is this program's, not the first one the check started.
    judge_refusal(ctx, start, path, what).map_err(|problem| match problem {
        Problem::Fail(mut evidence) if evidence.stderr.is_none() && !first => {
            let tail = spawned.stderr_tail(5);
            evidence.stderr = Some(if tail.trim().is_empty() {
                "(nothing)".into()
            } else {
                tail
            });
            Problem::Fail(evidence)
        }
        other => other,
    })
}

fn judge_refusal(ctx: &mut Ctx, start: Start, path: &std::path::Path, what: &str) -> Outcome {
    let given = format!("given {what} as {{file}} ({})", path.display());
    match start {
        Start::Exited(WaitStatus::Exited(_, code)) if code != 0 => {
            let stderr = ctx.sup.spawned_stderr_tail(5);
            if stderr.trim().is_empty() {
                return Err(Evidence::new(format!(
                    "{given}, your server exited with status {code} before it listened, without a word on stderr"
                ))
                .expected("one line on stderr saying why (the path is not a regular file), then exit 1")
                .into());
            }
            Ok(())
        }
        Start::Exited(status) => Err(Evidence::new(format!(
            "{given}, your server {} before it listened",
            describe_status(&status)
        ))
        .expected("a refusal: one line on stderr saying why, then exit 1 (status 0 says all went well)")
        .into()),
        Start::Asleep(doing) => Err(Evidence::new(format!(
            "{given}, your server has not listened, and has slept for a second: it waits for something that will not come"
        ))
        .expected("a refusal before listening: open() with O_NONBLOCK does not wait for a FIFO's writer, and fstat() then says what it is")
        .doing(doing)
        .into()),
        Start::Listening(server) => {
            let mut conn = ctx.connect(&server)?;
            let sent = conn.recv_to_end(1 << 20, ctx.secs(5.0));
            // Be polite either way: a server that sent something waits for it.
            let _ = conn.send(THANK_YOU);
            match sent {
                Ok(got) => {
                    // Whether it then exited or not, the client has been told a lie:
                    // that is the news, not the exit.
                    let mut evidence = Evidence::new(format!(
                        "{given}, your server listened, and sent the first client {} bytes and a clean end of stream: the client takes that for the whole file{}",
                        got.len(),
                        if got.is_empty() { ", an empty one" } else { "" }
                    ))
                    .expected("a refusal: exit 1 with a line on stderr before listening, or a reset (SO_LINGER 0, then close()) instead of end of stream");
                    if !got.is_empty() {
                        evidence = evidence.got(&got);
                    }
                    evidence.seen = ctx.server_gone(&server).map(|gone| format!("then {gone}"));
                    Err(evidence.into())
                }
                Err(short) if short.why.contains("ECONNRESET") => Ok(()),
                Err(short) => {
                    let doing = ctx.doing(server.pid);
                    Err(ctx.explain(
                        &server,
                        Evidence::new(format!(
                            "{given}, your server listened, and its first client got {} bytes, then: {}",
                            short.got.len(),
                            short.why
                        ))
                        .expected("a refusal: exit 1 with a line on stderr before listening, or a reset instead of a file")
                        .doing(doing),
                    ))
                }
            }
        }
    }
}

fn client_saves_and_thanks(ctx: &mut Ctx) -> Outcome {
    let content = pattern(1 << 20, 0x0708);
    let server = ctx.harness_server()?;
    let out = ctx.sup.workdir().join("received.bin");
    let client = ctx.client(
        server.addr,
        &[("{out}", out.to_string_lossy().into_owned())],
    )?;
    let mut conn = server.accept(ctx.secs(10.0)).map_err(fail)?;
    // The file goes from a thread of its own: a client that stops reading early (and
    // closes) makes the send fail, which is evidence, not the checker's failure.
    let sender = {
        let mut stream = conn
            .stream
            .try_clone()
            .map_err(|e| fail(format!("dup: {e}")))?;
        let content = content.clone();
        std::thread::spawn(move || -> Option<String> {
            use std::io::Write;
            for chunk in content.chunks(64 * 1024) {
                if let Err(e) = stream.write_all(chunk) {
                    return Some(e.to_string());
                }
            }
            stream
                .shutdown(std::net::Shutdown::Write)
                .err()
                .map(|e| e.to_string())
        })
    };
    let word = conn.recv_to_end(1024, ctx.secs(10.0));
    let send_error = sender.join().unwrap_or(None);
    let _ = ctx.sup.wait_exit(client.spawned.pid, ctx.secs(5.0));
    let saved_at = if out.exists() {
        out.clone()
    } else {
        ctx.sup.workdir().join("receive.dat")
    };
    if let Ok(saved) = std::fs::read(&saved_at)
        && saved.len() < content.len()
        && content.starts_with(&saved)
    {
        let mut evidence = Evidence::new(format!(
            "your client saved {} bytes of the {}-byte file and stopped: it read less than the whole file",
            saved.len(),
            content.len()
        ))
        .expected("every byte until read() returns 0 (end of stream), then \"Thank you\\0\"");
        if let Some(e) = send_error {
            evidence.seen = Some(format!(
                "the checker's send of the file failed ({e}): your client closed early"
            ));
        }
        return Err(evidence.into());
    }
    let word = word.map_err(|short| {
        Evidence::new(format!(
            "your client's last word did not come: {}",
            short.why
        ))
        .expected("\"Thank you\\0\", then the connection closed")
        .got(&short.got)
    })?;
    if word != THANK_YOU && word != THANK_YOU[..9] {
        return Err(Evidence::new("your client's last word is not the book's")
            .expected("\"Thank you\\0\" (the book's 10 bytes; \"Thank you\" is accepted)")
            .got(&word)
            .into());
    }
    ctx.expect_line(&client, "Received file data", ctx.secs(5.0))?;
    ctx.expect_exit_zero(client.spawned.pid, "after its last word")?;
    // With {out} in the template the file is there; otherwise where the book's client
    // puts it: receive.dat in its working directory.
    let saved = std::fs::read(&saved_at).map_err(|e| {
        fail(format!(
            "no saved file at {{out}} or receive.dat in the working directory ({e})"
        ))
    })?;
    if saved != content {
        let at = saved
            .iter()
            .zip(&content)
            .position(|(a, b)| a != b)
            .unwrap_or(saved.len().min(content.len()));
        return Err(Evidence::new(format!(
            "the saved file is {} bytes of {}, differing from byte {at} on",
            saved.len(),
            content.len()
        ))
        .got(&saved[at.min(saved.len())..(at + 32).min(saved.len())])
        .into());
    }
    Ok(())
}
