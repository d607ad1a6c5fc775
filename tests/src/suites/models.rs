//! The echo-server suite of the concurrency models, written once and registered under
//! each chapter's prefix: ch12 (select), ch17 (epoll), ch18 (threads).

use crate::check::{Check, Ctx, Failure, Outcome, Problem, fail};
use crate::peer::StalledClient;
use crate::procfs;

use super::check;
use super::echo::{clients_in_reverse, fds_come_back, reset_among_others, round_trip, with_prefix};

/// The shared checks for `chapter`'s `server` role; `single_process` adds the check that
/// the server neither forks nor grows threads (ch12, ch17).
pub fn echo_checks(chapter: &str, single_process: bool) -> Vec<Check> {
    let mut checks = vec![check(
        chapter,
        "concurrent-clients",
        "100 clients connected at once, talking in reverse order of connecting: all served",
        "server",
        "serve every ready client, never one at a time (README, \"The model\")",
        concurrent_clients,
    )];
    if single_process {
        checks.push(check(
            chapter,
            "single-process",
            "no child processes, and no more threads with 100 clients than with 1",
            "server",
            "one process, one thread: multiplex with select()/epoll, no fork(), no thread per client (README, \"The model\")",
            single_process_check,
        ));
    }
    checks.extend([
        check(
            chapter,
            "slow-client",
            "a client that stops reading (for real) does not stop the others",
            "server",
            "never block on one client: non-blocking sockets, keep what it cannot take yet, stop reading from it until it reads (README, \"Slow clients\")",
            slow_client,
        ),
        check(
            chapter,
            "disconnect-cleanup",
            "after 200 clients have come and gone, the open fds are back within 3 of the warmed-up count",
            "server",
            "close() a client's fd (and remove it from the set) when read() returns 0 (README, \"The model\")",
            disconnect_cleanup,
        ),
        check(
            chapter,
            "abrupt-disconnect",
            "a client that resets does not disturb the others",
            "server",
            "ECONNRESET or EPOLLERR on one fd ends that client only (README, \"The model\")",
            reset_among_others,
        ),
    ]);
    checks
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
        return Err(Failure::new(format!(
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
        return Err(Failure::new(format!(
            "your server had {threads_one} threads with 1 client and {threads_hundred} with 100"
        ))
        .expected("the same number of threads (a few of the runtime's own aside)")
        .into());
    }
    Ok(())
}

fn slow_client(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    let stalled =
        StalledClient::fill(server.addr, 64 << 20, ctx.secs(0.3), ctx.secs(20.0)).map_err(fail)?;
    let sent = stalled.sent;
    for i in 1..=5 {
        let mut conn = ctx.connect(&server)?;
        round_trip(ctx, &server, &mut conn, format!("client {i}, while one does not read\n").as_bytes()).map_err(|p| {
            with_prefix(
                p,
                &format!("a client sent {sent} bytes and stopped reading (its buffers are full); another client"),
            )
        })?;
    }
    drop(stalled);
    Ok(())
}

/// The thousand-connection check of ch17: raises this process's own fd limit first.
pub fn thousand_clients(ctx: &mut Ctx) -> Outcome {
    const N: usize = 1000;
    // This process needs an fd per connection too: the soft limit goes to the hard one.
    let (_, hard) =
        syscalls::multiplex::raise_open_file_limit().map_err(|e| fail(e.to_string()))?;
    if hard < 1200 {
        return Err(Problem::Skip(format!(
            "needs 1,200 open files; the hard limit here is {hard}"
        )));
    }
    let server = ctx.server()?;
    let mut conns = Vec::with_capacity(N);
    for i in 0..N {
        conns.push(
            ctx.connect(&server)
                .map_err(|p| with_prefix(p, &format!("connection {} of {N}", i + 1)))?,
        );
    }
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
