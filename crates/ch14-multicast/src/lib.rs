//! # Chapter 14: multicast and broadcast (멀티캐스트와 브로드캐스트)
//!
//! One datagram, many receivers. **Multicast**: the sender addresses a group
//! (`224.1.1.2`), and the network delivers a copy to every host that joined it
//! (`IP_ADD_MEMBERSHIP`), and to no other; `IP_MULTICAST_TTL` says how many routers it
//! may cross. **Broadcast**: the sender addresses every host of its network
//! (`10.14.0.255`, or `255.255.255.255`), and must say it means it (`SO_BROADCAST`,
//! or the kernel refuses with EACCES).
//!
//! The book's programs, as subcommands: `news-sender <group> <port> [file]`,
//! `news-receiver <group> <port>`, `news-sender-brd <broadcast> <port> [file]`,
//! `news-receiver-brd <port>`. With no subcommand, the demo: a private network of four
//! hosts on one bridge, made without root (`workbook::netns`: a user namespace of our
//! own owning a network namespace per host), so that the demo's multicast and broadcast
//! reach real, separate hosts, and nothing leaves the machine. Two hosts join the group
//! and get every line; the third does not join and gets none; a broadcast reaches all.
//!
//! System calls, in the book's order: sender `socket`, `setsockopt(IP_MULTICAST_TTL)`
//! (or `setsockopt(SO_BROADCAST)`), `sendto` per line, `close`; receiver `socket`,
//! `bind` (the wildcard address), `setsockopt(IP_ADD_MEMBERSHIP)`, `recvfrom` until
//! stopped, `close`.
//!
//! What the book's C gets wrong: its senders loop on `while(!feof(fp))`, and `feof()`
//! is true only after a read has failed, so the last line is sent twice; they `sleep(2)`
//! between lines (ours: `--interval`). Its receivers loop until `recvfrom()` fails,
//! never stopping cleanly. Ours send each line once and stop on SIGINT/SIGTERM.

use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use syscalls::{
    StopSignals, add_membership, bind, close, getsockname, max_udp_payload, recvfrom, sendto,
    set_broadcast, set_multicast_ttl, udp_socket,
};
use workbook::TraceOpt;
use workbook::netns::{BROADCAST, Lan};

/// The book's group and port.
pub const GROUP: Ipv4Addr = Ipv4Addr::new(224, 1, 1, 2);
pub const PORT: u16 = 9190;

/// The book's TTL_64.
pub const TTL: u8 = 64;

/// The longest news file a sender reads.
const MAX_FILE: u64 = 1024 * 1024;

/// Chapter 14: multicast and broadcast news senders and receivers. With no subcommand,
/// runs the demo on a private network of four hosts (no root needed).
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Role>,
    #[command(flatten)]
    pub trace: TraceOpt,
}

#[derive(Subcommand, Debug)]
pub enum Role {
    /// Sends each line of the file to a multicast group (the book's news_sender.c)
    NewsSender {
        /// The group, e.g. 224.1.1.2
        group: Ipv4Addr,
        port: u16,
        /// The news, a line a datagram
        #[arg(default_value = "news.txt")]
        file: PathBuf,
        /// How many routers the datagrams may cross (IP_MULTICAST_TTL)
        #[arg(long, default_value_t = TTL)]
        ttl: u8,
        /// Seconds between lines (the book's sender sleeps 2)
        #[arg(long, default_value = "0", value_name = "SECONDS")]
        interval: f64,
    },
    /// Joins a multicast group and prints every datagram (the book's news_receiver.c)
    NewsReceiver {
        group: Ipv4Addr,
        port: u16,
        /// Do not join the group (IP_ADD_MEMBERSHIP): only bind the port
        #[arg(long)]
        no_join: bool,
    },
    /// Sends each line of the file to a broadcast address (the book's news_sender_brd.c)
    NewsSenderBrd {
        /// The broadcast address, e.g. 255.255.255.255 or the network's (10.14.0.255)
        broadcast: Ipv4Addr,
        port: u16,
        #[arg(default_value = "news.txt")]
        file: PathBuf,
        /// Seconds between lines
        #[arg(long, default_value = "0", value_name = "SECONDS")]
        interval: f64,
    },
    /// Prints every datagram that reaches the port, broadcasts included (news_receiver_brd.c)
    NewsReceiverBrd { port: u16 },
}

