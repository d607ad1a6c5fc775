//! ch12: the select() echo server (shared suite), the chat room and the chat client
//! (shared with ch18's threads: `chat`), and what select() cannot do: watch an fd of
//! FD_SETSIZE or more.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::check::{Chapter, Check, Ctx, Evidence, Outcome, Problem, Readme, Server, fail};
use crate::peer::Conn;
use crate::procfs::{self, Proto};

use super::echo::{round_trip, with_prefix};
use super::{chat, models, tcp_server_role};

/// Where this chapter's hints send the reader.
pub const README: Readme = Readme("crates/ch12-select/README.md");

pub fn chapter() -> Chapter {
    let mut checks = models::echo_checks(models::Model::Select, README);
    checks.push(Check {
        name: "fd-setsize",
        role: "server",
        title: "1,040 clients (ulimit -n 1100 for this check): each on an fd of 1024 or more (past FD_SETSIZE) refused at once or served, none left hanging; the others served; a new client fits once 10 leave",
        hint: FD_SETSIZE_HINT,
        see: README.at("When things go wrong"),
        run: fd_setsize_echo,
    });
    checks.extend(chat::chat_checks(models::Model::Select, README));
    checks.push(Check {
        name: "chat-fd-setsize",
        role: "chat-server",
        title: "1,040 members (ulimit -n 1100 for this check): each on an fd of 1024 or more (past FD_SETSIZE) refused at once or served, none left hanging; the others hear the room; a new member fits once 10 leave",
        hint: FD_SETSIZE_HINT,
        see: README.at("When things go wrong"),
        run: fd_setsize_chat,
    });
    let mut roles = vec![tcp_server_role(
        "server",
        "ch12-select",
        &["echo-server", "{port}"],
        "./echo_selectserv {port}",
    )];
    roles.extend(chat::chat_roles("ch12-select", "./chat_serv {port}"));
    Chapter {
        id: "ch12",
        title: "select(): an echo server and a chat room",
        roles,
        checks,
    }
}

const FD_SETSIZE_HINT: &str = "select() can watch fds below FD_SETSIZE (1024) only, whatever ulimit -n says: FD_SET() on a higher fd writes past the end of the set. When accept() returns such an fd, close() it at once (the client reads end of stream), say why, and go on serving the others";

/// The open-file limit the FD_SETSIZE checks run the server with (their titles say so).
const LIMIT: u64 = 1100;

/// How many clients they connect: enough that the last ones' fds would pass 1023.
const CLIENTS: usize = 1040;

/// How many leave before a newcomer must fit.
const LEAVING: usize = 10;

fn fd_setsize_echo(ctx: &mut Ctx) -> Outcome {
    fd_setsize(ctx, false)
}

fn fd_setsize_chat(ctx: &mut Ctx) -> Outcome {
    fd_setsize(ctx, true)
}

/// SKIP (or FAIL under CI, as for a missing tool) unless the limits allow the check:
/// the server's open-file hard limit must reach [`LIMIT`], and ours must hold an fd per
/// client besides.
fn limits_allow(ctx: &Ctx) -> Outcome {
    let (_, shell) = crate::launch::shell_open_files();
    let (_, own) = crate::launch::raise_own_open_file_limit();
    let why = if shell < LIMIT {
        format!(
            "needs an open-file hard limit of {LIMIT} for the server (ulimit -Hn); it is {shell} here"
        )
    } else if own < LIMIT + 200 {
        format!(
            "needs an open-file hard limit of {} for the checker's own connections; it is {own} here",
            LIMIT + 200
        )
    } else {
        return Ok(());
    };
    if ctx.settings.ci {
        Err(fail(why))
    } else {
        Err(Problem::Skip(why))
    }
}

