//! # Chapter 11: inter-process communication (프로세스간 통신) through pipes
//!
//! fork() gives the child a copy of everything, and then the two share nothing: a
//! variable the child changes is its own. To talk they need something outside both, and
//! the simplest is a pipe: pipe() makes a channel inside the kernel with two fds, a
//! write end and a read end, and both survive fork(). What one process writes, the
//! other reads, in order. A pipe has no sides of its own: whoever reads first gets what
//! is in it, which is why two-way talk needs two pipes.
//!
//! Subcommands: `pipe1` (the child writes, the parent reads: pipe1.c), `pipe2` (both
//! ways over one pipe, with the book's sleep() in the child; `--no-sleep` shows what
//! the sleep was hiding: pipe2.c), `pipe3` (one pipe each way: pipe3.c), `echo-storeserv
//! <port> [FILE]` (the multi-process echo server whose children send every byte they
//! echo through a pipe to a writer process that saves it: echo_storeserv.c),
//! `echo-client <ip> <port>` (a plain echo client for the demo). No subcommand: the
//! three pipe demos, then the store server with three clients and the file it saved.
//!
//! System calls: `pipe`, `fork`, `read`, `write`, `close` (each process closes the ends
//! it does not use), `poll` (the demos' reads have a deadline), `waitpid`; the server's
//! `open` (the file, before anything else), `socket`, `bind`, `listen`, `accept`,
//! `sigaction` (SIGCHLD), `kill` at shutdown.
//!
//! What the book's C gets wrong: pipe2.c works only because the child sleep()s while the
//! parent reads; without it the child usually reads its own message back, and the
//! parent waits for ever. echo_storeserv.c's writer saves ten read()s, whatever they
//! held, then exits; the children, who still hold the read end, then block in write()
//! once the pipe is full, and every client with them. Nobody closes the ends they do
//! not use, so the writer could never have seen end of file anyway; the children read
//! `BUFSIZ` bytes into a buffer of `BUF_SIZE`; the file's name is fixed and its
//! fopen() unchecked. Ours: the writer saves every byte until end of file (every write
//! end closed), each process closes the ends it does not use, and at shutdown the
//! server ends its children, closes its write end and waits for the writer to finish.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use syscalls::multiplex::set_nonblocking;
use syscalls::process::{ForkResult, Pid, describe, tie_to_parent};
use syscalls::{
    AcceptPause, Errno, Reaper, SERVER_SIGNALS, StopSignals, SysError, accept, bind, close,
    connect, create, fork, getsockname, hold_signals, ignore_sigpipe, kill, listen, pipe, read,
    tcp_socket, wait_readable, wait_readable_letting_in, waitpid, write_all,
};
use workbook::{ClientOpts, ServerOpts, TraceOpt};

const BUF_SIZE: usize = 1024;

/// The file the book's writer saves to, in the server's working directory.
pub const BOOK_FILE: &str = "echomsg.txt";

/// Chapter 11: pipes between processes, and the echo server that stores what it echoes.
/// With no subcommand, runs the pipe demos and the store server with three clients.
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Demo>,
    #[command(flatten)]
    pub trace: TraceOpt,
}

#[derive(Subcommand, Debug)]
pub enum Demo {
    /// One pipe, one way: the child writes, the parent reads (pipe1.c)
    Pipe1,
    /// One pipe, both ways: works only while the child sleeps at the right moment (pipe2.c)
    Pipe2 {
        /// How long the child sleeps between its write and its read (the book: 2)
        #[arg(long, default_value = "0.3")]
        seconds: f64,
        /// Leave the sleep out, and see who reads the child's message
        #[arg(long)]
        no_sleep: bool,
    },
    /// Two pipes, one each way: both ways, no sleep needed (pipe3.c)
    Pipe3,
    /// Multi-process echo server that saves every byte it echoes, through a pipe and a writer process (echo_storeserv)
    EchoStoreserv {
        #[command(flatten)]
        opts: ServerOpts,
        /// Where the writer saves what the clients sent (the book: echomsg.txt)
        #[arg(default_value = BOOK_FILE)]
        file: PathBuf,
    },
    /// Echo client: each line typed is sent and its echo printed
    EchoClient(ClientOpts),
}

