//! What the chapters' own tests of a hostile world share (feature `testing`, for their
//! dev-dependencies only): a server started as a user's shell would start it, but under
//! lowered limits or with output nobody reads, its port read from its first line, and
//! everything it started ended when the test is done.
//!
//! The chapters' `tests/hostile.rs` drive our binaries with it from outside, as a
//! client would, so that a test sees what a user sees: a reset connection, a server
//! that exited, a CPU spinning.

use std::fs::File;
use std::io::Read;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::resource::{Resource, setrlimit};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How long a test waits for anything a server should do at once: generous, so that a
/// busy 2-core machine never fails a correct server; a wrong one fails by the deadline.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Polls `done` until it is true or `deadline` has passed; true when it became true.
/// (Waiting for a condition, not sleeping for a guess: the pause between looks is only
/// there so the look does not spin.)
pub fn wait_until(deadline: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + deadline;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// How a server is to be started.
#[derive(Debug, Clone)]
pub struct Launch {
    program: PathBuf,
    args: Vec<String>,
    open_files: Option<u64>,
    processes: Option<u64>,
    undrained: bool,
}

impl Launch {
    /// `program args...`, e.g. `(env!("CARGO_BIN_EXE_ch12-select"), &["echo-server", "0"])`.
    pub fn new(program: &str, args: &[&str]) -> Launch {
        Launch {
            program: program.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            open_files: None,
            processes: None,
            undrained: false,
        }
    }

    /// RLIMIT_NOFILE, soft and hard: the server can open descriptors 0 to `n - 1`, and
    /// cannot raise the limit again.
    pub fn open_files(mut self, n: u64) -> Launch {
        self.open_files = Some(n);
        self
    }

    /// RLIMIT_NPROC, soft and hard, counted for a user of the server's own so that no
    /// other process counts against it: as root, whom the kernel never holds to the
    /// limit, the server runs as a fresh uid through `setpriv`; otherwise in a user
    /// namespace of its own (`unshare --user --map-root-user`). See
    /// [`process_limit_unavailable`].
    pub fn processes(mut self, n: u64) -> Launch {
        self.processes = Some(n);
        self
    }

    /// stdout and stderr into pipes of the smallest capacity (one page) that nobody
    /// reads after the first line: a terminal left scrolled back, a log collector that
    /// hung.
    pub fn undrained_output(mut self) -> Launch {
        self.undrained = true;
        self
    }

    /// Starts the server and waits for its first line, `listening on ADDR` or `bound to
    /// ADDR`. Panics, saying why, when it exits or stays silent instead.
    pub fn start(self) -> ServerProcess {
        let log = stderr_log_path();
        let mut command = match self.processes {
            Some(_) if nix::unistd::geteuid().is_root() => {
                let uid = fresh_uid().to_string();
                let mut c = Command::new("setpriv");
                c.args(["--reuid", &uid, "--regid", &uid, "--clear-groups", "--"])
                    .arg(&self.program);
                c
            }
            Some(_) => {
                let mut c = Command::new("unshare");
                c.args(["--user", "--map-root-user", "--"])
                    .arg(&self.program);
                c
            }
            None => Command::new(&self.program),
        };
        command
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // Its own process group, so that whatever it forked is ended with it.
            .process_group(0);
        if self.undrained {
            command.stderr(Stdio::piped());
        } else {
            command.stderr(File::create(&log).expect("create the server's stderr log"));
        }
        let (open_files, processes) = (self.open_files, self.processes);
        // SAFETY: between fork and exec the closure makes only setrlimit(2) calls, which
        // are async-signal-safe and allocate nothing.
        unsafe {
            command.pre_exec(move || {
                if let Some(n) = open_files {
                    setrlimit(Resource::RLIMIT_NOFILE, n, n)?;
                }
                if let Some(n) = processes {
                    setrlimit(Resource::RLIMIT_NPROC, n, n)?;
                }
                Ok(())
            })
        };
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("start {:?}: {e}", self.program));
        let mut stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take();
        if self.undrained {
            set_pipe_capacity(&stdout);
            if let Some(stderr) = &stderr {
                set_pipe_capacity(stderr);
            }
        }
        // The first line is read on a thread, so that a server that never prints it
        // fails the test at the deadline instead of hanging it.
        let (tx, rx) = mpsc::channel();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let undrained = self.undrained;
        let kept = lines.clone();
        std::thread::spawn(move || {
            let first = read_line(&mut stdout);
            if undrained {
                // Handed back to be held open and never read again: the server's writes
                // fill it, as they would fill a terminal nobody scrolls.
                let _ = tx.send((first, Some(stdout)));
                return;
            }
            let _ = tx.send((first, None));
            while let Some(line) = read_line(&mut stdout) {
                kept.lock().expect("stdout lines").push(line);
            }
        });
        let mut server = ServerProcess {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
            lines,
            _undrained: (None, stderr),
        };
        let first = match rx.recv_timeout(DEADLINE) {
            Ok((Some(line), stdout)) => {
                server._undrained.0 = stdout;
                line
            }
            Ok((None, _)) | Err(_) => {
                let status = server.child.try_wait().ok().flatten();
                panic!(
                    "{:?} {:?} printed no first line within {DEADLINE:?} (status {status:?}); stderr: {}",
                    self.program,
                    self.args,
                    server.stderr_text()
                );
            }
        };
        server.addr = first
            .rsplit(' ')
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in the first line {first:?}"));
        server
    }
}

