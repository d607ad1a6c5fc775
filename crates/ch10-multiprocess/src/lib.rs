//! # Chapter 10: processes and the multi-process server (멀티프로세스 기반의 서버)
//!
//! A server is a process; fork() makes more. The multi-process echo server forks one
//! child per client: the child serves that client and exits, the parent goes straight
//! back to accept(). A child that has exited stays in the process table as a *zombie*
//! (좀비 프로세스) until its parent collects its exit status with wait()/waitpid(): a
//! server that never does fills the table.
//!
//! Subcommands: `fork`, `zombie`, `wait`, `waitpid` (the book's small examples, a few
//! seconds each, `--seconds` for the book's longer waits), `echo-server <port>` (the
//! book's echo_mpserv), `echo-client <ip> <port>` (echo_mpclient: one process writes,
//! the other reads). No subcommand: the server, three clients at once, and the proof
//! that no zombie is left.
//!
//! System calls: `fork`, `waitpid` (with and without WNOHANG), `kill`, `sigaction`
//! (SIGCHLD), `sigprocmask`, `getpid`, `prctl(PR_SET_PDEATHSIG)` and `getppid` in each
//! child; the server's `socket`, `bind`, `listen`, `ppoll` (the wait for a client, with
//! its signals let in), `accept`, `close` in both processes; the client's
//! `shutdown(SHUT_WR)`.
//!
//! What the book's C gets wrong: echo_mpserv's SIGCHLD handler calls waitpid() *once*.
//! Signals of one kind do not queue: when several children end at once, one signal may
//! stand for all of them, and all but one stay zombies. Ours reaps in a loop until
//! waitpid(-1, WNOHANG) finds none (syscalls::Reaper). The book treats accept()'s EINTR
//! (a SIGCHLD arrived) as an error and `continue`s only by luck of its loop; and a signal
//! that comes just before accept() begins interrupts nothing, so its news waits for the
//! next client. Ours holds its signals (sigprocmask) except in the wait for a client
//! (ppoll with the old mask, as pselect was made for), so each one ends a wait. Its parent exits on SIGINT and orphans its children; ours stops them,
//! reaps them all and exits 0, and its children end with it even when it is killed
//! (PR_SET_PDEATHSIG). A fork() that fails (EAGAIN at RLIMIT_NPROC) closes that one client.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use syscalls::process::{ForkResult, Pid, describe, tie_to_parent};
use syscalls::{
    AcceptPause, Errno, Reaper, SERVER_SIGNALS, Shutdown, StopSignals, SysError, accept, bind,
    close, connect, fork, getsockname, hold_signals, ignore_sigpipe, kill, listen, read, shutdown,
    tcp_socket, wait_readable_letting_in, waitpid, write_all,
};
use workbook::{ClientOpts, ServerOpts, TraceOpt, WireOpt};

const BUF_SIZE: usize = 1024;

/// Chapter 10: processes, fork(), zombies, and the multi-process echo server.
/// With no subcommand, runs a demo: the server, three clients at once, no zombie left.
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Demo>,
    #[command(flatten)]
    pub trace: TraceOpt,
    #[command(flatten)]
    pub wire: WireOpt,
}

#[derive(Subcommand, Debug)]
pub enum Demo {
    /// fork(): parent and child each change their copy of two variables (fork.c)
    Fork,
    /// A child exits and its parent does not wait: the child is a zombie until reaped (zombie.c)
    Zombie {
        /// How long the parent leaves the zombie (the book: 30)
        #[arg(long, default_value = "2")]
        seconds: f64,
    },
    /// wait(): two children exit with 3 and 7; the parent reads both statuses (wait.c)
    Wait,
    /// waitpid(WNOHANG): the parent polls while the child works (waitpid.c)
    Waitpid {
        /// How long the child works (the book: 15)
        #[arg(long, default_value = "1")]
        seconds: f64,
    },
    /// Multi-process echo server: a child per client, SIGCHLD reaped in a loop (echo_mpserv)
    EchoServer(ServerOpts),
    /// Echo client with split I/O: one process writes, the other reads (echo_mpclient)
    EchoClient(ClientOpts),
}

/// Runs the subcommand, or the demo when there is none.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    cli.trace.apply();
    match cli.command {
        Some(Demo::Fork) => fork_demo(),
        Some(Demo::Zombie { seconds }) => zombie(duration(seconds)?),
        Some(Demo::Wait) => wait_demo(),
        Some(Demo::Waitpid { seconds }) => waitpid_demo(duration(seconds)?),
        Some(Demo::EchoServer(opts)) => echo_server(&opts),
        Some(Demo::EchoClient(opts)) => echo_client(opts.addr()?),
        None => workbook::demo::run(&cli.wire, demo),
    }
}

