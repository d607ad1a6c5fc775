//! # Chapter 12: I/O multiplexing with select() (IO 멀티플렉싱)
//!
//! One process, one thread, many clients: select() waits until *any* of a set of
//! descriptors is ready, and the server handles whichever are. No fork(), no threads; the
//! cost is that the server must never block on one client. Every client socket is
//! non-blocking, and output that a client is not reading yet waits in a bounded outbox.
//!
//! Subcommands: `echo-server <port>` (the book's echo_selectserv), `chat-server <port>`
//! (the workbook's chat room: every line to everyone), `chat-client <ip> <port> <name>`
//! (select() over standard input and the socket). No subcommand: the chat room with three
//! members.
//!
//! System calls: `socket`, `bind`, `listen`, `select` (rebuilt each loop, retried on
//! EINTR: Linux never restarts it), `accept`, `fcntl(O_NONBLOCK)`, `read`, `write`,
//! `close`; `pipe2` and `sigaction` for the stop pipe.
//!
//! What the book's C gets wrong: echo_selectserv writes with a blocking write(): one
//! client that stops reading blocks the whole server. It has no line framing, so a chat
//! line split across TCP segments is relayed in pieces. The book's chat server (threads)
//! removes the wrong client when one leaves. Ours frames by newline with a length limit,
//! never blocks (a member over its outbox limit is disconnected with a log line), and
//! removes exactly the member that left. The book's FD_SET() of an fd of 1,024 or more
//! writes past the fd_set; ours refuses that connection (select() cannot watch it) and
//! serves the others. Out of fds, it stops watching the listening socket instead of
//! spinning on it (syscalls::AcceptPause).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use anyhow::bail;
use clap::{Parser, Subcommand};
use syscalls::multiplex::{FD_SETSIZE, select, set_nonblocking};
use syscalls::{
    AcceptPause, Errno, Outbox, StopPipe, accept, bind, close, connect, getsockname,
    ignore_sigpipe, listen, read, tcp_socket, write_all,
};
use workbook::{ClientOpts, ServerOpts, TraceOpt, WireOpt};

const BUF_SIZE: usize = 4096;

/// The longest chat line accepted; a longer one disconnects its sender.
pub const MAX_LINE: usize = 4096;

/// How much may wait for one member (or echo client) before the server stops feeding
/// it: the echo server stops reading from it, the chat room disconnects it.
pub const OUTBOX_LIMIT: usize = 256 * 1024;

/// Chapter 12: select() multiplexing, an echo server and a chat room.
/// With no subcommand, runs a demo: the chat room with three members.
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
    /// Echo server: one process, one thread, select() over every client (echo_selectserv)
    EchoServer(ServerOpts),
    /// Chat room: each line from a member goes to every member, sender included
    ChatServer(ServerOpts),
    /// Chat client: sends `[NAME] line` for each line typed, prints what the room sends
    ChatClient {
        #[command(flatten)]
        opts: ClientOpts,
        /// Your name in the room
        name: String,
    },
}

/// Runs the subcommand, or the demo when there is none.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    cli.trace.apply();
    match cli.command {
        Some(Role::EchoServer(opts)) => serve(&opts, Mode::Echo),
        Some(Role::ChatServer(opts)) => serve(&opts, Mode::Chat),
        Some(Role::ChatClient { opts, name }) => chat_client(opts.addr()?, &name),
        None => workbook::demo::run(&cli.wire, demo),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Echo,
    Chat,
}

/// One connected client.
struct Client {
    fd: OwnedFd,
    peer: SocketAddr,
    /// Bytes of a chat line not yet ended by a newline.
    partial: Vec<u8>,
    outbox: Outbox,
    /// Echo: the client has half-closed (read returned 0). It is closed once its outbox
    /// is empty: flush before close, or the end of its echo is lost.
    read_closed: bool,
}

