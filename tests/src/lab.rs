//! The loss lab (`cargo xtask lab lossy`): TCP retransmits, UDP does not.
//!
//! A child process moves into a user namespace and a network namespace of its own
//! (`workbook::netns::enter_private`: unshare(CLONE_NEWUSER | CLONE_NEWNET), root inside
//! and nowhere else, so no sudo), so that whatever happens (Ctrl-C, a crash) the
//! namespace vanishes with it. Inside, its loopback is up, and `nft` (run as root of
//! that namespace) adds a rule that drops N% of the packets at random on the *input*
//! hook (dropping on output would make the sender's write fail, which is not what a
//! lossy network does; this kernel has no netem). Then the same 200 round trips go
//! three ways, with the checker's own peers: TCP, UDP without retries, UDP with a 200 ms
//! retry.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// `nft`, on the PATH or where Debian puts it (`/usr/sbin`, often not on an ordinary
/// user's PATH).
fn nft() -> Option<PathBuf> {
    crate::template::resolve_program("nft").ok().or_else(|| {
        ["/usr/sbin/nft", "/sbin/nft"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
    })
}

/// What the lab needs, checked before anything runs: `nft`. (No root: the namespace is
/// a user namespace's own; where the kernel refuses those, the child says so.)
pub fn prerequisites() -> Result<(), String> {
    if nft().is_none() {
        return Err("the loss lab needs `nft`: install it with `apt-get install nftables`".into());
    }
    Ok(())
}

/// Inside the child: a namespace of our own, loopback up, the drop rule.
pub fn enter_lossy_namespace(loss_percent: u32) -> anyhow::Result<()> {
    workbook::netns::enter_private()?;
    let rules = format!(
        "table inet lab {{\n  chain input {{\n    type filter hook input priority 0; policy accept;\n    iifname \"lo\" numgen random mod 100 < {loss_percent} drop\n  }}\n}}\n"
    );
    let mut nft = Command::new(nft().context("nft is not installed")?)
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .context("run nft")?;
    nft.stdin
        .take()
        .context("nft stdin")?
        .write_all(rules.as_bytes())
        .context("write the nft rules")?;
    let status = nft.wait().context("wait for nft")?;
    if !status.success() {
        bail!("nft refused the rules ({status}); does this kernel have nf_tables?");
    }
    Ok(())
}

/// One way of sending the round trips: what came back and how long each took.
#[derive(Debug, Default)]
pub struct Outcome {
    pub delivered: usize,
    pub latencies: Vec<Duration>,
    pub resent: usize,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// `count` TCP round trips of 64 bytes, each with its sequence number.
pub fn tcp(count: usize) -> anyhow::Result<Outcome> {
    let listener = TcpListener::bind("127.0.0.1:0").context("bind")?;
    let addr = listener.local_addr()?;
    let server = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut conn, _) = listener.accept()?;
        let mut buf = [0u8; 4096];
        loop {
            let n = conn.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            conn.write_all(&buf[..n])?;
        }
    });
    let mut conn = TcpStream::connect(addr).context("connect (a lost SYN costs a second)")?;
    conn.set_nodelay(true)?;
    conn.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut out = Outcome::default();
    for seq in 0..count {
        let message = format!("{seq:08} {}", "x".repeat(55));
        let started = Instant::now();
        conn.write_all(message.as_bytes())?;
        let mut back = vec![0u8; message.len()];
        conn.read_exact(&mut back).context("read the echo")?;
        if back != message.as_bytes() {
            bail!("TCP delivered round trip {seq} out of order or damaged");
        }
        out.latencies.push(started.elapsed());
        out.delivered += 1;
    }
    drop(conn);
    let _ = server.join();
    Ok(out)
}

/// `count` UDP round trips; each waits `wait` for its reply and sends again up to
/// `tries` times in all.
pub fn udp(count: usize, wait: Duration, tries: usize) -> anyhow::Result<Outcome> {
    let server = UdpSocket::bind("127.0.0.1:0").context("bind")?;
    let addr: SocketAddr = server.local_addr()?;
    server.set_read_timeout(Some(Duration::from_millis(100)))?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_server = stop.clone();
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while !stop_server.load(std::sync::atomic::Ordering::SeqCst) {
            if let Ok((n, from)) = server.recv_from(&mut buf) {
                let _ = server.send_to(&buf[..n], from);
            }
        }
    });
    let client = UdpSocket::bind("127.0.0.1:0").context("bind")?;
    let mut out = Outcome::default();
    let mut buf = [0u8; 2048];
    for seq in 0..count {
        let message = format!("{seq:08} {}", "x".repeat(55));
        let started = Instant::now();
        let mut got = false;
        for attempt in 0..tries {
            if attempt > 0 {
                out.resent += 1;
            }
            client.send_to(message.as_bytes(), addr)?;
            let until = Instant::now() + wait;
            while let Some(left) = until
                .checked_duration_since(Instant::now())
                .filter(|l| !l.is_zero())
            {
                client.set_read_timeout(Some(left))?;
                match client.recv_from(&mut buf) {
                    // A late reply to an earlier datagram is not this one's.
                    Ok((n, _)) if &buf[..n] == message.as_bytes() => {
                        got = true;
                        break;
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            if got {
                break;
            }
        }
        if got {
            out.delivered += 1;
            out.latencies.push(started.elapsed());
        }
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = echo.join();
    Ok(out)
}

/// Runs the three ways and returns the report.
pub fn run_inside(loss_percent: u32, count: usize) -> anyhow::Result<String> {
    enter_lossy_namespace(loss_percent)?;
    let ways = [
        ("TCP", tcp(count)?),
        (
            "UDP, no retries",
            udp(count, Duration::from_millis(100), 1)?,
        ),
        (
            "UDP, 200 ms retry",
            udp(count, Duration::from_millis(200), 50)?,
        ),
    ];
    let mut report = format!(
        "{loss_percent}% of the packets into lo dropped at random (nftables, input hook), {count} round trips of 64 bytes each way\n\n{:<20} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}\n",
        "", "delivered", "p50", "p90", "p99", "max", "resent"
    );
    for (name, mut outcome) in ways {
        outcome.latencies.sort();
        let l = &outcome.latencies;
        report.push_str(&format!(
            "{name:<20} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}\n",
            format!("{}/{count}", outcome.delivered),
            ms(percentile(l, 0.5)),
            ms(percentile(l, 0.9)),
            ms(percentile(l, 0.99)),
            ms(l.last().copied().unwrap_or_default()),
            if name.starts_with("UDP, 200") {
                outcome.resent.to_string()
            } else {
                "-".into()
            }
        ));
    }
    report.push_str(
        "\nTCP delivers every round trip, in order: the kernel retransmits what is lost (at least 200 ms later),\nwhich shows in its high percentiles. UDP without retries loses a request or its reply about\n1 - (1 - loss)^2 of the time. With a 200 ms retry the application gets them all back, and pays\nfor each loss in latency, as TCP does, but with its own timer.\n",
    );
    Ok(report)
}
