//! ch04: the TCP echo server and the book's echo client.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use nix::sys::wait::WaitStatus;

use crate::check::{Chapter, Check, Ctx, Outcome, Readme, fail};
use crate::peer::{Conn, HarnessServer};
use crate::supervise::describe_status;
use crate::wording::MESSAGE_FROM_SERVER;

use super::{client_role, echo, tcp_server_role};

/// Where this chapter's hints send the reader.
pub const README: Readme = Readme("crates/ch04-tcp-echo/README.md");

pub fn chapter() -> Chapter {
    let server = "server";
    let client = "client";
    Chapter {
        id: "ch04",
        title: "TCP echo server and client",
        roles: vec![
            tcp_server_role(
                "server",
                "ch04-tcp-echo",
                &["server", "{port}"],
                "./echo_server {port}",
            ),
            client_role(
                "client",
                "ch04-tcp-echo",
                &["client", "{host}", "{port}"],
                "./echo_client {host} {port}",
            ),
        ],
        checks: vec![
            Check {
                name: "echo-line",
                role: server,
                title: "a line, then a second on the same connection, each comes back as sent and nothing else",
                hint: "read() what the client sent and write() the same bytes back",
                see: README.at("The server"),
                run: echo::echo_line,
            },
            Check {
                name: "large-message",
                role: server,
                title: "1 MiB and 1 byte in one write comes back byte-identical, and nothing after it",
                hint: "one read() returns what has arrived so far: keep reading and writing until read() returns 0, and write every byte you read",
                see: README.at("Reading until end of stream"),
                run: echo::large_message,
            },
            Check {
                name: "byte-at-a-time",
                role: server,
                title: "one byte per write (TCP_NODELAY): every byte comes back",
                hint: "TCP keeps no message boundaries: a write of 1 byte arrives as a read of 1 byte; loop on read()",
                see: README.at("Reading until end of stream"),
                run: echo::byte_at_a_time,
            },
            Check {
                name: "sequential-clients",
                role: server,
                title: "5 clients one after another are all served",
                hint: "after one client's read() returns 0, close() its socket and go back to accept()",
                see: README.at("The server"),
                run: echo::sequential_clients,
            },
            Check {
                name: "abrupt-disconnect",
                role: server,
                title: "a client that resets mid-stream does not stop the server",
                hint: "read() and write() return -1 with ECONNRESET or EPIPE when a client vanishes: end that client, keep serving",
                see: README.at("Clients that vanish"),
                run: echo::abrupt_disconnect,
            },
            Check {
                name: "peer-stops-reading",
                role: server,
                title: "a client that fills every buffer without reading, then closes, does not kill the server",
                hint: "writing to a closed connection raises SIGPIPE, which kills by default: ignore it (signal(SIGPIPE, SIG_IGN)) and handle EPIPE",
                see: README.at("SIGPIPE"),
                run: echo::peer_stops_reading,
            },
            Check {
                name: "client-echo",
                role: client,
                title: "lines typed come back printed; Q ends the client with status 0",
                hint: "print \"Message from server: \" and the reply for each line; stop at q or Q",
                see: README.at("The client"),
                run: client_echo,
            },
            Check {
                name: "client-eof",
                role: client,
                title: "end of input (Ctrl-D) ends the client with status 0 within 2 s",
                hint: "fgets() returns NULL at end of input: stop there instead of sending the old line again",
                see: README.at("End of input"),
                run: client_eof,
            },
            Check {
                name: "client-server-closes",
                role: client,
                title: "the server closes in the middle of a reply: the client notices and ends within 2 s",
                hint: "read() returning 0 is end of stream: the server has gone; say so and stop instead of printing an empty reply and going on",
                see: README.at("When the server closes"),
                run: client_server_closes,
            },
        ],
    }
}

/// The checker's echo server for a client under test: echoes on a thread and counts
/// what it received.
pub fn echo_for_client(
    ctx: &Ctx,
    server: &HarnessServer,
) -> Result<Arc<AtomicUsize>, crate::check::Problem> {
    let conn = server.accept(ctx.secs(10.0)).map_err(fail)?;
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    std::thread::spawn(move || echo_until_closed(conn, &counter));
    Ok(received)
}

/// Echoes everything on `conn` until it closes, counting into `received` (at most 64 MiB).
pub fn echo_until_closed(mut conn: Conn, received: &AtomicUsize) {
    use std::io::{Read, Write};
    let mut buf = [0u8; 4096];
    // Bounded: a client that never stops sending is cut off after 64 MiB.
    while received.load(Ordering::Relaxed) < 64 << 20 {
        match conn.stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                received.fetch_add(n, Ordering::Relaxed);
                if conn.stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

fn client_server_closes(ctx: &mut Ctx) -> Outcome {
    super::clients::server_closes(
        ctx,
        super::clients::Talk::Echo {
            label: MESSAGE_FROM_SERVER,
        },
        &[],
    )
}

fn exited_zero(status: &WaitStatus) -> bool {
    matches!(status, WaitStatus::Exited(_, 0))
}

/// Two lines typed, each reply printed, then Q: exit 0 (also ch15's client over stdio).
pub fn client_echo(ctx: &mut Ctx) -> Outcome {
    let server = ctx.harness_server()?;
    let mut client = ctx.client(server.addr, &[])?;
    echo_for_client(ctx, &server)?;
    for line in ["Hello, echo client!", "a second line"] {
        client
            .type_text(&format!("{line}\n"))
            .map_err(|e| fail(format!("{e:#}")))?;
        ctx.expect_reply(&client, MESSAGE_FROM_SERVER, line, ctx.secs(5.0))?;
    }
    client
        .type_text("Q\n")
        .map_err(|e| fail(format!("{e:#}")))?;
    ctx.expect_exit_zero(client.spawned.pid, "after Q")
}

fn client_eof(ctx: &mut Ctx) -> Outcome {
    let server = ctx.harness_server()?;
    let mut client = ctx.client(server.addr, &[])?;
    let received = echo_for_client(ctx, &server)?;
    client
        .type_text("last line\n")
        .map_err(|e| fail(format!("{e:#}")))?;
    ctx.expect_reply(&client, MESSAGE_FROM_SERVER, "last line", ctx.secs(5.0))?;
    let before = received.load(Ordering::Relaxed);
    client.end_input().map_err(|e| fail(format!("{e:#}")))?;
    ctx.stated_deadline_starts();
    let deadline = ctx.secs(2.0);
    match ctx.sup.wait_exit(client.spawned.pid, deadline) {
        Some(status) if exited_zero(&status) => Ok(()),
        Some(status) => Err(fail(format!(
            "at end of input your client {}",
            describe_status(&status)
        ))),
        None => {
            let after = received.load(Ordering::Relaxed).saturating_sub(before);
            let mut message =
                format!("your client was still running {deadline:.1?} after end of input (Ctrl-D)");
            if after > 0 {
                message.push_str(&format!(
                    "; meanwhile it sent {after} more bytes: it sends the last line again and again"
                ));
            }
            Err(fail(message))
        }
    }
}
