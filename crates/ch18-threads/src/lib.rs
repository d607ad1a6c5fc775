//! # Chapter 18: threads (멀티쓰레드 기반의 서버구현)
//!
//! Threads first, then servers built on them:
//!
//! * `thread1` .. `thread4`, `mutex`, `semaphore`: the book's first thread programs.
//!   `thread1` shows that main's return ends every thread; `thread2` that
//!   pthread_join waits and takes the thread's result; `thread4` the race of 100 threads
//!   on one counter, with a wrong total on a machine of two cores or more; `mutex` the
//!   same made right; `semaphore` a producer and a consumer taking turns through two
//!   semaphores. Each prints its result and the time it took.
//! * `echo-server <port>`: a thread per client. The main thread accepts, and each client
//!   gets a thread of its own that reads and writes with plain blocking calls, as the
//!   iterative server does for one client. Threads share the process's memory and fd
//!   table, so nothing needs copying (unlike fork()), and a client that stalls blocks
//!   only its own thread. The cost: a stack per client (8 MiB reserved, a little of it
//!   touched) and a context switch between every two clients' work.
//! * `chat-server <port>` and `chat-client <ip> <port> <name>`: the book's chat room, a
//!   thread per member and a mutex around the member list; `chat` runs it.
//!
//! No subcommand: every demo, one after another, in a few seconds.
//!
//! System calls: `socket`, `bind`, `listen`, `accept` in the main thread;
//! `clone` (std::thread::spawn, which calls pthread_create); `read`/`write` in each
//! client's thread; `setsockopt(SO_SNDTIMEO)` on chat members; `shutdown` to end the
//! clients' threads at stop; `pthread_sigmask` so SIGINT/SIGTERM reach the main thread;
//! `futex` under the mutex and the semaphores (`sem_init`, `sem_wait`, `sem_post`).
//!
//! What the book's C gets wrong: its chat server removes a leaving member by shifting
//! the array one slot late (`while(i++<clnt_cnt-1)`), so the member after the one who
//! left stops hearing the room; it holds the list's mutex across write(), so one member
//! who never reads stops everyone; and it relays whatever one read() returned, not whole
//! lines. Its threads are detached and never joined; at exit nothing ends them. Ours
//! removes a member by its identity, writes outside the list's lock with a send timeout
//! per member, frames lines, ends every thread at stop by shutting its socket down, and
//! joins them all.

mod basics;
mod chat;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use anyhow::bail;
use clap::{Parser, Subcommand};
use syscalls::{
    AcceptPause, Errno, Shutdown, StopSignals, SysError, accept, bind,
    block_stop_signals_in_this_thread, close, getsockname, ignore_sigpipe, listen, read, shutdown,
    tcp_socket, write_all,
};
use workbook::{ClientOpts, ServerOpts, TraceOpt, WireOpt};

const BUF_SIZE: usize = 4096;

/// Chapter 18: threads, a mutex and semaphores, a thread-per-client echo server and the
/// book's chat room. With no subcommand, runs every demo.
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
    /// Chat room: a thread per member, a mutex around the member list (chat_server.c)
    ChatServer(ServerOpts),
    /// Chat client: one thread sends what is typed as [NAME] line, another prints the room (chat_clnt.c)
    ChatClient {
        #[command(flatten)]
        opts: ClientOpts,
        /// The name shown before each line, as [NAME]
        name: String,
    },
    /// The chat room with three members
    Chat,
    /// The echo server and its clients, a thread per client (the last demo of all)
    Echo,
    /// A thread that main does not wait for (thread1.c)
    Thread1,
    /// pthread_join: waiting for a thread and taking its result (thread2.c)
    Thread2,
    /// Two threads adding into one sum (thread3.c)
    Thread3,
    /// 100 threads on one counter without a lock: a wrong total (thread4.c)
    Thread4 {
        /// How many times each thread adds or subtracts
        #[arg(long, default_value_t = DEFAULT_ITERATIONS, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
        iterations: u64,
    },
    /// The same 100 threads with a mutex: the right total (mutex.c)
    Mutex {
        /// How many times each thread adds or subtracts
        #[arg(long, default_value_t = DEFAULT_ITERATIONS, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
        iterations: u64,
    },
    /// A producer and a consumer without semaphores, then taking turns with two (semaphore.c)
    Semaphore {
        /// How many numbers the producer hands over
        #[arg(long, default_value_t = DEFAULT_HANDOVERS, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
        count: u64,
    },
}

