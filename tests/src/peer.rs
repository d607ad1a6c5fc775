//! The checker's own peers: clients that talk to a server under test and servers that a
//! client under test talks to. They are the examiner, not the lesson, so they use
//! `std::net` and `socket2`: the examiner, not the lesson.
//!
//! Every wait has a deadline; nothing here sleeps to synchronise.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use socket2::{Domain, Socket, Type};

/// `--verbose`: a record of every byte the checker's peers send and receive, for one
/// check. Each check's context makes its own and hands it to the peers it creates, so
/// checks on parallel threads never mix their records.
#[derive(Debug, Clone, Default)]
pub struct Recorder(Option<std::sync::Arc<std::sync::Mutex<Vec<String>>>>);

impl Recorder {
    /// A recorder that records when `on`, and does nothing otherwise.
    pub fn new(on: bool) -> Recorder {
        Recorder(on.then(Default::default))
    }

    /// Records one exchange when recording is on.
    pub fn record(&self, direction: &str, peer: Option<SocketAddr>, bytes: &[u8]) {
        if let Some(lines) = &self.0 {
            let with = peer.map(|p| format!(" {p}")).unwrap_or_default();
            lines.lock().expect("transcript").push(format!(
                "{direction}{with} {} bytes: {}",
                bytes.len(),
                crate::report::escape(bytes, 4096)
            ));
        }
    }

    /// What was recorded, in order.
    pub fn take(&self) -> Vec<String> {
        self.0
            .as_ref()
            .map(|l| std::mem::take(&mut *l.lock().expect("transcript")))
            .unwrap_or_default()
    }
}

/// What came back when less came back than expected.
#[derive(Debug)]
pub struct Short {
    /// The bytes that did arrive.
    pub got: Vec<u8>,
    /// Why the rest did not: "end of stream", "no more bytes within 5s",
    /// "connection reset".
    pub why: String,
}

fn describe_io(e: &std::io::Error) -> String {
    match e.kind() {
        ErrorKind::ConnectionReset => "the connection was reset (ECONNRESET)".into(),
        ErrorKind::ConnectionRefused => "the connection was refused (ECONNREFUSED)".into(),
        ErrorKind::BrokenPipe => "the connection is closed (EPIPE)".into(),
        _ => e.to_string(),
    }
}

/// What one read brought.
enum Step {
    Data(usize),
    End,
    TimedOut,
    /// Nothing more can come: the program's state, read from /proc twice, says so.
    Stuck(String),
    Failed(String),
}

/// How often a read that waits looks at what the program under test is doing.
const LOOK_EVERY: Duration = Duration::from_millis(100);

/// How far apart two readings of "nothing can come" must be before a wait ends early.
const STUCK_FOR: Duration = Duration::from_millis(250);

/// A client connection of the checker's, with deadlines on every read.
#[derive(Debug)]
pub struct Conn {
    pub stream: TcpStream,
    recorder: Recorder,
    /// The program under test on the other end (the root of its process tree): a read
    /// that waits for it ends early, before its deadline, once /proc shows that nothing
    /// more can come ([`crate::observe::nothing_can_come`]).
    watch: Option<i32>,
}

impl Conn {
    /// Connects to `addr`.
    pub fn connect(
        addr: SocketAddr,
        deadline: Duration,
        recorder: &Recorder,
    ) -> Result<Conn, String> {
        TcpStream::connect_timeout(&addr, deadline)
            .map(|stream| Conn {
                stream,
                recorder: recorder.clone(),
                watch: None,
            })
            .map_err(|e| format!("connect to {addr}: {}", describe_io(&e)))
    }

    /// A connection the check made itself (with options std cannot set before connect).
    pub fn from_stream(stream: TcpStream, recorder: &Recorder) -> Conn {
        Conn {
            stream,
            recorder: recorder.clone(),
            watch: None,
        }
    }

    /// Watches the program whose process tree is rooted at `root` while reads wait: a
    /// wait then ends as soon as /proc shows that nothing more can come, with that
    /// reading as its reason, instead of at its deadline.
    pub fn watching(mut self, root: i32) -> Conn {
        self.watch = Some(root);
        self
    }

