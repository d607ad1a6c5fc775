//! The book's multi-threaded chat room, `chat_server.c` and `chat_clnt.c`.
//!
//! The server: the main thread accepts; each member gets a thread that reads its lines
//! and relays each whole line to every member, the sender too. The member list is
//! shared by all those threads, so a mutex guards it, as the book's `clnt_socks[]` and
//! `mutx`. What ours does differently, and why:
//!
//! * A leaving member is removed by its identity (`retain`). The book shifts the array
//!   with `while(i++<clnt_cnt-1) clnt_socks[i]=clnt_socks[i+1];`, whose `i++` runs
//!   before the first copy: the slot of the member who left is never overwritten, the
//!   next member's is, and that member silently stops hearing the room.
//! * The lock is held to copy the list, not across write(): a member who never reads
//!   fills its socket buffer and a write to it blocks, and the book holds `mutx` there,
//!   so every other thread waits for that one member. Ours writes outside the list's
//!   lock, each member's writes under a lock of that member's own (so two lines never
//!   interleave on its socket), and every line has a second to go into a member's
//!   socket (SO_SNDTIMEO, and a deadline for the whole line): a member who takes no more
//!   than that is cut off.
//! * Lines are relayed whole: each member's unfinished line waits in its own buffer
//!   until its newline comes (the book relays whatever one read() returned).
//!
//! The client: one thread reads the keyboard and sends `[NAME] line`, another reads the
//! socket and prints. End of input or `q` ends it; so does the room closing.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use syscalls::{
    Errno, Shutdown, SysError, connect, read, set_send_timeout, shutdown, tcp_socket, write,
    write_all,
};
use workbook::ServerOpts;

use crate::{Client, Live, thread_per_client};

/// The longest line the room relays; a member who sends a longer one is cut off.
pub const MAX_LINE: usize = 4096;

/// How long a line may take to go into one member's socket before the member is cut
/// off. Meanwhile the member's sender waits: a blocked write blocks the thread that
/// makes it. SO_SNDTIMEO bounds each write() call; see [`write_line`] for why the line
/// has a deadline of its own as well.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(1);

/// One member of the room, shared by its own thread and every thread that relays to it.
pub(crate) struct Member {
    peer: SocketAddr,
    fd: OwnedFd,
    /// Held while a line is written to this member, so two lines never interleave.
    writing: Mutex<()>,
    /// Set when a write to it failed: it is being cut off, nobody writes to it again.
    cut: AtomicBool,
}

impl Client for Member {
    fn fd(&self) -> &OwnedFd {
        &self.fd
    }
}

