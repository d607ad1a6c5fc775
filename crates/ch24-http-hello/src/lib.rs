//! # Chapter 24: the workbook's "Hello, World!" web server, done right (HTTP)
//!
//! The study group's workbook shows a C web server in seven calls: socket, bind, listen,
//! accept, recv, send, close. It works in a browser, mostly. This chapter is the same
//! server, correct: HTTP/1.1 over the chapter's own socket calls, tested with curl and a
//! headless browser.
//!
//! Subcommand: `server <port> [--workers N] [--max-workers M] [--root DIR]`. No subcommand: a demo that
//! starts the server and makes a GET, a HEAD and a request for a page that is not there.
//!
//! System calls: `socket`, `bind`, `listen`; `fork` (prefork: workers, each calling
//! `accept` on the same listening socket, the pool growing while all are busy),
//! `pipe`/`sigprocmask`/`ppoll`/`waitpid` in the parent; `setsockopt(SO_SNDTIMEO)`, `poll`
//! and `read` (the request head, with a deadline), `write`, `shutdown(SHUT_WR)` and `read`
//! (the lingering close), `close`; with `--root`, `openat2(RESOLVE_BENEATH, O_NONBLOCK)`,
//! `fstat`, `read`.
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
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use nix::sys::signal::{SigmaskHow, Signal, sigprocmask};
use syscalls::process::{ForkResult, Pid, describe};
use syscalls::{
    Errno, Reaper, SERVER_SIGNALS, StopSignals, SysError, WaitingMask, accept, bind, close, fork,
    getsockname, hold_signals, ignore_sigpipe, kill, listen, open_dir, pipe, read,
    set_send_timeout, tcp_socket, wait_readable, wait_readable_letting_in_for, waitpid, write,
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
        /// (default: the number of CPUs, at least 2); kept even when idle
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
        workers: Option<u32>,
        /// The most workers at once: while every worker is busy (a kept-alive client
        /// holds one), another is forked, up to this many (default: 64, at least
        /// --workers); 1 with --workers 1 is the workbook's iterative server
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
        max_workers: Option<u32>,
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
            max_workers,
            root,
        }) => {
            let cpus = std::thread::available_parallelism()
                .map(|n| n.get() as u32)
                .unwrap_or(2);
            let workers = workers.unwrap_or(cpus.max(2));
            let max_workers = max_workers.unwrap_or(64).max(workers);
            let size = PoolSize {
                workers,
                max_workers,
            };
            server(&opts, size, root)
        }
        None => workbook::demo::run(&cli.wire, demo),
    }
}

/// What a worker tells the parent through the pool's pipe: one 8-byte message (a
/// state byte, three zero bytes, its pid), one write each, smaller than PIPE_BUF, so
/// messages from many workers never mix.
const MESSAGE: usize = 8;
const BUSY: u8 = b'B';
const IDLE: u8 = b'I';

fn tell(pool: &OwnedFd, state: u8) {
    let mut message = [0u8; MESSAGE];
    message[0] = state;
    message[4..].copy_from_slice(&(std::process::id() as i32).to_le_bytes());
    // The parent reads the pipe whenever it is readable; a failed write only makes the
    // pool's picture late, never stops the worker.
    let _ = write(pool, &message);
}

/// Forks one worker. The child serves until told to stop and never returns.
fn spawn_worker(
    listener: &OwnedFd,
    root: Option<&OwnedFd>,
    pool: &OwnedFd,
    old_mask: &WaitingMask,
) -> Result<Pid, SysError> {
    // SAFETY: this process has one thread.
    match unsafe { fork() }? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => {
            // The parent blocks its signals to wait with ppoll(); a worker wants them
            // delivered (SIGTERM must interrupt its accept()).
            let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old_mask.0), None);
            let code = match worker(listener, root, pool) {
                Ok(()) => 0,
                Err(e) => {
                    workbook::log_error!("error: worker {}: {e:#}", std::process::id());
                    1
                }
            };
            std::process::exit(code)
        }
    }
}

