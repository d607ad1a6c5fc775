//! The chat room's checks, written once and registered under each chapter that builds
//! one: ch12 (select) and ch18 (a thread per member), with hints for each model.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::check::{Check, Ctx, Evidence, Outcome, Problem, Readme, Role, RoleKind, Server, fail};
use crate::peer::Conn;
use crate::report::{list, quote};

use super::models::Model;
use super::tcp_server_role;

/// The chat roles of `package`: the room (`chat-server <port>`) and the client
/// (`chat-client <host> <port> <name>`).
pub fn chat_roles(package: &'static str, server_example: &'static str) -> Vec<Role> {
    vec![
        tcp_server_role(
            "chat-server",
            package,
            &["chat-server", "{port}"],
            server_example,
        ),
        Role {
            name: "chat-client",
            kind: RoleKind::Client,
            package,
            reference_only: false,
            reference: &["chat-client", "{host}", "{port}", "{name}"],
            required: &["{port}", "{name}"],
            allowed: &["{host}", "{port}", "{name}"],
            example: "./chat_clnt {host} {port} {name}",
        },
    ]
}

/// The chat checks, with hints for `model` pointing into `readme` (which has the
/// sections "The chat room", "Framing", "Slow clients" and "The chat client").
pub fn chat_checks(model: Model, readme: Readme) -> Vec<Check> {
    let threads = model == Model::Threads;
    vec![
        Check {
            name: "chat-broadcast",
            role: "chat-server",
            title: "3 members: every line reaches all three, the sender too",
            hint: "relay each complete line to every member, the sender included",
            see: readme.at("The chat room"),
            run: chat_broadcast,
        },
        Check {
            name: "chat-split-line",
            role: "chat-server",
            title: "a line sent in three pieces, while another member talks, arrives whole",
            hint: "keep each member's partial line until its newline arrives; relay only whole lines",
            see: readme.at("Framing"),
            run: chat_split_line,
        },
        Check {
            name: "chat-leave",
            role: "chat-server",
            title: "members leave, the first, one in the middle, the last: every one left hears every line",
            hint: if threads {
                "remove the member who left by its identity, under the list's mutex: the book's shift loop, while(i++<clnt_cnt-1), starts one slot late and drops the member after it"
            } else {
                "when read() returns 0, remove that member and close its fd before the next broadcast"
            },
            see: readme.at("The chat room"),
            run: chat_leave,
        },
        Check {
            name: "chat-stalled-reader",
            role: "chat-server",
            title: "a member who never reads does not stop the room",
            hint: if threads {
                "a plain write() to a member who never reads waits for good, and with the list's mutex held everyone waits with it: bound each write to a member (SO_SNDTIMEO, and a deadline for the whole line) and cut off a member who misses it, or give each member a writer thread of its own"
            } else {
                "non-blocking writes and a bounded outbox per member; disconnect a member over the bound"
            },
            see: readme.at("Slow clients"),
            run: chat_stalled_reader,
        },
        Check {
            name: "chat-client",
            role: "chat-client",
            title: "the chat client prints what the room sends and sends `[NAME] line`",
            hint: if threads {
                "one thread reads the keyboard and sends [NAME] line, another reads the socket and prints what comes"
            } else {
                "select() over standard input and the socket; prefix each line with [NAME]"
            },
            see: readme.at("The chat client"),
            run: chat_client,
        },
        Check {
            name: "chat-client-eof",
            role: "chat-client",
            title: "end of input (Ctrl-D): the chat client exits with status 0 within 2 s, sending nothing more",
            hint: "read() of standard input returning 0 is end of input: leave the room (close) and exit; sending an empty line again and again floods it",
            see: readme.at("The chat client"),
            run: chat_client_eof,
        },
        Check {
            name: "chat-client-server-closes",
            role: "chat-client",
            title: "the room closes in the middle of a line: the chat client ends within 2 s, never spinning",
            hint: if threads {
                "read() of the socket returning 0 means the room closed: end the process from the thread that reads it (the keyboard's thread is still waiting for a line)"
            } else {
                "read() of the socket returning 0 means the room closed: say so and exit; select() reports a closed socket readable forever"
            },
            see: readme.at("The chat client"),
            run: chat_client_server_closes,
        },
    ]
}

