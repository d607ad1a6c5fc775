//! The bench's load generator: closed loop, epoll-driven, one thread.
//!
//! Every connection (or UDP socket) has exactly one message in flight: send it, read
//! until the *whole* echo is back (never one read() and hope), record the time, send
//! the next. So the rate measured is the server's answer rate at that concurrency, not
//! how fast we can stuff a queue. TCP sockets set TCP_NODELAY: Nagle's algorithm would
//! otherwise hold a small message back while an earlier one is unacknowledged.
//!
//! Four workloads ([`Workload`]): persistent connections (optionally with idle ones
//! that are opened first and never used), connect-echo-close (closed with an RST by
//! SO_LINGER 0, so the generator's ports never sit in TIME_WAIT and cap the rate), UDP
//! (a connected socket per slot, resent after [`UDP_RESEND_AFTER`]), and HTTP/1.1
//! keep-alive: `GET /` on each connection, the response read whole (its head parsed
//! with httparse, then exactly `Content-Length` body bytes), then the next request.
//!
//! What a run reports ([`Measured`]): operations in the window, latency percentiles
//! (an HDR histogram in nanoseconds), each slot's count and latencies (for Jain's
//! fairness index and [`PerConnection`]: a server that serves two connections of fifty
//! is seen doing so, whatever its total rate) and the generator's own CPU time, so that
//! a saturated generator is reported rather than mistaken for a slow server. [`ServerUsage`] reads the server's side from /proc:
//! CPU time over its whole process tree and PSS from `smaps_rollup`.

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::procfs;

/// How long a UDP slot waits for its echo before it sends the datagram again.
pub const UDP_RESEND_AFTER: Duration = Duration::from_millis(200);

/// What the generator does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// `conns` persistent connections, one `size`-byte message in flight on each; `idle`
    /// more connections opened first and never written to.
    Echo {
        conns: usize,
        idle: usize,
        size: usize,
    },
    /// `concurrency` slots, each: connect, send `size` bytes, read the echo, close (RST).
    ConnectEchoClose { concurrency: usize, size: usize },
    /// `sockets` connected UDP sockets, one `size`-byte datagram in flight on each.
    Udp { sockets: usize, size: usize },
    /// `conns` keep-alive connections, each with one [`HTTP_REQUEST`] in flight; an
    /// operation is a whole `200` response. A response that ends the connection
    /// (`Connection: close`, or no `Content-Length`: the body runs to end of stream)
    /// counts, and the slot connects again.
    Http { conns: usize },
}

/// What the HTTP workload sends, again and again, on every connection.
pub const HTTP_REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

/// The longest response head the HTTP workload reads before it gives up on a connection.
const HTTP_HEAD_LIMIT: usize = 64 * 1024;

impl Workload {
    /// How many slots count towards fairness.
    pub fn slots(&self) -> usize {
        match *self {
            Workload::Echo { conns, .. } => conns,
            Workload::ConnectEchoClose { concurrency, .. } => concurrency,
            Workload::Udp { sockets, .. } => sockets,
            Workload::Http { conns } => conns,
        }
    }

    /// What each operation sends.
    fn message(&self) -> Vec<u8> {
        match *self {
            Workload::Echo { size, .. }
            | Workload::ConnectEchoClose { size, .. }
            | Workload::Udp { size, .. } => {
                // A pattern, not zeros: an echo that returns other bytes is caught
                // cheaply (the last byte of every echo is compared).
                (0..size).map(|i| b'a' + (i % 26) as u8).collect()
            }
            Workload::Http { .. } => HTTP_REQUEST.to_vec(),
        }
    }
}

/// One run: where, what, for how long, on which CPU.
#[derive(Debug, Clone)]
pub struct Plan {
    pub target: SocketAddr,
    pub workload: Workload,
    /// Load before the window opens (connections made, caches warm, processes forked).
    pub warmup: Duration,
    /// The measurement window.
    pub window: Duration,
    /// The CPU the generator's thread is pinned to (sched_setaffinity), if any.
    pub cpu: Option<usize>,
}

/// The moments a run tells its caller about, from the generator's thread, so the
/// caller can read the server's usage exactly around the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    WindowOpens,
    WindowCloses,
}

/// What one run measured, over the window only.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Operations completed in the window (an echo back whole; for connect-echo-close a
    /// whole connection).
    pub ops: u64,
    pub window: Duration,
    /// Latency of each operation completed in the window, in nanoseconds.
    pub latency: Histogram<u64>,
    /// Operations per slot (connection, concurrent slot or UDP socket).
    pub per_slot: Vec<u64>,
    /// Each slot's latencies in the window (nanoseconds, 2 significant digits).
    pub per_slot_latency: Vec<Histogram<u64>>,
    /// Each slot's failures in the window (refused, reset, closed early).
    pub per_slot_failures: Vec<u64>,
    /// How long each slot's unfinished operation had been waiting when the window
    /// closed: a connection the server never answers has no latency sample, only this.
    pub waiting_at_close: Vec<Duration>,
    /// HTTP: responses that ended their connection (`Connection: close`, or a body
    /// running to end of stream), after which the slot connected again. Not failures.
    pub reconnects: u64,
    /// CPU time (user + system) the generator's thread used in the window.
    pub generator_cpu: Duration,
    /// UDP datagrams sent again after [`UDP_RESEND_AFTER`] without an echo.
    pub resent: u64,
    /// Connections that failed (refused, reset, closed early) and were replaced.
    pub failures: u64,
}

