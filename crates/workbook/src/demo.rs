//! The demo transcript: a chapter run without a subcommand starts its own server as a
//! child process (never a thread: the fd numbers it narrates must be the server's
//! own), reads the port from the server's first line, runs its own client as a second
//! child, and prints both sides' output, system calls included, prefixed `[server]`
//! and `[client]`.
//!
//! Each child writes stdout and stderr into one pipe, so that a side's narrated calls
//! (stderr) and its messages (stdout) keep their order.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How long any one step of a demo may take before the demo gives up.
pub const STEP_DEADLINE: Duration = Duration::from_secs(5);

/// Prints one transcript line, whole, with its side's prefix.
pub fn say(side: &str, line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "[{side}] {line}");
    let _ = out.flush();
}

/// A child of this chapter's own binary whose output is printed with a prefix and also
/// handed to the demo, line by line, so that the demo can wait for what it needs.
struct Side {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    printer: Option<JoinHandle<()>>,
}

impl Side {
    fn spawn(side: &'static str, args: &[&str]) -> anyhow::Result<Side> {
        Side::spawn_with(side, args, true, None)
    }

    /// Starts a side; `narrate` adds `--trace` and prints its lines with the prefix;
    /// `host` runs it on a host of a private network (ch14).
    fn spawn_with(
        side: &'static str,
        args: &[&str],
        narrate: bool,
        host: Option<&crate::netns::Host>,
    ) -> anyhow::Result<Side> {
        let exe = std::env::current_exe().context("find this program's own path")?;
        // O_CLOEXEC: the child must inherit only the copies dup2()ed onto its stdout and
        // stderr, or its first socket would not be fd 3.
        let (read_end, write_end) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe for the demo")?;
        let mut command = Command::new(&exe);
        command.args(args);
        if narrate {
            command.arg("--trace");
        }
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::from(write_end.try_clone().context("dup pipe")?))
            .stderr(Stdio::from(write_end));
        if let Some(host) = host {
            host.enter(&mut command);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("start {} {}", exe.display(), args.join(" ")))?;
        // The Command holds our copies of the pipe's write end; drop it so that the
        // pipe reaches end of file when the child exits.
        drop(command);
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::channel();
        let printer = std::thread::spawn(move || {
            for line in BufReader::new(File::from(read_end)).lines() {
                let Ok(line) = line else { break };
                if narrate {
                    say(side, &line);
                }
                let _ = tx.send(line);
            }
        });
        Ok(Side {
            child,
            stdin,
            lines,
            printer: Some(printer),
        })
    }

    /// Waits for a line that `wanted` accepts, up to [`STEP_DEADLINE`].
    fn wait_for(&self, what: &str, wanted: impl Fn(&str) -> bool) -> anyhow::Result<String> {
        let deadline = Instant::now() + STEP_DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if wanted(&line) => return Ok(line),
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout) => bail!("no {what} within {STEP_DEADLINE:?}"),
                Err(RecvTimeoutError::Disconnected) => bail!("the program ended before {what}"),
            }
        }
    }

    fn finish(&mut self) -> anyhow::Result<ExitStatus> {
        drop(self.stdin.take());
        let status = self.child.wait().context("wait for the demo's child")?;
        if let Some(printer) = self.printer.take() {
            let _ = printer.join();
        }
        Ok(status)
    }
}

impl Drop for Side {
    fn drop(&mut self) {
        // A demo that failed half-way must not leave its children running.
        if self.printer.is_some() {
            let _ = self.child.kill();
            let _ = self.finish();
        }
    }
}

/// The chapter's server, started as `<this binary> <args> --trace`.
pub struct DemoServer {
    side: Side,
    addr: SocketAddr,
}

impl DemoServer {
    /// Starts the server (`args` such as `["server", "0"]`) and waits for its first
    /// line, `listening on ADDR` or `bound to ADDR`, to learn its port.
    pub fn start(args: &[&str]) -> anyhow::Result<DemoServer> {
        DemoServer::start_as("server", args)
    }

    /// Like [`DemoServer::start`], with another prefix than `[server]`.
    pub fn start_as(side: &'static str, args: &[&str]) -> anyhow::Result<DemoServer> {
        DemoServer::start_with(side, args, true)
    }

    /// A server that neither narrates nor prints: for demos that measure time, where a
    /// transcript of every call would drown the figures.
    pub fn start_quiet(args: &[&str]) -> anyhow::Result<DemoServer> {
        DemoServer::start_with("server", args, false)
    }

