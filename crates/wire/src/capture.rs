//! Capturing the loopback: an `AF_PACKET` socket bound to `lo`, read by a thread.
//!
//! A packet socket (packet(7)) receives a copy of every frame that passes the interface
//! it is bound to, Ethernet header included (loopback's is all zeros). On loopback each
//! frame passes twice, going out and coming in. We keep the outgoing copy
//! (`PACKET_OUTGOING`; tcpdump keeps the other): the kernel hands it over, stamped, as
//! the device transmits the frame, inside the call that sent it (write(), connect(),
//! close()) or, when TCP held the segment back, whenever it really left.
//!
//! The kernel switches stamping on for everyone when the first socket asks for it, but
//! later, from a work queue; a frame that passes before then is stamped only when we
//! read it, which under load was milliseconds after the receiver had read its bytes: an
//! effect shown before its cause. So [`Capture::start`] sends itself datagrams until one
//! comes back stamped within its own send, before any demo traffic.
//!
//! `SO_TIMESTAMPNS` hands us the stamp. It is wall-clock time; the demos' narration is on
//! `CLOCK_MONOTONIC`, so each stamp is moved onto that clock by the difference of the two
//! clocks read together when the capture starts (the wall clock does not jump in a
//! demo's few seconds, and if it did, only the wire lines would shift).

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sys::socket::{self as sock, ControlMessageOwned, MsgFlags, sockopt};

/// One frame seen on loopback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// When it passed, on `CLOCK_MONOTONIC` (the narration's clock), in nanoseconds.
    pub mono_ns: u64,
    /// When it passed, on the wall clock (for pcap files).
    pub wall: Duration,
    /// The frame, from its Ethernet header on.
    pub data: Vec<u8>,
    /// Its length on the wire (more than `data` only if it was cut).
    pub len: u32,
}

/// The largest frame kept whole: loopback's MTU is 65,536, and segmentation offload can
/// hand a packet socket one frame of up to 64 KiB of TCP payload plus headers.
const SNAPLEN: usize = 262_144;

/// A running capture of loopback.
#[derive(Debug)]
pub struct Capture {
    packets: Arc<Mutex<Vec<Packet>>>,
    stop: Option<OwnedFd>,
    reader: Option<JoinHandle<()>>,
    socket: Arc<OwnedFd>,
}

/// What a capture saw, once stopped.
#[derive(Debug, Clone, Default)]
pub struct Captured {
    pub packets: Vec<Packet>,
    /// Frames the kernel dropped because the socket's buffer was full (PACKET_STATISTICS).
    pub dropped: u32,
}

/// Wall clock minus monotonic clock, in nanoseconds: of many readings of the wall
/// clock between two of the monotonic one, the one with the narrowest gap (a reading
/// interrupted by the scheduler would be off by as long as we were away).
fn clock_offset() -> i128 {
    use nix::time::{ClockId, clock_gettime};
    let ns = |c: ClockId| {
        clock_gettime(c).map_or(0i128, |t| {
            i128::from(t.tv_sec()) * 1_000_000_000 + i128::from(t.tv_nsec())
        })
    };
    (0..64)
        .map(|_| {
            let before = ns(ClockId::CLOCK_MONOTONIC);
            let wall = ns(ClockId::CLOCK_REALTIME);
            let after = ns(ClockId::CLOCK_MONOTONIC);
            (after - before, wall - (before + after) / 2)
        })
        .min()
        .map_or(0, |(_, offset)| offset)
}

/// How long [`Capture::start`] waits for the kernel to stamp frames as they go out.
const STAMPS_DEADLINE: Duration = Duration::from_secs(2);

/// Waits until the kernel stamps frames as they leave, not when we read them.
///
/// The first socket to ask for timestamps switches them on for the whole kernel, but
/// later, from a work queue; until then a frame carries no stamp and recvmsg() stamps
/// it as it reads it, which can be long after it passed. So a datagram is sent to
/// ourselves until its frame's stamp falls within the send, up to a deadline; the probe
/// frames are not kept.
fn wait_for_stamps(socket: &OwnedFd, offset: i128) -> std::io::Result<()> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let probe = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let me = probe.local_addr()?;
    let mut buf = vec![0u8; SNAPLEN];
    let deadline = std::time::Instant::now() + STAMPS_DEADLINE;
    while std::time::Instant::now() < deadline {
        let sent_from = syscalls::trace::now();
        probe.send_to(b"clock", me)?;
        let sent_to = syscalls::trace::now();
        let mut fds = [PollFd::new(socket.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, PollTimeout::from(100u8));
        while let Some(frame) = receive(socket, &mut buf, offset) {
            let Some(frame) = frame else { continue };
            let ours = crate::Segment::parse(&frame)
                .and_then(|s| s.ends())
                .is_some_and(|(src, _)| src == me);
            if ours && (sent_from..=sent_to).contains(&frame.mono_ns) {
                // Empty the queue of the probe's other copies.
                while receive(socket, &mut buf, offset).is_some() {}
                return Ok(());
            }
        }
    }
    Err(std::io::Error::other(
        "the kernel did not stamp frames as they were sent",
    ))
}

impl Capture {
    /// Opens the packet socket on `lo` and starts reading it, keeping every frame
    /// whole. Needs CAP_NET_RAW in the network namespace, which
    /// [`crate::namespace::enter`] gives.
    pub fn start() -> std::io::Result<Capture> {
        Capture::start_keeping(SNAPLEN)
    }