/// How many times each of thread4's and mutex's 100 threads adds or subtracts: enough
/// for the threads to overlap on two cores, little enough for a demo of a second.
pub const DEFAULT_ITERATIONS: u64 = 50_000;

/// How many numbers semaphore's producer hands over.
pub const DEFAULT_HANDOVERS: u64 = 10_000;

/// Runs the subcommand, or every demo when there is none.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    cli.trace.apply();
    match cli.command {
        Some(Role::EchoServer(opts)) => echo_server(&opts),
        Some(Role::ChatServer(opts)) => chat::chat_server(&opts),
        Some(Role::ChatClient { opts, name }) => chat::chat_client(opts.addr()?, &name),
        Some(Role::Chat) => workbook::demo::run(&cli.wire, chat::demo),
        Some(Role::Echo) => workbook::demo::run(&cli.wire, demo),
        Some(Role::Thread1) => basics::thread1(),
        Some(Role::Thread2) => basics::thread2(),
        Some(Role::Thread3) => basics::thread3(),
        Some(Role::Thread4 { iterations }) => basics::thread4(iterations).map(drop),
        Some(Role::Mutex { iterations }) => basics::mutex(iterations).map(drop),
        Some(Role::Semaphore { count }) => basics::semaphore(count).map(drop),
        None => workbook::demo::run(&cli.wire, every_demo),
    }
}

/// Every demo, one after another.
fn every_demo() -> anyhow::Result<()> {
    // thread1 in a process of its own: its lesson is that main's return ends it.
    println!("$ ch18-threads thread1");
    let status = workbook::demo::run_side("thread1", &["thread1"], &[], |_| true)?;
    if !status.success() {
        bail!("thread1 ended with {status}");
    }
    println!("\n$ ch18-threads thread2");
    basics::thread2()?;
    println!("\n$ ch18-threads thread3");
    basics::thread3()?;
    println!("\n$ ch18-threads thread4");
    basics::thread4(DEFAULT_ITERATIONS)?;
    println!("\n$ ch18-threads mutex");
    basics::mutex(DEFAULT_ITERATIONS)?;
    println!("\n$ ch18-threads semaphore");
    basics::semaphore(DEFAULT_HANDOVERS)?;
    println!("\n$ ch18-threads chat");
    chat::demo()?;
    println!("\n$ ch18-threads  (the echo server)");
    demo()
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

/// What a client's thread holds and the main thread's table shares: at least the
/// client's socket (the echo server's is only that; a chat member has more).
pub(crate) trait Client: Send + Sync + 'static {
    fn fd(&self) -> &OwnedFd;
}

impl Client for OwnedFd {
    fn fd(&self) -> &OwnedFd {
        self
    }
}

/// The clients being served, each shared by its thread and this table (so that stop can
/// shut them down, and the chat room can write to every member; the fd closes when
/// every holder has let go), and a condition the main thread waits on while it cannot
/// accept: a client's thread ending frees an fd. Its mutex is the book's `mutx`.
pub(crate) struct Live<C> {
    table: Mutex<HashMap<u64, Arc<C>>>,
    left: Condvar,
}

impl<C> Default for Live<C> {
    fn default() -> Self {
        Live {
            table: Mutex::default(),
            left: Condvar::new(),
        }
    }
}