impl Measured {
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.window.as_secs_f64()
    }

    /// Jain's fairness index over the slots' counts: 1 when all got the same service,
    /// 1/n when one slot got everything.
    pub fn fairness(&self) -> f64 {
        jain(&self.per_slot)
    }

    /// The generator's CPU use in the window as a share of one core (1.0: saturated).
    pub fn generator_load(&self) -> f64 {
        self.generator_cpu.as_secs_f64() / self.window.as_secs_f64()
    }

    /// A latency percentile in microseconds (0 when nothing completed).
    pub fn latency_us(&self, quantile: f64) -> f64 {
        if self.latency.is_empty() {
            return 0.0;
        }
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }

    /// How the service was shared among the slots.
    pub fn per_connection(&self) -> PerConnection {
        let n = self.per_slot.len();
        let mut sorted = self.per_slot.clone();
        sorted.sort_unstable();
        let median = match n {
            0 => 0.0,
            _ if n % 2 == 1 => sorted[n / 2] as f64,
            _ => (sorted[n / 2 - 1] + sorted[n / 2]) as f64 / 2.0,
        };
        let min = sorted.first().copied().unwrap_or(0);
        // A tenth of an equal share, not of the median: when most connections starve,
        // the median is 0 and "below a tenth of the median" would count none of them.
        let equal_share = if n == 0 {
            0.0
        } else {
            self.ops as f64 / n as f64
        };
        // The worst slot: fewest operations; among those, the one that waited longest.
        let worst = (0..n).min_by(|&a, &b| {
            self.per_slot[a]
                .cmp(&self.per_slot[b])
                .then(self.longest_wait(b).cmp(&self.longest_wait(a)))
        });
        PerConnection {
            connections: n,
            min,
            median,
            max: sorted.last().copied().unwrap_or(0),
            min_over_median: if median > 0.0 {
                min as f64 / median
            } else {
                0.0
            },
            starved: self
                .per_slot
                .iter()
                .filter(|&&x| (x as f64) < equal_share / 10.0)
                .count(),
            unanswered: self.per_slot.iter().filter(|&&x| x == 0).count(),
            failed: self.per_slot_failures.iter().filter(|&&x| x > 0).count(),
            worst_responses: worst.map_or(0, |w| self.per_slot[w]),
            worst_p99_us: worst
                .map(|w| &self.per_slot_latency[w])
                .filter(|h| !h.is_empty())
                .map(|h| h.value_at_quantile(0.99) as f64 / 1000.0),
            longest_wait_us: (0..n)
                .map(|i| self.longest_wait(i))
                .max()
                .unwrap_or_default()
                .as_secs_f64()
                * 1e6,
            reconnects: self.reconnects,
        }
    }

    /// The longest slot `i` waited for one operation: completed in the window, or
    /// still unfinished when it closed.
    fn longest_wait(&self, i: usize) -> Duration {
        let done = Duration::from_nanos(self.per_slot_latency[i].max());
        done.max(self.waiting_at_close[i])
    }
}

/// How one run's service was shared among its connections (or slots).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct PerConnection {
    pub connections: usize,
    /// Operations of the least served, the median and the most served connection.
    pub min: u64,
    pub median: f64,
    pub max: u64,
    /// min / median (0 when the median is 0): 1 when the least served got a full share.
    pub min_over_median: f64,
    /// Connections with fewer than a tenth of an equal share (operations / connections).
    pub starved: usize,
    /// Connections with no operation at all in the window.
    pub unanswered: usize,
    /// Connections that failed at least once (refused, reset, closed early).
    pub failed: usize,
    /// The least served connection: its operations and its p99 latency (None when it
    /// got no answer: then `longest_wait_us` tells how long it waited).
    pub worst_responses: u64,
    pub worst_p99_us: Option<f64>,
    /// The longest any one operation waited, completed or still waiting at the close.
    pub longest_wait_us: f64,
    /// HTTP: responses that ended their connection, followed by a new one.
    pub reconnects: u64,
}

/// Jain's fairness index: (sum x)^2 / (n * sum x^2); 0 when nothing was served.
pub fn jain(xs: &[u64]) -> f64 {
    let sum: f64 = xs.iter().map(|&x| x as f64).sum();
    let squares: f64 = xs.iter().map(|&x| (x as f64) * (x as f64)).sum();
    if squares == 0.0 {
        return 0.0;
    }
    sum * sum / (xs.len() as f64 * squares)
}

