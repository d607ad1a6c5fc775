//! The echo-server suite of the concurrency models, written once and registered under
//! each chapter's prefix: ch12 (select), ch17 (epoll), ch18 (threads).

use crate::check::{Check, Ctx, Evidence, Outcome, Problem, Readme, fail};
use crate::peer::StalledClient;
use crate::procfs;

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
            run: slow_client,
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
    // This process needs an fd per connection too: the soft limit goes to the hard one
    // (ours only: the server keeps the shell's).
    let (_, hard) = crate::launch::raise_own_open_file_limit();
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
