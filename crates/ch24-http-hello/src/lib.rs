//! # Chapter 24: the workbook's "Hello, World!" web server, done right (HTTP)
//!
//! The study group's workbook shows a C web server in seven calls: socket, bind, listen,
//! accept, recv, send, close. It works in a browser, mostly. This chapter is the same
//! server, correct: HTTP/1.1 over the chapter's own socket calls, tested with curl and a
//! headless browser.
//!
//! Subcommand: `server <port> [--workers N] [--root DIR]`. No subcommand: a demo that
//! starts the server and makes a GET, a HEAD and a request for a page that is not there.
//!
//! System calls: `socket`, `bind`, `listen`; `fork` (prefork: N workers, each calling
//! `accept` on the same listening socket), `sigprocmask`/`sigsuspend`/`waitpid` in the
//! parent; `poll` and `read` (the request head, with a deadline), `write`,
//! `shutdown(SHUT_WR)` and `read` (the lingering close), `close`; with `--root`,
//! `openat2(RESOLVE_BENEATH)`, `fstat`, `read`.
//!
//! What the workbook's C gets wrong, and what ours does instead:
//! * `send(sock, msg, sizeof(msg))` sends the string's NUL: ours sends exactly the page;
//! * no Content-Length: ours gives the exact length, so keep-alive can work;
//! * one recv() of 1,024 bytes: ours reads until the blank line, with a size limit
//!   (8 KiB, else 431) and a deadline (5 s, else 408);
//! * close() with the request (or its body) unread: the kernel answers with RST and the
//!   browser may lose the response. Ours shuts down its side and drains first;
//! * every path, every method gets the page: ours answers 404, 405 and 400 where due.

pub mod http;

use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use syscalls::process::{ForkResult, Pid, describe};
use syscalls::{
    Errno, Reaper, StopSignals, accept, bind, close, fork, getsockname, ignore_sigpipe, kill,
    listen, open_dir, tcp_socket, waitpid,
};
use workbook::{ServerOpts, TraceOpt, WireOpt};

/// Chapter 24: the workbook's web server, done right.
/// With no subcommand, runs a demo: GET, HEAD and a 404.
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Role>,
    #[command(flatten)]
    pub trace: TraceOpt,
    #[command(flatten)]
    pub wire: WireOpt,
}

#[derive(Subcommand, Debug)]
pub enum Role {
    /// HTTP/1.1 server: `/` is the hello page; with --root, files beneath DIR too
    Server {
        #[command(flatten)]
        opts: ServerOpts,
        /// Worker processes, forked up front, each accept()ing on the same socket
        /// (default: the number of CPUs, at least 2); 1 is the workbook's iterative server
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
        workers: Option<u32>,
        /// Also serve the files beneath this directory (never a path outside it)
        #[arg(long)]
        root: Option<PathBuf>,
    },
}

/// Runs the subcommand, or the demo when there is none.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    cli.trace.apply();
    match cli.command {
        Some(Role::Server {
            opts,
            workers,
            root,
        }) => {
            let cpus = std::thread::available_parallelism()
                .map(|n| n.get() as u32)
                .unwrap_or(2);
            server(&opts, workers.unwrap_or(cpus.max(2)), root)
        }
        None => workbook::demo::run(&cli.wire, demo),
    }
}

/// Forks one worker. The child serves until told to stop and never returns.
fn spawn_worker(
    listener: &OwnedFd,
    root: Option<&OwnedFd>,
    old_mask: &SigSet,
) -> anyhow::Result<Pid> {
    // SAFETY: this process has one thread.
    match unsafe { fork() }? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => {
            // The parent blocks its signals to wait with sigsuspend(); a worker wants
            // them delivered (SIGTERM must interrupt its accept()).
            let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(old_mask), None);
            let code = match worker(listener, root) {
                Ok(()) => 0,
                Err(e) => {
                    workbook::log_error!("error: worker {}: {e:#}", std::process::id());
                    1
                }
            };
            let _ = std::io::Write::flush(&mut std::io::stdout());
            std::process::exit(code)
        }
    }
}

/// A worker: accept(), serve the connection, again, until SIGTERM.
fn worker(listener: &OwnedFd, root: Option<&OwnedFd>) -> anyhow::Result<()> {
    let stop = StopSignals::install()?;
    let limits = http::Limits::default();
    let me = std::process::id();
    while !stop.requested() {
        let (client, peer) = match accept(listener) {
            Ok(accepted) => accepted,
            Err(e) if e.is_interrupted() || e.errno == Errno::ECONNABORTED => continue,
            Err(e) => return Err(e.into()),
        };
        // The access log must never stop a worker: if stdout is gone (a closed pipe),
        // the line is dropped, not a panic.
        let mut log = |line: String| {
            let _ = writeln!(std::io::stdout(), "[worker {me}] {peer} {line}");
        };
        if let Err(e) = http::serve_connection(&client, root, &limits, &mut log)
            && !e.is_interrupted()
            && !e.is_peer_gone()
        {
            workbook::log_error!("error: {peer}: {e}");
        }
        close(client)?;
    }
    Ok(())
}