/// Runs `plan` on a thread of its own (pinned when asked), calling `at` when the
/// window opens and closes.
pub fn run(plan: &Plan, at: impl FnMut(Moment) + Send) -> anyhow::Result<Measured> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                if let Some(cpu) = plan.cpu {
                    pin_to(cpu).with_context(|| format!("sched_setaffinity(CPU {cpu})"))?;
                }
                Generator::new(plan)?.run(plan, at)
            })
            .join()
            .map_err(|_| anyhow::anyhow!("the load generator panicked"))?
    })
}

/// Pins the calling thread (or, between fork and exec, the new process) to one CPU:
/// sched_setaffinity(0). Allocates nothing, so it is safe in a `pre_exec` hook.
pub fn pin_to(cpu: usize) -> nix::Result<()> {
    use nix::sched::{CpuSet, sched_setaffinity};
    let mut set = CpuSet::new();
    set.set(cpu)?;
    sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
}

#[derive(Debug, PartialEq, Eq)]
enum Stage {
    /// connect() in progress (connect-echo-close).
    Connecting,
    /// Sending the message; `written` bytes are out.
    Sending,
    /// Waiting for the echo (HTTP: the response); `received` bytes are back.
    Receiving,
}

/// Where an HTTP slot is in reading one response.
#[derive(Debug)]
enum HttpRead {
    /// Reading the head (kept in the slot's `head`) until it parses whole.
    Head,
    /// `left` body bytes to come; `close`: the connection ends after them.
    Body { left: usize, close: bool },
    /// No `Content-Length`: the body runs to the end of the stream.
    ToEnd,
}

struct Slot {
    socket: Socket,
    stage: Stage,
    written: usize,
    received: usize,
    started: Instant,
    /// What the socket is registered for now.
    interest: EpollFlags,
    http: HttpRead,
    /// HTTP: the response head read so far; kept from one response to the next, so
    /// that reading a response allocates nothing.
    head: Vec<u8>,
}

struct Generator {
    epoll: Epoll,
    slots: Vec<Slot>,
    /// Opened first and left alone (select's cost grows with them).
    _idle: Vec<Socket>,
    message: Vec<u8>,
    scratch: Vec<u8>,
    workload: Workload,
    target: SockAddr,
    domain: Domain,
}

/// User + system CPU time from getrusage(): of this thread (`RUSAGE_THREAD`), or of
/// every child reaped so far (`RUSAGE_CHILDREN`).
pub fn cpu_time(who: nix::sys::resource::UsageWho) -> Duration {
    let of =
        |tv: nix::sys::time::TimeVal| Duration::new(tv.tv_sec() as u64, tv.tv_usec() as u32 * 1000);
    nix::sys::resource::getrusage(who)
        .map(|u| of(u.user_time()) + of(u.system_time()))
        .unwrap_or_default()
}

fn thread_cpu() -> Duration {
    cpu_time(nix::sys::resource::UsageWho::RUSAGE_THREAD)
}

