//! Client roles run under a pseudo-terminal, as a person runs them: on a pipe, C stdio
//! and Python buffer their output until exit and would look hung.
//!
//! The checker types on the terminal's master side and reads what the program prints.
//! Echo is turned off, so the output holds only what the program wrote; canonical mode
//! stays on, so Ctrl-D (VEOF) at the start of a line is end of input, as at a keyboard.

use std::io::Write;
use std::os::fd::{AsFd, FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::termios::{self, LocalFlags, SetArg};

use crate::supervise::{Spawned, Streams, Supervisor};

/// How much of a program's output is kept: the first 16 MiB.
const KEPT: usize = 16 * 1024 * 1024;

/// How long the reader goes on reading once told to stop.
const DRAIN: Duration = Duration::from_millis(100);

/// What the program printed so far, shared with the reader thread.
///
/// The terminal's master side is read only with `bytes` locked (after poll() says
/// something is there), by the reader thread or by [`TerminalProgram::output_now`]: so
/// bytes are appended in the order they were printed, whoever reads them.
#[derive(Debug)]
struct Output {
    bytes: Mutex<Vec<u8>>,
    grew: Condvar,
    master: OwnedFd,
}

impl Output {
    /// Reads what waits on the master side now, without waiting, into `bytes` (which the
    /// caller has locked). Returns false once nothing more can ever come (EIO: every
    /// slave side is closed).
    fn pull(&self, bytes: &mut Vec<u8>) -> bool {
        let mut buf = [0u8; 4096];
        loop {
            let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
            if poll(&mut fds, PollTimeout::ZERO).unwrap_or(0) == 0 {
                return true;
            }
            match nix::unistd::read(&self.master, &mut buf) {
                Ok(0) | Err(_) => return false,
                Ok(n) => {
                    // Every read has a limit: what a program prints past it is read and
                    // dropped (the book's echo_EPLTserv prints a line per wake-up), so
                    // that the program never blocks on a terminal nobody reads.
                    if bytes.len() < KEPT {
                        let room = KEPT - bytes.len();
                        bytes.extend_from_slice(&buf[..n.min(room)]);
                    }
                    self.grew.notify_all();
                }
            }
        }
    }
}

/// A program running on a pseudo-terminal.
#[derive(Debug)]
pub struct TerminalProgram {
    pub spawned: Spawned,
    master: std::fs::File,
    output: Arc<Output>,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
}

/// Opens a pseudo-terminal pair, both sides close-on-exec from the start, so that a
/// program spawned by a parallel check never inherits them.
fn open_terminal() -> anyhow::Result<(OwnedFd, OwnedFd)> {
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .context("posix_openpt")?;
    nix::pty::grantpt(&master).context("grantpt")?;
    nix::pty::unlockpt(&master).context("unlockpt")?;
    let name = nix::pty::ptsname_r(&master).context("ptsname")?;
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(&name)
        .with_context(|| format!("open {name}"))?;
    let slave = OwnedFd::from(slave);
    let mut attrs = termios::tcgetattr(&slave).context("tcgetattr")?;
    attrs.local_flags.remove(LocalFlags::ECHO);
    termios::tcsetattr(&slave, SetArg::TCSANOW, &attrs).context("tcsetattr")?;
    // SAFETY: posix_openpt returned an open fd that we own; OwnedFd takes it over.
    let master = unsafe { OwnedFd::from_raw_fd(master.into_raw_fd()) };
    Ok((master, slave))
}

impl TerminalProgram {
    /// Starts `argv` under `supervisor` with its stdin and stdout on a new terminal.
    pub fn spawn(
        supervisor: &mut Supervisor,
        argv: &[String],
        limits: &crate::launch::Limits,
    ) -> anyhow::Result<TerminalProgram> {
        let (master, slave) = open_terminal()?;
        let spawned = supervisor.spawn(argv, Streams::Terminal(slave), limits)?;
        // The supervisor keeps the terminal open until the program is gone, whenever
        // this handle is dropped.
        supervisor.hold(master.try_clone().context("dup terminal master")?);
        let output = Arc::new(Output {
            bytes: Mutex::new(Vec::new()),
            grew: Condvar::new(),
            master: master.try_clone().context("dup terminal master")?,
        });
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let output = output.clone();
            let stop = stop.clone();
            std::thread::spawn(move || read_until_stopped(&output, &stop))
        };
        Ok(TerminalProgram {
            spawned,
            master: std::fs::File::from(master),
            output,
            stop,
            reader: Some(reader),
        })
    }

    /// Types `text` at the keyboard (add `\n` to press Enter).
    pub fn type_text(&mut self, text: &str) -> anyhow::Result<()> {
        self.master
            .write_all(text.as_bytes())
            .context("type on the terminal")?;
        self.master.flush().context("type on the terminal")
    }

    /// A second handle on the keyboard, for typing from another thread while this one
    /// reads (a long input must not wait for the program to drain the terminal).
    pub fn keyboard(&self) -> anyhow::Result<std::fs::File> {
        self.master.try_clone().context("dup terminal master")
    }

    /// Presses Ctrl-D at the start of a line: the program's next read gets end of input.
    pub fn end_input(&mut self) -> anyhow::Result<()> {
        self.type_text("\x04")
    }

    /// Everything printed so far, as the reader thread has collected it.
    pub fn output(&self) -> Vec<u8> {
        self.output.bytes.lock().expect("output lock").clone()
    }

    /// Everything the program has written to its terminal up to this moment, including
    /// what the reader thread has not collected yet: for a check that must know what a
    /// program printed before the check acts again (it printed half a reply, then went
    /// to sleep).
    pub fn output_now(&self) -> Vec<u8> {
        let mut bytes = self.output.bytes.lock().expect("output lock");
        self.output.pull(&mut bytes);
        bytes.clone()
    }

    /// What was printed, as lines with `\r` and trailing white space removed (the book
    /// prints `"%s \n"`).
    pub fn lines(&self) -> Vec<String> {
        lines_of(&self.output())
    }

    /// Waits until some complete printed line (ended by a newline) satisfies `wanted`,
    /// up to `deadline`; returns the line, or None when the deadline passed. A line
    /// still being printed does not count: `wait...` is not yet `wait...\n`, and a
    /// program may still add to it.
    pub fn wait_for_line(
        &self,
        deadline: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let until = Instant::now() + deadline;
        let mut bytes = self.output.bytes.lock().expect("output lock");
        loop {
            let complete = &bytes[..bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1)];
            if let Some(line) = lines_of(complete).into_iter().find(|l| wanted(l)) {
                return Some(line);
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            bytes = self
                .output
                .grew
                .wait_timeout(bytes, left)
                .expect("output lock")
                .0;
        }
    }

    /// How many complete lines (ended by a newline) the program has printed.
    pub fn line_count(&self) -> usize {
        let bytes = self.output.bytes.lock().expect("output lock");
        bytes.iter().filter(|b| **b == b'\n').count()
    }

    /// Waits until more than `lines` complete lines have been printed, up to `deadline`.
    pub fn wait_for_more_lines(&self, lines: usize, deadline: Duration) -> bool {
        let until = Instant::now() + deadline;
        let mut bytes = self.output.bytes.lock().expect("output lock");
        loop {
            if bytes.iter().filter(|b| **b == b'\n').count() > lines {
                return true;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            bytes = self
                .output
                .grew
                .wait_timeout(bytes, left)
                .expect("output lock")
                .0;
        }
    }

    /// Stops the reader after the program is gone, keeping what it printed last.
    pub fn close(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

impl Drop for TerminalProgram {
    fn drop(&mut self) {
        self.close();
    }
}

/// Whether an output line shows `expected`: the line is `expected`, or it ends with
/// `expected` right after a prompt (text ending in `: `, `? ` or `> `). A client that
/// prints `Input message: ` and then, with no newline typed on the terminal, its reply
/// puts both on one line.
pub fn line_shows(line: &str, expected: &str) -> bool {
    line == expected
        || line.strip_suffix(expected).is_some_and(|before| {
            before.ends_with(": ") || before.ends_with("? ") || before.ends_with("> ")
        })
}

/// Splits output into lines, dropping `\r` (the terminal turns `\n` into `\r\n`) and
/// trailing white space.
pub fn lines_of(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .split('\n')
        .map(|l| l.replace('\r', "").trim_end().to_string())
        .collect()
}

/// Reads the master side until told to stop and nothing more is waiting. It does not
/// wait for EIO (all slave fds closed), because a program's own children may keep the
/// terminal open long after it exited.
///
/// Once told to stop it drains for at most [`DRAIN`]: a program that prints without
/// pause must not hold the check past its deadline.
fn read_until_stopped(output: &Output, stop: &AtomicBool) {
    let mut stopping_since: Option<Instant> = None;
    loop {
        if stop.load(Ordering::SeqCst) {
            let since = *stopping_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= DRAIN {
                return;
            }
        }
        let mut fds = [PollFd::new(output.master.as_fd(), PollFlags::POLLIN)];
        let ready = poll(&mut fds, PollTimeout::from(20u16)).unwrap_or(0);
        if ready == 0 {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            continue;
        }
        let mut bytes = output.bytes.lock().expect("output lock");
        if !output.pull(&mut bytes) {
            // EIO: every slave side is closed. Nothing more can come.
            return;
        }
    }
}