/// The server runs with 1,100 open files, above FD_SETSIZE; 1,040 clients connect, one
/// at a time, each taken off the listen queue before the next, so the last ones' fds
/// would be 1024 and up. Once the server has settled, /proc says which fd holds each
/// client: every client it does not hold must have been closed (refused), and every one
/// it holds on an fd of 1024 or more must be served all the same (a server that does not
/// use select() can); a select() server that takes them serves them never, or crashes.
/// Then it must not spin, the first and the last client it holds are served (echo, or a
/// line the room relays), and once 10 leave a new client is served.
fn fd_setsize(ctx: &mut Ctx, chat: bool) -> Outcome {
    limits_allow(ctx)?;
    ctx.limit_open_files(LIMIT);
    let server = if chat {
        ctx.server_of("chat-server", &[])?
    } else {
        ctx.server()?
    };
    let mut conns = Vec::with_capacity(CLIENTS);
    for i in 1..=CLIENTS {
        conns.push(
            ctx.connect(&server)
                .map_err(|p| with_prefix(p, &format!("client {i} of {CLIENTS}")))?,
        );
        if !super::echo::wait_queue_empty(ctx, &server) {
            if ctx.server_gone(&server).is_some() {
                return Err(ctx.explain(
                    &server,
                    Evidence::new(format!("client {i} of {CLIENTS} connected")),
                ));
            }
            if crate::observe::asleep(server.pid, Duration::from_millis(20)) {
                return Err(Problem::Skip(format!(
                    "your server did not accept client {i} with {} clients already connected: it never gets to fd 1024 (concurrent-clients shows why)",
                    i - 1
                )));
            }
            return Err(Evidence::new(format!(
                "client {i} of {CLIENTS} was not accepted within 5 s"
            ))
            .doing(ctx.doing(server.pid))
            .into());
        }
    }
    let context = format!("with {CLIENTS} clients connected (ulimit -n {LIMIT})");
    // What it holds is read once it has settled (asleep again, in select()): a
    // connection it is refusing is held for a moment, between accept() and close().
    crate::observe::wait_asleep(server.pid, ctx.secs(2.0));
    if ctx.server_gone(&server).is_some() {
        return Err(ctx.explain(&server, Evidence::new(context)));
    }
    let fds = server_fds(&server, &conns);
    let low: Vec<usize> = (0..conns.len())
        .filter(|&i| fds[i].is_some_and(|fd| fd < 1024))
        .collect();
    let (Some(&first), Some(&last)) = (low.first(), low.last()) else {
        return Err(fail(format!(
            "{context}, your server holds none of them on an fd below 1024"
        )));
    };
    // 1. Those it does not hold were refused: closed, not left hanging.
    let refused: Vec<usize> = (0..conns.len()).filter(|&i| fds[i].is_none()).collect();
    for &i in &refused {
        if let Err(short) = conns[i].recv_to_end(4096, ctx.secs(5.0))
            && !short.why.contains("ECONNRESET")
        {
            return Err(ctx.explain(
                &server,
                Evidence::new(format!(
                    "{context}, client {} is not among the connections your server holds, yet it was not closed: {}",
                    i + 1,
                    short.why
                ))
                .expected("a connection refused is closed (the client reads end of stream)"),
            ));
        }
    }
    // 2. Those it holds on an fd of 1024 or more are served, or it is a select() server
    //    holding what it cannot watch.
    let high: Vec<usize> = (0..conns.len())
        .filter(|&i| fds[i].is_some_and(|fd| fd >= 1024))
        .collect();
    for &i in &high {
        let fd = fds[i].unwrap_or(-1);
        talk(ctx, &server, chat, &mut conns, first, i, "on a high fd").map_err(|p| {
            let p = with_prefix(
                p,
                &format!("{context}, your server holds client {} on fd {fd}", i + 1),
            );
            match p {
                Problem::Fail(mut evidence) => {
                    evidence.expected = Some(format!(
                        "served like the others or, from a select() server, closed at once: select() cannot watch fd {fd} (FD_SETSIZE is 1024)"
                    ));
                    Problem::Fail(evidence)
                }
                other => other,
            }
        })?;
    }
    if !high.is_empty() {
        ctx.note(format!(
            "your server serves connections on fds of 1024 and up ({} of them): it does not watch them with select()",
            high.len()
        ));
    }
    // 3. It does not spin.
    if let Some(f) = super::models::busy_fraction(server.pid, Duration::from_millis(500))
        && f > 0.5
    {
        return Err(Evidence::new(format!(
            "{context}, {} of them refused, your server was busy (running, or writing its output) {:.0}% of the next half second: it spins",
            refused.len(),
            f * 100.0
        ))
        .doing(ctx.doing(server.pid))
        .into());
    }
    // 4. The first and the last client it holds below 1024 are served.
    let context = format!(
        "{context}, {} of them refused (closed), {} held",
        refused.len(),
        conns.len() - refused.len()
    );
    talk(
        ctx,
        &server,
        chat,
        &mut conns,
        first,
        last,
        "while others were refused",
    )
    .map_err(|p| with_prefix(p, &context))?;
    // 5. Ten leave; a newcomer fits and is served.
    let before = procfs::fd_count(server.pid).unwrap_or(0);
    let leaving: Vec<usize> = low[1..=LEAVING.min(low.len() - 1)].to_vec();
    for &i in leaving.iter().rev() {
        drop(conns.remove(i));
    }
    let until = Instant::now() + ctx.secs(5.0);
    while procfs::fd_count(server.pid).is_some_and(|n| n + leaving.len() > before)
        && Instant::now() < until
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    let context = format!("{context}; then {} of them left", leaving.len());
    let newcomer = if chat {
        chat::join(ctx, &server, "newcomer")
    } else {
        ctx.connect(&server)
    }
    .map_err(|p| with_prefix(p, &context))?;
    conns.push(newcomer);
    let at = conns.len() - 1;
    talk(
        ctx,
        &server,
        chat,
        &mut conns,
        first,
        at,
        "a newcomer, after others left",
    )
    .map_err(|p| with_prefix(p, &format!("{context}; a new client")))
}

