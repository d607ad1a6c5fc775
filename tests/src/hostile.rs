//! What the chapters' own tests of a hostile world share: a server started as a user's
//! shell would start it ([`crate::launch`]), but under lowered limits or with output
//! nobody reads, its port read from its first line, and everything it started ended when
//! the test is done.
//!
//! The chapters' `tests/hostile.rs` drive our binaries with it from outside, as a
//! client would, so that a test sees what a user sees: a reset connection, a server
//! that exited, a CPU spinning.

use std::fs::File;
use std::io::Read;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
        let mut argv: Vec<String> = match self.processes {
            Some(_) if nix::unistd::geteuid().is_root() => {
                let uid = fresh_uid().to_string();
                [
                    "setpriv",
                    "--reuid",
                    &uid,
                    "--regid",
                    &uid,
                    "--clear-groups",
                    "--",
                ]
                .map(String::from)
                .to_vec()
            }
            Some(_) => ["unshare", "--user", "--map-root-user", "--"]
                .map(String::from)
                .to_vec(),
            None => Vec::new(),
        };
        argv.push(self.program.to_string_lossy().into_owned());
        argv.extend(self.args.iter().cloned());
        let limits = crate::launch::Limits {
            open_files: self.open_files,
            processes: self.processes,
            netns: None,
        };
        let mut command = crate::launch::command(&argv, &limits);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // Its own process group, so that whatever it forked is ended with it.
            .process_group(0);
        if self.undrained {
            command.stderr(Stdio::piped());
        } else {
            command.stderr(File::create(&log).expect("create the server's stderr log"));
        }
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

    /// The CPU time it has used so far, user and system (/proc/PID/stat).
    pub fn cpu_time(&self) -> Duration {
        let ticks = crate::procfs::stat(self.pid()).map_or(0, |s| s.cpu_ticks);
        Duration::from_secs_f64(ticks as f64 / crate::procfs::ticks_per_second() as f64)
    }

    /// How many threads it has now (/proc/PID/task).
    pub fn thread_count(&self) -> usize {
        crate::procfs::thread_count(self.pid()).unwrap_or(0)
    }

    /// The pids of its children now, zombies included (/proc/*/stat).
    pub fn children(&self) -> Vec<i32> {
        crate::procfs::children(self.pid())
            .into_iter()
            .map(|c| c.pid)
            .collect()
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

/// True when `pid` has ended: gone from /proc, or a zombie nobody has reaped yet (its
/// new parent's business once its own parent died).
pub fn has_ended(pid: i32) -> bool {
    crate::procfs::stat(pid).is_none_or(|s| s.state == 'Z')
}

/// True when the server closed this connection without a word: a read returns end of
/// stream, or the reset that answers data sent to a closed socket.
#[track_caller]
pub fn was_refused(stream: &mut TcpStream) -> bool {
    match stream.read(&mut [0u8; 1]) {
        Ok(0) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        Ok(_) => false,
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

/// Connects `n` clients, one after another; each connection completes in the kernel
/// (the backlog queue) whether or not the server accepts it yet.
#[track_caller]
pub fn connect_clients(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|i| {
            let stream = TcpStream::connect_timeout(&addr, DEADLINE)
                .unwrap_or_else(|e| panic!("connect client {i} of {n} to {addr}: {e}"));
            stream
                .set_read_timeout(Some(DEADLINE))
                .expect("SO_RCVTIMEO");
            stream
        })
        .collect()
}

/// Sends one line on an open connection and reads its echo back, within [`DEADLINE`].
#[track_caller]
pub fn assert_echo_on(stream: &mut TcpStream, what: &str) {
    let line = format!("{what}\n");
    stream
        .write_all(line.as_bytes())
        .unwrap_or_else(|e| panic!("{what}: write: {e}"));
    let mut back = vec![0u8; line.len()];
    stream
        .read_exact(&mut back)
        .unwrap_or_else(|e| panic!("{what}: no echo within {DEADLINE:?}: {e}"));
    assert_eq!(back, line.as_bytes(), "{what}: the echo differs");
}

/// An echo server run out of descriptors (RLIMIT_NOFILE 32, 40 clients) must neither
/// spin nor exit: it logs the shortage once, uses (almost) no CPU while it waits, and
/// once clients leave, serves the ones that waited in the backlog queue, with no new
/// connection to wake it.
pub fn assert_waits_out_a_shortage_of_fds(program: &str, args: &[&str]) {
    let mut server = Launch::new(program, args).open_files(32).start();
    let mut clients = connect_clients(server.addr(), 40);
    if !wait_until(DEADLINE, || server.stderr_text().contains("EMFILE")) {
        panic!("no EMFILE reported; stderr: {}", server.stderr_text());
    }
    server.assert_running("accept() failed with EMFILE");
    // A measuring window, not a wait for anything: what the server does with a
    // connection it cannot accept, over half a second.
    let before = server.cpu_time();
    std::thread::sleep(Duration::from_millis(500));
    let used = server.cpu_time().saturating_sub(before);
    assert!(
        used < Duration::from_millis(100),
        "the server used {used:?} of CPU in 500 ms while out of fds: it spins"
    );
    let lines = server.stderr_text().lines().count();
    assert!(
        lines <= 3,
        "{lines} lines on stderr: the shortage is logged once per episode"
    );
    // Twenty clients leave; the twenty others, most of them still in the backlog
    // queue, must be served now.
    let waiting = clients.split_off(20);
    drop(clients);
    for (i, mut client) in waiting.into_iter().enumerate() {
        assert_echo_on(
            &mut client,
            &format!("client {} of the 20 that waited", i + 1),
        );
    }
    server.assert_running("clients left and the waiting ones were served");
}

/// A client sends `size` bytes, half-closes (shutdown(SHUT_WR)), then reads to end of
/// stream: the echo must be whole, `tries` times over. Data and FIN often arrive in one
/// wakeup; a server that closes at end of stream before its outbox is out cuts the echo.
pub fn assert_half_closed_echo_is_whole(addr: SocketAddr, size: usize, tries: usize) {
    let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    for attempt in 1..=tries {
        let mut stream = TcpStream::connect_timeout(&addr, DEADLINE).expect("connect");
        stream
            .set_read_timeout(Some(DEADLINE))
            .expect("SO_RCVTIMEO");
        stream.write_all(&data).expect("write the data");
        stream
            .shutdown(std::net::Shutdown::Write)
            .expect("shutdown(SHUT_WR)");
        let mut back = Vec::new();
        stream
            .read_to_end(&mut back)
            .unwrap_or_else(|e| panic!("try {attempt}: {} bytes back, then {e}", back.len()));
        assert!(
            back == data,
            "try {attempt} of {tries}: {} of {size} bytes came back before end of stream",
            back.len()
        );
    }
}

/// A client that reads late: it sends until its own non-blocking send stays at EAGAIN
/// (the buffers both ways are full and the server no longer reads it, its outbox at its
/// limit: the proof that the server is holding back), or until all is sent, and only
/// then starts reading, sending the rest as room appears. Every one of `total` bytes must
/// come back. Once it reads, the server empties a whole outbox at once and may read
/// again; a server that stopped a read loop at its limit and never looks again stalls.
pub fn assert_late_reader_gets_everything(addr: SocketAddr, total: usize) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use nix::sys::socket;
    use std::os::fd::AsFd;

    let data: Vec<u8> = (0..total).map(|i| (i * 7 % 251) as u8).collect();
    let fd = socket::socket(
        socket::AddressFamily::Inet,
        socket::SockType::Stream,
        socket::SockFlag::SOCK_NONBLOCK,
        None,
    )
    .expect("socket");
    let SocketAddr::V4(v4) = addr else {
        panic!("an IPv4 server address, not {addr}")
    };
    match socket::connect(fd.as_raw_fd(), &socket::SockaddrIn::from(v4)) {
        Ok(()) | Err(nix::errno::Errno::EINPROGRESS) => {}
        Err(e) => panic!("connect to {addr}: {e}"),
    }
    let mut stream = TcpStream::from(fd);
    let mut sent = 0;
    let mut received = Vec::with_capacity(total);
    let mut buf = vec![0u8; 65536];
    let mut reading = false;
    loop {
        // Send what the kernel takes now.
        while sent < total {
            match stream.write(&data[sent..(sent + 65536).min(total)]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("send after {sent} bytes: {e}"),
            }
        }
        if reading {
            loop {
                match stream.read(&mut buf) {
                    Ok(0) => panic!("end of stream after {} of {total} bytes", received.len()),
                    Ok(n) => received.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("read after {} bytes: {e}", received.len()),
                }
            }
            if received.len() == total {
                break;
            }
        }
        let mut events = PollFlags::empty();
        if reading {
            events |= PollFlags::POLLIN;
        }
        if sent < total {
            events |= PollFlags::POLLOUT;
        }
        let mut fds = [PollFd::new(stream.as_fd(), events)];
        // Before reading: the send "stays at EAGAIN" when the socket is not writable
        // again within 100 ms. After: no progress within the deadline is a stall.
        let wait = if reading {
            DEADLINE
        } else {
            Duration::from_millis(100)
        };
        let n = poll(&mut fds, PollTimeout::try_from(wait).expect("timeout")).expect("poll");
        if n == 0 {
            if !reading {
                reading = true;
                continue;
            }
            panic!(
                "stalled: sent {sent} of {total} bytes, {} came back, nothing more within {DEADLINE:?}",
                received.len()
            );
        }
    }
    assert!(received == data, "the echo differs from what was sent");
}

/// A server at RLIMIT_NPROC 3 (itself and room for two more processes or threads, one
/// per client): the first two clients are served; for the third none can be created,
/// and it alone is closed, with `logged` on stderr; the server goes on serving; once one
/// of the first two leaves and `freed` says its process or thread is gone, the next
/// client is served. Returns the server for more checks, or None (said on stderr) where
/// the limit cannot be set up ([`process_limit_unavailable`]).
pub fn assert_turns_away_one_client_at_the_process_limit(
    program: &str,
    args: &[&str],
    logged: &str,
    freed: impl Fn(&ServerProcess) -> bool,
) -> Option<ServerProcess> {
    if let Some(why) = process_limit_unavailable() {
        eprintln!("skipped: {why}");
        return None;
    }
    let mut server = Launch::new(program, args).processes(3).start();
    let mut first_two = connect_clients(server.addr(), 2);
    for client in &mut first_two {
        assert_echo_on(client, "one of the first two clients");
    }
    let mut third = connect_clients(server.addr(), 1);
    assert!(
        was_refused(&mut third[0]),
        "the third client, for whom no process or thread can be created, is closed"
    );
    server.assert_running("no process or thread could be created");
    assert!(
        server.stderr_text().contains(logged),
        "the failure is logged ({logged:?}); stderr: {}",
        server.stderr_text()
    );
    assert_echo_on(
        &mut first_two[0],
        "the first client, after the third was closed",
    );
    first_two.pop();
    assert!(
        wait_until(DEADLINE, || freed(&server)),
        "the leaving client's process or thread ended"
    );
    let mut fourth = connect_clients(server.addr(), 1);
    assert_echo_on(&mut fourth[0], "a client after one left");
    Some(server)
}