/// The select() server, in echo or chat mode.
fn serve(opts: &ServerOpts, mode: Mode) -> anyhow::Result<()> {
    let stop = StopPipe::install()?;
    ignore_sigpipe()?;
    // 1. socket()  2. bind()  3. listen()
    let listener = tcp_socket(&opts.addr())?;
    bind(&listener, opts.addr())?;
    listen(&listener, opts.backlog)?;
    set_nonblocking(&listener)?;
    workbook::announce("listening on", getsockname(&listener)?)?;
    let mut clients: BTreeMap<RawFd, Client> = BTreeMap::new();
    let mut pause = AcceptPause::default();
    // Refusing connections whose fd select() cannot watch: one log line per run of them.
    let mut past_fd_setsize = false;
    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        // The sets are rebuilt every time: select() overwrites them with its answer. An
        // echo client whose outbox is full is not read from until it reads (backpressure).
        // The listening socket is left out while accepting is paused for want of fds:
        // its waiting connection keeps it readable, and select() would return at once.
        let mut want_read = vec![stop.fd()];
        if !pause.is_paused() {
            want_read.push(listener.as_fd());
        }
        let mut want_write = Vec::new();
        for client in clients.values() {
            if !client.read_closed && (mode == Mode::Chat || !client.outbox.is_full()) {
                want_read.push(client.fd.as_fd());
            }
            if !client.outbox.is_empty() {
                want_write.push(client.fd.as_fd());
            }
        }
        let (readable, _writable) = match select(&want_read, &want_write, pause.timeout()) {
            Ok(ready) => ready,
            // A signal: Linux never restarts select(). Go round (the stop pipe decides).
            Err(e) if e.is_interrupted() => continue,
            Err(e) => return Err(e.into()),
        };
        if readable.contains(&stop.fd().as_raw_fd()) {
            break;
        }
        if readable.contains(&listener.as_raw_fd()) {
            accept_one(&listener, &mut clients, &mut pause, &mut past_fd_setsize)?;
        }
        let mut dropped: Vec<(RawFd, String)> = Vec::new();
        for fd in &readable {
            let Some(client) = clients.get_mut(fd) else {
                continue;
            };
            let lines = match read_from(client, mode, &mut buf) {
                Ok(lines) => lines,
                Err(why) => {
                    dropped.push((*fd, why));
                    continue;
                }
            };
            for line in lines {
                for (other, client) in clients.iter_mut() {
                    if let Err(full) = client.outbox.push(&line) {
                        dropped.push((*other, full.to_string()));
                    }
                }
            }
        }
        // Write what can be written now, to everyone with something waiting: a
        // non-blocking write takes what fits and says EAGAIN for the rest.
        for (fd, client) in clients.iter_mut() {
            if client.outbox.is_empty() {
                continue;
            }
            if let Err(e) = client.outbox.flush(&client.fd) {
                dropped.push((*fd, e.to_string()));
            }
        }
        // A client that half-closed is closed once all its echo is out.
        for (fd, client) in &clients {
            if client.read_closed && client.outbox.is_empty() {
                dropped.push((*fd, String::new()));
            }
        }
        for (fd, why) in dropped {
            if let Some(client) = clients.remove(&fd) {
                if !why.is_empty() {
                    workbook::log_error!("client {} (fd {fd}): {why}; disconnected", client.peer);
                }
                close(client.fd)?;
                workbook::log_line!("closed client: {fd}");
                pause.descriptor_freed();
            }
        }
    }
    for (_, client) in std::mem::take(&mut clients) {
        close(client.fd)?;
    }
    close(listener)?;
    Ok(())
}