/// The prefork server: workers forked up front; the parent only watches them.
pub fn server(opts: &ServerOpts, workers: u32, root: Option<PathBuf>) -> anyhow::Result<()> {
    // The root is opened once, before anything listens: a bad --root is an error now.
    let root = match root {
        Some(dir) => Some(open_dir(&dir).with_context(|| format!("--root {}", dir.display()))?),
        None => None,
    };
    ignore_sigpipe()?;
    // 1. socket()  2. bind()  3. listen(): once, before fork(), so every worker
    //    inherits the same listening socket and the kernel hands each connection to one.
    let listener = tcp_socket(&opts.addr())?;
    bind(&listener, opts.addr())?;
    listen(&listener, opts.backlog)?;
    let addr = getsockname(&listener)?;
    workbook::announce("listening on", addr)?;
    // A hint for a person; if stdout is gone it is dropped rather than a panic, which
    // would stop the server before any worker exists.
    let _ = writeln!(
        std::io::stdout(),
        "open http://{addr}/ in a browser ({workers} worker{})",
        if workers == 1 { "" } else { "s" }
    );

    let stop = StopSignals::install()?;
    let reaper = Reaper::install()?;
    // Block the signals the parent waits for; sigsuspend() unblocks them while it sleeps,
    // so none can arrive between "look" and "sleep" unseen.
    let mut waited = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGCHLD] {
        waited.add(s);
    }
    let mut old_mask = SigSet::empty();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&waited), Some(&mut old_mask))
        .context("sigprocmask")?;

    let mut live: Vec<Pid> = Vec::new();
    for _ in 0..workers {
        live.push(spawn_worker(&listener, root.as_ref(), &old_mask)?);
    }
    loop {
        for (pid, status) in reaper.reaped() {
            live.retain(|p| *p != pid);
            if !stop.requested() {
                workbook::log_error!("worker {pid} {}; starting another", describe(&status));
                live.push(spawn_worker(&listener, root.as_ref(), &old_mask)?);
            }
        }
        if stop.requested() {
            break;
        }
        let _ = old_mask.suspend();
    }
    // Stop: every worker gets SIGTERM and finishes its connection. A worker that got it
    // between its look at the flag and its accept() would wait in accept() for a client
    // that never comes, so after a grace period the rest get SIGKILL. Then all are reaped.
    for pid in &live {
        let _ = kill(*pid, Signal::SIGTERM);
    }
    let grace = std::time::Instant::now() + Duration::from_secs(2);
    while !live.is_empty() && std::time::Instant::now() < grace {
        match waitpid(None, true) {
            Ok(nix::sys::wait::WaitStatus::StillAlive) => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Ok(status) => live.retain(|p| Some(*p) != status.pid()),
            Err(_) => break,
        }
        for (pid, _) in reaper.reaped() {
            live.retain(|p| *p != pid);
        }
    }
    for pid in &live {
        let _ = kill(*pid, Signal::SIGKILL);
    }
    loop {
        match waitpid(None, false) {
            Ok(_) => {}
            Err(e) if e.is_interrupted() => continue,
            Err(e) if e.errno == Errno::ECHILD => break,
            Err(e) => return Err(e.into()),
        }
    }
    let _ = reaper.reaped();
    close(listener)?;
    if let Some(root) = root {
        close(root)?;
    }
    Ok(())
}

/// The demo: the server, then three requests printed with their responses' heads.
fn demo() -> anyhow::Result<()> {
    use std::io::Read;
    let server = workbook::demo::DemoServer::start(&["server", "0", "--workers", "2"])?;
    let addr = server.addr();
    for request in [
        "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        "HEAD / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        "GET /no-such-page HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    ] {
        let mut stream =
            std::net::TcpStream::connect(addr).context("connect to the demo server")?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        workbook::demo::say(
            "client",
            &format!("> {}", request.lines().next().unwrap_or_default()),
        );
        stream.write_all(request.as_bytes())?;
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .context("read the response")?;
        let text = String::from_utf8_lossy(&response);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        for line in head.lines() {
            workbook::demo::say("client", &format!("< {line}"));
        }
        workbook::demo::say("client", &format!("< ({} bytes of body)", body.len()));
        if !head.starts_with("HTTP/1.1 ") {
            bail!("not an HTTP response: {head:?}");
        }
    }
    server.wait_for("the 404 in the access log", |l| {
        l.contains("\"GET /no-such-page HTTP/1.1\" 404")
    })?;
    server.stop()
}
