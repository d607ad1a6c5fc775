//! ch12: the select() echo server (shared suite), the chat room and the chat client.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::check::{
    Chapter, Check, Ctx, Evidence, Outcome, Problem, Readme, Role, RoleKind, Server, fail,
};
use crate::peer::Conn;

use super::{models, tcp_server_role};
use crate::report::{list, quote};

/// Where this chapter's hints send the reader.
pub const README: Readme = Readme("crates/ch12-select/README.md");

pub fn chapter() -> Chapter {
    let mut checks = models::echo_checks(models::Model::Select, README);
    checks.extend([
        Check {
            name: "chat-broadcast",
            role: "chat-server",
            title: "3 members: every line reaches all three, the sender too",
            hint: "relay each complete line to every member, the sender included",
            see: README.at("The chat room"),
            run: chat_broadcast,
        },
        Check {
            name: "chat-split-line",
            role: "chat-server",
            title: "a line sent in three pieces, while another member talks, arrives whole",
            hint: "keep each member's partial line until its newline arrives; relay only whole lines",
            see: README.at("Framing"),
            run: chat_split_line,
        },
        Check {
            name: "chat-leave",
            role: "chat-server",
            title: "one member leaves; the other two still reach each other",
            hint: "when read() returns 0, remove that member and close its fd before the next broadcast",
            see: README.at("The chat room"),
            run: chat_leave,
        },
        Check {
            name: "chat-stalled-reader",
            role: "chat-server",
            title: "a member who never reads does not stop the room",
            hint: "non-blocking writes and a bounded outbox per member; disconnect a member over the bound",
            see: README.at("Slow clients"),
            run: chat_stalled_reader,
        },
        Check {
            name: "chat-client",
            role: "chat-client",
            title: "the chat client prints what the room sends and sends `[NAME] line`",
            hint: "select() over standard input and the socket; prefix each line with [NAME]",
            see: README.at("The chat client"),
            run: chat_client,
        },
    ]);
    Chapter {
        id: "ch12",
        title: "select(): an echo server and a chat room",
        roles: vec![
            tcp_server_role(
                "server",
                "ch12-select",
                &["echo-server", "{port}"],
                "./echo_selectserv {port}",
            ),
            tcp_server_role(
                "chat-server",
                "ch12-select",
                &["chat-server", "{port}"],
                "./chat_serv {port}",
            ),
            Role {
                name: "chat-client",
                kind: RoleKind::Client,
                package: "ch12-select",
                reference_only: false,
                reference: &["chat-client", "{host}", "{port}", "{name}"],
                required: &["{port}", "{name}"],
                allowed: &["{host}", "{port}", "{name}"],
                example: "./chat_clnt {host} {port} {name}",
            },
        ],
        checks,
    }
}

/// A member of the room, as the checker plays one: connected, and seen accepted.
fn join(ctx: &mut Ctx, server: &Server, name: &str) -> Result<Conn, Problem> {
    let conn = ctx.connect(server)?;
    if !conn.wait_accepted(server.pid, ctx.secs(5.0)) {
        return Err(ctx.explain(
            server,
            Evidence::new(format!("the room did not accept member {name} within 5 s")),
        ));
    }
    Ok(conn)
}

/// Reads lines until `expected` (as a multiset, order aside) have all arrived.
fn hear(
    ctx: &mut Ctx,
    server: &Server,
    conn: &mut Conn,
    who: &str,
    expected: &[String],
) -> Outcome {
    let mut got: Vec<String> = Vec::new();
    let mut wanted: Vec<String> = expected.to_vec();
    while !wanted.is_empty() {
        let line = conn
            .recv_until(b'\n', 64 * 1024, ctx.secs(5.0))
            .map_err(|short| {
                ctx.explain(
                    server,
                    Evidence::new(format!(
                        "{who} heard {} of {} lines: {}",
                        got.len(),
                        expected.len(),
                        short.why
                    ))
                    .expected(list(expected.iter().map(|l| quote(l))))
                    .got(heard(&got, &short.got).as_bytes()),
                )
            })?;
        let line = String::from_utf8_lossy(&line).into_owned();
        match wanted.iter().position(|w| *w == line) {
            Some(at) => {
                wanted.remove(at);
                got.push(line);
            }
            None => {
                return Err(Evidence::new(format!(
                    "{who} heard a line nobody sent whole: {}",
                    quote(&line)
                ))
                .expected(format!(
                    "only whole lines, from {}",
                    list(expected.iter().map(|l| quote(l)))
                ))
                .got(heard(&got, line.as_bytes()).as_bytes())
                .into());
            }
        }
    }
    Ok(())
}