fn accept_one(
    listener: &OwnedFd,
    clients: &mut BTreeMap<RawFd, Client>,
    pause: &mut AcceptPause,
    past_fd_setsize: &mut bool,
) -> anyhow::Result<()> {
    match accept(listener) {
        Ok((fd, peer)) => {
            pause.accepted();
            let raw = fd.as_raw_fd();
            // An fd select() cannot watch: putting it in an fd_set would write past the
            // set's end. Refuse the connection (the client reads end of stream) and go on
            // serving the others; it fits again once a lower fd is free.
            if raw as usize >= FD_SETSIZE {
                if !*past_fd_setsize {
                    *past_fd_setsize = true;
                    workbook::log_error!(
                        "error: client {peer} got fd {raw}, and select() can watch fds below \
                         FD_SETSIZE ({FD_SETSIZE}) only: closed it, as every connection until a \
                         client leaves (epoll has no such limit: ch17)"
                    );
                }
                close(fd)?;
                return Ok(());
            }
            *past_fd_setsize = false;
            set_nonblocking(&fd)?;
            workbook::log_line!("connected client: {raw}");
            clients.insert(
                raw,
                Client {
                    fd,
                    peer,
                    partial: Vec::new(),
                    outbox: Outbox::new(OUTBOX_LIMIT),
                    read_closed: false,
                },
            );
            Ok(())
        }
        // The client left before we accepted it, or another wakeup took it: not an error.
        Err(e) if matches!(e.errno, Errno::EAGAIN | Errno::ECONNABORTED | Errno::EINTR) => Ok(()),
        // Out of fds: the connection waits in the backlog; stop watching the listening
        // socket until a client leaves (AcceptPause says why, once).
        Err(e) if pause.out_of_descriptors(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Reads what a client sent. Echo: everything read is to be sent back to it. Chat: the
/// complete lines, each to be sent to everyone. Err: drop the client (with a reason, or
/// an empty one for a plain close).
fn read_from(client: &mut Client, mode: Mode, buf: &mut [u8]) -> Result<Vec<Vec<u8>>, String> {
    // Echo: read no more than the outbox can take, so the echo always fits.
    let room = match mode {
        Mode::Echo => client.outbox.room().min(buf.len()),
        Mode::Chat => buf.len(),
    };
    if room == 0 {
        // (Not asked about while full; a read of 0 bytes would look like end of stream.)
        return Ok(Vec::new());
    }
    let n = match read(&client.fd, &mut buf[..room]) {
        // End of stream. Echo: what is still in the outbox goes out first (flush before
        // close). Chat: the member has left, and is removed before the next broadcast.
        Ok(0) if mode == Mode::Echo => {
            client.read_closed = true;
            return Ok(Vec::new());
        }
        Ok(0) => return Err(String::new()),
        Ok(n) => n,
        Err(e) if e.errno == Errno::EAGAIN || e.is_interrupted() => return Ok(Vec::new()),
        Err(e) => return Err(e.to_string()),
    };
    match mode {
        Mode::Echo => {
            client
                .outbox
                .push(&buf[..n])
                .map_err(|full| full.to_string())?;
            Ok(Vec::new())
        }
        Mode::Chat => {
            client.partial.extend_from_slice(&buf[..n]);
            let mut lines = Vec::new();
            while let Some(end) = client.partial.iter().position(|b| *b == b'\n') {
                lines.push(client.partial.drain(..=end).collect());
            }
            if client.partial.len() > MAX_LINE {
                return Err(format!("a line longer than {MAX_LINE} bytes"));
            }
            Ok(lines)
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Client({})", self.peer)
    }
}

/// The chat client: select() over standard input and the socket.
pub fn chat_client(server: SocketAddr, name: &str) -> anyhow::Result<()> {
    let sock = tcp_socket(&server)?;
    connect(&sock, server)?;
    let stdin = std::io::stdin();
    let stdin_fd = stdin.as_fd();
    let mut typed: Vec<u8> = Vec::new();
    let mut received: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        let (readable, _) = match select(&[stdin_fd, sock.as_fd()], &[], None) {
            Ok(ready) => ready,
            Err(e) if e.is_interrupted() => continue,
            Err(e) => return Err(e.into()),
        };
        if readable.contains(&sock.as_raw_fd()) {
            let n = read(&sock, &mut buf)?;
            if n == 0 {
                bail!("the chat server {server} closed the connection");
            }
            received.extend_from_slice(&buf[..n]);
            while let Some(end) = received.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = received.drain(..=end).collect();
                print!("{}", String::from_utf8_lossy(&line));
            }
            std::io::Write::flush(&mut std::io::stdout())?;
        }
        if readable.contains(&stdin_fd.as_raw_fd()) {
            // Read the fd itself, not through a buffered reader: select() cannot see data
            // that a buffer has already taken.
            let n = read(stdin_fd, &mut buf)?;
            if n == 0 {
                break;
            }
            typed.extend_from_slice(&buf[..n]);
            while let Some(end) = typed.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = typed.drain(..=end).collect();
                let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
                if text == "q" || text == "Q" {
                    close(sock)?;
                    return Ok(());
                }
                write_all(&sock, format!("[{name}] {text}\n").as_bytes())?;
            }
            if typed.len() > MAX_LINE {
                bail!("input line longer than {MAX_LINE} bytes");
            }
        }
    }
    close(sock)?;
    Ok(())
}

/// The demo: a chat room and three members, each saying one thing.
fn demo() -> anyhow::Result<()> {
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
    // Every member hears all three lines, in whatever order the room relayed them.
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
    for mut member in members {
        member.type_line("q")?;
        let status = member.finish()?;
        if !status.success() {
            bail!("a member ended with {status}");
        }
    }
    server.stop()
}