impl Generator {
    fn new(plan: &Plan) -> anyhow::Result<Generator> {
        let message = plan.workload.message();
        let mut generator = Generator {
            epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).context("epoll_create1")?,
            slots: Vec::new(),
            _idle: Vec::new(),
            scratch: vec![0; message.len().clamp(16384, 65536)],
            message,
            workload: plan.workload,
            target: plan.target.into(),
            domain: Domain::for_address(plan.target),
        };
        match plan.workload {
            Workload::Echo { conns, idle, .. } => {
                for _ in 0..idle {
                    let s = generator.tcp_socket()?;
                    s.connect(&generator.target)
                        .with_context(|| format!("connect to {}", plan.target))?;
                    generator._idle.push(s);
                }
                for _ in 0..conns {
                    let s = generator.tcp_socket()?;
                    s.connect(&generator.target)
                        .with_context(|| format!("connect to {}", plan.target))?;
                    s.set_nonblocking(true)?;
                    generator.push_slot(s, Stage::Sending)?;
                }
            }
            // HTTP connects without waiting too: a refused connection is a failure of
            // its slot, counted and retried, not the end of the run.
            Workload::ConnectEchoClose {
                concurrency: conns, ..
            }
            | Workload::Http { conns } => {
                for _ in 0..conns {
                    let s = generator.start_connect()?;
                    generator.push_slot(s, Stage::Connecting)?;
                }
            }
            Workload::Udp { sockets, .. } => {
                for _ in 0..sockets {
                    let s = Socket::new(generator.domain, Type::DGRAM, Some(Protocol::UDP))?;
                    s.connect(&generator.target)?;
                    s.set_nonblocking(true)?;
                    generator.push_slot(s, Stage::Sending)?;
                }
            }
        }
        Ok(generator)
    }

    fn tcp_socket(&self) -> anyhow::Result<Socket> {
        let s = Socket::new(self.domain, Type::STREAM, Some(Protocol::TCP)).context("socket")?;
        s.set_tcp_nodelay(true)?;
        Ok(s)
    }

    /// A non-blocking connect() under way.
    fn start_connect(&self) -> anyhow::Result<Socket> {
        let s = self.tcp_socket()?;
        s.set_nonblocking(true)?;
        match s.connect(&self.target) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e).context("connect"),
        }
        Ok(s)
    }

    fn push_slot(&mut self, socket: Socket, stage: Stage) -> anyhow::Result<()> {
        let index = self.slots.len();
        let interest = interest_for(&stage);
        self.epoll
            .add(socket.as_fd(), EpollEvent::new(interest, index as u64))
            .context("epoll_ctl(ADD)")?;
        self.slots.push(Slot {
            socket,
            stage,
            written: 0,
            received: 0,
            started: Instant::now(),
            interest,
            http: HttpRead::Head,
            head: Vec::new(),
        });
        Ok(())
    }

    fn run(mut self, plan: &Plan, mut at: impl FnMut(Moment)) -> anyhow::Result<Measured> {
        let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
        let n = self.slots.len();
        let mut per_slot = vec![0u64; n];
        // Two significant digits per slot: enough to compare slots, at a tenth of the
        // memory of three.
        let mut per_slot_latency =
            vec![Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 2)?; n];
        let mut per_slot_failures = vec![0u64; n];
        let (mut ops, mut resent, mut failures) = (0u64, 0u64, 0u64);
        let mut reconnects = 0u64;
        let start = Instant::now();
        let opens = start + plan.warmup;
        let mut measuring = false;
        let mut cpu_at_open = Duration::ZERO;
        let mut opened_at = opens;
        // Every slot starts by sending (connect-echo-close slots once connected).
        for i in 0..self.slots.len() {
            if self.slots[i].stage == Stage::Sending {
                self.slots[i].started = Instant::now();
                self.send(i)?;
            }
        }
        let mut events = vec![EpollEvent::empty(); 1024];
        loop {
            let now = Instant::now();
            if !measuring && now >= opens {
                at(Moment::WindowOpens);
                measuring = true;
                latency.reset();
                per_slot.iter_mut().for_each(|n| *n = 0);
                per_slot_latency.iter_mut().for_each(Histogram::reset);
                per_slot_failures.iter_mut().for_each(|n| *n = 0);
                (ops, resent, failures, reconnects) = (0, 0, 0, 0);
                cpu_at_open = thread_cpu();
                opened_at = Instant::now();
            }
            if measuring && now >= opened_at + plan.window {
                break;
            }
            let until = if measuring {
                opened_at + plan.window
            } else {
                opens
            };
            let mut wait = until.saturating_duration_since(now);
            if matches!(self.workload, Workload::Udp { .. }) {
                wait = wait.min(UDP_RESEND_AFTER / 4);
            }
            let timeout = EpollTimeout::try_from(wait.max(Duration::from_millis(1)))
                .unwrap_or(EpollTimeout::NONE);
            let n = match self.epoll.wait(&mut events, timeout) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e).context("epoll_wait"),
            };
            for event in &events[..n] {
                let i = event.data() as usize;
                match self.serve(i, event.events()) {
                    Ok(Some(done)) => {
                        if measuring {
                            ops += 1;
                            per_slot[i] += 1;
                            let nanos = done.took.as_nanos() as u64;
                            latency.saturating_record(nanos);
                            per_slot_latency[i].saturating_record(nanos);
                            reconnects += u64::from(done.reconnected);
                        }
                    }
                    Ok(None) => {}
                    Err(why) => {
                        failures += 1;
                        if measuring {
                            per_slot_failures[i] += 1;
                        }
                        if failures > 1000 && ops == 0 {
                            bail!("the server keeps failing connections: {why:#}");
                        }
                        self.replace(i).with_context(|| format!("after {why:#}"))?;
                    }
                }
            }
            if matches!(self.workload, Workload::Udp { .. }) {
                let now = Instant::now();
                for i in 0..self.slots.len() {
                    if now.duration_since(self.slots[i].started) > UDP_RESEND_AFTER {
                        resent += 1;
                        self.slots[i].started = now;
                        self.send(i)?;
                    }
                }
            }
        }
        let generator_cpu = thread_cpu().saturating_sub(cpu_at_open);
        let window = opened_at.elapsed();
        let waiting_at_close = self.slots.iter().map(|s| s.started.elapsed()).collect();
        at(Moment::WindowCloses);
        // Slots still waiting are cut off: closing with RST frees the server at once.
        for slot in &self.slots {
            let _ = slot.socket.set_linger(Some(Duration::ZERO));
        }
        Ok(Measured {
            ops,
            window,
            latency,
            per_slot,
            per_slot_latency,
            per_slot_failures,
            waiting_at_close,
            reconnects,
            generator_cpu,
            resent,
            failures,
        })
    }

    /// Handles readiness on slot `i`; Some when an operation completed.
    fn serve(&mut self, i: usize, flags: EpollFlags) -> anyhow::Result<Option<Done>> {
        let slot = &mut self.slots[i];
        match slot.stage {
            Stage::Connecting => {
                if let Some(e) = slot.socket.take_error()? {
                    bail!("connect: {e}");
                }
                if !flags.contains(EpollFlags::EPOLLOUT) {
                    return Ok(None);
                }
                slot.stage = Stage::Sending;
                self.send(i)?;
                Ok(None)
            }
            Stage::Sending => {
                if flags.intersects(EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP) {
                    bail!("the connection failed while sending");
                }
                self.send(i)?;
                Ok(None)
            }
            Stage::Receiving if matches!(self.workload, Workload::Http { .. }) => {
                self.receive_http(i)
            }
            Stage::Receiving => self.receive(i),
        }
    }

    /// Writes what is left of the message; switches to receiving once all is out.
    fn send(&mut self, i: usize) -> anyhow::Result<()> {
        let udp = matches!(self.workload, Workload::Udp { .. });
        let slot = &mut self.slots[i];
        if udp {
            // One datagram, whole or not at all.
            slot.written = 0;
            slot.received = 0;
        }
        while slot.written < self.message.len() {
            match (&slot.socket).write(&self.message[slot.written..]) {
                Ok(n) => slot.written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).context("write"),
            }
            if udp {
                break;
            }
        }
        slot.stage = if slot.written >= self.message.len() {
            Stage::Receiving
        } else {
            Stage::Sending
        };
        self.update_interest(i)
    }

    /// Reads what has come back; completes the operation when the whole echo is in.
    fn receive(&mut self, i: usize) -> anyhow::Result<Option<Done>> {
        let size = self.message.len();
        let udp = matches!(self.workload, Workload::Udp { .. });
        let slot = &mut self.slots[i];
        loop {
            match (&slot.socket).read(&mut self.scratch) {
                Ok(0) if !udp => bail!("the server closed the connection"),
                Ok(n) if udp => {
                    if n != size {
                        bail!("a {n}-byte datagram came back for a {size}-byte one");
                    }
                    slot.received = n;
                    break;
                }
                Ok(n) => {
                    slot.received += n;
                    if slot.received < size {
                        // Acknowledge at once: a server that writes its echo in pieces
                        // (one write per read) without TCP_NODELAY has Nagle hold each
                        // later piece until this ACK, and a delayed ACK takes 40 ms.
                        let _ = slot.socket.set_tcp_quickack(true);
                    }
                    if slot.received > size {
                        bail!("more came back than was sent");
                    }
                    if slot.received == size {
                        if self.scratch[n - 1] != self.message[size - 1] {
                            bail!("the echo differs from what was sent");
                        }
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if udp && e.kind() == ErrorKind::ConnectionRefused => {
                    // An ICMP port unreachable from an earlier datagram; the resend
                    // timer tries again.
                    return Ok(None);
                }
                Err(e) => return Err(e).context("read"),
            }
        }
        let took = slot.started.elapsed();
        match self.workload {
            Workload::ConnectEchoClose { .. } => self.replace(i)?,
            _ => {
                let slot = &mut self.slots[i];
                slot.written = 0;
                slot.received = 0;
                slot.started = Instant::now();
                self.send(i)?;
            }
        }
        Ok(Some(Done {
            took,
            reconnected: false,
        }))
    }

    /// Reads the response to slot `i`'s request: the head until it parses, then its
    /// body. Complete, it sends the next request, or connects again when the response
    /// ended the connection.
    fn receive_http(&mut self, i: usize) -> anyhow::Result<Option<Done>> {
        let slot = &mut self.slots[i];
        let close = loop {
            let n = match (&slot.socket).read(&mut self.scratch) {
                Ok(0) if matches!(slot.http, HttpRead::ToEnd) => break true,
                Ok(0) => match slot.http {
                    HttpRead::Head if slot.head.is_empty() => {
                        bail!("the server closed the connection before answering")
                    }
                    _ => bail!("the server closed the connection in the middle of a response"),
                },
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).context("read"),
            };
            if let Some(close) = slot.http.take(&mut slot.head, &self.scratch[..n])? {
                break close;
            }
        };
        let took = slot.started.elapsed();
        slot.http = HttpRead::Head;
        slot.head.clear();
        if close {
            self.reconnect(i)?;
        } else {
            slot.written = 0;
            slot.received = 0;
            slot.started = Instant::now();
            self.send(i)?;
        }
        Ok(Some(Done {
            took,
            reconnected: close,
        }))
    }

    /// Slot `i`'s connection ended cleanly (the server closed it after a whole
    /// response): a new one in its place. The old one is closed with an RST all the same:
    /// the generator's ports must not pile up in TIME_WAIT.
    fn reconnect(&mut self, i: usize) -> anyhow::Result<()> {
        self.replace(i)
    }

    /// Closes slot `i`'s connection with an RST and starts a new one in its place.
    fn replace(&mut self, i: usize) -> anyhow::Result<()> {
        self.slots[i].http = HttpRead::Head;
        self.slots[i].head.clear();
        let fresh = match self.workload {
            Workload::Udp { .. } => {
                // A UDP socket is not spent by an error; send again.
                self.slots[i].started = Instant::now();
                return self.send(i);
            }
            Workload::ConnectEchoClose { .. } | Workload::Http { .. } => {
                (self.start_connect()?, Stage::Connecting)
            }
            Workload::Echo { .. } => {
                let s = self.tcp_socket()?;
                s.connect(&self.target).context("connect")?;
                s.set_nonblocking(true)?;
                (s, Stage::Sending)
            }
        };
        let old = std::mem::replace(&mut self.slots[i].socket, fresh.0);
        // SO_LINGER 0: close() sends RST and the port skips TIME_WAIT.
        let _ = old.set_linger(Some(Duration::ZERO));
        drop(old);
        let slot = &mut self.slots[i];
        slot.stage = fresh.1;
        slot.written = 0;
        slot.received = 0;
        slot.started = Instant::now();
        slot.interest = interest_for(&slot.stage);
        self.epoll
            .add(
                slot.socket.as_fd(),
                EpollEvent::new(slot.interest, i as u64),
            )
            .context("epoll_ctl(ADD)")?;
        if slot.stage == Stage::Sending {
            self.send(i)?;
        }
        Ok(())
    }

    fn update_interest(&mut self, i: usize) -> anyhow::Result<()> {
        let slot = &mut self.slots[i];
        let want = interest_for(&slot.stage);
        if want != slot.interest {
            slot.interest = want;
            let mut event = EpollEvent::new(want, i as u64);
            self.epoll
                .modify(slot.socket.as_fd(), &mut event)
                .context("epoll_ctl(MOD)")?;
        }
        Ok(())
    }
}