/// What a member heard: the whole lines, then what came after them.
fn heard(lines: &[String], then: &[u8]) -> String {
    let mut text: String = lines.concat();
    text.push_str(&String::from_utf8_lossy(then));
    text
}

fn chat_broadcast(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    let names = ["alice", "bob", "carol"];
    let mut members: Vec<Conn> = Vec::new();
    for name in names {
        members.push(join(ctx, &server, name)?);
    }
    let lines: Vec<String> = names
        .iter()
        .map(|n| format!("[{n}] hello from {n}\n"))
        .collect();
    for (member, line) in members.iter_mut().zip(&lines) {
        member.send(line.as_bytes()).map_err(fail)?;
    }
    for (member, name) in members.iter_mut().zip(names) {
        hear(ctx, &server, member, name, &lines)?;
    }
    Ok(())
}

fn chat_split_line(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    let mut a = join(ctx, &server, "alice")?;
    let mut b = join(ctx, &server, "bob")?;
    let mut c = join(ctx, &server, "carol")?;
    a.nodelay();
    let split = "[alice] this line comes in three pieces\n";
    let whole = "[carol] a whole line, sent between the pieces\n";
    let (p1, rest) = split.split_at(12);
    let (p2, p3) = rest.split_at(14);
    a.send(p1.as_bytes()).map_err(fail)?;
    a.wait_consumed(ctx.secs(2.0));
    c.send(whole.as_bytes()).map_err(fail)?;
    c.wait_consumed(ctx.secs(2.0));
    a.send(p2.as_bytes()).map_err(fail)?;
    a.wait_consumed(ctx.secs(2.0));
    a.send(p3.as_bytes()).map_err(fail)?;
    let expected = vec![split.to_string(), whole.to_string()];
    hear(ctx, &server, &mut b, "bob", &expected)?;
    hear(ctx, &server, &mut a, "alice", &expected)
}

fn chat_leave(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    let mut a = join(ctx, &server, "alice")?;
    let mut b = join(ctx, &server, "bob")?;
    let c = join(ctx, &server, "carol")?;
    drop(c);
    // Several rounds: a server that still writes to the member who left gets a reset on
    // the first write and EPIPE on the next.
    for round in 1..=4 {
        let from_a = format!("[alice] round {round}, carol has left\n");
        a.send(from_a.as_bytes())
            .map_err(|e| ctx.explain(&server, Evidence::new(e)))?;
        hear(ctx, &server, &mut b, "bob", std::slice::from_ref(&from_a))
            .map_err(|p| super::echo::with_prefix(p, "after carol left"))?;
        hear(ctx, &server, &mut a, "alice", std::slice::from_ref(&from_a))
            .map_err(|p| super::echo::with_prefix(p, "after carol left"))?;
        let from_b = format!("[bob] round {round}, still here\n");
        b.send(from_b.as_bytes())
            .map_err(|e| ctx.explain(&server, Evidence::new(e)))?;
        hear(ctx, &server, &mut a, "alice", std::slice::from_ref(&from_b))
            .map_err(|p| super::echo::with_prefix(p, "after carol left"))?;
        hear(ctx, &server, &mut b, "bob", std::slice::from_ref(&from_b))
            .map_err(|p| super::echo::with_prefix(p, "after carol left"))?;
    }
    Ok(())
}