/// A member of the room, as the checker plays one: connected, and seen accepted.
pub(super) fn join(ctx: &mut Ctx, server: &Server, name: &str) -> Result<Conn, Problem> {
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
pub(super) fn hear(
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
                let mut evidence = Evidence::new(format!(
                    "{who} heard {} of {} lines: {}",
                    got.len(),
                    expected.len(),
                    short.why
                ))
                .expected(list(expected.iter().map(|l| quote(l))))
                .got(heard(&got, &short.got).as_bytes());
                // Every line heard but the member's own: the room does not send a
                // member's lines back to it (the book's room does; its client prints
                // only what the room sends).
                let own = format!("[{who}] ");
                if !wanted.is_empty() && wanted.iter().all(|w| w.starts_with(&own)) {
                    return Evidence::new(format!(
                        "{who} heard every line but its own: the room does not send a member's lines back to it"
                    ))
                    .expected(list(expected.iter().map(|l| quote(l))))
                    .got(heard(&got, &short.got).as_bytes())
                    .cause("the room does not relay a line to its sender", None)
                    .into();
                }
                // Still connected, nothing coming, the room not blocked on anyone: the
                // room has dropped this member from its list.
                let connected = short.why.starts_with("nothing more came");
                let local = conn.stream.local_addr().ok();
                let blocked = local.and_then(|l| crate::observe::blocked_writing_to(server.pid, l));
                if connected && blocked.is_none() && ctx.server_gone(server).is_none() {
                    evidence = evidence
                        .doing(format!(
                            "{}; {who} is still connected, and the room is not blocked writing to {who}: {who} is no longer on its list",
                            ctx.doing(server.pid)
                        ))
                        .cause("a member still connected stops hearing the room", None);
                }
                ctx.explain(server, evidence)
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

/// Five members; the first to join leaves, then one from the middle, then the last:
/// after each departure every member left says a line and every member left hears
/// every line. The book's thread chat server removes a member by shifting its array
/// one slot late, so the member after the one who left silently stops hearing the room
/// (only the last can leave safely, which is all a check that lets the last leave sees).
/// The TCP state number of TIME_WAIT.
const TIME_WAIT: u8 = 0x06;

fn chat_leave(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    let names = ["alice", "bob", "carol", "dave", "erin"];
    let mut members: Vec<(&str, Conn)> = Vec::new();
    for name in names {
        let conn = join(ctx, &server, name)?;
        members.push((name, conn));
    }
    for (leaving, position) in [
        ("alice", "the first to have joined"),
        ("carol", "one in the middle"),
        ("erin", "the last to have joined"),
    ] {
        let at = members
            .iter()
            .position(|(n, _)| *n == leaving)
            .expect("a member of the room");
        let (_, conn) = members.remove(at);
        let (ours, theirs) = (conn.stream.local_addr(), conn.stream.peer_addr());
        drop(conn);
        // The room has dealt with the departure once it has closed its side (our end of
        // the connection, which closed first, reaches TIME_WAIT when the room's FIN comes):
        // only then do the others talk, so that what is tested is the room after a
        // departure, not a race with it. A room that never closes its side is given 2 s.
        if let (Ok(ours), Ok(theirs)) = (ours, theirs) {
            let until = Instant::now() + ctx.secs(2.0);
            while Instant::now() < until
                && crate::procfs::connection(ours, theirs).is_some_and(|r| r.state != TIME_WAIT)
            {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let context = format!("after {leaving} left ({position})");
        // Rounds, so that a server that still writes to the member who left meets the
        // reset on the first write and EPIPE on the next.
        for round in 1..=2 {
            let lines: Vec<String> = members
                .iter()
                .map(|(n, _)| format!("[{n}] round {round} {context}\n"))
                .collect();
            for ((_, conn), line) in members.iter_mut().zip(&lines) {
                conn.send(line.as_bytes())
                    .map_err(|e| ctx.explain(&server, Evidence::new(e)))?;
            }
            for (name, conn) in members.iter_mut() {
                hear(ctx, &server, conn, name, &lines)
                    .map_err(|p| super::echo::with_prefix(p, &context))?;
            }
        }
    }
    Ok(())
}

/// Reads everything on `stream` until `lines` lines have come, the deadline, or `stop`,
/// counting them in `seen` as they come.
fn count_lines(
    mut stream: TcpStream,
    lines: usize,
    deadline: Duration,
    seen: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) {
    let until = Instant::now() + deadline;
    let mut buf = vec![0u8; 64 * 1024];
    while seen.load(Ordering::SeqCst) < lines && !stop.load(Ordering::SeqCst) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let _ = stream.set_read_timeout(Some(left.min(Duration::from_millis(100))));
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                seen.fetch_add(
                    buf[..n].iter().filter(|b| **b == b'\n').count(),
                    Ordering::SeqCst,
                );
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
}

/// A member who never reads joins first; alice sends 30,000 lines (6 MB, more than any
/// kernel buffer holds toward the stalled member), and alice and bob must hear them all.
/// The wait ends early on evidence: the room seen blocked writing to the stalled member
/// for 3 s while nobody hears anything more (a room with a send timeout, SO_SNDTIMEO of a
/// second or two, cuts the member off by then and goes on).
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
    let stalled_addr = stalled
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .ok_or_else(|| fail("the stalled member's address is gone"))?;
    let a = join(ctx, &server, "alice")?;
    let b = join(ctx, &server, "bob")?;
    let deadline = ctx.secs(15.0);
    let stop = Arc::new(AtomicBool::new(false));
    let counts: Vec<Arc<AtomicUsize>> = vec![Arc::default(), Arc::default()];
    let readers: Vec<_> = [&a, &b]
        .iter()
        .zip(&counts)
        .map(|(m, seen)| {
            let stream = m.stream.try_clone().expect("dup");
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::spawn(move || count_lines(stream, LINES, deadline, seen, stop))
        })
        .collect();
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
    let until = Instant::now() + deadline;
    let total = || {
        counts
            .iter()
            .map(|c| c.load(Ordering::SeqCst))
            .sum::<usize>()
    };
    let (mut last, mut moved) = (0, Instant::now());
    let mut blocked = None;
    while total() < 2 * LINES && Instant::now() < until {
        let now = total();
        if now != last {
            (last, moved) = (now, Instant::now());
        }
        blocked = crate::observe::blocked_writing_to(server.pid, stalled_addr);
        if blocked.is_some() && moved.elapsed() >= Duration::from_secs(3) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let heard: Vec<usize> = counts.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    if heard.iter().all(|c| *c >= LINES) {
        stop.store(true, Ordering::SeqCst);
        let _ = a.stream.shutdown(std::net::Shutdown::Both);
        let _ = sender.join();
        for r in readers {
            let _ = r.join();
        }
        return Ok(());
    }
    // The evidence first, before the checker disturbs the room: closing the stalled
    // member now could make a server die of a SIGPIPE the checker caused.
    let gone = ctx.server_gone(&server);
    let mut evidence = Evidence::new(format!(
        "while one member never read, alice sent {LINES} lines; alice heard {} and bob {} of them",
        heard[0], heard[1]
    ))
    .expected(
        "every line to alice and bob: the room must not wait for the member who does not read",
    );
    evidence = match (&gone, blocked) {
        (Some(gone), _) => evidence.doing(gone.clone()),
        (None, Some((_, call, fd))) => evidence.doing(format!(
            "your server is blocked in {call}({fd}): fd {fd} is the member who never reads, and until it reads nobody hears anything"
        )),
        (None, None) => {
            let doing = ctx.doing(server.pid);
            let shut_out: Vec<&str> = ["alice", "bob"]
                .iter()
                .zip(&heard)
                .filter(|(_, n)| **n < LINES)
                .map(|(who, _)| *who)
                .collect();
            evidence
                .doing(format!(
                    "{doing}; it is not blocked on anyone, yet {} stopped hearing the room while still connected: dropped from the room's list",
                    shut_out.join(" and ")
                ))
                .cause("a member still connected stops hearing the room", None)
        }
    };
    stop.store(true, Ordering::SeqCst);
    let _ = a.stream.shutdown(std::net::Shutdown::Both);
    let _ = sender.join();
    for r in readers {
        let _ = r.join();
    }
    drop(stalled);
    Err(evidence.into())
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

fn chat_client_eof(ctx: &mut Ctx) -> Outcome {
    super::clients::end_of_input(
        ctx,
        super::clients::Talk::Chat,
        &[("{name}", "alice".to_string())],
    )
}

fn chat_client_server_closes(ctx: &mut Ctx) -> Outcome {
    super::clients::server_closes(
        ctx,
        super::clients::Talk::Chat,
        &[("{name}", "alice".to_string())],
    )
}