/// Runs the subcommand, or the demo when there is none.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    cli.trace.apply();
    match cli.command {
        Some(Demo::Pipe1) => pipe1(),
        Some(Demo::Pipe2 { seconds, no_sleep }) => {
            pipe2((!no_sleep).then(|| duration(seconds)).transpose()?)
        }
        Some(Demo::Pipe3) => pipe3(),
        Some(Demo::EchoStoreserv { opts, file }) => echo_storeserv(&opts, &file),
        Some(Demo::EchoClient(opts)) => echo_client(opts.addr()?),
        None => demo(),
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

/// Waits for the child `pid` and says how it ended unless it exited with 0.
fn wait_child(pid: Pid) -> anyhow::Result<()> {
    match waitpid(Some(pid), false)? {
        WaitStatus::Exited(_, 0) => Ok(()),
        other => bail!("the child {}", describe(&other)),
    }
}

/// Reads what is in the pipe, waiting up to `deadline` for something to come: None when
/// nothing came. The read end is non-blocking, so that when another process takes the
/// bytes between poll() and read() (one pipe, two readers), read() says EAGAIN instead
/// of waiting for ever.
fn read_within(fd: &OwnedFd, deadline: Duration) -> anyhow::Result<Option<Vec<u8>>> {
    let until = Instant::now() + deadline;
    let mut buf = [0u8; BUF_SIZE];
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || !wait_readable(fd, left)? {
            return Ok(None);
        }
        match read(fd, &mut buf) {
            Ok(n) => return Ok(Some(buf[..n].to_vec())),
            Err(e) if e.errno == Errno::EAGAIN => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The book's pipe1.c: the child writes into the pipe, the parent reads.
fn pipe1() -> anyhow::Result<()> {
    let message = b"Who are you?";
    // 1. pipe(): [read end, write end]
    let (read_end, write_end) = pipe()?;
    // 2. fork(): the child gets copies of both ends.
    // SAFETY: this process has one thread.
    match unsafe { fork() }? {
        ForkResult::Child => {
            // The child only writes: it closes its copy of the read end.
            close(read_end)?;
            write_all(&write_end, message)?;
            child_exit(0);
        }
        ForkResult::Parent { child } => {
            // The parent only reads: closing its write end means that, once the child
            // has closed its copy too (by exiting), read() returns 0.
            close(write_end)?;
            let mut buf = [0u8; BUF_SIZE];
            let n = read(&read_end, &mut buf)?;
            println!("{}", text(&buf[..n]));
            wait_child(child)?;
        }
    }
    Ok(())
}

/// The book's pipe2.c: both ways over one pipe. With `sleep` the child writes, sleeps
/// while the parent reads and answers, then reads the answer. Without it, whoever reads
/// first gets the child's message: usually the child itself.
fn pipe2(sleep: Option<Duration>) -> anyhow::Result<()> {
    let question = b"Who are you?";
    let answer = b"Thank you for your message";
    // Each read waits at most this long: the book's waits for ever.
    let deadline = sleep.unwrap_or_default() + Duration::from_secs(1);
    let (read_end, write_end) = pipe()?;
    // Both processes read and write this one pipe, so both keep both ends.
    set_nonblocking(&read_end)?;
    // SAFETY: this process has one thread.
    match unsafe { fork() }? {
        ForkResult::Child => {
            write_all(&write_end, question)?;
            if let Some(sleep) = sleep {
                // The book's sleep(2): time for the parent to read first. A guess, not a
                // guarantee: on a busy machine the parent may not have run by then.
                std::thread::sleep(sleep);
            }
            match read_within(&read_end, deadline)? {
                Some(got) if got == question => println!(
                    "Child proc output: {} (its own message: one pipe has one queue, and the child read it before the parent did)",
                    text(&got)
                ),
                Some(got) => println!("Child proc output: {}", text(&got)),
                None => println!("Child: nothing came within {deadline:?}"),
            }
            child_exit(0);
        }
        ForkResult::Parent { child } => {
            let verdict = match read_within(&read_end, deadline)? {
                Some(got) => {
                    println!("Parent proc output: {}", text(&got));
                    write_all(&write_end, answer)?;
                    if sleep.is_some() {
                        "the parent read first, as the sleep intended"
                    } else {
                        "this time the parent read first: luck, not design"
                    }
                }
                None => {
                    println!(
                        "Parent: nothing came within {deadline:?}: the child took its own message back (the book's read() would wait for ever)"
                    );
                    "the child read its own message; the parent got nothing"
                }
            };
            wait_child(child)?;
            println!("one pipe, two readers: {verdict}");
        }
    }
    Ok(())
}

/// The book's pipe3.c: one pipe from the child to the parent, one back.
fn pipe3() -> anyhow::Result<()> {
    let question = b"Who are you?";
    let answer = b"Thank you for your message";
    let (up_read, up_write) = pipe()?; // child -> parent
    let (down_read, down_write) = pipe()?; // parent -> child
    let mut buf = [0u8; BUF_SIZE];
    // SAFETY: this process has one thread.
    match unsafe { fork() }? {
        ForkResult::Child => {
            close(up_read)?;
            close(down_write)?;
            write_all(&up_write, question)?;
            // Only the parent writes into this pipe: what comes is its answer.
            let n = read(&down_read, &mut buf)?;
            println!("Child proc output: {}", text(&buf[..n]));
            child_exit(0);
        }
        ForkResult::Parent { child } => {
            close(up_write)?;
            close(down_read)?;
            let n = read(&up_read, &mut buf)?;
            println!("Parent proc output: {}", text(&buf[..n]));
            write_all(&down_write, answer)?;
            wait_child(child)?;
        }
    }
    Ok(())
}

// ------------------------------------------------------------------ the store server

/// The writer's whole life: everything that comes through the pipe goes to the file,
/// until end of file, which comes once every write end is closed (the server's and its
/// children's). Each chunk is written as it is read: nothing waits in a buffer, so
/// nothing is lost however the writer ends. Returns how many bytes it saved.
fn store(pipe_read: &OwnedFd, file: &OwnedFd) -> Result<u64, SysError> {
    let mut buf = [0u8; 4096];
    let mut saved = 0u64;
    loop {
        let n = match read(pipe_read, &mut buf) {
            // A signal (Ctrl-C reaches the whole process group) does not stop the
            // writer: it ends at end of file, when the server and its children are gone.
            Err(e) if e.is_interrupted() => continue,
            other => other?,
        };
        if n == 0 {
            return Ok(saved);
        }
        write_all(file, &buf[..n])?;
        saved += n as u64;
    }
}

/// A client's child: echoes every byte and sends it to the writer through the pipe.
fn echo_and_store(client: &OwnedFd, pipe_write: &OwnedFd) -> Result<(), SysError> {
    let mut buf = [0u8; BUF_SIZE];
    loop {
        let n = read(client, &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        write_all(client, &buf[..n])?;
        // At most BUF_SIZE bytes, less than PIPE_BUF (4096): one write() into a pipe of
        // that size is never mixed with another process's write.
        write_all(pipe_write, &buf[..n])?;
    }
}

/// The children serving clients, and the writer, as the parent knows them.
struct Family {
    writer: Pid,
    writer_ended: Option<WaitStatus>,
    clients: BTreeSet<Pid>,
}

impl Family {
    /// Prints what the SIGCHLD handler reaped and forgets those children.
    fn report_reaped(&mut self, reaper: &Reaper) {
        for (pid, status) in reaper.reaped() {
            self.reaped(pid, status);
        }
    }

    fn reaped(&mut self, pid: Pid, status: WaitStatus) {
        if pid == self.writer {
            workbook::log_line!("the writer (pid {pid}) {}", describe(&status));
            self.writer_ended = Some(status);
        } else {
            self.clients.remove(&pid);
            workbook::log_line!("removed proc id: {pid} ({})", describe(&status));
        }
    }

    /// waitpid() for one child, which the SIGCHLD handler may have reaped already.
    fn wait_for(&mut self, reaper: &Reaper, pid: Pid) -> anyhow::Result<()> {
        loop {
            match waitpid(Some(pid), false) {
                Ok(status) => {
                    self.reaped(pid, status);
                    return Ok(());
                }
                Err(e) if e.is_interrupted() => continue,
                // The handler got it first: its status is in the reaper's list.
                Err(e) if e.errno == Errno::ECHILD => {
                    self.report_reaped(reaper);
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// The store server: the writer first, then a child per client, as the book's.
pub fn echo_storeserv(opts: &ServerOpts, path: &Path) -> anyhow::Result<()> {
    // The file is created before anything else: a path that cannot be written is an
    // error now, with its reason (the book's writer never checks its fopen()).
    let file = create(path)?;
    let stop = StopSignals::install()?;
    let reaper = Reaper::install()?;
    ignore_sigpipe()?;
    // 1. pipe(): the children write into it, the writer reads from it.
    let (pipe_read, pipe_write) = pipe()?;
    // 2. fork() the writer. Before the listening socket exists, so that the writer
    //    never holds it (a writer that outlived the server would keep the port).
    // SAFETY: this process has one thread.
    let writer = match unsafe { fork() }? {
        ForkResult::Child => {
            // The writer closes its own copy of the write end: with it open, read()
            // would never return 0, and the writer would never end.
            let code = match close(pipe_write).and_then(|()| store(&pipe_read, &file)) {
                Ok(saved) => {
                    workbook::log_line!("the writer saved {saved} bytes to {}", path.display());
                    0
                }
                Err(e) => {
                    workbook::log_error!("error: the writer: {e}");
                    1
                }
            };
            child_exit(code);
        }
        ForkResult::Parent { child } => child,
    };
    // The parent neither reads the pipe nor writes the file: only the writer does.
    close(pipe_read)?;
    close(file)?;
    let mut family = Family {
        writer,
        writer_ended: None,
        clients: BTreeSet::new(),
    };
    let served = serve(opts, &stop, &reaper, &pipe_write, &mut family);
    // Stop: end the clients' children, then close the last write end, so that the
    // writer reads end of file, saves what is left in the pipe and ends; wait for it.
    for child in &family.clients {
        let _ = kill(*child, Signal::SIGTERM);
    }
    for child in family.clients.clone() {
        family.wait_for(&reaper, child)?;
    }
    close(pipe_write)?;
    if family.writer_ended.is_none() {
        family.wait_for(&reaper, writer)?;
    }
    served?;
    match family.writer_ended {
        Some(WaitStatus::Exited(_, 0)) | None => Ok(()),
        Some(status) => bail!("the writer {}", describe(&status)),
    }
}

/// The accept loop, until a stop signal or an error.
fn serve(
    opts: &ServerOpts,
    stop: &StopSignals,
    reaper: &Reaper,
    pipe_write: &OwnedFd,
    family: &mut Family,
) -> anyhow::Result<()> {
    // 3. socket()  4. bind()  5. listen()
    let listener = tcp_socket(&opts.addr())?;
    bind(&listener, opts.addr())?;
    listen(&listener, opts.backlog)?;
    workbook::announce("listening on", getsockname(&listener)?)?;
    let parent = Pid::from_raw(std::process::id() as i32);
    let mut pause = AcceptPause::default();
    // As in ch10: the signals are let in only while the server waits for a client, so
    // that none comes between the look at what they did and the wait (and goes unheard).
    let waiting_mask = hold_signals(&SERVER_SIGNALS)?;
    let result = loop {
        family.report_reaped(reaper);
        if family.writer_ended.is_some() {
            break Err(anyhow::anyhow!(
                "the writer ended while the server was running: nothing more could be saved"
            ));
        }
        if stop.requested() {
            break Ok(());
        }
        if let Some(left) = pause.timeout() {
            std::thread::sleep(left);
            pause.descriptor_freed();
        }
        // 6. Wait for a client, the signals let in: a SIGCHLD or SIGTERM ends the wait
        // (EINTR) and the loop's top says what it did. Then accept(): a client waits.
        match wait_readable_letting_in(&listener, &waiting_mask) {
            Ok(_) => {}
            Err(e) if e.is_interrupted() => continue,
            Err(e) => break Err(e.into()),
        }
        let (client, peer) = match accept(&listener) {
            Ok(accepted) => accepted,
            Err(e) if e.is_interrupted() || e.errno == Errno::ECONNABORTED => continue,
            Err(e) if pause.out_of_descriptors(&e) => continue,
            Err(e) => break Err(e.into()),
        };
        pause.accepted();
        workbook::log_line!("new client connected... ({peer})");
        // 7. fork(): the child echoes and stores; the parent goes back to accept().
        // SAFETY: this process has one thread.
        match unsafe { fork() } {
            Err(e) => {
                workbook::log_error!("error: client {peer}: {e}: closed it");
                close(client)?;
            }
            Ok(ForkResult::Child) => {
                // As in ch10: SIGTERM ends a child at once, and a child ends with its
                // parent even when the parent is killed outright.
                if !tie_to_parent(parent) {
                    child_exit(1);
                }
                let _ = close(listener);
                if let Err(e) = echo_and_store(&client, pipe_write)
                    && !e.is_interrupted()
                {
                    workbook::log_error!("error: client {peer}: {e}");
                }
                let _ = close(client);
                workbook::log_line!("client disconnected... ({peer})");
                child_exit(0);
            }
            Ok(ForkResult::Parent { child }) => {
                family.clients.insert(child);
                close(client)?;
            }
        }
    };
    close(listener)?;
    result
}

/// A plain echo client: each line typed goes out, and its whole echo is printed.
pub fn echo_client(server: SocketAddr) -> anyhow::Result<()> {
    let sock = tcp_socket(&server)?;
    connect(&sock, server)?;
    let mut buf = [0u8; BUF_SIZE];
    while let Some(line) = workbook::prompt_line("Input message(Q to quit): ")? {
        if line == "q" || line == "Q" {
            break;
        }
        let sent = format!("{line}\n");
        write_all(&sock, sent.as_bytes())?;
        let mut echo = Vec::new();
        while echo.len() < sent.len() {
            let n = read(&sock, &mut buf[..(sent.len() - echo.len()).min(BUF_SIZE)])?;
            if n == 0 {
                bail!("the server closed the connection before the whole echo came back");
            }
            echo.extend_from_slice(&buf[..n]);
        }
        println!(
            "Message from server: {}",
            text(&echo).trim_end_matches('\n')
        );
    }
    close(sock)?;
    Ok(())
}

/// The demo: the three pipe programs, then the store server with three clients.
fn demo() -> anyhow::Result<()> {
    for (side, args) in [
        ("pipe1", &["pipe1"][..]),
        ("pipe2", &["pipe2"][..]),
        ("pipe2 --no-sleep", &["pipe2", "--no-sleep"][..]),
        ("pipe3", &["pipe3"][..]),
    ] {
        let status = workbook::demo::run_side(side, args, &[], |_| true)?;
        if !status.success() {
            bail!("the {side} demo ended with {status}");
        }
    }
    let dir = std::env::temp_dir().join(format!("workbook-ch11-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let file = dir.join(BOOK_FILE);
    let result = store_demo(&file);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn store_demo(file: &Path) -> anyhow::Result<()> {
    let file_arg = file.to_string_lossy().into_owned();
    let server = workbook::demo::DemoServer::start(&["echo-storeserv", "0", &file_arg])?;
    let port = server.addr().port().to_string();
    let clients: Vec<_> = [("client1", "one"), ("client2", "two"), ("client3", "three")]
        .into_iter()
        .map(|(side, word)| {
            workbook::demo::start_side(
                side,
                &["echo-client", "127.0.0.1", &port],
                &[&format!("hello from client {word}"), "bye"],
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
    server.stop()?;
    let saved = std::fs::read(file).with_context(|| format!("read {}", file.display()))?;
    println!(
        "{} holds {} bytes, every line every client sent:",
        file.display(),
        saved.len()
    );
    for line in text(&saved).lines() {
        println!("  {line}");
    }
    Ok(())
}