    /// Waits until the peer's program has read everything sent so far (seen in
    /// /proc/net/tcp), up to `deadline`. Returns false when it has not by then. This is
    /// how a check sends "one byte per read" for certain: the next byte goes only once
    /// the program has taken the last one.
    ///
    /// Consumed means: our kernel has sent everything (TCP_INFO's `tcpi_notsent_bytes`
    /// is 0; on loopback a sent segment is in the peer's receive queue when send()
    /// returns) and the peer's receive queue is empty. Waiting for the peer's ACK
    /// instead would wait out its delayed ACK, 40 ms a byte.
    pub fn wait_consumed(&self, deadline: Duration) -> bool {
        let (Ok(from), Ok(to)) = (self.stream.local_addr(), self.stream.peer_addr()) else {
            return false;
        };
        let until = Instant::now() + deadline;
        loop {
            if notsent_bytes(&self.stream) == Some(0)
                && crate::procfs::unread_at(from, to) == Some(0)
            {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Waits until process `pid` has accept()ed this connection (seen in /proc), up to
    /// `deadline`.
    pub fn wait_accepted(&self, pid: i32, deadline: Duration) -> bool {
        let (Ok(from), Ok(to)) = (self.stream.local_addr(), self.stream.peer_addr()) else {
            return false;
        };
        let until = Instant::now() + deadline;
        loop {
            if crate::procfs::holds_connection(pid, from, to) {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Sets TCP_NODELAY: each write goes out as its own segment.
    pub fn nodelay(&self) -> &Self {
        let _ = self.stream.set_nodelay(true);
        self
    }

    /// Writes all of `data`.
    pub fn send(&mut self, data: &[u8]) -> Result<(), String> {
        self.recorder
            .record("sent to", self.stream.peer_addr().ok(), data);
        self.stream
            .write_all(data)
            .map_err(|e| format!("send: {}", describe_io(&e)))
    }

    /// One read() of at most `buf.len()` bytes, waiting no later than `until`, or, when
    /// the program on the other end is watched, until two readings of /proc at least
    /// [`STUCK_FOR`] apart both say nothing more can come.
    fn read_step(&mut self, buf: &mut [u8], until: Instant) -> Step {
        let mut stuck_since: Option<Instant> = None;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Step::TimedOut;
            }
            let slice = if self.watch.is_some() {
                left.min(LOOK_EVERY)
            } else {
                left
            };
            let _ = self.stream.set_read_timeout(Some(slice));
            match self.stream.read(buf) {
                Ok(0) => {
                    self.recorder
                        .record("end of stream from", self.stream.peer_addr().ok(), &[]);
                    return Step::End;
                }
                Ok(n) => {
                    self.recorder
                        .record("received from", self.stream.peer_addr().ok(), &buf[..n]);
                    return Step::Data(n);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) =>
                {
                    let (Some(root), Ok(ours), Ok(theirs)) = (
                        self.watch,
                        self.stream.local_addr(),
                        self.stream.peer_addr(),
                    ) else {
                        continue;
                    };
                    match crate::observe::nothing_can_come(root, ours, theirs) {
                        None => stuck_since = None,
                        Some(reason) => {
                            let since = *stuck_since.get_or_insert_with(Instant::now);
                            if since.elapsed() >= STUCK_FOR {
                                return Step::Stuck(reason);
                            }
                        }
                    }
                }
                Err(e) => return Step::Failed(describe_io(&e)),
            }
        }
    }

    /// Reads until `n` bytes have arrived, or end of stream, an error, or `deadline`.
    pub fn recv_exact(&mut self, n: usize, deadline: Duration) -> Result<Vec<u8>, Short> {
        let until = Instant::now() + deadline;
        let mut got = Vec::with_capacity(n);
        let mut buf = vec![0u8; 64 * 1024];
        while got.len() < n {
            let want = (n - got.len()).min(buf.len());
            let why = match self.read_step(&mut buf[..want], until) {
                Step::Data(k) => {
                    got.extend_from_slice(&buf[..k]);
                    continue;
                }
                Step::End => "the server closed the connection (end of stream)".into(),
                Step::TimedOut => format!("not all of them came within {deadline:.1?}"),
                Step::Stuck(why) | Step::Failed(why) => why,
            };
            return Err(Short { got, why });
        }
        Ok(got)
    }

    /// Reads exactly `n` bytes for as long as they keep coming: gives up once none has
    /// come for `idle`, or at `cap` in all. A slow program that is making progress (a
    /// 2-byte buffer on a busy machine) is not cut off by a deadline for the whole.
    pub fn recv_exact_progressing(
        &mut self,
        n: usize,
        idle: Duration,
        cap: Duration,
    ) -> Result<Vec<u8>, Short> {
        let start = Instant::now();
        let mut last = start;
        let mut got = Vec::with_capacity(n);
        let mut buf = vec![0u8; 64 * 1024];
        while got.len() < n {
            let want = (n - got.len()).min(buf.len());
            let until = (last + idle).min(start + cap);
            let why = match self.read_step(&mut buf[..want], until) {
                Step::Data(k) => {
                    got.extend_from_slice(&buf[..k]);
                    last = Instant::now();
                    continue;
                }
                Step::End => "the server closed the connection (end of stream)".into(),
                Step::TimedOut if until >= start + cap => format!(
                    "{} bytes came in {cap:.1?}, still coming, but too slowly",
                    got.len()
                ),
                Step::TimedOut => format!("no more bytes came for {idle:.1?}"),
                Step::Stuck(why) | Step::Failed(why) => why,
            };
            return Err(Short { got, why });
        }
        Ok(got)
    }

    /// Reads until end of stream, at most `limit` bytes, within `deadline`.
    pub fn recv_to_end(&mut self, limit: usize, deadline: Duration) -> Result<Vec<u8>, Short> {
        let until = Instant::now() + deadline;
        let mut got = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            let why = match self.read_step(&mut buf, until) {
                Step::End => return Ok(got),
                Step::Data(k) => {
                    got.extend_from_slice(&buf[..k]);
                    if got.len() <= limit {
                        continue;
                    }
                    format!("more than {limit} bytes came")
                }
                Step::TimedOut => format!("the connection was still open after {deadline:.1?}"),
                Step::Stuck(why) => format!("the connection was still open: {why}"),
                Step::Failed(why) => why,
            };
            return Err(Short { got, why });
        }
    }

    /// Reads until `delimiter` has arrived (included), at most `limit` bytes, within
    /// `deadline`. Reads one byte at a time so nothing after the delimiter is taken.
    pub fn recv_until(
        &mut self,
        delimiter: u8,
        limit: usize,
        deadline: Duration,
    ) -> Result<Vec<u8>, Short> {
        let until = Instant::now() + deadline;
        let mut got = Vec::new();
        let mut byte = [0u8; 1];
        while got.last() != Some(&delimiter) {
            let why = match self.read_step(&mut byte, until) {
                Step::Data(_) if got.len() < limit => {
                    got.push(byte[0]);
                    continue;
                }
                Step::Data(_) => format!(
                    "no {} within {limit} bytes",
                    crate::report::escape(&[delimiter], 1)
                ),
                Step::End => "the peer closed the connection (end of stream)".into(),
                Step::TimedOut => format!("nothing more came within {deadline:.1?}"),
                Step::Stuck(why) | Step::Failed(why) => why,
            };
            return Err(Short { got, why });
        }
        Ok(got)
    }

    /// Closes with SO_LINGER 0: the kernel sends RST instead of FIN, as when a client
    /// crashes or its machine drops off the network.
    ///
    /// Returns once the kernel has really closed the socket, so the reset is on its way
    /// before the check's next step. A close is only a close of the last reference: a
    /// program another check is starting holds a copy of every fd of the checker
    /// between its fork() and its exec(), and on a busy machine that can last long
    /// enough for the next client's whole exchange to come first (the reset then lands
    /// after it, and a server that dies of it seemed to survive).
    pub fn reset(self) {
        let ends = self
            .stream
            .local_addr()
            .ok()
            .zip(self.stream.peer_addr().ok());
        let socket = Socket::from(self.stream);
        let _ = socket.set_linger(Some(Duration::ZERO));
        drop(socket);
        if let Some((local, peer)) = ends {
            let until = Instant::now() + Duration::from_secs(10);
            while crate::procfs::connection(local, peer).is_some() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

/// Bytes written to `stream` that its kernel has not sent yet (getsockopt TCP_INFO,
/// `tcpi_notsent_bytes`; nix has no TCP_INFO, so libc).
pub fn notsent_bytes(stream: &TcpStream) -> Option<u32> {
    use std::os::fd::AsRawFd;
    // SAFETY: an all-zero tcp_info is a valid value of the plain C struct.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: info and len are valid for writes and len holds info's size, as
    // getsockopt(2) requires.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast(),
            &raw mut len,
        )
    };
    (rc == 0).then_some(info.tcpi_notsent_bytes)
}

/// A client that stops reading, for real: its receive buffer is shrunk before connect
/// (so the kernel's autotuning cannot absorb megabytes), and it sends until its own
/// non-blocking send stays at EAGAIN, which means every buffer between it and the
/// server is full and the server is blocked or must wait.
#[derive(Debug)]
pub struct StalledClient {
    pub socket: Socket,
    /// How many bytes it managed to send before everything filled up.
    pub sent: usize,
}

impl StalledClient {
    /// Connects to `addr` and sends at most `max` bytes, until the send stays at EAGAIN
    /// for `settle` (everything is full) or `max` is reached.
    pub fn fill(
        addr: SocketAddr,
        max: usize,
        settle: Duration,
        deadline: Duration,
    ) -> Result<StalledClient, String> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)
            .map_err(|e| format!("socket: {e}"))?;
        socket
            .set_recv_buffer_size(4096)
            .map_err(|e| format!("setsockopt(SO_RCVBUF): {e}"))?;
        socket
            .connect_timeout(&addr.into(), deadline)
            .map_err(|e| format!("connect to {addr}: {}", describe_io(&e)))?;
        socket
            .set_nonblocking(true)
            .map_err(|e| format!("set non-blocking: {e}"))?;
        let chunk = vec![b'x'; 64 * 1024];
        let mut sent = 0;
        let until = Instant::now() + deadline;
        let mut blocked_since: Option<Instant> = None;
        while sent < max && Instant::now() < until {
            match socket.send(&chunk[..chunk.len().min(max - sent)]) {
                Ok(n) => {
                    sent += n;
                    blocked_since = None;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    let since = *blocked_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= settle {
                        break;
                    }
                    // Wait until the socket is writable again or `settle` has passed.
                    let left = settle.saturating_sub(since.elapsed());
                    let mut fds = [PollFd::new(socket.as_fd(), PollFlags::POLLOUT)];
                    let ms = left.as_millis().clamp(1, 1000) as u16;
                    let _ = poll(&mut fds, PollTimeout::from(ms));
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // The server closed or reset the connection first: nothing more can be
                // sent, and the client is as stalled as it will get.
                Err(e)
                    if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) =>
                {
                    break;
                }
                Err(e) => return Err(format!("send: {}", describe_io(&e))),
            }
        }
        Ok(StalledClient { socket, sent })
    }

    /// The bytes the server has received on this connection and not read yet (its
    /// receive queue in /proc/net/tcp); None when the server's side is gone.
    pub fn unread_by_server(&self) -> Option<u64> {
        let local = self.socket.local_addr().ok()?.as_socket()?;
        let peer = self.socket.peer_addr().ok()?.as_socket()?;
        crate::procfs::connection(peer, local).map(|r| r.rx_queue)
    }

    /// Closes without reading: with unread data in its receive buffer the kernel
    /// answers with RST.
    pub fn close(self) {
        drop(self.socket);
    }
}

/// A server of the checker's on 127.0.0.1 and a port the kernel chose, for checks of
/// client programs.
#[derive(Debug)]
pub struct HarnessServer {
    pub listener: TcpListener,
    pub addr: SocketAddr,
    recorder: Recorder,
}

impl HarnessServer {
    /// Listens on 127.0.0.1, port 0.
    pub fn start(recorder: &Recorder) -> Result<HarnessServer, String> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("getsockname: {e}"))?;
        Ok(HarnessServer {
            listener,
            addr,
            recorder: recorder.clone(),
        })
    }

