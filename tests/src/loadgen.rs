//! The bench's load generator: closed loop, epoll-driven, one thread.
//!
//! Every connection (or UDP socket) has exactly one message in flight: send it, read
//! until the *whole* echo is back (never one read() and hope), record the time, send
//! the next. So the rate measured is the server's answer rate at that concurrency, not
//! how fast we can stuff a queue. TCP sockets set TCP_NODELAY: Nagle's algorithm would
//! otherwise hold a small message back while an earlier one is unacknowledged.
//!
//! Three workloads ([`Workload`]): persistent connections (optionally with idle ones
//! that are opened first and never used), connect-echo-close (closed with an RST by
//! SO_LINGER 0, so the generator's ports never sit in TIME_WAIT and cap the rate), and
//! UDP (a connected socket per slot, resent after [`UDP_RESEND_AFTER`]).
//!
//! What a run reports ([`Measured`]): operations in the window, latency percentiles
//! (an HDR histogram in nanoseconds), each slot's count (for Jain's fairness index)
//! and the generator's own CPU time, so that a saturated generator is reported rather
//! than mistaken for a slow server. [`ServerUsage`] reads the server's side from /proc:
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
}

impl Workload {
    /// How many slots count towards fairness.
    pub fn slots(&self) -> usize {
        match *self {
            Workload::Echo { conns, .. } => conns,
            Workload::ConnectEchoClose { concurrency, .. } => concurrency,
            Workload::Udp { sockets, .. } => sockets,
        }
    }

    fn size(&self) -> usize {
        match *self {
            Workload::Echo { size, .. }
            | Workload::ConnectEchoClose { size, .. }
            | Workload::Udp { size, .. } => size,
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
    /// Waiting for the echo; `received` bytes are back.
    Receiving,
}

struct Slot {
    socket: Socket,
    stage: Stage,
    written: usize,
    received: usize,
    started: Instant,
    /// What the socket is registered for now.
    interest: EpollFlags,
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
        let size = plan.workload.size();
        let mut generator = Generator {
            epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).context("epoll_create1")?,
            slots: Vec::new(),
            _idle: Vec::new(),
            // A pattern, not zeros: an echo that returns other bytes is caught cheaply
            // (the last byte of every echo is compared).
            message: (0..size).map(|i| b'a' + (i % 26) as u8).collect(),
            scratch: vec![0; size.clamp(4096, 65536)],
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
            Workload::ConnectEchoClose { concurrency, .. } => {
                for _ in 0..concurrency {
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
        });
        Ok(())
    }

    fn run(mut self, plan: &Plan, mut at: impl FnMut(Moment)) -> anyhow::Result<Measured> {
        let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
        let mut per_slot = vec![0u64; self.slots.len()];
        let (mut ops, mut resent, mut failures) = (0u64, 0u64, 0u64);
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
                (ops, resent, failures) = (0, 0, 0);
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
                    Ok(Some(took)) => {
                        if measuring {
                            ops += 1;
                            per_slot[i] += 1;
                            latency.saturating_record(took.as_nanos() as u64);
                        }
                    }
                    Ok(None) => {}
                    Err(why) => {
                        failures += 1;
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
            generator_cpu,
            resent,
            failures,
        })
    }

    /// Handles readiness on slot `i`; Some(latency) when an operation completed.
    fn serve(&mut self, i: usize, flags: EpollFlags) -> anyhow::Result<Option<Duration>> {
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
    fn receive(&mut self, i: usize) -> anyhow::Result<Option<Duration>> {
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
        Ok(Some(took))
    }

    /// Closes slot `i`'s connection with an RST and starts a new one in its place.
    fn replace(&mut self, i: usize) -> anyhow::Result<()> {
        let fresh = match self.workload {
            Workload::Udp { .. } => {
                // A UDP socket is not spent by an error; send again.
                self.slots[i].started = Instant::now();
                return self.send(i);
            }
            Workload::ConnectEchoClose { .. } => (self.start_connect()?, Stage::Connecting),
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
}