    /// Like [`DemoServer::start_as`], on `host` of a private network (ch14's receivers).
    pub fn start_on(
        host: &crate::netns::Host,
        side: &'static str,
        args: &[&str],
    ) -> anyhow::Result<DemoServer> {
        DemoServer::start_side(Side::spawn_with(side, args, true, Some(host))?)
    }

    fn start_with(side: &'static str, args: &[&str], narrate: bool) -> anyhow::Result<DemoServer> {
        DemoServer::start_side(Side::spawn_with(side, args, narrate, None)?)
    }

    fn start_side(side: Side) -> anyhow::Result<DemoServer> {
        let line = side.wait_for("'listening on' line from the server", |line| {
            line.starts_with("listening on ") || line.starts_with("bound to ")
        })?;
        let addr = line
            .rsplit(' ')
            .next()
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| anyhow!("no address in the server's first line: {line:?}"))?;
        Ok(DemoServer { side, addr })
    }

    /// The server's process id.
    pub fn pid(&self) -> i32 {
        self.side.child.id() as i32
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits until the server prints a line that `wanted` accepts.
    pub fn wait_for(&self, what: &str, wanted: impl Fn(&str) -> bool) -> anyhow::Result<String> {
        self.side.wait_for(what, wanted)
    }

    /// Sends SIGTERM, as a user's Ctrl-C would, and waits for a clean exit (status 0).
    pub fn stop(mut self) -> anyhow::Result<()> {
        let pid = Pid::from_raw(self.side.child.id() as i32);
        kill(pid, Signal::SIGTERM).context("kill(SIGTERM) the demo server")?;
        let status = self.side.finish()?;
        if !status.success() {
            bail!("the demo server ended with {status}");
        }
        Ok(())
    }
}

/// Runs the chapter's client (`args` such as `["client", "127.0.0.1", "9190"]`) and
/// types `inputs` one line at a time, each after the client has printed a line that
/// `answered` accepts for the previous one, then closes its standard input (end of
/// input). Returns the client's exit status.
pub fn run_client(
    args: &[&str],
    inputs: &[&str],
    answered: impl Fn(&str) -> bool,
) -> anyhow::Result<ExitStatus> {
    run_side("client", args, inputs, answered)
}

/// Starts a side with all of `inputs` typed at once and its input then closed, and
/// returns without waiting: for demos where several clients run at the same time.
pub fn start_side(side: &'static str, args: &[&str], inputs: &[&str]) -> anyhow::Result<Member> {
    let mut member = start_member(side, args)?;
    for input in inputs {
        member.type_line(input)?;
    }
    drop(member.side.stdin.take());
    Ok(member)
}

/// A side that is typed into line by line while it runs (a chat member).
pub struct Member {
    side: Side,
}

impl Member {
    /// Types `line` and Enter.
    pub fn type_line(&mut self, line: &str) -> anyhow::Result<()> {
        let stdin = self.side.stdin.as_mut().context("the member's stdin")?;
        writeln!(stdin, "{line}").context("type into the member")?;
        stdin.flush().context("type into the member")
    }

    /// Waits for a line the member prints that `wanted` accepts.
    pub fn wait_for(&self, what: &str, wanted: impl Fn(&str) -> bool) -> anyhow::Result<String> {
        self.side.wait_for(what, wanted)
    }

    /// Closes its input and waits for it to end.
    pub fn finish(mut self) -> anyhow::Result<ExitStatus> {
        self.side.finish()
    }
}

/// Starts a side to be typed into while it runs.
pub fn start_member(side: &'static str, args: &[&str]) -> anyhow::Result<Member> {
    Ok(Member {
        side: Side::spawn(side, args)?,
    })
}

/// Runs a side on `host` of a private network with nothing typed, and waits for it to
/// end (ch14's senders). Returns its exit status.
pub fn run_side_on(
    host: &crate::netns::Host,
    side: &'static str,
    args: &[&str],
) -> anyhow::Result<ExitStatus> {
    Side::spawn_with(side, args, true, Some(host))?.finish()
}

/// Like [`run_client`], for a side with another name (`[fds]`, `[zombie]`, ...).
pub fn run_side(
    side: &'static str,
    args: &[&str],
    inputs: &[&str],
    answered: impl Fn(&str) -> bool,
) -> anyhow::Result<ExitStatus> {
    let mut side = Side::spawn(side, args)?;
    for (i, input) in inputs.iter().enumerate() {
        if i > 0 {
            side.wait_for("reply from the client", &answered)?;
        }
        let stdin = side.stdin.as_mut().context("client's stdin")?;
        writeln!(stdin, "{input}").context("type into the client")?;
        stdin.flush().context("type into the client")?;
    }
    side.finish()
}