    /// Waits for the client under test to connect, up to `deadline`.
    pub fn accept(&self, deadline: Duration) -> Result<Conn, String> {
        let mut fds = [PollFd::new(self.listener.as_fd(), PollFlags::POLLIN)];
        let ms = deadline.as_millis().min(i32::MAX as u128) as i32;
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) => Err(format!(
                "your client did not connect to {} within {deadline:.1?}",
                self.addr
            )),
            Ok(_) => self
                .listener
                .accept()
                .map(|(stream, _)| Conn::from_stream(stream, &self.recorder))
                .map_err(|e| format!("accept: {e}")),
            Err(e) => Err(format!("poll: {e}")),
        }
    }
}

/// A UDP socket of the checker's on 127.0.0.1, with deadlines on every receive.
#[derive(Debug)]
pub struct UdpPeer {
    pub socket: std::net::UdpSocket,
    recorder: Recorder,
}

impl UdpPeer {
    /// Binds 127.0.0.1, port 0, with a receive buffer large enough for a burst of
    /// maximum-size datagrams.
    pub fn bind(recorder: &Recorder) -> Result<UdpPeer, String> {
        let socket =
            Socket::new(Domain::IPV4, Type::DGRAM, None).map_err(|e| format!("socket: {e}"))?;
        let _ = socket.set_recv_buffer_size(1 << 20);
        socket
            .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .map_err(|e| format!("bind: {e}"))?;
        Ok(UdpPeer {
            socket: socket.into(),
            recorder: recorder.clone(),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.socket
            .local_addr()
            .expect("bound socket has an address")
    }

    pub fn send_to(&self, data: &[u8], to: SocketAddr) -> Result<(), String> {
        self.recorder.record("datagram to", Some(to), data);
        self.socket
            .send_to(data, to)
            .map(|_| ())
            .map_err(|e| format!("sendto {to}: {}", describe_io(&e)))
    }

    /// The next datagram and its sender, or None after `deadline`.
    pub fn recv_from(&self, deadline: Duration) -> Result<Option<(Vec<u8>, SocketAddr)>, String> {
        let mut buf = vec![0u8; 65_536];
        let until = Instant::now() + deadline;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let _ = self.socket.set_read_timeout(Some(left));
            match self.socket.recv_from(&mut buf) {
                Ok((n, from)) => {
                    self.recorder.record("datagram from", Some(from), &buf[..n]);
                    return Ok(Some((buf[..n].to_vec(), from)));
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(format!("recvfrom: {}", describe_io(&e))),
            }
        }
    }
}

/// A UDP echo server of the checker's, for client checks: echoes every datagram to its
/// sender, except that it drops the first `drop_first` it receives (a lossy network),
/// and, when `stranger` is set, sends a datagram from a second socket before each echo.
#[derive(Debug)]
pub struct UdpEchoServer {
    pub addr: SocketAddr,
    pub received: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What the second socket of [`UdpEchoServer`] sends.
pub const STRANGER_SAYS: &[u8] = b"a stranger says hello\n";

impl UdpEchoServer {
    pub fn start(
        drop_first: usize,
        stranger: bool,
        recorder: &Recorder,
    ) -> Result<UdpEchoServer, String> {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let peer = UdpPeer::bind(recorder)?;
        let addr = peer.addr();
        let other = if stranger {
            Some(UdpPeer::bind(recorder)?)
        } else {
            None
        };
        let received = std::sync::Arc::new(AtomicUsize::new(0));
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let thread = {
            let (received, stop) = (received.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let Ok(Some((data, from))) = peer.recv_from(Duration::from_millis(50)) else {
                        continue;
                    };
                    let n = received.fetch_add(1, Ordering::SeqCst) + 1;
                    if n <= drop_first {
                        continue;
                    }
                    if let Some(other) = &other {
                        let _ = other.send_to(STRANGER_SAYS, from);
                    }
                    let _ = peer.send_to(&data, from);
                }
            })
        };
        Ok(UdpEchoServer {
            addr,
            received,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for UdpEchoServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A UDP port with nothing bound to it right now (for "no server" checks).
pub fn unused_udp_port() -> Result<SocketAddr, String> {
    let port = free_port()?;
    Ok(SocketAddr::from(([127, 0, 0, 1], port)))
}

/// Picks a port for a server under test: free now on every address (a bind to
/// 0.0.0.0 succeeds, so no socket of any state holds it), below the kernel's ephemeral
/// range (so no outgoing connection of a parallel test takes it meanwhile), and never
/// handed out twice by this process.
pub fn free_port() -> Result<u16, String> {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let low = ephemeral_low();
    // The pool ends where the ephemeral range starts (32768 by default).
    let pool_high = low.saturating_sub(1).max(2000);
    let pool_low = 10_000.min(pool_high - 1000);
    let mut seed = (std::process::id() as u64) << 32
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
    let mut given = GIVEN.lock().expect("port registry");
    let given = given.get_or_insert_with(HashSet::new);
    for _ in 0..500 {
        // xorshift: spread the tries over the pool.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let port = pool_low + (seed % u64::from(pool_high - pool_low)) as u16;
        if given.contains(&port) {
            continue;
        }
        // Claimed first, then tried: another workbook process never tries a port this
        // one holds (a try is a real bind, and a program under test binding that port
        // at that moment would fail).
        if !reserve_across_processes(port, true) {
            continue;
        }
        if bindable_as_a_student_binds(port) {
            given.insert(port);
            return Ok(port);
        }
        reserve_across_processes(port, false);
    }
    Err("no free port found below the ephemeral range".into())
}

/// Claims `port` for this process against every other process of the workbook (test
/// binaries run side by side, and a student's `cargo xtask check` may run beside them):
/// a write lock on byte `port` of one shared lock file. The kernel drops a process's
/// record locks when it exits, however it exits, so nothing stale is ever left. Within
/// one process the lock is not exclusive (record locks belong to the process), which is
/// what [`free_port`]'s own registry is for. Without the lock file (an unwritable /tmp),
/// a port is still checked free by binding it: the claim only narrows a race.
/// Whether `port` can be bound on every address the way the book's servers bind it:
/// TCP and UDP, without SO_REUSEADDR (std's TcpListener sets it, and would not see a
/// connection of an earlier run still in TIME_WAIT on the port, which makes such a
/// server's bind() fail).
fn bindable_as_a_student_binds(port: u16) -> bool {
    let any = std::net::SocketAddr::from(([0, 0, 0, 0], port));
    [Type::STREAM, Type::DGRAM].into_iter().all(|kind| {
        Socket::new(Domain::IPV4, kind, None).is_ok_and(|socket| socket.bind(&any.into()).is_ok())
    })
}

/// `claim`: takes the port (true when no other process holds it); otherwise gives it
/// back.
fn reserve_across_processes(port: u16, claim: bool) -> bool {
    use std::os::fd::AsRawFd;
    use std::sync::OnceLock;
    static LOCKS: OnceLock<Option<std::fs::File>> = OnceLock::new();
    let file = LOCKS.get_or_init(|| {
        use std::os::unix::fs::OpenOptionsExt;
        let path = std::env::temp_dir().join("workbook-ports.lock");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o666)
            .open(path)
            .ok()?;
        Some(file)
    });
    let Some(file) = file else {
        return true;
    };
    // SAFETY: a zeroed flock is a valid value; every field we rely on is set below.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = if claim { libc::F_WRLCK } else { libc::F_UNLCK } as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = libc::off_t::from(port);
    lock.l_len = 1;
    // fcntl(F_SETLK): a record lock on one byte, refused at once if another process
    // holds it. (nix's fcntl has no F_SETLK with a flock struct; libc's it is.)
    // SAFETY: the fd is open for the life of the process and `lock` lives across the call.
    unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &raw const lock) == 0 }
}

/// Where the kernel's range of ports for outgoing connections starts.
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_and_bindable() {
        let a = free_port().unwrap();
        let b = free_port().unwrap();
        assert_ne!(a, b);
        TcpListener::bind(("127.0.0.1", a)).expect("bind to the free port");
    }

    #[test]
    fn a_stalled_client_really_stalls() {
        // A server that accepts and never reads: the client must stop at EAGAIN long
        // before the 64 MiB it is allowed.
        let server = HarnessServer::start(&Recorder::default()).unwrap();
        let stalled = StalledClient::fill(
            server.addr,
            64 << 20,
            Duration::from_millis(200),
            Duration::from_secs(20),
        )
        .unwrap();
        assert!(
            stalled.sent > 0 && stalled.sent < 64 << 20,
            "sent {}",
            stalled.sent
        );
    }
}
#[cfg(test)]
mod consumed_tests {
    use super::*;

    /// A byte sent to a peer that reads it is seen consumed at once, not after the
    /// peer's delayed ACK; one the peer does not read is not.
    #[test]
    fn a_read_byte_is_seen_consumed() {
        let server = HarnessServer::start(&Recorder::default()).unwrap();
        let mut conn =
            Conn::connect(server.addr, Duration::from_secs(5), &Recorder::default()).unwrap();
        let mut peer = server.accept(Duration::from_secs(5)).unwrap();
        conn.nodelay();
        conn.send(b"x").unwrap();
        assert!(
            !conn.wait_consumed(Duration::from_millis(100)),
            "unread yet"
        );
        let mut b = [0u8; 1];
        peer.stream.read_exact(&mut b).unwrap();
        assert!(conn.wait_consumed(Duration::from_secs(5)));
    }
}
