//! # Chapter 18: threads (멀티쓰레드 기반의 서버)
//!
//! A thread per client: the main thread accepts, and each client gets a thread of its
//! own that reads and writes with plain blocking calls, as the iterative server does for
//! one client. Threads share the process's memory and fd table, so nothing needs
//! copying (unlike fork()), and a client that stalls blocks only its own thread. The
//! cost: a stack per client (8 MiB reserved, a little of it touched) and a context switch
//! between every two clients' work.
//!
//! Subcommand: `echo-server <port>`. No subcommand: the server with three clients.
//!
//! System calls: `socket`, `bind`, `listen`, `accept` in the main thread;
//! `clone` (std::thread::spawn); `read`/`write` in each client's thread; `shutdown` to
//! end the clients' threads at stop; `pthread_sigmask` so SIGINT/SIGTERM reach the main
//! thread.
//!
//! What the book's C gets wrong: its chat server keeps the client sockets in a global
//! array guarded by a mutex, and removes a leaving client by shifting the array while
//! another thread may be iterating it with a stale index (the wrong client is removed).
//! Its threads are detached and never joined; at exit nothing ends them. Ours shares one
//! Arc per connection, ends every thread at stop by shutting its socket down, and joins
//! them all.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use anyhow::bail;
use clap::{Parser, Subcommand};
use syscalls::{
    AcceptPause, Errno, Shutdown, StopSignals, SysError, accept, bind,
    block_stop_signals_in_this_thread, close, getsockname, ignore_sigpipe, listen, read, shutdown,
    tcp_socket, write_all,
};
use workbook::{ServerOpts, TraceOpt, WireOpt};

const BUF_SIZE: usize = 4096;

/// Chapter 18: a thread-per-client echo server. With no subcommand, runs a demo.
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
    /// Echo server: the main thread accepts, a thread per client echoes
    EchoServer(ServerOpts),
}

/// Runs the subcommand, or the demo when there is none.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    cli.trace.apply();
    match cli.command {
        Some(Role::EchoServer(opts)) => echo_server(&opts),
        None => workbook::demo::run(&cli.wire, demo),
    }
}

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

/// The connections being served, each shared by its thread and this table (so that stop
/// can shut them down; the fd closes when both have let go), and a condition the main
/// thread waits on while it cannot accept: a client's thread ending frees an fd.
#[derive(Default)]
struct Live {
    table: Mutex<HashMap<u64, Arc<OwnedFd>>>,
    left: Condvar,
}

impl Live {
    fn insert(&self, id: u64, client: Arc<OwnedFd>) {
        self.table.lock().expect("live table").insert(id, client);
    }

    /// Forgets a client, and wakes the main thread if it waits for an fd.
    fn remove(&self, id: u64) -> Option<Arc<OwnedFd>> {
        let client = self.table.lock().expect("live table").remove(&id);
        self.left.notify_all();
        client
    }

    /// Waits until a client leaves or `timeout` passes.
    fn wait_for_a_leaver(&self, timeout: std::time::Duration) {
        let table = self.table.lock().expect("live table");
        let count = table.len();
        let _ = self
            .left
            .wait_timeout_while(table, timeout, |t| t.len() >= count);
    }
}

/// The thread-per-client echo server.
pub fn echo_server(opts: &ServerOpts) -> anyhow::Result<()> {
    let stop = StopSignals::install()?;
    ignore_sigpipe()?;
    // 1. socket()  2. bind()  3. listen()
    let listener = tcp_socket(&opts.addr())?;
    bind(&listener, opts.addr())?;
    listen(&listener, opts.backlog)?;
    workbook::announce("listening on", getsockname(&listener)?)?;
    let live: Arc<Live> = Arc::default();
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    let mut pause = AcceptPause::default();
    let mut next_id = 0u64;
    while !stop.requested() {
        // Out of fds: wait for a client to leave (or the pause to run out), then try
        // again; the connection waits in the backlog meanwhile.
        if let Some(left) = pause.timeout() {
            live.wait_for_a_leaver(left);
            pause.descriptor_freed();
        }
        // 4. accept() in the main thread. SIGINT/SIGTERM interrupt it (EINTR): the
        //    worker threads block those signals, so they are delivered here.
        let (client, peer) = match accept(&listener) {
            Ok(accepted) => accepted,
            Err(e) if e.is_interrupted() || e.errno == Errno::ECONNABORTED => continue,
            Err(e) if pause.out_of_descriptors(&e) => continue,
            Err(e) => return Err(e.into()),
        };
        pause.accepted();
        let client = Arc::new(client);
        let id = next_id;
        next_id += 1;
        live.insert(id, client.clone());
        workbook::log_line!("connected client: {peer}");
        // 5. A thread for this client. It may not be had (RLIMIT_NPROC, memory for its
        //    stack): then that one client is closed, and the others go on.
        let table = live.clone();
        let spawned = std::thread::Builder::new().spawn(move || {
            let _ = block_stop_signals_in_this_thread();
            if let Err(e) = echo(&client) {
                workbook::log_error!("error: client {peer}: {e}");
            }
            table.remove(id);
            workbook::log_line!("closed client: {peer}");
        });
        match spawned {
            Ok(thread) => threads.push(thread),
            Err(e) => {
                workbook::log_error!("error: client {peer}: no thread for it ({e}): closed it");
                if let Some(client) = live.remove(id).and_then(Arc::into_inner) {
                    close(client)?;
                }
            }
        }
        // Forget the threads that have finished, so the list does not grow forever.
        threads.retain(|t| !t.is_finished());
    }
    // Stop: wake every client's thread (its read() returns 0), then join them all.
    for client in live.table.lock().expect("live table").values() {
        let _ = shutdown(&**client, Shutdown::Both);
    }
    for thread in threads {
        let _ = thread.join();
    }
    close(listener)?;
    Ok(())
}

/// The demo: the server and three clients at once.
fn demo() -> anyhow::Result<()> {
    let server = workbook::demo::DemoServer::start(&["echo-server", "0"])?;
    let addr = server.addr();
    let streams: Vec<std::net::TcpStream> = (0..3)
        .map(|_| std::net::TcpStream::connect(addr))
        .collect::<Result<_, _>>()?;
    for (i, stream) in streams.iter().enumerate().rev() {
        let line = format!("client {}\n", i + 1);
        std::io::Write::write_all(&mut &*stream, line.as_bytes())?;
        let mut back = vec![0u8; line.len()];
        std::io::Read::read_exact(&mut &*stream, &mut back)?;
        if back != line.as_bytes() {
            bail!("the echo differs");
        }
        workbook::demo::note(&format!(
            "client {}: echo received while the others stay connected",
            i + 1
        ));
    }
    let threads = std::fs::read_dir(format!("/proc/{}/task", server.pid()))?.count();
    workbook::demo::note(&format!(
        "the server has {threads} threads: the main one and one per client"
    ));
    drop(streams);
    for _ in 0..3 {
        server.wait_for("a client's close", |l| l.starts_with("closed client:"))?;
    }
    server.stop()
}
