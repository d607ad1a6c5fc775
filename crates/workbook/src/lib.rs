//! # workbook: what every chapter binary shares
//!
//! The chapters teach system calls; this crate holds the parts that are the same in
//! every chapter and teach nothing, so that each chapter's `lib.rs` shows only its
//! lesson:
//!
//! * [`main`]: runs a chapter and turns its error into `error: <context chain>` and
//!   exit status 1 (clap itself exits 2 for a command line it rejects).
//! * [`ServerOpts`], [`ClientOpts`], [`TraceOpt`]: the book's positional arguments
//!   (`server <port>`, `client <ip> <port>`) and the shared flags (`--host`,
//!   `--backlog`, `--trace`).
//! * [`announce`]: the first line every server prints, `listening on 127.0.0.1:PORT`.
//! * [`prompt_line`]: the interactive clients' prompt-and-read, with a size limit.
//! * [`demo`]: the transcript a chapter prints when run without a subcommand: its own
//!   server as a child process, its own client as another, lines prefixed `[server]`
//!   and `[client]`, merged on one clock ([`timeline`]: how the merge works), and with
//!   [`WireOpt`] (`--wire`) the segments between them.
//! * [`diag`]: sockets asked of the kernel through NETLINK_SOCK_DIAG, as `ss` asks: one
//!   connection's state and queues, the sockets of a port, a listener's backlog.
//! * [`netns`]: private networks without root (a user namespace and network namespaces
//!   of our own), for ch14's multicast and broadcast and for the loss lab.

pub mod demo;
pub mod diag;
pub mod netns;
pub mod timeline;

use std::io::{BufRead, IsTerminal, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use anyhow::{Context, bail};

/// Runs a chapter's `run` and maps its result to the workbook's exit statuses:
/// 0 on success, 1 with `error: <context chain>` on stderr on failure.
pub fn main(run: impl FnOnce() -> anyhow::Result<()>) -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}

/// `--trace`: narrate each system call on stderr (also `WORKBOOK_TRACE=1`).
#[derive(clap::Args, Debug, Clone, Copy, Default)]
pub struct TraceOpt {
    /// Print each system call to stderr in strace style, with fd numbers and results
    /// (also turned on by WORKBOOK_TRACE=1)
    #[arg(long, global = true)]
    pub trace: bool,
}

impl TraceOpt {
    /// Turns narration on when `--trace` was given.
    pub fn apply(&self) {
        if self.trace {
            syscalls::trace::enable();
        }
    }
}

/// `--wire` and `--pcap FILE`: what the demo's calls put on the wire (TCP and UDP
/// chapters; the demo only, not the subcommands that run one side).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct WireOpt {
    /// Run the demo in a private network namespace (no root needed) and show each TCP
    /// segment and UDP datagram beside the calls that caused it (also WORKBOOK_WIRE=1)
    #[arg(long)]
    pub wire: bool,
    /// Also write what was captured to FILE as pcap, for `tcpdump -r FILE` or Wireshark
    /// (implies --wire)
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<std::path::PathBuf>,
}

impl WireOpt {
    /// Whether the wire was asked for: `--wire`, `--pcap`, or `WORKBOOK_WIRE=1`.
    pub fn requested(&self) -> bool {
        self.wire
            || self.pcap.is_some()
            || std::env::var("WORKBOOK_WIRE").is_ok_and(|v| !v.is_empty() && v != "0")
    }
}

/// The listen backlog when `--backlog` is not given. The book uses 5, which a burst of
/// clients overflows at once (the sixth connection's SYN is dropped and it waits a
/// second for the retransmission: ch09 shows it); 128 was Linux's SOMAXCONN for years.
pub const DEFAULT_BACKLOG: i32 = 128;

/// `server <port>` with the shared server flags.
#[derive(clap::Args, Debug, Clone)]
pub struct ServerOpts {
    /// Port to listen on; 0 asks the kernel for a free one (printed on the first line)
    pub port: u16,
    /// Address to bind; the default keeps the server reachable from this machine only
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub host: IpAddr,
    /// Length of the queue of completed connections that accept() has not taken yet
    #[arg(long, default_value_t = DEFAULT_BACKLOG, value_parser = clap::value_parser!(i32).range(0..=4096))]
    pub backlog: i32,
}

impl ServerOpts {
    /// The address to bind.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }
}

/// `client <ip> <port>`, as the book's clients take them.
#[derive(clap::Args, Debug, Clone)]
pub struct ClientOpts {
    /// Server's IP address, e.g. 127.0.0.1 (host names are looked up in ch08)
    pub ip: String,
    /// Server's port
    pub port: u16,
}

