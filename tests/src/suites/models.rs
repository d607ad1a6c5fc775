//! The echo-server suite of the concurrency models, written once and registered under
//! each chapter's prefix: ch12 (select), ch17 (epoll), ch18 (threads).

use crate::check::{Check, Ctx, Evidence, Outcome, Problem, Readme, fail};
use crate::peer::StalledClient;
use crate::procfs;

use std::time::{Duration, Instant};

use super::echo::{clients_in_reverse, fds_come_back, reset_among_others, round_trip, with_prefix};

/// The concurrency model a chapter teaches: it decides the hints, since the same
/// failure has a different cure in each (a thread-per-client server needs no
/// non-blocking sockets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// ch12: one thread, select().
    Select,
    /// ch17: one thread, epoll.
    Epoll,
    /// ch18: a thread per client.
    Threads,
}

/// The shared checks for a chapter's `server` role, with hints for `model` pointing into
/// `readme`. The single-process models (select, epoll) add the check that the server
/// neither forks nor grows threads.
pub fn echo_checks(model: Model, readme: Readme) -> Vec<Check> {
    let serve_every = match model {
        Model::Select => {
            "put every client's fd in the read set and serve each one select() reports ready; never stay with one client until it leaves"
        }
        Model::Epoll => {
            "register every client's fd with epoll_ctl(EPOLL_CTL_ADD) and serve each event epoll_wait() returns; never stay with one client until it leaves"
        }
        Model::Threads => {
            "create a thread for each accepted client and go straight back to accept()"
        }
    };
    let slow = match model {
        Model::Select | Model::Epoll => {
            "never block on one client: make the sockets non-blocking, keep what a client cannot take yet in its own bounded queue, and stop reading from it until it reads"
        }
        Model::Threads => {
            "a thread blocked writing to a client that does not read blocks only that client: the accepting thread and the other clients' threads must never wait on it (no lock held across write(), no shared blocking step)"
        }
    };
    let cleanup = match model {
        Model::Select => "when read() returns 0, FD_CLR() the fd and close() it",
        Model::Epoll => "when read() returns 0, epoll_ctl(EPOLL_CTL_DEL) the fd and close() it",
        Model::Threads => {
            "when read() returns 0, close() the client's fd before the thread ends, and detach or join the thread"
        }
    };
    let reset = match model {
        Model::Select | Model::Epoll => {
            "ECONNRESET (or EPOLLERR/EPOLLHUP) on one fd ends that client only: close it and go on with the others"
        }
        Model::Threads => {
            "ECONNRESET in one client's thread ends that thread only; never exit() from a client's thread"
        }
    };
    let half_close = match model {
        Model::Select | Model::Epoll => {
            "read() returning 0 ends the reading, not the echo: stop watching the fd for reading, write what is still queued for it, and close() only when its outbox is empty"
        }
        Model::Threads => {
            "after read() returns 0, write everything you still hold for the client before close()"
        }
    };
    let out_of_fds = match model {
        Model::Select => {
            "when accept() fails with EMFILE (no fd free), the connection waits in the listen queue and select() reports the listening socket readable again at once: leave it out of the read set until a client leaves (or a moment passes), say so once, and never exit"
        }
        Model::Epoll => {
            "when accept() fails with EMFILE (no fd free), the connection waits in the listen queue: level-triggered, epoll_wait() reports the listening socket again at once; edge-triggered, never again. Stop watching it (EPOLL_CTL_MOD, no events) until a client leaves or a moment passes, then watch it again (which re-arms it); say so once, never exit"
        }
        Model::Threads => {
            "accept() failing with EMFILE (no fd free) is no reason to exit: the connection waits in the listen queue; wait until a client's thread ends (or a moment passes), say so once, and accept again"
        }
    };
    let model_section = match model {
        Model::Select => "The model",
        Model::Epoll => "Level and edge",
        Model::Threads => "The model",
    };
    let mut checks = vec![Check {
        name: "concurrent-clients",
        role: "server",
        title: "100 clients connected at once, talking in reverse order of connecting: all served",
        hint: serve_every,
        see: readme.at(model_section),
        run: concurrent_clients,
    }];
    if model != Model::Threads {
        checks.push(Check {
            name: "single-process",
            role: "server",
            title: "no child processes, and no more threads with 100 clients than with 1",
            hint: "one process, one thread: multiplex every client in one loop; no fork(), no thread per client",
            see: readme.at(model_section),
            run: single_process_check,
        });
    }
    checks.extend([
        Check {
            name: "slow-client",
            role: "server",
            title: "a client that stops reading (for real) does not stop the others",
            hint: slow,
            see: readme.at("Slow clients"),
            run: if model == Model::Threads {
                slow_client_threads
            } else {
                slow_client
            },
        },
        Check {
            name: "large-message",
            role: "server",
            title: "1 MiB and 1 byte in one write comes back byte-identical, and nothing after it",
            hint: "one read() returns what has arrived so far: read into a buffer of its real size, write every byte you read, and keep reading",
            see: readme.at(model_section),
            run: super::echo::large_message,
        },
        Check {
            name: "half-close-echo",
            role: "server",
            title: "end of stream (shutdown(SHUT_WR)) while the echo still waits in the server: all of it comes back before the close",
            hint: half_close,
            see: readme.at("Slow clients"),
            run: half_close_echo,
        },
        Check {
            name: "disconnect-cleanup",
            role: "server",
            title: "after 200 clients have come and gone, the open fds are back within 3 of the warmed-up count",
            hint: cleanup,
            see: readme.at(model_section),
            run: disconnect_cleanup,
        },
        Check {
            name: "abrupt-disconnect",
            role: "server",
            title: "a client that resets does not disturb the others",
            hint: reset,
            see: readme.at(model_section),
            run: reset_among_others,
        },
        Check {
            name: "emfile",
            role: "server",
            title: "out of fds (ulimit -n 32 for this check), with 4 clients more than it can accept: it neither spins nor exits, serves the others, and once 10 leave serves the 4 (or has refused them at once) and a newcomer",
            hint: out_of_fds,
            see: readme.at("When things go wrong"),
            run: emfile,
        },
    ]);
    checks
}