/// Runs the subcommand, or the demo when there is none.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    cli.trace.apply();
    match cli.command {
        Some(Role::NewsSender {
            group,
            port,
            file,
            ttl,
            interval,
        }) => news_sender(
            SocketAddr::from((group, port)),
            &file,
            Mode::Multicast { ttl },
            interval,
        ),
        Some(Role::NewsReceiver {
            group,
            port,
            no_join,
        }) => news_receiver(port, (!no_join).then_some(group)),
        Some(Role::NewsSenderBrd {
            broadcast,
            port,
            file,
            interval,
        }) => news_sender(
            SocketAddr::from((broadcast, port)),
            &file,
            Mode::Broadcast,
            interval,
        ),
        Some(Role::NewsReceiverBrd { port }) => news_receiver(port, None),
        None => demo(),
    }
}

/// What a sender sets before it sends.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// `IP_MULTICAST_TTL`.
    Multicast { ttl: u8 },
    /// `SO_BROADCAST`.
    Broadcast,
}

/// The news: the file's lines, each with its newline.
fn news(file: &Path, dest: &SocketAddr) -> anyhow::Result<Vec<String>> {
    let size = std::fs::metadata(file)
        .with_context(|| format!("read {}", file.display()))?
        .len();
    if size > MAX_FILE {
        bail!(
            "{} is {size} bytes; a news file may have {MAX_FILE}",
            file.display()
        );
    }
    let text = std::fs::read_to_string(file).with_context(|| format!("read {}", file.display()))?;
    let lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    if let Some(long) = lines.iter().find(|l| l.len() > max_udp_payload(dest)) {
        bail!(
            "a line of {} bytes does not fit in one datagram",
            long.len()
        );
    }
    Ok(lines)
}

/// The senders (multicast and broadcast): one datagram a line of `file`, to `dest`.
pub fn news_sender(dest: SocketAddr, file: &Path, mode: Mode, interval: f64) -> anyhow::Result<()> {
    if !(interval.is_finite() && (0.0..=60.0).contains(&interval)) {
        bail!("--interval must be from 0 to 60 seconds, not {interval}");
    }
    let lines = news(file, &dest)?;
    // 1. socket(PF_INET, SOCK_DGRAM, 0)
    let sock = udp_socket(&dest)?;
    // 2. The option that makes this sender what it is.
    match mode {
        // setsockopt(IP_MULTICAST_TTL): how far the group's datagrams may go.
        Mode::Multicast { ttl } => set_multicast_ttl(&sock, ttl)?,
        // setsockopt(SO_BROADCAST): without it sendto() to a broadcast address is EACCES.
        Mode::Broadcast => set_broadcast(&sock, true)?,
    }
    // 3. sendto() a line at a time, each line once. (The book's `while(!feof(fp))` sends
    //    the last one twice: feof() turns true only after a read has failed.)
    for (i, line) in lines.iter().enumerate() {
        if i > 0 && interval > 0.0 {
            // The book's sleep(2): pacing the news, not synchronising anything.
            std::thread::sleep(Duration::from_secs_f64(interval));
        }
        sendto(&sock, line.as_bytes(), dest)?;
    }
    println!("sent {} lines to {dest}", lines.len());
    // 4. close()
    close(sock)?;
    Ok(())
}

/// The receivers: bind the port on every address, join `group` if there is one, and
/// print each datagram as it comes, until SIGINT/SIGTERM.
pub fn news_receiver(port: u16, group: Option<Ipv4Addr>) -> anyhow::Result<()> {
    let stop = StopSignals::install()?;
    let any = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    // 1. socket()
    let sock = udp_socket(&any)?;
    // 2. bind(INADDR_ANY): a multicast or broadcast datagram is addressed to the group or
    //    to everyone, not to this host's address, so a socket bound to one address of
    //    ours (127.0.0.1, 10.14.0.2) never matches it.
    bind(&sock, any)?;
    workbook::announce("bound to", getsockname(&sock)?)?;
    // 3. setsockopt(IP_ADD_MEMBERSHIP): the host joins the group (on the interface the
    //    routing table picks for it), and from now on accepts its datagrams.
    if let Some(group) = group {
        add_membership(&sock, group, Ipv4Addr::UNSPECIFIED)?;
        workbook::log_line!("joined {group}");
    }
    receive(&sock, &stop)?;
    // 5. close()
    close(sock)?;
    Ok(())
}