fn duration(seconds: f64) -> anyhow::Result<Duration> {
    if !(seconds.is_finite() && (0.0..=3600.0).contains(&seconds)) {
        bail!("--seconds must be from 0 to 3600, not {seconds}");
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Exits the child without running the parent's cleanup twice; what it printed is
/// flushed first.
fn child_exit(code: i32) -> ! {
    let _ = std::io::stdout().flush();
    std::process::exit(code)
}

/// The book's fork.c: each process changes its own copy.
fn fork_demo() -> anyhow::Result<()> {
    let mut global = 10;
    let mut local = 20;
    global += 1;
    local += 5;
    // SAFETY: this process has one thread.
    match unsafe { fork() }? {
        ForkResult::Child => {
            global += 2;
            local += 2;
            println!(
                "Child Proc (pid {}): [{global}, {local}]",
                std::process::id()
            );
            child_exit(0);
        }
        ForkResult::Parent { child } => {
            global -= 2;
            local -= 2;
            let status = waitpid(Some(child), false)?;
            println!(
                "Parent Proc (pid {}): [{global}, {local}]",
                std::process::id()
            );
            println!(
                "the child {child} had its own copies; it {}",
                describe(&status)
            );
        }
    }
    Ok(())
}

/// The state letter (R, S, Z, ...) and parent of `pid`, from /proc/PID/stat.
fn stat_of(pid: i32) -> Option<(char, i32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: read after the last ')'.
    let mut fields = text[text.rfind(')')? + 2..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    Some((state, fields.next()?.parse().ok()?))
}

/// The state letter of `pid`: R, S, Z, ...
fn state_of(pid: Pid) -> Option<char> {
    stat_of(pid.as_raw()).map(|(state, _)| state)
}

/// The book's zombie.c: the child exits at once, the parent does not wait.
fn zombie(leave: Duration) -> anyhow::Result<()> {
    // SAFETY: this process has one thread.
    match unsafe { fork() }? {
        ForkResult::Child => {
            println!("Hi, I am a child process");
            child_exit(0);
        }
        ForkResult::Parent { child } => {
            println!("Child Process ID: {child}");
            // Wait until the child has exited (it is then a zombie), up to a deadline.
            let until = Instant::now() + Duration::from_secs(10);
            while state_of(child) != Some('Z') && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
            println!(
                "/proc/{child}/stat says state {}: a zombie, exited but not yet waited for",
                state_of(child).unwrap_or('?')
            );
            println!(
                "leaving it for {leave:?} (`ps -o pid,stat,comm --ppid {}` shows it)",
                std::process::id()
            );
            std::thread::sleep(leave);
            let status = waitpid(Some(child), false)?;
            println!("waitpid() reaped it: it {}", describe(&status));
            println!(
                "/proc/{child} {}",
                if state_of(child).is_none() {
                    "is gone: no zombie left"
                } else {
                    "still exists"
                }
            );
        }
    }
    Ok(())
}

/// The book's wait.c: two children, two statuses.
fn wait_demo() -> anyhow::Result<()> {
    let mut children = Vec::new();
    for code in [3, 7] {
        // SAFETY: this process has one thread.
        match unsafe { fork() }? {
            ForkResult::Child => child_exit(code),
            ForkResult::Parent { child } => {
                println!("Child PID: {child}");
                children.push(child);
            }
        }
    }
    for _ in &children {
        // wait() is waitpid(-1, 0): any child, blocking.
        match waitpid(None, false)? {
            WaitStatus::Exited(pid, code) => {
                println!("Child {pid} send one: {code} (WIFEXITED, WEXITSTATUS = {code})")
            }
            other => println!("a child {}", describe(&other)),
        }
    }
    Ok(())
}

/// The book's waitpid.c: poll with WNOHANG while the child works.
fn waitpid_demo(work: Duration) -> anyhow::Result<()> {
    // SAFETY: this process has one thread.
    match unsafe { fork() }? {
        ForkResult::Child => {
            std::thread::sleep(work);
            child_exit(24);
        }
        ForkResult::Parent { child } => loop {
            match waitpid(Some(child), true)? {
                WaitStatus::StillAlive => {
                    println!("sleep 0.2sec.");
                    std::thread::sleep(Duration::from_millis(200));
                }
                WaitStatus::Exited(_, code) => {
                    println!("Child send {code}");
                    break;
                }
                other => bail!("the child {}", describe(&other)),
            }
        },
    }
    Ok(())
}

/// The child's whole life: echo one client until it closes.
fn echo(client: &OwnedFd) -> Result<(), SysError> {
    let mut buf = [0u8; BUF_SIZE];
    loop {
        let n = read(client, &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        write_all(client, &buf[..n])?;
    }
}

/// Prints what the reaper collected and forgets those children.
fn report_reaped(reaper: &Reaper, children: &mut BTreeSet<Pid>) {
    for (pid, status) in reaper.reaped() {
        children.remove(&pid);
        workbook::log_line!("removed proc id: {pid} ({})", describe(&status));
    }
}

/// The multi-process echo server.
pub fn echo_server(opts: &ServerOpts) -> anyhow::Result<()> {
    let stop = StopSignals::install()?;
    let reaper = Reaper::install()?;
    ignore_sigpipe()?;
    // SIGCHLD, SIGINT and SIGTERM are let in only while the server waits for a client
    // (ppoll below), never between its look at what they did and that wait: one that came
    // in that moment would be handled before the wait began, and the wait would go on,
    // its news unheard. (The book's loop around accept() has that race.)
    let waiting_mask = hold_signals(&SERVER_SIGNALS)?;
    // 1. socket()  2. bind()  3. listen()
    let listener = tcp_socket(&opts.addr())?;
    bind(&listener, opts.addr())?;
    listen(&listener, opts.backlog)?;
    workbook::announce("listening on", getsockname(&listener)?)?;
    let parent = Pid::from_raw(std::process::id() as i32);
    let mut children = BTreeSet::new();
    let mut pause = AcceptPause::default();
    // The loop ends on a stop, or on an error; either way the children are ended and
    // reaped below: no child is ever left without its parent.
    let served: anyhow::Result<()> = loop {
        report_reaped(&reaper, &mut children);
        if stop.requested() {
            break Ok(());
        }
        // Out of fds (the parent holds only the listening socket and one client at a
        // time, so this is the system's limit, ENFILE): wait a moment, without spinning.
        if let Some(left) = pause.timeout() {
            std::thread::sleep(left);
            pause.descriptor_freed();
        }
        // 4. Wait for a client with the signals let in: a SIGCHLD or SIGTERM ends the
        // wait (EINTR), and the loop's top says what it did; that is news, not an error.
        match wait_readable_letting_in(&listener, &waiting_mask) {
            Ok(_) => {}
            Err(e) if e.is_interrupted() => continue,
            Err(e) => break Err(e.into()),
        }
        // 5. accept(): a client is waiting, so it returns at once (the signals are held
        // again: none can interrupt it now).
        let (client, peer) = match accept(&listener) {
            Ok(accepted) => accepted,
            Err(e) if e.is_interrupted() || e.errno == Errno::ECONNABORTED => continue,
            Err(e) if pause.out_of_descriptors(&e) => continue,
            Err(e) => break Err(e.into()),
        };
        pause.accepted();
        workbook::log_line!("new client connected... ({peer})");
        // 6. fork(): the child serves this client, the parent goes back to waiting.
        // SAFETY: this process has one thread.
        match unsafe { fork() } {
            // No child for this client (EAGAIN: RLIMIT_NPROC, or the process table is
            // full; ENOMEM): close it, and go on serving the others.
            Err(e) => {
                workbook::log_error!("error: client {peer}: {e}: closed it");
                if let Err(e) = close(client) {
                    break Err(e.into());
                }
            }
            Ok(ForkResult::Child) => {
                // SIGTERM and SIGINT end a child at once (the parent's handler only sets
                // a flag, which a child blocked in read() would never look at again), and
                // the child ends with its parent, even one killed with SIGKILL, which
                // cannot stop its children: the kernel sends it SIGTERM.
                if !tie_to_parent(parent) {
                    child_exit(1);
                }
                // The child does not accept: it closes its copy of the listening socket.
                let _ = close(listener);
                if let Err(e) = echo(&client)
                    && !e.is_interrupted()
                {
                    workbook::log_error!("error: client {peer}: {e}");
                }
                let _ = close(client);
                workbook::log_line!("client disconnected... ({peer})");
                child_exit(0);
            }
            Ok(ForkResult::Parent { child }) => {
                children.insert(child);
                // The parent closes its copy of the client's socket: the connection
                // stays open through the child's copy, and ends when the child closes.
                if let Err(e) = close(client) {
                    break Err(e.into());
                }
            }
        }
    };
    // Stop: no more clients; end the children, reap every one, then exit.
    close(listener)?;
    stop_children(&mut children)?;
    report_reaped(&reaper, &mut children);
    served
}

/// SIGTERM to every child, then waitpid() until none is left.
fn stop_children(children: &mut BTreeSet<Pid>) -> anyhow::Result<()> {
    for child in children.iter() {
        match kill(*child, Signal::SIGTERM) {
            Ok(())
            | Err(SysError {
                errno: Errno::ESRCH,
                ..
            }) => {}
            Err(e) => workbook::log_error!("error: {e}"),
        }
    }
    loop {
        match waitpid(None, false) {
            Ok(status) => {
                if let Some(pid) = status.pid() {
                    children.remove(&pid);
                    workbook::log_line!("removed proc id: {pid} ({})", describe(&status));
                }
            }
            Err(e) if e.is_interrupted() => continue,
            Err(e) if e.errno == Errno::ECHILD => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}

/// The split client: the child writes what is typed, the parent reads and prints.
pub fn echo_client(server: SocketAddr) -> anyhow::Result<()> {
    let sock = tcp_socket(&server)?;
    connect(&sock, server)?;
    // SAFETY: this process has one thread.
    match unsafe { fork() }? {
        ForkResult::Child => {
            // The writer: every line typed goes out; at the end, half-close (ch07) so
            // the server's echo can still come back to the reader.
            let code = match write_routine(&sock) {
                Ok(()) => 0,
                Err(e) => {
                    workbook::log_error!("error: {e:#}");
                    1
                }
            };
            child_exit(code);
        }
        ForkResult::Parent { child } => {
            let result = read_routine(&sock);
            // The server is done with us; the writer has finished, or must now stop.
            let _ = kill(child, Signal::SIGTERM);
            let status = waitpid(Some(child), false)?;
            close(sock)?;
            result?;
            if !matches!(
                status,
                WaitStatus::Exited(_, 0) | WaitStatus::Signaled(_, Signal::SIGTERM, _)
            ) {
                bail!("the writing process {}", describe(&status));
            }
            Ok(())
        }
    }
}

fn write_routine(sock: &OwnedFd) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    let mut line = String::new();
    loop {
        line.clear();
        let n = std::io::BufRead::read_line(&mut stdin.lock(), &mut line)
            .context("read standard input")?;
        if n == 0 || line.trim_end() == "q" || line.trim_end() == "Q" {
            break;
        }
        if !line.ends_with('\n') {
            line.push('\n');
        }
        write_all(sock, line.as_bytes())?;
    }
    shutdown(sock, Shutdown::Write)?;
    Ok(())
}

fn read_routine(sock: &OwnedFd) -> anyhow::Result<()> {
    let mut buf = [0u8; BUF_SIZE];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let n = read(sock, &mut buf)?;
        if n == 0 {
            break;
        }
        pending.extend_from_slice(&buf[..n]);
        // Print whole lines: a reply may arrive in pieces (ch05).
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            println!(
                "Message from server: {}",
                String::from_utf8_lossy(&line[..line.len() - 1])
            );
        }
        if pending.len() > 64 * 1024 {
            bail!("a reply line longer than 64 KiB");
        }
    }
    if !pending.is_empty() {
        println!("Message from server: {}", String::from_utf8_lossy(&pending));
    }
    Ok(())
}

/// The demo: the server, three clients at once, and its children afterwards.
fn demo() -> anyhow::Result<()> {
    let server = workbook::demo::DemoServer::start(&["echo-server", "0"])?;
    let port = server.addr().port().to_string();
    let clients: Vec<_> = [("client1", "one"), ("client2", "two"), ("client3", "three")]
        .into_iter()
        .map(|(side, word)| {
            workbook::demo::start_side(
                side,
                &["echo-client", "127.0.0.1", &port],
                &[&format!("hello from client {word}")],
            )
        })
        .collect::<anyhow::Result<_>>()?;
    for client in clients {
        let status = client.finish()?;
        if !status.success() {
            bail!("a demo client ended with {status}");
        }
    }
    for i in 1..=3 {
        server.wait_for(&format!("removed proc id #{i}"), |l| {
            l.starts_with("removed proc id:")
        })?;
    }
    let server_pid = server.pid();
    let zombies: Vec<String> = std::fs::read_dir("/proc")
        .context("read /proc")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| stat_of(*pid) == Some(('Z', server_pid)))
        .map(|p| p.to_string())
        .collect();
    workbook::demo::note(&format!(
        "children of the server (pid {server_pid}) in state Z now: {}",
        if zombies.is_empty() {
            "none".to_string()
        } else {
            zombies.join(", ")
        }
    ));
    server.stop()
}