/// How much of `window` the process was busy: runnable (as
/// [`crate::observe::runnable_fraction`] counts it, which a loaded machine does not hide),
/// or blocked writing to its terminal or a pipe. A loop that logs each failed accept()
/// spends part of its spinning waiting for the reader of its output, the more so the
/// busier the machine, and is busy all the same.
pub(super) fn busy_fraction(pid: i32, window: Duration) -> Option<f64> {
    use crate::observe::{FdTarget, fd_target, threads};
    let logging = |t: &crate::observe::Thread| {
        t.syscall.is_some_and(|call| {
            matches!(call.name(), Some("write" | "writev"))
                && call
                    .fd()
                    .and_then(|fd| fd_target(pid, fd))
                    .is_some_and(|target| match target {
                        FdTarget::Terminal => true,
                        FdTarget::Other(path) => path.starts_with("pipe:"),
                        _ => false,
                    })
        })
    };
    let until = Instant::now() + window;
    let (mut samples, mut busy) = (0u32, 0u32);
    while Instant::now() < until {
        let threads = threads(pid);
        if threads.is_empty() {
            return None;
        }
        samples += 1;
        if threads.iter().any(|t| t.state == 'R' || logging(t)) {
            busy += 1;
        }
        // A sampling interval, not synchronisation.
        std::thread::sleep(Duration::from_millis(4));
    }
    (samples > 0).then(|| f64::from(busy) / f64::from(samples))
}

/// The open-file limit `emfile` runs the server with (its title says so).
const EMFILE_LIMIT: u64 = 32;

/// How many clients connect once the server is out of fds: they wait in its listen queue
/// (the book's listen(5) holds six).
const EMFILE_WAITING: usize = 4;

