//! ch07: half-close. The server sends a file, shutdown(SHUT_WR)s, and still reads the
//! client's last word.

use std::path::PathBuf;

use crate::check::{Chapter, Check, Ctx, Evidence, Outcome, Readme, Role, RoleKind, fail};
use crate::procfs::Proto;

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