impl ClientOpts {
    /// The server's address, or a one-line error when `ip` is not an IP address.
    pub fn addr(&self) -> anyhow::Result<SocketAddr> {
        let ip: IpAddr = self.ip.parse().with_context(|| {
            format!(
                "invalid address {:?}: give an IPv4 or IPv6 address such as 127.0.0.1",
                self.ip
            )
        })?;
        Ok(SocketAddr::new(ip, self.port))
    }
}

/// Prints a server's first line, `listening on ADDR` (TCP) or `bound to ADDR` (UDP),
/// with the real port, and flushes it: the demo and the checker read it.
pub fn announce(what: &str, addr: SocketAddr) -> anyhow::Result<()> {
    // The log's routes are chosen now, while descriptors are free (syscalls::output).
    syscalls::output::prepare();
    let mut out = std::io::stdout().lock();
    writeln!(out, "{what} {addr}").context("write to stdout")?;
    out.flush().context("flush stdout")
}

/// Prints a long-running server's log line to stdout, whole, in one write(2) that never
/// waits (`syscalls::output`): when stdout is a pipe or terminal nobody reads, the line is
/// dropped and counted rather than the server stopped in write() with every client it
/// serves; and when nobody will read it ever again (`server 9190 | head -1`), it is
/// dropped instead of panicking, as `println!` would.
#[macro_export]
macro_rules! log_line {
    ($($arg:tt)*) => {
        $crate::log_to($crate::Stream::Stdout, &format!($($arg)*))
    };
}

/// Prints a server's error line to stderr like [`log_line!`]: whole, in one write(2),
/// never waiting. (`eprintln!` writes each piece of its format separately, stderr being
/// unbuffered: `error: client {peer}: {e}` took sixteen system calls, and a server that
/// logs every reset connection paid them per connection: the bench found it.)
#[macro_export]
macro_rules! log_error {
    ($($arg:tt)*) => {
        $crate::log_to($crate::Stream::Stderr, &format!($($arg)*))
    };
}

pub use syscalls::output::Stream;

/// What [`log_line!`] and [`log_error!`] call.
pub fn log_to(stream: Stream, line: &str) {
    syscalls::output::line(stream, line);
}

/// The longest line an interactive client accepts from its user.
pub const MAX_INPUT_LINE: usize = 64 * 1024;

/// Prints `prompt`, then reads one line of standard input without its line ending.
/// Returns `None` at end of input (Ctrl-D, or the end of a piped file): a client must
/// stop there, where the book's loops forever.
///
/// When standard input is not a terminal nothing echoes what was read, so the line is
/// printed after the prompt, as a terminal would show it; transcripts of piped runs
/// then read like interactive ones.
pub fn prompt_line(prompt: &str) -> anyhow::Result<Option<String>> {
    let mut out = std::io::stdout().lock();
    write!(out, "{prompt}").context("write prompt")?;
    out.flush().context("flush stdout")?;
    drop(out);

    let stdin = std::io::stdin();
    let mut line = Vec::new();
    let n = stdin
        .lock()
        .take(MAX_INPUT_LINE as u64 + 1)
        .read_until(b'\n', &mut line)
        .context("read standard input")?;
    if n == 0 {
        println!();
        return Ok(None);
    }
    if line.len() > MAX_INPUT_LINE {
        bail!("input line longer than {MAX_INPUT_LINE} bytes");
    }
    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        line.pop();
    }
    let line = String::from_utf8_lossy(&line).into_owned();
    if !stdin.is_terminal() {
        println!("{line}");
    }
    Ok(Some(line))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser, Debug)]
    struct Server {
        #[command(flatten)]
        opts: ServerOpts,
    }

    #[test]
    fn servers_bind_loopback_with_a_backlog_of_128_by_default() {
        let s = Server::try_parse_from(["x", "9190"]).expect("parse");
        assert_eq!(s.opts.addr(), "127.0.0.1:9190".parse().unwrap());
        assert_eq!(s.opts.backlog, 128);
        let s = Server::try_parse_from(["x", "0", "--host", "::1", "--backlog", "4096"])
            .expect("parse");
        assert_eq!(s.opts.addr(), "[::1]:0".parse().unwrap());
        assert!(Server::try_parse_from(["x", "0", "--backlog", "5000"]).is_err());
    }

    #[test]
    fn a_client_address_that_is_not_an_ip_is_a_one_line_error() {
        let opts = ClientOpts {
            ip: "localhost".into(),
            port: 9190,
        };
        let err = format!("{:#}", opts.addr().unwrap_err());
        assert!(
            err.starts_with("invalid address \"localhost\": give an IPv4 or IPv6 address"),
            "{err}"
        );
        assert!(!err.contains('\n'));
    }
}