/// An operation completed: how long it took, and whether its slot connected again.
struct Done {
    took: Duration,
    reconnected: bool,
}

impl HttpRead {
    /// Takes `bytes` of the response (`head`: the head so far); Some(close) once the
    /// response is whole (`close`: the connection ends with it).
    fn take(&mut self, head: &mut Vec<u8>, bytes: &[u8]) -> anyhow::Result<Option<bool>> {
        match self {
            HttpRead::Head => {
                if head.len() + bytes.len() > HTTP_HEAD_LIMIT {
                    bail!("the response head is longer than {HTTP_HEAD_LIMIT} bytes");
                }
                head.extend_from_slice(bytes);
                let Some(response) = parse_head(head)? else {
                    return Ok(None);
                };
                let after_head = head.len() - response.head_len;
                match response.content_length {
                    Some(length) if after_head > length => {
                        bail!("more bytes came than the response's Content-Length")
                    }
                    Some(length) if after_head == length => Ok(Some(response.close)),
                    Some(length) => {
                        *self = HttpRead::Body {
                            left: length - after_head,
                            close: response.close,
                        };
                        Ok(None)
                    }
                    None => {
                        *self = HttpRead::ToEnd;
                        Ok(None)
                    }
                }
            }
            HttpRead::Body { left, close } => {
                if bytes.len() > *left {
                    bail!("more bytes came than the response's Content-Length");
                }
                *left -= bytes.len();
                Ok((*left == 0).then_some(*close))
            }
            HttpRead::ToEnd => Ok(None),
        }
    }
}