/// Writes all of `line` to `member` within [`SEND_TIMEOUT`], or says why not.
///
/// SO_SNDTIMEO makes one write() give up after that long without room, but a member that
/// does not read still takes a few bytes now and then (its kernel squeezes its receive
/// queue to open the window a little), and each write() that moved a few bytes starts
/// the timeout again: with SO_SNDTIMEO alone the room waited on such a member for good.
/// So the line as a whole has the deadline too.
fn write_line(member: &Member, line: &[u8]) -> Result<(), String> {
    let started = Instant::now();
    let mut rest = line;
    while !rest.is_empty() {
        if started.elapsed() >= SEND_TIMEOUT {
            return Err(format!(
                "it took {} bytes of a {}-byte line in {SEND_TIMEOUT:?}",
                line.len() - rest.len(),
                line.len()
            ));
        }
        match write(&member.fd, rest) {
            Ok(n) => rest = &rest[n..],
            Err(e) if e.is_interrupted() => continue,
            Err(e) if e.errno == Errno::EAGAIN => {
                return Err(format!("it took nothing for {SEND_TIMEOUT:?}"));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

/// Sends `line` to every member of `room`. The list is copied under its lock and the
/// writes are made outside it, so a slow member holds up only the lines written to it.
fn relay(room: &Live<Member>, line: &[u8]) {
    for member in room.snapshot() {
        if member.cut.load(Ordering::SeqCst) {
            continue;
        }
        let _turn = member.writing.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(why) = write_line(&member, line) {
            // It does not read, or it is gone (EPIPE, ECONNRESET): cut it off. Its own
            // thread's read() then returns 0, and it leaves the room.
            member.cut.store(true, Ordering::SeqCst);
            workbook::log_error!("error: client {}: cut off: {why}", member.peer);
            let _ = shutdown(&member.fd, Shutdown::Both);
        }
    }
}

/// One member's thread: reads its lines and relays each whole one.
fn serve(room: &Live<Member>, member: &Member) -> Result<(), String> {
    let mut buf = vec![0u8; 4096];
    let mut partial: Vec<u8> = Vec::new();
    loop {
        let n = match read(&member.fd, &mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.is_interrupted() => continue,
            Err(e) => return Err(e.to_string()),
        };
        partial.extend_from_slice(&buf[..n]);
        while let Some(end) = partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = partial.drain(..=end).collect();
            relay(room, &line);
        }
        if partial.len() > MAX_LINE {
            return Err(format!("a line longer than {MAX_LINE} bytes"));
        }
    }
}

/// The chat server: the main thread accepts, a thread per member (see
/// `thread_per_client`); the member list is its table, under its mutex.
pub fn chat_server(opts: &ServerOpts) -> anyhow::Result<()> {
    thread_per_client(
        opts,
        Arc::default(),
        |fd, peer| {
            // setsockopt(SO_SNDTIMEO): no write to this member waits forever.
            set_send_timeout(&fd, SEND_TIMEOUT)?;
            Ok(Member {
                peer,
                fd,
                writing: Mutex::new(()),
                cut: AtomicBool::new(false),
            })
        },
        serve,
    )
}

/// Set by the keyboard's thread when the member leaves (q, end of input): the end of
/// stream that follows is ours, not the room's.
static LEAVING: AtomicBool = AtomicBool::new(false);

/// Reads the room and prints each line, until the room closes; then ends the process,
/// whose main thread may be waiting at the keyboard.
fn print_the_room(sock: Arc<OwnedFd>, server: SocketAddr) {
    let mut buf = vec![0u8; 4096];
    let mut received: Vec<u8> = Vec::new();
    loop {
        let n = match read(&*sock, &mut buf) {
            Ok(0) if LEAVING.load(Ordering::SeqCst) => return,
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.is_interrupted() => continue,
            Err(_) if LEAVING.load(Ordering::SeqCst) => return,
            Err(e) => {
                workbook::log_error!("error: {e}");
                std::process::exit(1);
            }
        };
        received.extend_from_slice(&buf[..n]);
        while let Some(end) = received.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = received.drain(..=end).collect();
            print!("{}", String::from_utf8_lossy(&line));
        }
        let _ = std::io::Write::flush(&mut std::io::stdout());
    }
    workbook::log_error!("error: the chat server {server} closed the connection");
    std::process::exit(1);
}

/// The chat client: the keyboard in the main thread, the room in another.
pub fn chat_client(server: SocketAddr, name: &str) -> anyhow::Result<()> {
    // 1. socket()  2. connect()
    let sock = tcp_socket(&server)?;
    connect(&sock, server)?;
    let sock = Arc::new(sock);
    // 3. pthread_create(): the thread that prints what the room sends.
    let reader = sock.clone();
    std::thread::spawn(move || print_the_room(reader, server));
    // 4. This thread sends each typed line as `[NAME] line`.
    loop {
        let mut line = String::new();
        let n = match std::io::stdin().read_line(&mut line) {
            Ok(n) => n,
            Err(e) => bail!("read standard input: {e}"),
        };
        // End of input (Ctrl-D): the end, as q is. (The book's fgets() returns NULL
        // and its loop sends the last line again, forever.)
        if n == 0 {
            break;
        }
        let text = line.trim_end_matches(['\n', '\r']);
        if text == "q" || text == "Q" {
            break;
        }
        if text.len() > MAX_LINE {
            bail!("input line longer than {MAX_LINE} bytes");
        }
        if let Err(e) = write_all(&*sock, format!("[{name}] {text}\n").as_bytes()) {
            return Err(sent_error(e, server));
        }
    }
    // 5. shutdown(): leave the room; the process ends, and the printing thread with it.
    LEAVING.store(true, Ordering::SeqCst);
    shutdown(&*sock, Shutdown::Both)?;
    Ok(())
}

fn sent_error(e: SysError, server: SocketAddr) -> anyhow::Error {
    anyhow::Error::new(e).context(format!("send to the chat server {server}"))
}

/// The demo: a chat room and three members, each saying one thing; the first to join
/// leaves, and the other two still hear each other.
pub fn demo() -> anyhow::Result<()> {
    let server = workbook::demo::DemoServer::start(&["chat-server", "0"])?;
    let port = server.addr().port().to_string();
    let names = ["alice", "bob", "carol"];
    let mut members = Vec::new();
    for name in names {
        members.push(workbook::demo::start_member(
            name,
            &["chat-client", "127.0.0.1", &port, name],
        )?);
        server.wait_for("the member's arrival", |l| {
            l.starts_with("connected client:")
        })?;
    }
    for (member, name) in members.iter_mut().zip(names) {
        member.type_line(&format!("hello, I am {name}"))?;
    }
    for member in &members {
        let heard = std::cell::RefCell::new(std::collections::BTreeSet::new());
        member.wait_for("all three lines", |l| {
            let mut heard = heard.borrow_mut();
            if let Some(name) = names.iter().find(|n| l == format!("[{n}] hello, I am {n}")) {
                heard.insert(*name);
            }
            heard.len() == names.len()
        })?;
    }
    // The first to join leaves: in the book's room, bob (the next one) would go deaf.
    let mut members = members.into_iter();
    let mut alice = members.next().expect("three members");
    alice.type_line("q")?;
    if !alice.finish()?.success() {
        bail!("alice ended badly");
    }
    server.wait_for("alice's leaving", |l| l.starts_with("closed client:"))?;
    let mut rest: Vec<_> = members.collect();
    rest[1].type_line("bob, can you still hear me?")?;
    rest[0].wait_for("carol's line", |l| {
        l == "[carol] bob, can you still hear me?"
    })?;
    for mut member in rest {
        member.type_line("q")?;
        if !member.finish()?.success() {
            bail!("a member ended badly");
        }
    }
    server.stop()
}
