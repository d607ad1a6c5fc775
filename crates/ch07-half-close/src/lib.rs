//! # Chapter 7: half-close (우아한 종료), shutdown(SHUT_WR) and the last word
//!
//! The server sends a file and must tell the client where it ends: end of stream is the
//! only marker that needs no protocol. But close() would end *both* directions, and the
//! server still wants to hear the client's `Thank you`. shutdown(SHUT_WR) closes only
//! the sending side: the client's read() returns 0 (the file is complete), and the
//! connection stays open the other way for the last word.
//!
//! System calls: server `open` (the file, at start-up), `socket`, `bind`, `listen`,
//! `accept`, `read` (file) / `write` (socket) in chunks, `shutdown(SHUT_WR)`, `read`
//! until 0, `close`; client `socket`, `connect`, `read` until 0, `write`, `close`.
//!
//! Run it: `cargo run -p ch07-half-close` (the demo), or `... -- server 9190 [FILE]` and
//! `... -- client 127.0.0.1 9190 [OUT]`; `--trace` shows the shutdown and the reads.
//!
//! What the book's C gets wrong: file_server.c does not check fopen(), so a missing file
//! crashes it (NULL FILE*) when the first client arrives; ours opens the file before it
//! listens and exits 1 with the reason, as it does for a directory or a FIFO (fstat). A
//! file that cannot be sent whole later resets the connection rather than end it as if
//! complete, and our client never reports a file received when nothing came. It prints the client's message with `%s` from a
//! buffer it never terminated; ours prints exactly the bytes received, up to the NUL the
//! book's client sends.

use std::fs::File;
use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use syscalls::{
    FileKind, Shutdown, StopSignals, SysError, accept, bind, close, connect, fstat, getsockname,
    ignore_sigpipe, listen, open_read, read, set_linger, set_recv_timeout, shutdown, tcp_socket,
    write_all,
};
use workbook::{ClientOpts, ServerOpts, TraceOpt, WireOpt};

/// The client's last word, with the terminating NUL the book's client sends
/// (`write(sd, "Thank you", 10)`), so our programs and the book's interoperate.
pub const THANK_YOU: &[u8] = b"Thank you\0";

/// The most the server reads of the client's last word: every read has a limit.
const MAX_LAST_WORD: usize = 1024;

/// How long the server waits for the last word after its half-close.
const LAST_WORD_DEADLINE: Duration = Duration::from_secs(5);

/// What the server sends when no file is named: this chapter's own source, as the
/// book's file_server sends file_server.c.
const OWN_SOURCE: &[u8] = include_bytes!("lib.rs");

/// Chapter 7: half-close with shutdown(SHUT_WR), and the client's last word.
/// With no subcommand, runs a demo: a file sent, a half-close, `Thank you`.
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
    /// Sends FILE (default: this chapter's source) to each client, half-closes, prints the client's last word (file_server)
    Server {
        #[command(flatten)]
        opts: ServerOpts,
        /// The file to send; it is opened before the server listens
        file: Option<PathBuf>,
    },
    /// Receives the file into OUT (default receive.dat), then sends `Thank you` (file_client)
    Client {
        #[command(flatten)]
        opts: ClientOpts,
        /// Where to save what the server sends
        #[arg(default_value = "receive.dat")]
        out: PathBuf,
    },
}

/// Runs the subcommand, or the demo when there is none.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    cli.trace.apply();
    match cli.command {
        Some(Role::Server { opts, file }) => server(&opts, file.as_deref()),
        Some(Role::Client { opts, out }) => client(opts.addr()?, &out),
        None => workbook::demo::run(&cli.wire, demo),
    }
}

/// The file to send: opened per client from the path, or the built-in source.
enum Source<'a> {
    Path(&'a Path),
    Builtin,
}

/// Opens `path` and makes sure it is a regular file, whose end a read() reaches: not a
/// directory (read() fails with EISDIR), not a FIFO or a device (read() may wait for a
/// writer for ever). Opened with O_NONBLOCK so that the open itself cannot wait (a FIFO
/// with no writer would hold it). Returns the fd and the file's size now.
fn open_regular(path: &Path) -> anyhow::Result<(OwnedFd, u64)> {
    let file = open_read(path)?;
    let st = fstat(&file)?;
    if st.kind != FileKind::Regular {
        close(file)?;
        bail!(
            "{} is {}, not a regular file: the server sends a regular file",
            path.display(),
            st.kind
        );
    }
    Ok((file, st.size))
}

/// Why sending stopped before the whole file was sent.
#[derive(Debug)]
enum SendError {
    /// The file could not be read to its end: gone, changed or unreadable.
    File(String),
    /// The client: reset, or a signal.
    Socket(SysError),
}

/// Sends the whole source in chunks.
fn send_file(client: &OwnedFd, source: &Source) -> Result<usize, SendError> {
    match source {
        Source::Builtin => {
            write_all(client, OWN_SOURCE).map_err(SendError::Socket)?;
            Ok(OWN_SOURCE.len())
        }
        Source::Path(path) => {
            // Opened again for each client: the file may have changed, or gone, since
            // the server started.
            let (file, size) = open_regular(path).map_err(|e| SendError::File(format!("{e:#}")))?;
            let mut buf = vec![0u8; 64 * 1024];
            let mut sent = 0;
            loop {
                let n = read(&file, &mut buf).map_err(|e| SendError::File(e.to_string()))?;
                if n == 0 {
                    break;
                }
                write_all(client, &buf[..n]).map_err(SendError::Socket)?;
                sent += n;
            }
            close(file).map_err(|e| SendError::File(e.to_string()))?;
            // A file cut shorter while we read it ends early: not the file it was.
            if (sent as u64) < size {
                return Err(SendError::File(format!(
                    "{} shrank from {size} to {sent} bytes while it was sent",
                    path.display()
                )));
            }
            Ok(sent)
        }
    }
}