/// A parsed response head.
struct Head {
    head_len: usize,
    content_length: Option<usize>,
    close: bool,
}

/// Parses a response head with httparse; None while it is incomplete. Informational
/// (1xx) responses are dropped from `head` and parsing goes on; a status other than
/// 200 or a chunked body is an error (the page is a fixed 200 with a length).
fn parse_head(head: &mut Vec<u8>) -> anyhow::Result<Option<Head>> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        let head_len = match response.parse(head) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => bail!("the response head does not parse: {e}"),
        };
        let code = response.code.unwrap_or(0);
        if (100..200).contains(&code) {
            head.drain(..head_len);
            continue;
        }
        if code != 200 {
            bail!(
                "the server answered {code} {}",
                response.reason.unwrap_or_default()
            );
        }
        // HTTP/1.0 closes after the response unless it says otherwise.
        let mut close = response.version == Some(0);
        let mut content_length = None;
        for header in response.headers.iter() {
            let value = String::from_utf8_lossy(header.value);
            let value = value.trim();
            if header.name.eq_ignore_ascii_case("content-length") {
                content_length = Some(
                    value
                        .parse::<usize>()
                        .with_context(|| format!("Content-Length: {value}"))?,
                );
            } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                bail!("Transfer-Encoding: {value} (the generator reads only Content-Length)");
            } else if header.name.eq_ignore_ascii_case("connection") {
                for token in value.split(',').map(str::trim) {
                    if token.eq_ignore_ascii_case("close") {
                        close = true;
                    } else if token.eq_ignore_ascii_case("keep-alive") {
                        close = false;
                    }
                }
            }
        }
        // No length: the body ends where the stream ends.
        if content_length.is_none() {
            close = true;
        }
        return Ok(Some(Head {
            head_len,
            content_length,
            close,
        }));
    }
}