impl<C> Live<C> {
    /// The table, even if a thread panicked while holding its lock.
    fn locked(&self) -> MutexGuard<'_, HashMap<u64, Arc<C>>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn insert(&self, id: u64, client: Arc<C>) {
        self.locked().insert(id, client);
    }

    /// Forgets a client by its identity, and wakes the main thread if it waits for an
    /// fd.
    fn remove(&self, id: u64) -> Option<Arc<C>> {
        let client = self.locked().remove(&id);
        self.left.notify_all();
        client
    }

    /// Every client now, copied under the lock (so that nobody holds it while writing).
    pub(crate) fn snapshot(&self) -> Vec<Arc<C>> {
        self.locked().values().cloned().collect()
    }

    /// Waits until a client leaves or `timeout` passes.
    fn wait_for_a_leaver(&self, timeout: std::time::Duration) {
        let table = self.locked();
        let count = table.len();
        let _ = self
            .left
            .wait_timeout_while(table, timeout, |t| t.len() >= count);
    }
}

/// The main thread of a thread-per-client server, the echo server's and the chat
/// room's alike: socket, bind, listen, then accept each client, make it what the server
/// keeps of it (`admit`), and give it a thread that runs `serve` until the client
/// leaves. At stop (SIGINT, SIGTERM) every client's socket is shut down, so that each
/// thread's read() returns 0, and every thread is joined.
fn thread_per_client<C: Client>(
    opts: &ServerOpts,
    live: Arc<Live<C>>,
    admit: impl Fn(OwnedFd, SocketAddr) -> anyhow::Result<C>,
    serve: impl Fn(&Live<C>, &C) -> Result<(), String> + Send + Sync + 'static,
) -> anyhow::Result<()> {
    let stop = StopSignals::install()?;
    // A client gone before its reply was written: EPIPE, not a SIGPIPE that kills us.
    ignore_sigpipe()?;
    // 1. socket()  2. bind()  3. listen()
    let listener = tcp_socket(&opts.addr())?;
    bind(&listener, opts.addr())?;
    listen(&listener, opts.backlog)?;
    workbook::announce("listening on", getsockname(&listener)?)?;
    let serve = Arc::new(serve);
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
        //    client threads block those signals, so they are delivered here.
        let (fd, peer) = match accept(&listener) {
            Ok(accepted) => accepted,
            Err(e) if e.is_interrupted() || e.errno == Errno::ECONNABORTED => continue,
            Err(e) if pause.out_of_descriptors(&e) => continue,
            Err(e) => return Err(e.into()),
        };
        pause.accepted();
        let client = Arc::new(admit(fd, peer)?);
        let id = next_id;
        next_id += 1;
        live.insert(id, client.clone());
        workbook::log_line!("connected client: {peer}");
        // 5. A thread for this client (pthread_create). It may not be had
        //    (RLIMIT_NPROC, memory for its stack): then that one client is closed, and
        //    the others go on.
        let (table, serve) = (live.clone(), serve.clone());
        let spawned = std::thread::Builder::new().spawn(move || {
            let _ = block_stop_signals_in_this_thread();
            if let Err(e) = serve(&table, &client) {
                workbook::log_error!("error: client {peer}: {e}");
            }
            // 6. The client leaves the table, by its identity.
            table.remove(id);
            workbook::log_line!("closed client: {peer}");
        });
        match spawned {
            Ok(thread) => threads.push(thread),
            Err(e) => {
                workbook::log_error!("error: client {peer}: no thread for it ({e}): closed it");
                live.remove(id);
            }
        }
        // Forget the threads that have finished, so the list does not grow forever.
        threads.retain(|t| !t.is_finished());
    }
    // Stop: wake every client's thread (its read() returns 0), then join them all.
    for client in live.snapshot() {
        let _ = shutdown(client.fd(), Shutdown::Both);
    }
    for thread in threads {
        let _ = thread.join();
    }
    close(listener)?;
    Ok(())
}

/// The thread-per-client echo server.
pub fn echo_server(opts: &ServerOpts) -> anyhow::Result<()> {
    thread_per_client(
        opts,
        Arc::default(),
        |fd, _| Ok(fd),
        |_, client: &OwnedFd| echo(client).map_err(|e| e.to_string()),
    )
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