    /// Like [`Capture::start`], keeping at most `keep` bytes of each frame: enough for
    /// the headers and a preview of the payload, for a long run that only describes
    /// what it saw (the checker's).
    pub fn start_keeping(keep: usize) -> std::io::Result<Capture> {
        use syscalls::output::out_of_the_way;
        // Our descriptors go high, out of the numbers a narrated demo shows.
        let socket = out_of_the_way(sock::socket(
            sock::AddressFamily::Packet,
            sock::SockType::Raw,
            sock::SockFlag::SOCK_CLOEXEC | sock::SockFlag::SOCK_NONBLOCK,
            sock::SockProtocol::EthAll,
        )?);
        bind_to_loopback(&socket)?;
        sock::setsockopt(&socket, sockopt::ReceiveTimestampns, &true)?;
        // A generous buffer, so that a burst is not dropped while the reader sleeps.
        let _ = sock::setsockopt(&socket, sockopt::RcvBuf, &(8 << 20));
        let socket = Arc::new(socket);
        let (stop_read, stop_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let (stop_read, stop_write) = (out_of_the_way(stop_read), out_of_the_way(stop_write));
        let packets = Arc::new(Mutex::new(Vec::new()));
        let offset = clock_offset();
        wait_for_stamps(&socket, offset)?;
        let reader = {
            let socket = Arc::clone(&socket);
            let packets = Arc::clone(&packets);
            std::thread::spawn(move || {
                read_until_stopped(&socket, &stop_read, &packets, offset, keep)
            })
        };
        Ok(Capture {
            packets,
            stop: Some(stop_write),
            reader: Some(reader),
            socket,
        })
    }

    /// The frames seen so far (a copy), for a check that wants its evidence now.
    pub fn so_far(&self) -> Vec<Packet> {
        self.packets.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// Stops reading, after taking every frame already queued, and returns them all.
    pub fn stop(mut self) -> Captured {
        self.halt();
        let dropped = dropped(&self.socket);
        Captured {
            packets: std::mem::take(&mut *self.packets.lock().unwrap_or_else(|e| e.into_inner())),
            dropped,
        }
    }

    fn halt(&mut self) {
        // Closing the stop pipe's write end wakes the reader, which drains and returns.
        drop(self.stop.take());
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.halt();
    }
}

/// `bind(2)` to the loopback interface (its index from `if_nametoindex(3)`). libc, not
/// nix: nix cannot build a `sockaddr_ll` to bind to.
fn bind_to_loopback(socket: &OwnedFd) -> std::io::Result<()> {
    let index = nix::net::if_::if_nametoindex("lo")?;
    // SAFETY: an all-zero sockaddr_ll is valid; the fields that matter are set below.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    addr.sll_ifindex = index as i32;
    // SAFETY: addr is a valid sockaddr_ll and the length is its size.
    let rc = unsafe {
        libc::bind(
            socket.as_raw_fd(),
            (&raw const addr).cast::<libc::sockaddr>(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// `getsockopt(SOL_PACKET, PACKET_STATISTICS)`: frames dropped for want of buffer space.
/// libc, not nix: nix has no such option.
fn dropped(socket: &OwnedFd) -> u32 {
    // SAFETY: an all-zero tpacket_stats is valid.
    let mut stats: libc::tpacket_stats = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
    // SAFETY: stats and len are valid for writes, len holding stats' size.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            (&raw mut stats).cast(),
            &raw mut len,
        )
    };
    if rc < 0 { 0 } else { stats.tp_drops }
}

/// The reader: waits for frames or for the stop pipe to close, takes every queued frame
/// each time, and once stopped takes what is left and returns.
fn read_until_stopped(
    socket: &OwnedFd,
    stop: &OwnedFd,
    packets: &Mutex<Vec<Packet>>,
    offset: i128,
    keep: usize,
) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut buf = vec![0u8; SNAPLEN];
    loop {
        let mut fds = [
            PollFd::new(socket.as_fd(), PollFlags::POLLIN),
            PollFd::new(stop.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return,
        }
        let stopping = fds[1].revents().is_some_and(|r| !r.is_empty());
        while let Some(packet) = receive(socket, &mut buf, offset) {
            if let (Some(mut packet), Ok(mut all)) = (packet, packets.lock()) {
                packet.data.truncate(keep);
                all.push(packet);
            }
        }
        if stopping {
            return;
        }
    }
}

/// The next outgoing frame: Some(None) for an incoming copy (skipped), None when
/// nothing is queued.
fn receive(socket: &OwnedFd, buf: &mut [u8], offset: i128) -> Option<Option<Packet>> {
    let mut space = nix::cmsg_space!(nix::sys::time::TimeSpec);
    let (len, wall) = loop {
        let mut iov = [std::io::IoSliceMut::new(buf)];
        match sock::recvmsg::<sock::LinkAddr>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_TRUNC | MsgFlags::MSG_DONTWAIT,
        ) {
            Ok(msg) => {
                if msg
                    .address
                    .is_none_or(|a| a.pkttype() != libc::PACKET_OUTGOING)
                {
                    return Some(None);
                }
                let wall = msg.cmsgs().ok()?.find_map(|c| match c {
                    ControlMessageOwned::ScmTimestampns(ts) => {
                        Some(Duration::new(ts.tv_sec() as u64, ts.tv_nsec() as u32))
                    }
                    _ => None,
                });
                break (msg.bytes, wall);
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return None,
        }
    };
    let wall = wall.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
    });
    let mono = (wall.as_nanos() as i128 - offset).max(0) as u64;
    Some(Some(Packet {
        mono_ns: mono,
        wall,
        data: buf[..len.min(buf.len())].to_vec(),
        len: len as u32,
    }))
}