/// The server runs with 32 open files. Clients connect one at a time, each accepted
/// before the next, until the server holds 32 fds; then 4 more, which it cannot accept:
/// accept() fails with EMFILE and they wait in its listen queue, which keeps the
/// listening socket readable. Over the next second the server must not spin (judged
/// by how much of it the server was runnable, which a busy machine does not hide) nor
/// exit; an earlier client is still served; then 10 clients leave, and the 4 that waited
/// must be accepted and served (or, by a server that keeps a spare fd to refuse with,
/// refused: closed at once), and a new client served.
fn emfile(ctx: &mut Ctx) -> Outcome {
    ctx.limit_open_files(EMFILE_LIMIT);
    let limit = EMFILE_LIMIT as usize;
    let server = ctx.server()?;
    let fds = |pid: i32| procfs::fd_count(pid).unwrap_or(0);
    // 1. Clients until the server holds as many fds as it may.
    let mut conns = Vec::new();
    let mut full = fds(server.pid) >= limit;
    while !full && conns.len() < limit + 8 {
        let i = conns.len() + 1;
        conns.push(
            ctx.connect(&server)
                .map_err(|p| with_prefix(p, &format!("client {i}, before the limit")))?,
        );
        // Accepted (the queue is empty), or the server is out of fds. A server asleep
        // with the client still waiting, while it has fds to spare, is not accepting
        // while it serves another client: what it does at the limit cannot be seen.
        let mut accepted = super::echo::wait_queue_empty(ctx, &server);
        if accepted {
            // Off the queue; its fd shows in /proc/PID/fd a moment later.
            let conn = conns.last().expect("just connected");
            accepted = conn.wait_accepted(server.pid, ctx.secs(1.0));
        }
        full = fds(server.pid) >= limit;
        if !accepted && !full {
            if ctx.server_gone(&server).is_some() {
                return Err(ctx.explain(
                    &server,
                    Evidence::new(format!("client {i} connected, before the limit")),
                ));
            }
            return Err(Problem::Skip(format!(
                "your server did not accept client {i} with {} clients already connected and fds to spare: it never reaches its limit (concurrent-clients shows why)",
                i - 1
            )));
        }
    }
    let before = conns.len();
    // 2. Clients it has no fd for: they wait in the listen queue.
    let context = if full {
        format!(
            "with {before} clients connected your server had all its {limit} fds open; {EMFILE_WAITING} more connected, which accept() cannot take (EMFILE)"
        )
    } else {
        ctx.note(format!(
            "with {before} clients connected your server held only {} fds of {limit}: it never ran out",
            fds(server.pid)
        ));
        format!("with {before} clients connected, {EMFILE_WAITING} more")
    };
    let mut waiting = Vec::new();
    for i in 0..EMFILE_WAITING {
        waiting
            .push(ctx.connect(&server).map_err(|p| {
                with_prefix(p, &format!("{context}; connection {} of them", i + 1))
            })?);
    }
    // 3. Neither spinning nor exiting.
    let runnable = busy_fraction(server.pid, Duration::from_secs(1));
    if ctx.server_gone(&server).is_some() {
        return Err(ctx.explain(&server, Evidence::new(context)));
    }
    if let Some(f) = runnable
        && f > 0.5
    {
        return Err(Evidence::new(format!(
            "{context}: over the next second your server was busy (running, or writing its output) {:.0}% of the time: it spins, trying accept() again and again",
            f * 100.0
        ))
        .expected("the server asleep until a client leaves: a connection that cannot be accepted yet keeps the listening socket readable, so stop watching it for a while")
        .doing(ctx.doing(server.pid))
        .into());
    }
    // 4. The others are still served.
    if let Some(first) = conns.first_mut() {
        round_trip(
            ctx,
            &server,
            first,
            b"the first client, while the server is out of fds\n",
        )
        .map_err(|p| with_prefix(p, &context))?;
    }
    // 5. Ten leave, all while the server is stopped (as if it were busy), so that it
    // finds them gone together: the waiting ones must be taken now. (Leaving one by one,
    // each departure could re-arm an edge-triggered listener anew, and whether a server
    // that accepts once per edge took all four would be a matter of timing.)
    let leaving = conns.len().min(10);
    {
        let _stopped = super::echo::Stopped::new(server.pid, ctx.secs(2.0));
        drop(conns.drain(..leaving));
    }
    let left = format!("{context}; then {leaving} clients left (their fds free again)");
    if let Err(now) = super::echo::queue_drains(ctx, &server) {
        if ctx.server_gone(&server).is_some() {
            return Err(ctx.explain(&server, Evidence::new(left)));
        }
        return Err(Evidence::new(format!(
            "{left}: {now} of the {EMFILE_WAITING} are still waiting in your server's listen queue, never accept()ed"
        ))
        .expected("accept() tried again once a client leaves (and every waiting connection accepted): a paused accept must resume; an edge-triggered listener reports no new edge for connections already waiting")
        .doing(ctx.doing(server.pid))
        .into());
    }
    let mut refused = 0;
    for (i, conn) in waiting.iter_mut().enumerate() {
        let message = format!(
            "waited {} of {EMFILE_WAITING} while the server was out of fds\n",
            i + 1
        );
        if conn.send(message.as_bytes()).is_err() {
            refused += 1;
            continue;
        }
        match conn.recv_exact(message.len(), ctx.secs(5.0)) {
            Ok(got) if got == message.as_bytes() => {}
            Err(short)
                if short.got.is_empty()
                    && (short.why.contains("end of stream")
                        || short.why.contains("ECONNRESET")) =>
            {
                refused += 1;
            }
            Ok(got) => {
                return Err(Evidence::new(format!(
                    "{left}: connection {} of the {EMFILE_WAITING} that waited got another echo",
                    i + 1
                ))
                .sent(message.as_bytes())
                .got(&got)
                .into());
            }
            Err(short) => {
                return Err(ctx.explain(
                    &server,
                    Evidence::new(format!(
                        "{left}: connection {} of the {EMFILE_WAITING} that waited got {} of {} bytes back: {}",
                        i + 1,
                        short.got.len(),
                        message.len(),
                        short.why
                    ))
                    .sent(message.as_bytes())
                    .expected("the same bytes back")
                    .got(&short.got),
                ));
            }
        }
    }
    if refused > 0 {
        ctx.note(format!(
            "your server refused {refused} of the {EMFILE_WAITING} connections it had no fd for (closed them at once): none is left hanging, but they could have waited in the listen queue and been served a moment later"
        ));
    }
    // 6. And a newcomer is served.
    let mut late = ctx.connect(&server).map_err(|p| with_prefix(p, &left))?;
    round_trip(
        ctx,
        &server,
        &mut late,
        b"a new client, after others left\n",
    )
    .map_err(|p| with_prefix(p, &format!("{left}; a new client")))
}

fn concurrent_clients(ctx: &mut Ctx) -> Outcome {
    clients_in_reverse(ctx, 100)
}

fn disconnect_cleanup(ctx: &mut Ctx) -> Outcome {
    fds_come_back(ctx, 10, 200)
}