/// A worker: accept(), serve the connection, again, until SIGTERM. It tells the parent
/// when it is busy and when it is free again, so that the parent keeps a spare.
fn worker(listener: &OwnedFd, root: Option<&OwnedFd>, pool: &OwnedFd) -> anyhow::Result<()> {
    let stop = StopSignals::install()?;
    let limits = http::Limits::default();
    let me = std::process::id();
    while !stop.requested() {
        let (client, peer) = match accept(listener) {
            Ok(accepted) => accepted,
            Err(e) if e.is_interrupted() || e.errno == Errno::ECONNABORTED => continue,
            Err(e) => return Err(e.into()),
        };
        tell(pool, BUSY);
        // Responses go out with a deadline for each piece (http::send_within); an error
        // page's plain write() is held to the same limit by SO_SNDTIMEO, so that no write
        // waits for a client that stopped reading for as long as it likes.
        set_send_timeout(&client, limits.send)?;
        // The access log never stops a worker: a line stdout cannot take now (a pipe
        // nobody reads) is dropped and counted, never waited for (syscalls::output).
        let mut log = |line: String| workbook::log_line!("[worker {me}] {peer} {line}");
        // A connection waiting in the listening socket's queue, not taken by an idle
        // worker: every worker is busy and the pool cannot grow.
        let crowded = || wait_readable(listener, Duration::ZERO).unwrap_or(false);
        match http::serve_connection(&client, root, &limits, &crowded, &mut log) {
            Err(e) if e.errno == Errno::EAGAIN => workbook::log_error!(
                "{peer}: gave up: it read nothing of its response for {} s",
                limits.send.as_secs()
            ),
            Err(e) if !e.is_interrupted() && !e.is_peer_gone() => {
                workbook::log_error!("error: {peer}: {e}")
            }
            _ => {}
        }
        close(client)?;
        tell(pool, IDLE);
    }
    Ok(())
}

/// One worker as the parent sees it.
#[derive(Debug)]
struct Worker {
    pid: Pid,
    started: Instant,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In accept(), or about to be.
    Idle,
    /// Serving a connection.
    Busy,
    /// Sent SIGTERM because the pool is larger than it needs to be.
    Leaving,
}

/// Workers that die as soon as they start (a resource missing: descriptors, memory)
/// are not re-forked in a tight loop: each quick death doubles the pause before the next
/// fork, up to [`Backoff::MAX`], and only the first of an episode is logged. The episode
/// ends when a worker serves a client, or lives past [`Backoff::QUICK`].
#[derive(Debug, Default)]
struct Backoff {
    streak: u32,
    not_before: Option<Instant>,
}

impl Backoff {
    const QUICK: Duration = Duration::from_secs(1);
    const FIRST: Duration = Duration::from_millis(50);
    const MAX: Duration = Duration::from_secs(5);

    fn failed(&mut self, what: &str) {
        if self.streak == 0 {
            workbook::log_error!(
                "{what}; starting workers again with a growing pause (up to {} s) until one serves a client",
                Self::MAX.as_secs()
            );
        }
        let pause = Self::FIRST
            .saturating_mul(1 << self.streak.min(16))
            .min(Self::MAX);
        self.streak += 1;
        self.not_before = Some(Instant::now() + pause);
    }

    fn recovered(&mut self) {
        if self.streak > 0 {
            workbook::log_error!("workers stay up again");
        }
        *self = Backoff::default();
    }

    fn allows_fork(&self) -> bool {
        self.not_before.is_none_or(|t| Instant::now() >= t)
    }
}

/// The pool's sizes.
#[derive(Debug, Clone, Copy)]
pub struct PoolSize {
    /// Workers kept even when all are idle (`--workers`).
    pub workers: u32,
    /// Workers never exceeded, however busy (`--max-workers`).
    pub max_workers: u32,
}

impl PoolSize {
    /// Idle workers kept ready while the pool may grow: the next client never waits
    /// for a fork.
    const SPARE: usize = 1;
    /// How often an idle worker beyond `workers` is stopped: the pool shrinks back
    /// slowly, so that a burst that returns finds its workers.
    const SHRINK_EVERY: Duration = Duration::from_secs(1);
}