/// 4. recvfrom() and print, until stopped.
fn receive(sock: &OwnedFd, stop: &StopSignals) -> anyhow::Result<()> {
    let mut buf = vec![0u8; 65_536];
    while !stop.requested() {
        match recvfrom(sock, &mut buf) {
            Ok((n, _)) => {
                let text = String::from_utf8_lossy(&buf[..n]);
                workbook::log_line!("{}", text.trim_end_matches('\n'));
            }
            Err(e) if e.is_interrupted() => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A temporary news file, removed when dropped.
struct NewsFile(PathBuf);

impl NewsFile {
    fn new(lines: &[&str]) -> anyhow::Result<NewsFile> {
        let path = std::env::temp_dir().join(format!("ch14-news-{}.txt", std::process::id()));
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
        Ok(NewsFile(path))
    }
}

impl Drop for NewsFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The demo: four hosts of a private network; multicast to two that joined, not to the
/// third that did not; then a broadcast that reaches them all.
fn demo() -> anyhow::Result<()> {
    use workbook::demo::{DemoServer, run_side_on};
    let lan = Lan::new(4)?;
    let [sender, member_a, member_b, stranger] = [0, 1, 2, 3].map(|i| &lan.hosts[i]);
    println!(
        "a private network of 4 hosts on one bridge, made without root: {} (the sender), {} and {} (members), {} (a stranger)",
        sender.addr, member_a.addr, member_b.addr, stranger.addr
    );
    let lines = [
        "Seoul: sunny, 21 degrees",
        "Busan: the ferry leaves at noon",
        "Daejeon: the library opens late today",
    ];
    let file = NewsFile::new(&lines)?;
    let (group, port) = (GROUP.to_string(), PORT.to_string());
    let file_arg = file.0.to_string_lossy().into_owned();

    println!(
        "\n$ ch14-multicast news-receiver {group} {port}   (on {} and {})",
        member_a.name, member_b.name
    );
    let receivers = [(member_a, "member host2"), (member_b, "member host3")]
        .into_iter()
        .map(|(host, side)| {
            let r = DemoServer::start_on(host, side, &["news-receiver", &group, &port])?;
            r.wait_for("the join", |l| l.starts_with("joined "))?;
            Ok(r)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let outsider = DemoServer::start_on(
        stranger,
        "stranger host4",
        &["news-receiver", &group, &port, "--no-join"],
    )?;
    println!(
        "$ ch14-multicast news-sender {group} {port} NEWS   (on {})",
        sender.name
    );
    let status = run_side_on(
        sender,
        "sender host1",
        &["news-sender", &group, &port, &file_arg],
    )?;
    if !status.success() {
        bail!("the sender ended with {status}");
    }
    for r in &receivers {
        for line in lines {
            r.wait_for("a line of the news", |l| l == line)?;
        }
    }
    // A datagram of the demo's own, sent to the stranger's own address after the news:
    // once it has arrived, anything of the news the stranger was going to get is in.
    let probe = std::net::UdpSocket::from(sender.socket(nix::sys::socket::SockType::Datagram)?);
    let marker = "(not news: a datagram to this host's own address, sent after the news)";
    probe
        .send_to(marker.as_bytes(), (stranger.addr, PORT))
        .context("send to the stranger")?;
    let first = outsider.wait_for("the demo's datagram", |l| l == marker || lines.contains(&l))?;
    if first != marker {
        bail!("the stranger, which did not join, got the group's news: {first:?}");
    }
    println!(
        "host2 and host3 joined {group} and got all {} lines; host4 did not join and got none of them (the first datagram it got is the one sent to its own address after the news)",
        lines.len()
    );
    for r in receivers {
        r.stop()?;
    }
    outsider.stop()?;

    println!("\n$ ch14-multicast news-receiver-brd {port}   (on host2, host3, host4)");
    let receivers = [
        (member_a, "host2"),
        (member_b, "host3"),
        (stranger, "host4"),
    ]
    .into_iter()
    .map(|(host, side)| DemoServer::start_on(host, side, &["news-receiver-brd", &port]))
    .collect::<anyhow::Result<Vec<_>>>()?;
    println!("$ ch14-multicast news-sender-brd {BROADCAST} {port} NEWS   (on host1)");
    let status = run_side_on(
        sender,
        "sender host1",
        &["news-sender-brd", &BROADCAST.to_string(), &port, &file_arg],
    )?;
    if !status.success() {
        bail!("the broadcast sender ended with {status}");
    }
    for r in &receivers {
        for line in lines {
            r.wait_for("a line of the broadcast", |l| l == line)?;
        }
    }
    println!(
        "a broadcast reaches every host of the network, joined or not; the sender had to set SO_BROADCAST"
    );
    for r in receivers {
        r.stop()?;
    }
    Ok(())
}