fn single_process_check(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    let mut first = ctx.connect(&server)?;
    round_trip(ctx, &server, &mut first, b"the first client\n")?;
    let threads_one = procfs::thread_count(server.pid).ok_or_else(|| fail("the server is gone"))?;
    let mut others = Vec::new();
    for i in 2..=100 {
        let mut conn = ctx.connect(&server)?;
        round_trip(ctx, &server, &mut conn, format!("client {i}\n").as_bytes())?;
        others.push(conn);
    }
    let threads_hundred =
        procfs::thread_count(server.pid).ok_or_else(|| fail("the server is gone"))?;
    let children = procfs::children(server.pid);
    if !children.is_empty() {
        return Err(Evidence::new(format!(
            "with 100 clients your server (pid {}) has {} child processes",
            server.pid,
            children.len()
        ))
        .expected("no child process: one process serves every client")
        .into());
    }
    // A runtime may keep a few threads of its own (Python, Go); one per client is the
    // thread model, not multiplexing.
    if threads_hundred > threads_one + 2 {
        return Err(Evidence::new(format!(
            "your server had {threads_one} threads with 1 client and {threads_hundred} with 100"
        ))
        .expected("the same number of threads (a few of the runtime's own aside)")
        .into());
    }
    Ok(())
}

/// One client stops reading for real (its buffers are full); five others, one after
/// another, must be served meanwhile. For the single-process models the verdict then
/// rests on what the server is doing, read from /proc, not on a probe's luck: a server
/// that writes with blocking sockets may serve the probes before its buffers toward the
/// stalled client fill (a slow one takes seconds), then block in write() for good.
/// The check waits until either the server is seen blocked writing to the stalled
/// client (FAIL), or the stalled connection's queues have stopped moving while no
/// thread writes to it: the server chose to wait for that client (PASS).
fn slow_client(ctx: &mut Ctx) -> Outcome {
    stalled_and_served(ctx, true)
}

/// The thread model's slow-client: a thread blocked writing to the stalled client is
/// the model working as meant; the others must still be served.
fn slow_client_threads(ctx: &mut Ctx) -> Outcome {
    stalled_and_served(ctx, false)
}