fn interest_for(stage: &Stage) -> EpollFlags {
    match stage {
        Stage::Connecting | Stage::Sending => EpollFlags::EPOLLOUT,
        Stage::Receiving => EpollFlags::EPOLLIN,
    }
}

/// A server's use of the machine, read from /proc over its whole process tree (a
/// fork-per-client server's children included).
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerUsage {
    /// CPU time of every live process of the tree (each process's CPU clock, all its
    /// threads) plus what its reaped children used (cutime + cstime).
    pub cpu: Duration,
    /// Proportional set size summed over the tree: shared pages split among the
    /// processes that share them, so forked children are not counted twice.
    pub pss_kib: u64,
    /// How many processes the tree has.
    pub processes: usize,
}

impl ServerUsage {
    /// Reads the usage of `pid` and its descendants now.
    pub fn read(pid: i32) -> ServerUsage {
        let mut usage = ServerUsage::default();
        let tick = Duration::from_secs(1) / procfs::ticks_per_second() as u32;
        for p in procfs::descendants(pid) {
            let Some(stat) = procfs::stat(p) else {
                continue;
            };
            usage.processes += 1;
            usage.cpu += process_cpu(p) + tick * stat.reaped_children_ticks as u32;
            usage.pss_kib += procfs::pss_kib(p).unwrap_or(0);
        }
        usage
    }
}

