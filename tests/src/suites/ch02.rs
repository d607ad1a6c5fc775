//! ch02: TCP has no message boundaries.

use std::time::Duration;

use crate::check::{Chapter, Check, Ctx, Evidence, Outcome, Readme, fail};
use crate::pty::TerminalProgram;
use crate::wording;

use super::client_role;

const MESSAGE: &[u8] = b"Hello World!";

/// Where this chapter's hints send the reader.
pub const README: Readme = Readme("crates/ch02-socket-types/README.md");

pub fn chapter() -> Chapter {
    Chapter {
        id: "ch02",
        title: "socket types: TCP has no message boundaries, UDP keeps them",
        roles: vec![client_role(
            "client",
            "ch02-socket-types",
            &["client", "{host}", "{port}"],
            "./tcp_client {host} {port}",
        )],
        checks: vec![Check {
            name: "one-write-many-reads",
            role: "client",
            title: "the client prints every byte and its read count, sent in one write or one byte per write",
            hint: "read() until it returns 0: one write may arrive as many reads and many writes as one read",
            see: README.at("No boundaries"),
            run: one_write_many_reads,
        }],
    }
}

/// How the checker's server sends the message.
#[derive(Debug, Clone, Copy)]
enum Sending {
    OneWrite,
    BytePerWrite,
}

fn one_write_many_reads(ctx: &mut Ctx) -> Outcome {
    run_client(ctx, Sending::OneWrite)?;
    run_client(ctx, Sending::BytePerWrite)
}

/// The client must print `Message from server: Hello World!` and a positive read
/// count. In byte-per-write mode the first byte goes alone and the rest is held until
/// the client prints a reply or a second passes: a client that prints after one read
/// has printed `H` by then, every time, however busy the machine.
fn run_client(ctx: &mut Ctx, sending: Sending) -> Outcome {
    let server = ctx.harness_server()?;
    let client = ctx.client(server.addr, &[])?;
    let mut conn = server.accept(ctx.secs(10.0)).map_err(fail)?;
    let mode = match sending {
        Sending::OneWrite => "in one write",
        Sending::BytePerWrite => "one byte per write",
    };
    match sending {
        Sending::OneWrite => conn.send(MESSAGE).map_err(fail)?,
        Sending::BytePerWrite => {
            conn.nodelay();
            conn.send(&MESSAGE[..1]).map_err(fail)?;
            wait_for_reply(&client, Duration::from_secs(1));
            for byte in &MESSAGE[1..] {
                // The client may be gone already (it printed and exited): that is the
                // failure the comparison below reports.
                if conn.send(std::slice::from_ref(byte)).is_err() {
                    break;
                }
            }
        }
    }
    drop(conn);
    // The lesson is the bytes: all 12, in order, however many reads they took, printed
    // once or one piece per read (the labels taken out, whatever their wording).
    let status = ctx.sup.wait_exit(client.spawned.pid, ctx.secs(5.0));
    let output = String::from_utf8_lossy(&client.output_now()).replace('\r', "");
    let (text, labels) = wording::strip_labels(&output, wording::MESSAGE_FROM_SERVER);
    if let Some(note) = wording::labels_note(&labels, wording::MESSAGE_FROM_SERVER) {
        ctx.note(note);
    }
    let joined: String = text.lines().map(str::trim_end).collect::<Vec<_>>().join("");
    if !joined.contains("Hello World!") {
        let mut evidence = Evidence::new(format!(
            "with the 12 bytes sent {mode}, your client did not print all of them"
        ))
        .sent(MESSAGE)
        .expected("\"Hello World!\", every byte, after \"Message from server: \" or alone")
        .got(&client.output());
        if status.is_none() {
            evidence = evidence.doing(ctx.doing(client.spawned.pid));
        }
        return Err(evidence.into());
    }
    match wording::find_number(&wording::lines_of(text.as_bytes()), wording::READ_COUNT) {
        Some((n, shown)) if n > 0 => {
            if let Some(note) = shown.note(wording::READ_COUNT) {
                ctx.note(note);
            }
        }
        _ => {
            return Err(Evidence::new(format!(
                "with the 12 bytes sent {mode}, no read count was printed"
            ))
            .expected("a line \"Function read call count: N\" with N > 0")
            .got(&client.output())
            .into());
        }
    }
    match status {
        Some(nix::sys::wait::WaitStatus::Exited(_, 0)) => Ok(()),
        Some(status) => Err(fail(format!(
            "after the server closed the connection, your client {}",
            crate::supervise::describe_status(&status)
        ))),
        None => Err(Evidence::new(
            "your client was still running 5 s after the server closed the connection",
        )
        .doing(ctx.doing(client.spawned.pid))
        .into()),
    }
}

/// Waits until the client has printed a line, or `limit`.
fn wait_for_reply(client: &TerminalProgram, limit: Duration) {
    let _ = client.wait_for_line(limit, |l| !l.trim().is_empty());
}