/// The last word, as text: the bytes received up to the first NUL, never past them.
pub fn last_word(received: &[u8]) -> String {
    let text = received.split(|b| *b == 0).next().unwrap_or_default();
    String::from_utf8_lossy(text).into_owned()
}

/// After the half-close: read the client's message until it closes, within limits.
fn read_last_word(client: &OwnedFd) -> Result<Vec<u8>, SysError> {
    set_recv_timeout(client, LAST_WORD_DEADLINE)?;
    let mut received = Vec::new();
    let mut buf = [0u8; 256];
    while received.len() < MAX_LAST_WORD {
        let n = read(client, &mut buf)?;
        if n == 0 {
            break;
        }
        received.extend_from_slice(&buf[..n]);
    }
    Ok(received)
}

/// The file server: file, half-close, last word; one client after another.
pub fn server(opts: &ServerOpts, file: Option<&Path>) -> anyhow::Result<()> {
    // Open the file before listening: a missing file, or one that is not a regular file,
    // is an error now, not a crash or a hang when the first client arrives (the book's
    // server).
    let source = match file {
        Some(path) => {
            close(open_regular(path)?.0)?;
            Source::Path(path)
        }
        None => Source::Builtin,
    };
    let stop = StopSignals::install()?;
    ignore_sigpipe()?;
    // 1. socket()  2. bind()  3. listen()
    let listener = tcp_socket(&opts.addr())?;
    bind(&listener, opts.addr())?;
    listen(&listener, opts.backlog)?;
    workbook::announce("listening on", getsockname(&listener)?)?;
    while !stop.requested() {
        // 4. accept()
        let (client, peer) = match accept(&listener) {
            Ok(accepted) => accepted,
            Err(e) if e.is_interrupted() => continue,
            Err(e) => return Err(e.into()),
        };
        match serve(&client, &source) {
            Ok(word) => workbook::log_line!("Message from client: {}", last_word(&word)),
            Err(SendError::Socket(e)) if e.is_interrupted() => {}
            Err(SendError::Socket(e)) => workbook::log_error!("error: client {peer}: {e}"),
            // The file could not be sent whole. A FIN would tell the client "that was
            // the whole file"; a reset (SO_LINGER 0, then close) tells it the truth.
            Err(SendError::File(why)) => {
                workbook::log_error!("error: client {peer}: {why}; reset the connection");
                set_linger(&client, Some(Duration::ZERO))?;
            }
        }
        close(client)?;
    }
    close(listener)?;
    Ok(())
}

fn serve(client: &OwnedFd, source: &Source) -> Result<Vec<u8>, SendError> {
    send_file(client, source)?;
    // 5. shutdown(SHUT_WR): FIN goes out, the client reads end of stream; we can still read.
    shutdown(client, Shutdown::Write).map_err(SendError::Socket)?;
    read_last_word(client).map_err(SendError::Socket)
}

/// The file client: saves everything until end of stream, then says thank you.
pub fn client(server: SocketAddr, out: &Path) -> anyhow::Result<()> {
    let mut file = File::create(out).with_context(|| format!("create {}", out.display()))?;
    // 1. socket()  2. connect()
    let sock = tcp_socket(&server)?;
    connect(&sock, server)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut received = 0;
    loop {
        // 3. read() until 0: the server's shutdown(SHUT_WR) marks the end of the file.
        //    A reset instead (ECONNRESET) is the server saying it could not send it all.
        let n = read(&sock, &mut buf).with_context(|| {
            format!(
                "the server {server} broke off after {received} bytes: {} is incomplete",
                out.display()
            )
        })?;
        if n == 0 {
            break;
        }
        file.write_all(&buf[..n])
            .with_context(|| format!("write {}", out.display()))?;
        received += n;
    }
    file.flush()
        .with_context(|| format!("write {}", out.display()))?;
    // Nothing at all before end of stream: the protocol has no length to tell an empty
    // file from a server that failed before it sent anything, so we do not claim that
    // a file was received (and send no thanks for it).
    if received == 0 {
        bail!(
            "the server {server} closed the connection without sending anything: {} is empty \
             (an empty file and a server that failed look the same here)",
            out.display()
        );
    }
    println!("Received file data");
    // 4. The last word, on the connection that is still open in this direction.
    write_all(&sock, THANK_YOU)?;
    close(sock)?;
    Ok(())
}

/// The demo: the server sends its own source, the client saves it in a temporary
/// directory and thanks the server, which prints the thanks after its half-close.
fn demo() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("workbook-ch07-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let out = dir.join("receive.dat");
    let result = (|| {
        let server = workbook::demo::DemoServer::start(&["server", "0"])?;
        let port = server.addr().port().to_string();
        let out_arg = out.to_string_lossy().into_owned();
        let status =
            workbook::demo::run_client(&["client", "127.0.0.1", &port, &out_arg], &[], |_| true)?;
        if !status.success() {
            bail!("the demo client ended with {status}");
        }
        server.wait_for("the server's `Message from client`", |l| {
            l.starts_with("Message from client:")
        })?;
        server.stop()?;
        let saved = std::fs::read(&out).with_context(|| format!("read {}", out.display()))?;
        println!(
            "the client saved {} bytes; they are {} the server's",
            saved.len(),
            if saved == OWN_SOURCE {
                "identical to"
            } else {
                "NOT identical to"
            }
        );
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_word_stops_at_the_nul() {
        assert_eq!(last_word(b"Thank you\0garbage"), "Thank you");
        assert_eq!(last_word(b"Thank you"), "Thank you");
        assert_eq!(last_word(b""), "");
    }
}