/// Why [`Launch::processes`] cannot work here, if it cannot: the tool it needs is
/// missing. A test that needs it says so and passes over the check.
pub fn process_limit_unavailable() -> Option<String> {
    let tool = if nix::unistd::geteuid().is_root() {
        "setpriv"
    } else {
        "unshare"
    };
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    (!found).then(|| format!("{tool} (util-linux) is needed to limit a server's processes"))
}

/// A uid that no other process has, for one test's server: RLIMIT_NPROC counts every
/// process of the real uid, so a shared one (nobody) would count other tests' too.
fn fresh_uid() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    200_000 + (std::process::id() % 100_000) * 16 + NEXT.fetch_add(1, Ordering::Relaxed) % 16
}

fn stderr_log_path() -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    std::env::temp_dir().join(format!(
        "workbook-test-{}-{}.stderr",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Shrinks a pipe to one page (F_SETPIPE_SZ), so that a few lines fill it.
fn set_pipe_capacity(pipe: &impl std::os::fd::AsFd) {
    use nix::fcntl::{FcntlArg, fcntl};
    fcntl(pipe.as_fd(), FcntlArg::F_SETPIPE_SZ(4096)).expect("fcntl(F_SETPIPE_SZ)");
}

/// One line, read a byte at a time so that nothing after it is taken from the pipe.
fn read_line(stdout: &mut ChildStdout) -> Option<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match stdout.read(&mut byte) {
            Ok(1) if byte[0] == b'\n' => return Some(String::from_utf8_lossy(&line).into()),
            Ok(1) => line.push(byte[0]),
            _ => return (!line.is_empty()).then(|| String::from_utf8_lossy(&line).into()),
        }
    }
}

/// A server a test started. Dropping it ends the server's whole process group (SIGKILL)
/// and reaps the server: nothing outlives the test.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    lines: Arc<Mutex<Vec<String>>>,
    /// The read ends of an undrained stdout and stderr, held open and never read.
    _undrained: (Option<ChildStdout>, Option<ChildStderr>),
}

impl ServerProcess {
    /// The address from its first line.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its process id.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Whether it is still running (not exited, not a zombie waiting for us).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Panics, with its status and stderr, unless it is still running.
    #[track_caller]
    pub fn assert_running(&mut self, after: &str) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "the server ended ({status}) after {after}; its stderr: {}",
                self.stderr_text()
            );
        }
    }

    /// What it wrote to stderr so far (empty for an undrained one).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// The stdout lines after the first, so far (none for an undrained one).
    pub fn stdout_lines(&self) -> Vec<String> {
        self.lines.lock().expect("stdout lines").clone()
    }

    /// Sends `signal` to the server alone (not its group).
    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.pid()), signal).expect("kill the server");
    }

    /// SIGTERM, as Ctrl-C would, and its exit status once it has stopped, if it stopped
    /// within [`DEADLINE`].
    pub fn stop(&mut self) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        self.signal(Signal::SIGTERM);
        let mut status = None;
        wait_until(DEADLINE, || {
            status = self.child.try_wait().ok().flatten();
            status.is_some()
        });
        status
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(-self.pid()), Signal::SIGKILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Connects to `addr` and closes at once, `n` times: each connection is a line or two of
/// the server's log.
#[track_caller]
pub fn connect_and_close(addr: SocketAddr, n: usize) {
    for i in 0..n {
        TcpStream::connect_timeout(&addr, DEADLINE)
            .unwrap_or_else(|e| panic!("connection {i} of {n} to {addr}: {e}"));
    }
}

/// A client that sends `message` and reads until the same bytes are back; panics, saying
/// what came back, unless that happens within [`DEADLINE`].
#[track_caller]
pub fn assert_echoes(addr: SocketAddr, message: &[u8], after: &str) {
    let mut stream = TcpStream::connect_timeout(&addr, DEADLINE)
        .unwrap_or_else(|e| panic!("connect to {addr} after {after}: {e}"));
    stream
        .set_read_timeout(Some(DEADLINE))
        .expect("SO_RCVTIMEO");
    stream.write_all(message).expect("write the message");
    let mut back = vec![0u8; message.len()];
    let mut got = 0;
    while got < back.len() {
        match stream.read(&mut back[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => panic!(
                "after {after}, {got} of {} bytes came back within {DEADLINE:?}: {e}",
                message.len()
            ),
        }
    }
    assert_eq!(
        &back[..got],
        message,
        "after {after}, the echo differs (the server closed after {got} bytes)"
    );
}

/// A server started with [`Launch::undrained_output`] after 150 connections that opened
/// and closed at once: a line or two of its log each, ~40 bytes, several times what the
/// one-page pipes hold. A server that waits to log is stuck by then; the caller checks
/// that it still serves.
pub fn server_with_a_full_unread_log(program: &str, args: &[&str]) -> ServerProcess {
    let server = Launch::new(program, args).undrained_output().start();
    connect_and_close(server.addr(), 150);
    server
}