/// The prefork server: `workers` forked up front, more while every one is busy (up to
/// `max_workers`), the extra ones stopped again when idle; the parent only watches.
pub fn server(opts: &ServerOpts, size: PoolSize, root: Option<PathBuf>) -> anyhow::Result<()> {
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
    workbook::log_line!(
        "open http://{addr}/ in a browser ({} workers, up to {})",
        size.workers,
        size.max_workers
    );

    let stop = StopSignals::install()?;
    let reaper = Reaper::install()?;
    // The workers' messages (busy, idle). The read end is non-blocking: the parent reads
    // until it is empty, then waits in ppoll().
    let (pool_rx, pool_tx) = pipe()?;
    nix::fcntl::fcntl(
        &pool_rx,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .context("fcntl(O_NONBLOCK)")?;
    // Block the signals the parent waits for; ppoll() lets them in while it sleeps, so
    // none can arrive between "look" and "sleep" unseen.
    let mask = hold_signals(&SERVER_SIGNALS)?;

    let mut pool: Vec<Worker> = Vec::new();
    let mut backoff = Backoff::default();
    let mut last_shrink = Instant::now();
    let mut messages: Vec<u8> = Vec::new();
    loop {
        for (pid, status) in reaper.reaped() {
            let Some(at) = pool.iter().position(|w| w.pid == pid) else {
                continue;
            };
            let gone = pool.swap_remove(at);
            if stop.requested() || gone.state == State::Leaving {
                continue;
            }
            if gone.started.elapsed() < Backoff::QUICK {
                backoff.failed(&format!("worker {pid} {} at once", describe(&status)));
            } else {
                workbook::log_error!("worker {pid} {}; starting another", describe(&status));
                backoff.recovered();
            }
        }
        if stop.requested() {
            break;
        }
        read_messages(&pool_rx, &mut messages, &mut pool, &mut backoff);
        // Grow: at least `workers`, and one idle spare while below the maximum.
        loop {
            let staying = pool.iter().filter(|w| w.state != State::Leaving).count();
            let idle = pool.iter().filter(|w| w.state == State::Idle).count();
            let wanted = staying < size.workers as usize || idle < PoolSize::SPARE;
            if !wanted || pool.len() >= size.max_workers as usize || !backoff.allows_fork() {
                break;
            }
            match spawn_worker(&listener, root.as_ref(), &pool_tx, &mask) {
                Ok(pid) => pool.push(Worker {
                    pid,
                    started: Instant::now(),
                    state: State::Idle,
                }),
                Err(e) => {
                    backoff.failed(&format!("error: {e}"));
                    break;
                }
            }
        }
        // Shrink: one idle worker beyond `workers` (and the spare) a second.
        let staying = pool.iter().filter(|w| w.state != State::Leaving).count();
        let idle = pool.iter().filter(|w| w.state == State::Idle).count();
        let surplus = staying > size.workers as usize && idle > PoolSize::SPARE;
        if surplus && last_shrink.elapsed() >= PoolSize::SHRINK_EVERY {
            if let Some(w) = pool.iter_mut().rev().find(|w| w.state == State::Idle) {
                let _ = kill(w.pid, Signal::SIGTERM);
                w.state = State::Leaving;
            }
            last_shrink = Instant::now();
        }
        // Sleep until a worker says something, a signal comes, or a pause ends.
        let mut wake: Option<Instant> = None;
        if !backoff.allows_fork() {
            wake = backoff.not_before;
        }
        if surplus {
            let at = last_shrink + PoolSize::SHRINK_EVERY;
            wake = Some(wake.map_or(at, |w| w.min(at)));
        }
        let timeout = wake.map(|at| at.saturating_duration_since(Instant::now()));
        match wait_readable_letting_in_for(&pool_rx, &mask, timeout) {
            Ok(_) => {}
            Err(e) if e.is_interrupted() => {}
            Err(e) => return Err(e.into()),
        }
    }
    // Stop: every worker gets SIGTERM and finishes its connection. A worker that got it
    // between its look at the flag and its accept() would wait in accept() for a client
    // that never comes, so after a grace period the rest get SIGKILL. Then all are reaped.
    let mut live: Vec<Pid> = pool.iter().map(|w| w.pid).collect();
    for pid in &live {
        let _ = kill(*pid, Signal::SIGTERM);
    }
    let grace = Instant::now() + Duration::from_secs(2);
    while !live.is_empty() && Instant::now() < grace {
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

/// Reads every whole message waiting in the pool's pipe and updates the workers' states.
fn read_messages(
    pool_rx: &OwnedFd,
    messages: &mut Vec<u8>,
    pool: &mut [Worker],
    backoff: &mut Backoff,
) {
    let mut chunk = [0u8; 64 * MESSAGE];
    while let Ok(n @ 1..) = read(pool_rx, &mut chunk) {
        messages.extend_from_slice(&chunk[..n]);
    }
    let whole = messages.len() - messages.len() % MESSAGE;
    for message in messages[..whole].chunks_exact(MESSAGE) {
        let pid = Pid::from_raw(i32::from_le_bytes([
            message[4], message[5], message[6], message[7],
        ]));
        let Some(w) = pool.iter_mut().find(|w| w.pid == pid) else {
            continue;
        };
        if w.state == State::Leaving {
            continue;
        }
        w.state = if message[0] == BUSY {
            // A worker that serves a client: whatever killed its elders has passed.
            backoff.recovered();
            State::Busy
        } else {
            State::Idle
        };
    }
    messages.drain(..whole);
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