fn stalled_and_served(ctx: &mut Ctx, single_process: bool) -> Outcome {
    let server = ctx.server()?;
    let stalled =
        StalledClient::fill(server.addr, 64 << 20, ctx.secs(0.3), ctx.secs(20.0)).map_err(fail)?;
    let sent = stalled.sent;
    let stalled_addr = stalled
        .socket
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .ok_or_else(|| fail("the stalled client's address is gone"))?;
    let context = format!(
        "a client sent {sent} bytes and stopped reading (its buffers are full); another client"
    );
    let stalled_peer = stalled
        .socket
        .peer_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .ok_or_else(|| fail("the stalled client's peer address is gone"))?;
    // One thread, writing to the client that stopped reading on a blocking socket (no
    // O_NONBLOCK): write() blocks as soon as that client's buffers are full, which they
    // will be (it never reads, and it sent more than they hold), and then nobody is
    // served. The outcome is settled as soon as the server is seen writing to it; whether
    // it has blocked yet is a matter of speed (a server that reads two bytes at a time
    // takes minutes), not of the lesson, so the report does not depend on it.
    if single_process {
        let until = Instant::now() + ctx.secs(2.0);
        let written_to = loop {
            let written = crate::procfs::connection(stalled_peer, stalled_addr)
                .is_some_and(|r| r.tx_queue > 0);
            if written || Instant::now() >= until {
                break written;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        // One thread in one process: a thread or a process per client would block only
        // that client's, which is the other models' way.
        let alone = crate::procfs::thread_count(server.pid) == Some(1)
            && crate::procfs::subtree(server.spawned.pid)
                .iter()
                .filter(|p| p.state != 'Z')
                .count()
                == 1;
        if written_to
            && alone
            && crate::observe::connection_is_nonblocking(
                server.spawned.pid,
                stalled_addr,
                stalled_peer,
            ) == Some(false)
        {
            return Err(Evidence::new(format!(
                "a client sent {sent} bytes and stopped reading; your server writes its echo to it on a blocking socket (no O_NONBLOCK): once that client's buffers are full, write() blocks, and while it does nobody else is served"
            ))
            .expected("a non-blocking socket for every client, and what a client cannot take kept for later, so that one slow client never stops the others")
            .doing(ctx.doing(server.pid))
            .into());
        }
    }

    // A probe: a new client's round trip. In a single-process server, a wait for its
    // echo ends early once the server is seen blocked writing to the stalled client
    // twice, 300 ms apart: nothing can change then.
    let probe = |ctx: &mut Ctx, i: usize| -> Outcome {
        let message = format!("client {i}, while one does not read\n");
        let mut conn = ctx.connect(&server)?;
        conn.send(message.as_bytes()).map_err(|e| {
            with_state(
                ctx,
                Evidence::new(e).into(),
                server.pid,
                stalled_addr,
                &context,
            )
        })?;
        let until = Instant::now() + ctx.secs(5.0);
        let mut got = Vec::new();
        let mut blocked_since: Option<Instant> = None;
        while got.len() < message.len() {
            match conn.recv_exact(message.len() - got.len(), Duration::from_millis(100)) {
                Ok(rest) => got.extend(rest),
                Err(short) => {
                    got.extend(short.got);
                    let timed_out = short.why.starts_with("no more bytes");
                    let blocked = single_process
                        && crate::observe::blocked_writing_to(server.pid, stalled_addr).is_some();
                    blocked_since = if blocked {
                        blocked_since.or(Some(Instant::now()))
                    } else {
                        None
                    };
                    let stuck =
                        blocked_since.is_some_and(|s| s.elapsed() >= Duration::from_millis(300));
                    if !timed_out || stuck || Instant::now() >= until {
                        let why = if stuck {
                            "nothing came back while your server was blocked writing to the client that stopped reading".to_string()
                        } else if timed_out {
                            format!("nothing came back within {:.1?}", ctx.secs(5.0))
                        } else {
                            short.why
                        };
                        let evidence = Evidence::new(format!(
                            "{} of {} bytes came back: {why}",
                            got.len(),
                            message.len()
                        ))
                        .sent(message.as_bytes())
                        .expected("the same bytes back")
                        .got(&got);
                        let problem = ctx.explain(&server, evidence);
                        return Err(with_state(ctx, problem, server.pid, stalled_addr, &context));
                    }
                }
            }
        }
        if got != message.as_bytes() {
            return Err(Evidence::new("the echo differs from what was sent")
                .sent(message.as_bytes())
                .got(&got)
                .into());
        }
        Ok(())
    };
    for i in 1..=5 {
        probe(ctx, i)?;
    }
    if !single_process {
        drop(stalled);
        return Ok(());
    }
    let until = Instant::now() + ctx.secs(20.0);
    let mut last = stalled.unread_by_server();
    let mut still_since = Instant::now();
    let mut blocked_since: Option<Instant> = None;
    let mut probes = 5;
    loop {
        if crate::observe::blocked_writing_to(server.pid, stalled_addr).is_some() {
            let since = *blocked_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= Duration::from_millis(300) {
                // Seen twice, 300 ms apart: blocked, not passing through. Whether that
                // stops the others (one thread) or not (a thread of its own), a probe
                // tells: its wait fails early when nothing can come.
                probes += 1;
                probe(ctx, probes)?;
                drop(stalled);
                return Ok(());
            }
        } else {
            blocked_since = None;
        }
        let now = stalled.unread_by_server();
        if now != last {
            last = now;
            still_since = Instant::now();
        } else if blocked_since.is_none() && still_since.elapsed() >= Duration::from_millis(300) {
            // The queues stand still and nothing writes to the slow client: the server
            // waits for it. One more probe shows the others are still served.
            probes += 1;
            probe(ctx, probes)?;
            drop(stalled);
            return Ok(());
        }
        if Instant::now() >= until {
            return Err(Evidence::new(
                "20 s after a client stopped reading, your server was still busy with it: its unread bytes kept changing",
            )
            .doing(ctx.doing(server.pid))
            .into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A probe's failure, with what the server was doing when it happened: blocked writing
/// to the stalled client is the usual cause.
fn with_state(
    ctx: &mut Ctx,
    problem: Problem,
    pid: i32,
    stalled: std::net::SocketAddr,
    context: &str,
) -> Problem {
    let problem = with_prefix(problem, context);
    match problem {
        Problem::Fail(mut evidence) if evidence.doing.is_none() => {
            if let Some((_, call, fd)) = crate::observe::blocked_writing_to(pid, stalled) {
                evidence.doing = Some(format!(
                    "your server is blocked in {call}({fd}): fd {fd} is the connection of the client that stopped reading"
                ));
            } else {
                evidence.doing = Some(ctx.doing(pid));
            }
            Problem::Fail(evidence)
        }
        other => other,
    }
}

/// A stream through a client that reads only once the server has had to wait for it,
/// then reads everything: the echo must be every byte sent, in order. A server that
/// ignores a short write on a non-blocking socket (the book's echo_EPETserv) loses bytes
/// here.
///
/// The client writes until one of two things shows the server's send buffer is full:
/// its own sending stops (the server stopped reading: a bounded outbox or a blocking
/// write, both fine), or the server keeps reading while its send queue toward the client
/// stays at its peak (it cannot write more, and goes on reading: it keeps the rest, or
/// drops it). Then it stops writing and reads back every byte sent. Seen in
/// /proc/net/tcp, not guessed from sizes: buffers autotune to megabytes.
pub fn stream_integrity(ctx: &mut Ctx) -> Outcome {
    use std::io::Write;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    const MAX: usize = 64 << 20;
    let server = ctx.server()?;
    let stream = std::net::TcpStream::connect_timeout(&server.addr, ctx.secs(5.0))
        .map_err(|e| ctx.explain(&server, Evidence::new(format!("connect: {e}"))))?;
    let local = stream.local_addr().map_err(|e| fail(e.to_string()))?;
    let message = Arc::new(super::pattern(MAX, 0x57_2ea4));
    let progress = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let mut stream = stream.try_clone().map_err(|e| fail(format!("dup: {e}")))?;
        let (message, progress, stop) = (message.clone(), progress.clone(), stop.clone());
        std::thread::spawn(move || {
            // No half-close at the end: what happens at end of stream is
            // half-close-echo's business, and here it would race the last echo.
            for chunk in message.chunks(16 * 1024) {
                if stop.load(Ordering::SeqCst) || stream.write_all(chunk).is_err() {
                    break;
                }
                progress.fetch_add(chunk.len(), Ordering::SeqCst);
            }
        })
    };
    let theirs = stream.peer_addr().map_err(|e| fail(e.to_string()))?;
    // Measured on the server's side, not ours (our own thread may be slow to run on a
    // loaded machine): what it has read (what we wrote, less what our kernel has not
    // sent and what waits unread in its receive queue) and its send queue toward us.
    let (mut last_read, mut read_moved) = (0usize, Instant::now());
    let (mut peak, mut read_at_peak) = (0u64, 0usize);
    let until = Instant::now() + ctx.secs(20.0);
    loop {
        let written = progress.load(Ordering::SeqCst);
        let row = crate::procfs::connection(theirs, local);
        let (queued, unread) = row.map_or((0, 0), |r| (r.tx_queue, r.rx_queue));
        let not_sent = crate::peer::notsent_bytes(&stream).unwrap_or(0) as usize;
        let read = written.saturating_sub(not_sent + unread as usize);
        if read != last_read {
            (last_read, read_moved) = (read, Instant::now());
        }
        if queued > peak {
            (peak, read_at_peak) = (queued, read);
        }
        // Its send queue stopped growing and it read 2 MiB more: those could not all
        // go out, so a server that drops what a short write left has dropped some.
        let server_full = peak > 0 && read.saturating_sub(read_at_peak) >= 2 << 20;
        // It stopped reading with bytes waiting for it: a bounded outbox or a blocking
        // write, either way it keeps what it read.
        let stopped_reading = unread > 0 && read_moved.elapsed() >= Duration::from_millis(300);
        if server_full || stopped_reading || written >= MAX || Instant::now() >= until {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::SeqCst);
    // A server whose socket toward us blocks cannot lose bytes to a short write: its
    // write() returns only once every byte is taken. That is this check's lesson, so it
    // is settled; what such a server costs the others is slow-client's. (And waiting for
    // the whole echo from a server that reads two bytes at a time would take minutes.)
    if crate::observe::connection_is_nonblocking(server.spawned.pid, local, theirs) == Some(false) {
        stop.store(true, Ordering::SeqCst);
        let _ = stream.shutdown(std::net::Shutdown::Both);
        let _ = writer.join();
        ctx.note(
            "your server's socket toward this client is blocking: write() does not return before every byte is taken, so none can be lost to a short write (what blocking costs the others is ch17/slow-client's lesson)",
        );
        return Ok(());
    }
    // Read until every byte sent has come back: the writer stops after the chunk it is
    // in (which our reading lets through) and half-closes. Whether the server then
    // closes is another check's business (disconnect-cleanup).
    let mut conn =
        crate::peer::Conn::from_stream(stream, &ctx.recorder).watching(server.spawned.pid);
    let read_until = Instant::now() + ctx.secs(30.0);
    let mut got: Vec<u8> = Vec::new();
    let mut why = None;
    // While the writer finishes the chunk it is in, read in short steps (our reading is
    // what lets that chunk through); then wait for the rest of the echo in one read, which
    // ends early once /proc shows that nothing more can come.
    while !writer.is_finished() && why.is_none() {
        if Instant::now() >= read_until {
            why = Some(format!("nothing more came within {:.1?}", ctx.secs(30.0)));
            break;
        }
        match conn.recv_exact(64 * 1024, Duration::from_millis(100)) {
            Ok(more) => got.extend(more),
            Err(short) => {
                got.extend(short.got);
                if !short.why.starts_with("no more bytes") {
                    why = Some(short.why);
                }
            }
        }
    }
    let sent_so_far = progress.load(Ordering::SeqCst);
    if why.is_none() && got.len() < sent_so_far {
        let left = read_until.saturating_duration_since(Instant::now());
        match conn.recv_exact(sent_so_far - got.len(), left) {
            Ok(rest) => got.extend(rest),
            Err(short) => {
                got.extend(short.got);
                why = Some(short.why);
            }
        }
    }
    let _ = conn.stream.shutdown(std::net::Shutdown::Both);
    let _ = writer.join();
    let sent = progress.load(Ordering::SeqCst);
    let what_was_done = format!(
        "{sent} bytes sent through a client that read only once the server had to wait for it"
    );
    match long_echo_went_wrong(&what_was_done, &got, &message[..sent], why) {
        None => Ok(()),
        Some(evidence) => Err(ctx.explain(
            &server,
            evidence.expected("every byte back, in order: a write() to a non-blocking socket may take only part; keep the rest and write it when EPOLLOUT says so"),
        )),
    }
}

/// A long echo judged byte for byte: None when `got` is all of `sent`, otherwise where it
/// first went wrong. Bytes a server drops are missing in the middle of the echo or at its
/// end, as the timing went (a server that ignores short writes and closes at end of
/// stream does both): one bug, said one way up to the colon, which is what the report's
/// golden file keeps. `why` says why the reading stopped, if it stopped early.
fn long_echo_went_wrong(
    what_was_done: &str,
    got: &[u8],
    sent: &[u8],
    why: Option<String>,
) -> Option<Evidence> {
    match got.iter().zip(sent).position(|(a, b)| a != b) {
        None if got.len() >= sent.len() => None,
        None => Some(Evidence::new(format!(
            "{what_was_done}; the echo was right up to byte {}, then went wrong: nothing more came ({}), the last {} bytes were lost",
            got.len(),
            why.unwrap_or_else(|| "end of stream".into()),
            sent.len() - got.len()
        ))),
        Some(at) => Some(
            Evidence::new(format!(
                "{what_was_done}; the echo was right up to byte {at}, then went wrong: other bytes came in their place (bytes were lost or reordered)"
            ))
            .got(&got[at..(at + 64).min(got.len())]),
        ),
    }
}

/// The thousand-connection check of ch17: raises this process's own fd limit first.
pub fn thousand_clients(ctx: &mut Ctx) -> Outcome {
    const N: usize = 1000;
    // This process needs an fd per connection too: the soft limit goes to the hard one
    // (ours only: the server keeps the shell's).
    let (_, hard) = crate::launch::raise_own_open_file_limit();
    if hard < 1200 {
        return Err(Problem::Skip(format!(
            "needs 1,200 open files; the hard limit here is {hard}"
        )));
    }
    let server = ctx.server()?;
    // One at a time, each accepted before the next (see `paced_connect`).
    let mut conns = super::echo::paced_connect(ctx, &server, N)?;
    super::echo::expect_all_accepted(ctx, &server, N)?;
    for (i, conn) in conns.iter_mut().enumerate() {
        round_trip(
            ctx,
            &server,
            conn,
            format!("client {} of {N}\n", i + 1).as_bytes(),
        )
        .map_err(|p| with_prefix(p, &format!("with {N} connections open, client {}", i + 1)))?;
    }
    Ok(())
}

/// Connections that arrive while the server is stopped (Ctrl-Z; SIGSTOP here), then it
/// is continued (fg; SIGCONT): all of them must be accepted and served. Two things meet
/// a server here that a quiet test never shows: Linux returns EINTR from epoll_wait()
/// after a stop, even without a handler (signal(7)), which must be retried, not treated
/// as fatal; and the connections that queued up are one edge for an edge-triggered
/// listener, so a server that accepts once per event leaves the others waiting.
pub fn burst_after_stop(ctx: &mut Ctx) -> Outcome {
    const N: usize = 50;
    let server = ctx.server()?;
    let mut conns = super::echo::burst_connect(ctx, &server, N)?;
    super::echo::expect_all_accepted(ctx, &server, N)?;
    for (i, conn) in conns.iter_mut().enumerate().rev() {
        round_trip(
            ctx,
            &server,
            conn,
            format!("arrived {} of {N} while you were stopped\n", i + 1).as_bytes(),
        )
        .map_err(|p| {
            with_prefix(
                p,
                &format!(
                    "after your server was stopped and continued, connection {}",
                    i + 1
                ),
            )
        })?;
    }
    Ok(())
}

/// End of stream with the echo still queued in the server: the whole echo must come
/// before the server closes. A server that closes at once when read() returns 0 (the
/// book's loop) loses what its outbox holds, every time this is set up.
///
/// Setting it up, seen in /proc/net/tcp: the client (a 4 KiB receive buffer) sends and
/// does not read, until the server's send queue toward it stops growing while the
/// server goes on reading (its kernel buffer is full: what it reads from then on can
/// only wait in its own outbox) and it has read 128 KiB more; then it waits until the
/// server has read what is still queued toward it; then it half-closes
/// (shutdown(SHUT_WR)), and only then reads.
/// (Data in the server's kernel send buffer survives its close(); only its outbox is at
/// stake.) A server that stops reading first, at a small outbox bound, cannot be set up
/// this way; what it echoes is still compared.
pub fn half_close_echo(ctx: &mut Ctx) -> Outcome {
    use std::io::Write;
    let server = ctx.server()?;
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .map_err(|e| fail(format!("socket: {e}")))?;
    let _ = socket.set_recv_buffer_size(4096);
    socket
        .connect_timeout(&server.addr.into(), ctx.secs(5.0))
        .map_err(|e| ctx.explain(&server, Evidence::new(format!("connect: {e}"))))?;
    let local = socket
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .ok_or_else(|| fail("no local address"))?;
    let mut stream: std::net::TcpStream = socket.into();
    stream
        .set_nonblocking(true)
        .map_err(|e| fail(format!("set non-blocking: {e}")))?;
    let theirs = stream.peer_addr().map_err(|e| fail(e.to_string()))?;
    let server_side = || crate::procfs::connection(theirs, local);
    let message = super::pattern(32 << 20, 0x0a1f_c105);
    let mut sent = 0usize;
    // Sends what the socket takes of the next bytes, up to `until_total`.
    let send_up_to = |stream: &mut std::net::TcpStream, sent: &mut usize, until_total: usize| {
        while *sent < until_total {
            match stream.write(&message[*sent..until_total.min(*sent + 64 * 1024)]) {
                Ok(n) => *sent += n,
                Err(_) => break,
            }
        }
    };
    // Phase 1: send as fast as the server reads, 16 KiB at a time, watching its send
    // queue toward us. Its kernel buffer is full once that queue has not grown over three
    // steps in which the server went on reading, and it holds echo it has read and not
    // written: that can only wait in its own outbox. Stop there, before a bounded outbox fills and the server stops reading
    // (then its reading of end of stream would wait for our reading, and race it). A
    // server that stops reading first (a small bound, a blocking write) stops our sending:
    // that ends the phase too.
    // What the server has read: what we sent, less what our kernel has not sent yet and
    // what waits in the server's receive queue. (Not our unacknowledged bytes: the
    // server's kernel delays its ACKs, and the bytes may be read long before.)
    let read_by_server = |stream: &std::net::TcpStream, sent: usize| {
        let not_sent = crate::peer::notsent_bytes(stream).unwrap_or(0) as usize;
        let unread = server_side().map_or(0, |r| r.rx_queue) as usize;
        sent.saturating_sub(not_sent + unread)
    };
    // What the server holds in its own outbox: what it has read, less what it has
    // written (its send queue toward us, and what waits in our receive buffer; we read
    // nothing yet). A loaded machine can make its send queue stand still for a moment
    // because it has not written yet, not because its buffer is full: so the phase ends
    // only once the server is seen holding echo it could not write.
    let held = |read: usize, queued: u64| {
        let ours = crate::procfs::connection(local, theirs).map_or(0, |r| r.rx_queue);
        read.saturating_sub((queued + ours) as usize)
    };
    let (mut peak, mut flat, mut last_read) = (0u64, 0, 0usize);
    let mut stalled_since: Option<Instant> = None;
    let until = Instant::now() + ctx.secs(10.0);
    while Instant::now() < until && !(flat >= 3 && held(last_read, peak) >= 4096) {
        let before = sent;
        // Never more than 64 KiB ahead of the server's reading: what waits unread when
        // the phase ends must fit in its outbox, not pile up in its receive queue.
        if sent.saturating_sub(last_read) < 64 * 1024 {
            let step = (sent + 16 * 1024).min(message.len());
            send_up_to(&mut stream, &mut sent, step);
        }
        let queued = server_side().map_or(0, |r| r.tx_queue);
        let read = read_by_server(&stream, sent);
        if queued > peak {
            (peak, flat) = (queued, 0);
        } else if peak > 0 && read > last_read {
            flat += 1;
        }
        let progress = read > last_read || sent > before;
        last_read = read;
        if !progress {
            // Nothing moved: the server is not reading now.
            let since = *stalled_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= Duration::from_millis(100) {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        } else {
            stalled_since = None;
        }
    }
    // Phase 2: let the server read what is still queued toward it (into its outbox),
    // unless it has stopped reading: seen asleep over 100 ms while bytes wait for it and
    // none of them was taken. (Not a fixed wait: on a loaded machine a server that had
    // not got round to reading them would read them after our end of stream, while we
    // read, and its outbox would have emptied by the time it met the end: it passed by
    // luck, once in twenty runs.)
    let settle = Instant::now() + ctx.secs(10.0);
    loop {
        let before = read_by_server(&stream, sent);
        if before >= sent || Instant::now() >= settle {
            break;
        }
        let asleep = crate::observe::runnable_fraction(server.pid, Duration::from_millis(100))
            .is_some_and(|f| f < 0.05);
        if asleep && read_by_server(&stream, sent) == before {
            break;
        }
    }
    // Phase 3: end of stream, then read everything.
    let _ = stream.set_nonblocking(false);
    stream
        .shutdown(std::net::Shutdown::Write)
        .map_err(|e| fail(format!("shutdown: {e}")))?;
    let message = &message[..sent];
    let mut conn =
        crate::peer::Conn::from_stream(stream, &ctx.recorder).watching(server.spawned.pid);
    // Every byte back is the lesson; whether the server then closes is
    // disconnect-cleanup's.
    let (got, why) = match conn.recv_exact_progressing(sent, ctx.secs(10.0), ctx.secs(120.0)) {
        Ok(got) => (got, None),
        Err(short) => (short.got, Some(short.why)),
    };
    let what_was_done = format!(
        "{sent} bytes sent, the last ones while your server's send queue was full, then end of stream (shutdown(SHUT_WR))"
    );
    match long_echo_went_wrong(&what_was_done, &got, message, why) {
        None => Ok(()),
        Some(evidence) => Err(ctx.explain(
            &server,
            evidence.expected("the whole echo, then the close: at end of stream stop reading, write what is queued, then close()"),
        )),
    }
}