/// A process's CPU time so far, all threads, to the nanosecond (its CPU-time clock).
fn process_cpu(pid: i32) -> Duration {
    use nix::time::{clock_getcpuclockid, clock_gettime};
    clock_getcpuclockid(nix::unistd::Pid::from_raw(pid))
        .and_then(clock_gettime)
        .map(Duration::from)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jain_is_one_for_equal_service_and_one_over_n_for_one_winner() {
        assert!((jain(&[5, 5, 5, 5]) - 1.0).abs() < 1e-9);
        assert!((jain(&[10, 0, 0, 0]) - 0.25).abs() < 1e-9);
        assert_eq!(jain(&[0, 0]), 0.0);
    }

    /// The generator against a real echo server of the harness's own (threads, std):
    /// every workload completes operations, and the usage of this process is readable.
    #[test]
    fn every_workload_completes_operations_against_a_real_echo_server() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut &stream, &mut &stream);
                });
            }
        });
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let udp_addr = udp.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = udp.recv_from(&mut buf) {
                let _ = udp.send_to(&buf[..n], from);
            }
        });
        for (target, workload) in [
            (
                addr,
                Workload::Echo {
                    conns: 3,
                    idle: 2,
                    size: 20_000,
                },
            ),
            (
                addr,
                Workload::ConnectEchoClose {
                    concurrency: 2,
                    size: 64,
                },
            ),
            (
                udp_addr,
                Workload::Udp {
                    sockets: 2,
                    size: 64,
                },
            ),
        ] {
            let plan = Plan {
                target,
                workload,
                warmup: Duration::from_millis(20),
                window: Duration::from_millis(100),
                cpu: None,
            };
            let mut moments = Vec::new();
            let m = run(&plan, |m| moments.push(m)).unwrap();
            assert_eq!(moments, [Moment::WindowOpens, Moment::WindowCloses]);
            assert!(m.ops > 0, "{workload:?}: no operation completed");
            assert_eq!(m.per_slot.len(), workload.slots());
            assert_eq!(m.per_slot.iter().sum::<u64>(), m.ops);
            assert!(m.latency_us(0.5) > 0.0);
            assert!(m.fairness() > 0.0 && m.fairness() <= 1.0 + 1e-9);
        }
        let me = ServerUsage::read(std::process::id() as i32);
        assert!(me.cpu > Duration::ZERO && me.pss_kib > 0 && me.processes >= 1);
    }

    /// A scripted HTTP server on port 0: the connection accepted `k`-th (from 0) is
    /// handed to `script(k, stream)`, on a thread of its own.
    fn scripted_http_server(
        script: impl Fn(usize, std::net::TcpStream) + Send + Sync + 'static,
    ) -> SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let script = std::sync::Arc::new(script);
        std::thread::spawn(move || {
            for (k, stream) in listener.incoming().flatten().enumerate() {
                let script = script.clone();
                std::thread::spawn(move || script(k, stream));
            }
        });
        addr
    }

    /// Reads one request head (up to its blank line) from `stream`; false at its end.
    fn read_request(stream: &mut std::net::TcpStream) -> bool {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && head.len() < 4096 {
            match stream.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                _ => return false,
            }
        }
        assert_eq!(head, HTTP_REQUEST);
        true
    }

    /// Reads requests without answering, until the generator closes the connection.
    fn hold(mut stream: std::net::TcpStream) {
        while read_request(&mut stream) {}
    }

    const PAGE: &[u8] = b"<!DOCTYPE html><title>hello</title>";

    fn ok_head(extra: &str, length: Option<usize>) -> String {
        let length = length.map_or(String::new(), |n| format!("Content-Length: {n}\r\n"));
        format!("HTTP/1.1 200 OK\r\n{length}{extra}\r\n")
    }

    fn plan(target: SocketAddr, conns: usize) -> Plan {
        Plan {
            target,
            workload: Workload::Http { conns },
            // Everything the scripts send falls inside the window.
            warmup: Duration::ZERO,
            window: Duration::from_millis(400),
            cpu: None,
        }
    }

    /// Each connection's responses are counted as the server sent them: a body in two
    /// writes, a 100 Continue before the answer, a response ending with `Connection:
    /// close` and one whose body runs to the end of the stream (counted, then a new
    /// connection), and a connection never answered (counted as such, with its wait).
    #[test]
    fn http_mode_counts_each_connections_responses() {
        let addr = scripted_http_server(|k, mut stream| {
            let answers = match k {
                // The first four connections get 0, 1, 2 and 3 answers; the new
                // connections after a close, none.
                0..=3 => k,
                _ => 0,
            };
            for a in 0..answers {
                if !read_request(&mut stream) {
                    return;
                }
                let last = a + 1 == answers;
                let w = &mut stream;
                match (k, last) {
                    // The last of 3: a 100 Continue first, the body in two writes.
                    (3, true) => {
                        w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").unwrap();
                        w.write_all(ok_head("", Some(PAGE.len())).as_bytes())
                            .unwrap();
                        w.write_all(&PAGE[..10]).unwrap();
                        w.write_all(&PAGE[10..]).unwrap();
                    }
                    // The last of 2: Connection: close, then the server closes.
                    (2, true) => {
                        w.write_all(ok_head("Connection: close\r\n", Some(PAGE.len())).as_bytes())
                            .unwrap();
                        w.write_all(PAGE).unwrap();
                        return;
                    }
                    // The only answer of 1: no length, the body runs to the end.
                    (1, _) => {
                        w.write_all(ok_head("", None).as_bytes()).unwrap();
                        w.write_all(PAGE).unwrap();
                        return;
                    }
                    _ => {
                        let mut whole = ok_head("", Some(PAGE.len())).into_bytes();
                        whole.extend_from_slice(PAGE);
                        w.write_all(&whole).unwrap();
                    }
                }
            }
            hold(stream);
        });
        let m = run(&plan(addr, 4), |_| {}).unwrap();
        let mut counts = m.per_slot.clone();
        counts.sort_unstable();
        assert_eq!(counts, [0, 1, 2, 3], "{m:?}");
        assert_eq!(m.ops, 6);
        assert_eq!(m.reconnects, 2, "the close and the body to the end");
        assert_eq!(m.failures, 0);
        for i in 0..4 {
            assert_eq!(m.per_slot_latency[i].len(), m.per_slot[i]);
        }
        let p = m.per_connection();
        assert_eq!((p.connections, p.min, p.max), (4, 0, 3));
        assert_eq!(p.median, 1.5);
        assert_eq!(p.min_over_median, 0.0);
        // An equal share is 6 / 4 = 1.5; only the unanswered one is below a tenth of it.
        assert_eq!((p.starved, p.unanswered, p.failed), (1, 1, 0));
        assert_eq!(p.worst_responses, 0);
        assert_eq!(p.worst_p99_us, None);
        // The unanswered connection waited the whole window.
        assert!(p.longest_wait_us >= 400_000.0, "{p:?}");
    }

    /// A connection reset before any answer counts as a failure of its slot, which
    /// connects again and is answered; a server that answers 404 fails its connection.
    #[test]
    fn http_mode_counts_a_reset_connection_and_goes_on() {
        let addr = scripted_http_server(|k, mut stream| {
            if !read_request(&mut stream) {
                return;
            }
            match k {
                0 => {
                    let s = socket2::Socket::from(stream);
                    s.set_linger(Some(Duration::ZERO)).unwrap();
                    drop(s);
                    return;
                }
                1 => stream
                    .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                    .unwrap(),
                _ => {
                    for _ in 0..2 {
                        let mut whole = ok_head("", Some(PAGE.len())).into_bytes();
                        whole.extend_from_slice(PAGE);
                        stream.write_all(&whole).unwrap();
                        if !read_request(&mut stream) {
                            return;
                        }
                    }
                }
            }
            hold(stream);
        });
        let m = run(&plan(addr, 1), |_| {}).unwrap();
        assert_eq!(m.per_slot, [2], "{m:?}");
        assert_eq!(m.failures, 2, "the reset and the 404");
        assert_eq!(m.per_slot_failures, [2]);
        let p = m.per_connection();
        assert_eq!((p.failed, p.unanswered, p.worst_responses), (1, 0, 2));
        assert!(p.worst_p99_us.unwrap() > 0.0);
    }
}
