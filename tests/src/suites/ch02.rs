//! ch02: TCP has no message boundaries.

use std::time::Duration;

use crate::check::{Chapter, Check, Ctx, Evidence, Outcome, Readme, fail};
use crate::pty::TerminalProgram;

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
    let expected = "Message from server: Hello World!";
    if let Err(problem) = ctx.expect_line(&client, expected, ctx.secs(5.0)) {
        return Err(crate::suites::echo::with_prefix(
            problem,
            &format!("with the 12 bytes sent {mode}"),
        ));
    }
    let counted = client
        .wait_for_line(ctx.secs(5.0), |l| {
            l.strip_prefix("Function read call count: ")
                .and_then(|n| n.trim().parse::<u64>().ok())
                .is_some_and(|n| n > 0)
        })
        .is_some();
    if !counted {
        return Err(Evidence::new(format!(
            "with the 12 bytes sent {mode}, no read count was printed"
        ))
        .expected("a line \"Function read call count: N\"")
        .got(&client.output())
        .into());
    }
    ctx.expect_exit_zero(client.spawned.pid, "after the server closed the connection")
}

/// Waits until the client has printed a `Message from server:` line, or `limit`.
fn wait_for_reply(client: &TerminalProgram, limit: Duration) {
    let _ = client.wait_for_line(limit, |l| l.contains("Message from server:"));
}