/// The fd of the server process that holds each of `conns`' server side, if it holds it.
fn server_fds(server: &Server, conns: &[Conn]) -> Vec<Option<i32>> {
    let fd_of: HashMap<u64, i32> = std::fs::read_dir(format!("/proc/{}/fd", server.pid))
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| {
                    let fd: i32 = e.file_name().to_str()?.parse().ok()?;
                    Some((crate::observe::fd_inode(server.pid, fd)?, fd))
                })
                .collect()
        })
        .unwrap_or_default();
    // A server listening on :: sees our clients as IPv4-mapped addresses (tcp6).
    let unmapped = |a: SocketAddr| match a {
        SocketAddr::V6(v6) => v6
            .ip()
            .to_ipv4_mapped()
            .map_or(a, |ip| SocketAddr::new(ip.into(), v6.port())),
        v4 => v4,
    };
    let by_peer: HashMap<SocketAddr, u64> = procfs::sockets_on(Proto::Tcp, server.addr.port())
        .into_iter()
        .filter(|r| r.local.port() == server.addr.port())
        .map(|r| (unmapped(r.remote), r.inode))
        .collect();
    conns
        .iter()
        .map(|c| {
            let inode = by_peer.get(&c.stream.local_addr().ok()?)?;
            fd_of.get(inode).copied()
        })
        .collect()
}

/// Client `to` is served: its echo (echo server), or a line client `from` says reaching
/// it (chat room).
fn talk(
    ctx: &mut Ctx,
    server: &Server,
    chat: bool,
    conns: &mut [Conn],
    from: usize,
    to: usize,
    when: &str,
) -> Outcome {
    if !chat {
        round_trip(
            ctx,
            server,
            &mut conns[from],
            format!("client {}, {when}\n", from + 1).as_bytes(),
        )?;
        return round_trip(
            ctx,
            server,
            &mut conns[to],
            format!("client {}, {when}\n", to + 1).as_bytes(),
        );
    }
    let line = format!("[member{}] {when}\n", from + 1);
    conns[from].send(line.as_bytes()).map_err(fail)?;
    let heard = [line];
    chat::hear(
        ctx,
        server,
        &mut conns[to],
        &format!("member{}", to + 1),
        &heard,
    )
}