/// Reads everything on `stream` until `lines` lines have come, or the deadline.
fn count_lines(mut stream: TcpStream, lines: usize, deadline: Duration) -> usize {
    let until = Instant::now() + deadline;
    let mut seen = 0;
    let mut buf = vec![0u8; 64 * 1024];
    while seen < lines {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let _ = stream.set_read_timeout(Some(left));
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen += buf[..n].iter().filter(|b| **b == b'\n').count(),
        }
    }
    seen
}

fn chat_stalled_reader(ctx: &mut Ctx) -> Outcome {
    const LINES: usize = 30_000;
    let server = ctx.server()?;
    // The stalled member: a tiny receive buffer, and it never reads.
    let stalled = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .map_err(|e| fail(e.to_string()))?;
    let _ = stalled.set_recv_buffer_size(4096);
    stalled
        .connect(&server.addr.into())
        .map_err(|e| fail(format!("connect: {e}")))?;
    let a = join(ctx, &server, "alice")?;
    let b = join(ctx, &server, "bob")?;
    let deadline = ctx.secs(15.0);
    let readers: Vec<_> = [&a, &b]
        .iter()
        .map(|m| {
            let stream = m.stream.try_clone().expect("dup");
            std::thread::spawn(move || count_lines(stream, LINES, deadline))
        })
        .collect();
    // 30,000 lines of 200 bytes: about 6 MB for the stalled member, more than any
    // kernel buffer holds, so the room must stop writing to it or be stuck.
    let line = format!("[alice] {}\n", "x".repeat(190));
    let mut writer = a.stream.try_clone().map_err(|e| fail(e.to_string()))?;
    let sender = std::thread::spawn(move || {
        for _ in 0..LINES {
            if writer.write_all(line.as_bytes()).is_err() {
                return false;
            }
        }
        true
    });
    let counts: Vec<usize> = readers.into_iter().map(|r| r.join().unwrap_or(0)).collect();
    let _ = a.stream.shutdown(std::net::Shutdown::Both);
    let _ = sender.join();
    drop(stalled);
    if counts.iter().any(|c| *c < LINES) {
        return Err(ctx.explain(
            &server,
            Evidence::new(format!(
                "while one member never read, alice sent {LINES} lines; alice heard {} and bob {} of them within {deadline:.1?}",
                counts[0], counts[1]
            ))
            .expected("every line to alice and bob: the room must not wait for the member who does not read"),
        ));
    }
    Ok(())
}

fn chat_client(ctx: &mut Ctx) -> Outcome {
    let room = ctx.harness_server()?;
    let mut client = ctx.client(room.addr, &[("{name}", "alice".to_string())])?;
    let mut conn = room.accept(ctx.secs(10.0)).map_err(fail)?;
    conn.send(b"[bob] hello, alice\n").map_err(fail)?;
    ctx.expect_line(&client, "[bob] hello, alice", ctx.secs(5.0))?;
    client
        .type_text("hi bob\n")
        .map_err(|e| fail(format!("{e:#}")))?;
    let sent = conn
        .recv_until(b'\n', 4096, ctx.secs(5.0))
        .map_err(|short| {
            Evidence::new(format!(
                "your client did not send the typed line: {}",
                short.why
            ))
            .expected("\"[alice] hi bob\\n\"")
            .got(&short.got)
        })?;
    if sent != b"[alice] hi bob\n" {
        return Err(
            Evidence::new("your client sent the typed line in another form")
                .expected("\"[alice] hi bob\\n\" (the book's chat client: [NAME] message)")
                .got(&sent)
                .into(),
        );
    }
    // While it waits on its keyboard, a message must still come through.
    conn.send(b"[carol] are you there?\n").map_err(fail)?;
    ctx.expect_line(&client, "[carol] are you there?", ctx.secs(5.0))?;
    client
        .type_text("q\n")
        .map_err(|e| fail(format!("{e:#}")))?;
    ctx.expect_exit_zero(client.spawned.pid, "after q")
}
