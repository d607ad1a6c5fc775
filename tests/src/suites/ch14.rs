//! ch14: multicast and broadcast, on a private network the check makes for itself
//! without root (`workbook::netns::Lan`: hosts in network namespaces of a user
//! namespace of our own, joined by a bridge). The program under test runs on one host,
//! the checker's own senders and receivers on the others, so that what reaches a host
//! that did not join, and the TTL a datagram arrives with, are seen as on a real network.
//!
//! A receiver is ready when its host shows it bound to the port (`/proc/PID/net/udp`) and,
//! for multicast, the host a member of the group (`/proc/PID/net/igmp`); nothing is sent
//! to find out. What a receiver of the checker's got is known once a datagram of the
//! checker's own, sent after the program's, has arrived behind them.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::socket::SockType;
use workbook::netns::{BROADCAST, Host, Lan};

use crate::check::{Chapter, Check, Ctx, Evidence, Outcome, Problem, Readme, Role, RoleKind, fail};
use crate::procfs::{self, Proto};
use crate::pty::TerminalProgram;
use crate::report::{list, quote};
use crate::supervise::describe_status;

/// Where this chapter's hints send the reader.
pub const README: Readme = Readme("crates/ch14-multicast/README.md");

/// The book's group and port. The network is the check's own: no port is taken.
const GROUP: Ipv4Addr = Ipv4Addr::new(224, 1, 1, 2);
const PORT: u16 = 9190;

/// The TTL a datagram must arrive with to have been able to cross a router.
const CROSSES_A_ROUTER: u8 = 2;

fn role(
    name: &'static str,
    kind: RoleKind,
    reference: &'static [&'static str],
    required: &'static [&'static str],
    allowed: &'static [&'static str],
    example: &'static str,
) -> Role {
    Role {
        name,
        kind,
        package: "ch14-multicast",
        reference_only: false,
        reference,
        required,
        allowed,
        example,
    }
}

pub fn chapter() -> Chapter {
    Chapter {
        id: "ch14",
        title: "multicast and broadcast, on a private network made without root",
        roles: vec![
            role(
                "news-sender",
                RoleKind::Tool,
                &["news-sender", "{group}", "{port}", "{file}"],
                &["{group}", "{port}"],
                &["{group}", "{port}", "{file}"],
                "./news_sender {group} {port} {file}",
            ),
            role(
                "news-receiver",
                RoleKind::Server(Proto::Udp),
                &["news-receiver", "{group}", "{port}"],
                &["{group}", "{port}"],
                &["{group}", "{port}"],
                "./news_receiver {group} {port}",
            ),
            role(
                "news-sender-brd",
                RoleKind::Tool,
                &["news-sender-brd", "{broadcast}", "{port}", "{file}"],
                &["{broadcast}", "{port}"],
                &["{broadcast}", "{port}", "{file}"],
                "./news_sender_brd {broadcast} {port} {file}",
            ),
            role(
                "news-receiver-brd",
                RoleKind::Server(Proto::Udp),
                &["news-receiver-brd", "{port}"],
                &["{port}"],
                &["{port}"],
                "./news_receiver_brd {port}",
            ),
        ],
        checks: vec![
            Check {
                name: "members-receive",
                role: "news-receiver",
                title: "your receiver on two hosts: both join the group and print every line the checker multicasts",
                hint: "bind the port on every address (INADDR_ANY), then setsockopt(IP_ADD_MEMBERSHIP) with the group: a host that has not joined drops the group's datagrams",
                see: README.at("Multicast"),
                run: members_receive,
            },
            Check {
                name: "sender-reaches-members",
                role: "news-sender",
                title: "two hosts that joined get every line of the file once, in order; a host that did not join gets none",
                hint: "send each line once, to the group: loop on fgets() returning NULL, not on feof(), which turns true only after a read has failed (and the last line goes twice)",
                see: README.at("Multicast"),
                run: sender_reaches_members,
            },
            Check {
                name: "multicast-ttl",
                role: "news-sender",
                title: "the datagrams arrive with the TTL the sender set (IP_MULTICAST_TTL), enough to cross a router",
                hint: "setsockopt(IP_MULTICAST_TTL) before sendto(), as the book's TTL_64: 0 means this host only, 1 (the default) this network only",
                see: README.at("TTL"),
                run: multicast_ttl,
            },
            Check {
                name: "broadcast-receive",
                role: "news-receiver-brd",
                title: "your broadcast receiver on two hosts prints every line the checker broadcasts",
                hint: "bind the port on every address (INADDR_ANY): a broadcast is addressed to the network's broadcast address, which a socket bound to 127.0.0.1 or to the host's own address never matches",
                see: README.at("Broadcast"),
                run: broadcast_receive,
            },
            Check {
                name: "broadcast-send",
                role: "news-sender-brd",
                title: "every line of the file reaches the checker's receivers on two other hosts",
                hint: "setsockopt(SO_BROADCAST, 1) before sendto() to a broadcast address: without it the kernel refuses the datagram (EACCES)",
                see: README.at("Broadcast"),
                run: broadcast_send,
            },
        ],
    }
}

/// A private network of `n` hosts for this check. Where the system refuses unprivileged
/// user namespaces, the check is SKIP with the one line that says how to allow them
/// (FAIL under CI, as a missing tool).
fn private_network(ctx: &Ctx, n: usize) -> Result<Lan, Problem> {
    Lan::new(n).map_err(|e| {
        if workbook::netns::is_refused(&e) && !ctx.settings.ci {
            Problem::Skip(format!("{e}"))
        } else {
            fail(format!("could not make the check's private network: {e:#}"))
        }
    })
}

/// The news this check sends or has sent: three lines that name the check's role.
fn news(role: &str) -> Vec<String> {
    vec![
        format!("{role} 1: the checker's first line of news"),
        format!("{role} 2: a second line, sent after the first"),
        format!("{role} 3: the last line"),
    ]
}

/// Writes the news to `news.txt` in the check's working directory (where the book's
/// sender, which opens `news.txt`, finds it); returns its path for `{file}`.
fn news_file(ctx: &Ctx, lines: &[String]) -> Result<PathBuf, Problem> {
    let path = ctx.sup.workdir().join("news.txt");
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, text).map_err(|e| fail(format!("write {}: {e}", path.display())))?;
    Ok(path)
}

/// A UDP socket of the checker's on `host`.
fn socket_on(host: &Host) -> Result<OwnedFd, Problem> {
    host.socket(SockType::Datagram)
        .map_err(|e| fail(format!("a socket on {}: {e:#}", host.name)))
}

/// A datagram one of the checker's receivers got: its text (trailing newline and
/// spaces trimmed) and the TTL it arrived with.
#[derive(Debug, Clone)]
struct Datagram {
    text: String,
    ttl: Option<u8>,
}

/// What each of the checker's receivers got, in the order they were given.
type Got = Vec<Vec<Datagram>>;

/// A receiver of the checker's on `host`: bound to the port on every address, a member
/// of `group` when given, and told the TTL of each datagram (IP_RECVTTL).
struct Listener {
    sock: UdpSocket,
    host: String,
}

impl Listener {
    fn on(host: &Host, group: Option<Ipv4Addr>) -> Result<Listener, Problem> {
        let fd = socket_on(host)?;
        let any = nix::sys::socket::SockaddrIn::new(0, 0, 0, 0, PORT);
        nix::sys::socket::bind(fd.as_raw_fd(), &any).map_err(|e| fail(format!("bind: {e}")))?;
        nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::Ipv4RecvTtl, &true)
            .map_err(|e| fail(format!("IP_RECVTTL: {e}")))?;
        let sock = UdpSocket::from(fd);
        if let Some(group) = group {
            sock.join_multicast_v4(&group, &Ipv4Addr::UNSPECIFIED)
                .map_err(|e| fail(format!("IP_ADD_MEMBERSHIP: {e}")))?;
        }
        Ok(Listener {
            sock,
            host: host.name.clone(),
        })
    }

    /// One datagram and its TTL, waiting at most `wait`.
    fn recv(&self, wait: Duration) -> Option<Datagram> {
        use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
        self.sock
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
            .ok()?;
        let mut buf = vec![0u8; 65_536];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!(libc::c_int);
        let msg = recvmsg::<()>(
            self.sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::empty(),
        )
        .ok()?;
        let ttl = msg.cmsgs().ok()?.find_map(|c| match c {
            ControlMessageOwned::Ipv4Ttl(ttl) => Some(ttl as u8),
            _ => None,
        });
        let n = msg.bytes;
        Some(Datagram {
            text: String::from_utf8_lossy(&buf[..n]).trim_end().to_string(),
            ttl,
        })
    }

    /// Everything that arrived before `marker` (a datagram the checker sends after the
    /// program has sent everything): (text, TTL) each. None when the marker did not come.
    fn before_marker(&self, marker: &str, deadline: Duration) -> Option<Vec<Datagram>> {
        let until = Instant::now() + deadline;
        let mut got = Vec::new();
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            match self.recv(left) {
                Some(d) if d.text == marker => return Some(got),
                Some(datagram) => got.push(datagram),
                None => return None,
            }
        }
        None
    }
}

/// Sends `marker` from `from` to each listener's host address, behind what the program
/// under test sent, and returns what each got before it.
fn collect(ctx: &Ctx, from: &Host, listeners: &[(&Listener, Ipv4Addr)]) -> Result<Got, Problem> {
    let marker = "(the checker's marker, after the news)";
    let sock = UdpSocket::from(socket_on(from)?);
    listeners
        .iter()
        .map(|(listener, addr)| {
            sock.send_to(marker.as_bytes(), (*addr, PORT))
                .map_err(|e| fail(format!("send the marker to {addr}: {e}")))?;
            listener
                .before_marker(marker, ctx.secs(5.0))
                .ok_or_else(|| {
                    fail(format!(
                        "the checker's own datagram to {} never arrived",
                        listener.host
                    ))
                })
        })
        .collect()
}

/// Starts `role` on `host` with `values`.
fn start_on(
    ctx: &mut Ctx,
    host: &Host,
    role: &str,
    values: &[(&'static str, String)],
) -> Result<TerminalProgram, Problem> {
    ctx.run_on(Some(host));
    let started = ctx.start_role(role, values);
    ctx.run_on(None);
    started
}

/// Waits until `program`'s host shows it bound to the port, and, for `group`, until its
/// host is a member (up to 3 s more: a receiver that never joins is then sent to
/// anyway, and the report says what its host shows). Returns the address it is bound
/// to and whether its host joined.
fn wait_ready(
    ctx: &mut Ctx,
    program: &TerminalProgram,
    group: Option<Ipv4Addr>,
) -> Result<(SocketAddr, bool), Problem> {
    let pid = program.spawned.pid;
    let until = Instant::now() + ctx.secs(10.0);
    let bound = loop {
        if let Some(row) = procfs::sockets_of_process(pid, Proto::Udp, PORT)
            .into_iter()
            .find(|r| r.remote.port() == 0)
        {
            break row.local;
        }
        if let Some(status) = ctx.sup.status(pid) {
            return Err(Evidence::new(format!(
                "your receiver {} before it bound port {PORT}",
                describe_status(&status)
            ))
            .got(&program.output())
            .into());
        }
        if Instant::now() >= until {
            return Err(Evidence::new(format!(
                "your receiver did not bind port {PORT} within {:.1?}",
                ctx.secs(10.0)
            ))
            .got(&program.output())
            .doing(ctx.doing(pid))
            .into());
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let Some(group) = group else {
        return Ok((bound, true));
    };
    let until = Instant::now() + ctx.secs(3.0);
    loop {
        if procfs::igmp_groups(pid).iter().any(|(_, g)| *g == group) {
            return Ok((bound, true));
        }
        if Instant::now() >= until || ctx.sup.status(pid).is_some() {
            return Ok((bound, false));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until `program` has printed every one of `lines`; the lines it missed.
fn missed(ctx: &Ctx, program: &TerminalProgram, lines: &[String]) -> Vec<String> {
    let until = Instant::now() + ctx.secs(5.0);
    lines
        .iter()
        .filter(|line| {
            let left = until.saturating_duration_since(Instant::now());
            program
                .wait_for_line(left, |l| {
                    crate::wording::find_shown(&[l.to_string()], line).is_some()
                })
                .is_none()
        })
        .cloned()
        .collect()
}

/// The checker's sender on `from`: each line with its newline, as the book's fgets()
/// reads them, to `dest`.
fn send_news(from: &Host, dest: SocketAddr, lines: &[String], broadcast: bool) -> Outcome {
    let sock = UdpSocket::from(socket_on(from)?);
    sock.set_multicast_ttl_v4(64)
        .and_then(|()| sock.set_broadcast(broadcast))
        .map_err(|e| fail(format!("setsockopt: {e}")))?;
    for line in lines {
        sock.send_to(format!("{line}\n").as_bytes(), dest)
            .map_err(|e| fail(format!("sendto {dest}: {e}")))?;
    }
    Ok(())
}

/// Your receivers (`role`) on two hosts, the checker's sender on a third: both print
/// every line sent to `dest`.
fn receivers_print_all(ctx: &mut Ctx, role: &str, group: Option<Ipv4Addr>) -> Outcome {
    let lan = private_network(ctx, 3)?;
    let mut values = vec![("{port}", PORT.to_string())];
    if let Some(group) = group {
        values.push(("{group}", group.to_string()));
    }
    let mut receivers = Vec::new();
    for host in &lan.hosts[1..] {
        let program = start_on(ctx, host, role, &values)?;
        let (bound, joined) = wait_ready(ctx, &program, group)?;
        receivers.push((host, program, bound, joined));
    }
    let lines = news(role);
    let dest = SocketAddr::from((group.unwrap_or(BROADCAST), PORT));
    send_news(&lan.hosts[0], dest, &lines, group.is_none())?;
    for (host, program, bound, joined) in &receivers {
        let missed = missed(ctx, program, &lines);
        if missed.is_empty() {
            continue;
        }
        let mut evidence = Evidence::new(format!(
            "your receiver on {} ({}) printed {} of the {} lines the checker sent to {dest}",
            host.name,
            host.addr,
            lines.len() - missed.len(),
            lines.len()
        ))
        .expected(list(lines.iter().map(|l| quote(l))))
        .got(&program.output());
        if let Some(group) = group
            && !joined
        {
            evidence = evidence.doing(format!(
                "its host never joined {group}: /proc/net/igmp on {} lists no such group, so the host drops the group's datagrams (IP_ADD_MEMBERSHIP joins it)",
                host.name
            ));
        } else if !bound.ip().is_unspecified() {
            evidence = evidence.doing(format!(
                "it is bound to {bound}, one address of the host: a datagram to {} is not addressed to {}, and that socket never gets it (bind INADDR_ANY)",
                dest.ip(),
                bound.ip()
            ));
        }
        return Err(evidence.into());
    }
    Ok(())
}

fn members_receive(ctx: &mut Ctx) -> Outcome {
    receivers_print_all(ctx, "news-receiver", Some(GROUP))
}

fn broadcast_receive(ctx: &mut Ctx) -> Outcome {
    receivers_print_all(ctx, "news-receiver-brd", None)
}

/// What the checker's receivers got from a sender under test, and its run.
struct Heard {
    /// Each member's host name, and what it got.
    members: Vec<(String, Vec<Datagram>)>,
    stranger: Option<Vec<Datagram>>,
    lines: Vec<String>,
    run: crate::check::ToolRun,
}

/// Runs your sender (`role`) on host1 and gathers what the checker's receivers got: the
/// members on host2 and host3 (joined to the group, for multicast) and, for multicast,
/// the stranger on host4 (bound to the port, not joined).
fn run_sender(ctx: &mut Ctx, role: &str, multicast: bool) -> Result<Heard, Problem> {
    let hosts = if multicast { 4 } else { 3 };
    let lan = private_network(ctx, hosts)?;
    let group = multicast.then_some(GROUP);
    let members: Vec<Listener> = lan.hosts[1..3]
        .iter()
        .map(|h| Listener::on(h, group))
        .collect::<Result<_, _>>()?;
    let stranger = match multicast {
        true => Some(Listener::on(&lan.hosts[3], None)?),
        false => None,
    };
    let lines = news(role);
    let file = news_file(ctx, &lines)?;
    let dest = group.unwrap_or(BROADCAST);
    let placeholder = if multicast { "{group}" } else { "{broadcast}" };
    let values = [
        (placeholder, dest.to_string()),
        ("{port}", PORT.to_string()),
        ("{file}", file.to_string_lossy().into_owned()),
    ];
    ctx.run_on(Some(&lan.hosts[0]));
    let run = ctx.tool_with(&values, &[]);
    ctx.run_on(None);
    let run = run?;
    let mut targets: Vec<(&Listener, Ipv4Addr)> = members
        .iter()
        .zip(&lan.hosts[1..3])
        .map(|(l, h)| (l, h.addr))
        .collect();
    if let Some(s) = &stranger {
        targets.push((s, lan.hosts[3].addr));
    }
    let mut got = collect(ctx, &lan.hosts[0], &targets)?;
    let stranger = stranger.map(|_| got.pop().unwrap_or_default());
    Ok(Heard {
        members: members.iter().map(|l| l.host.clone()).zip(got).collect(),
        stranger,
        lines,
        run,
    })
}

/// The lines each member got, if any member's differ from the file's.
fn members_differ(heard: &Heard) -> Option<(String, Vec<String>)> {
    heard.members.iter().find_map(|(host, got)| {
        let texts: Vec<String> = got.iter().map(|d| d.text.clone()).collect();
        (texts != heard.lines).then(|| (host.clone(), texts))
    })
}

/// The failure when the members did not get the file, once, in order.
fn not_delivered(heard: &Heard, dest: &str, host: &str, got: &[String]) -> Problem {
    let mut message = format!(
        "the checker's receiver on {host} got {} datagrams from your sender; the file has {} lines",
        got.len(),
        heard.lines.len()
    );
    if got.len() == heard.lines.len() + 1
        && got[..heard.lines.len()] == heard.lines[..]
        && got.last() == heard.lines.last()
    {
        message.push_str(
            ": the last line came twice (a loop on feof() sends it again after fgets() has failed)",
        );
    } else if got.is_empty() {
        message.push_str(&format!(": none reached it ({dest})"));
    }
    let status = describe_status(&heard.run.status);
    Evidence::new(message)
        .expected(list(heard.lines.iter().map(|l| quote(l))))
        .got(got.join("\n").as_bytes())
        .doing(format!("your sender {status}"))
        .into()
}

fn sender_reaches_members(ctx: &mut Ctx) -> Outcome {
    let heard = run_sender(ctx, "news-sender", true)?;
    if let Some((host, got)) = members_differ(&heard) {
        return Err(not_delivered(&heard, "sent to the group", &host, &got));
    }
    if let Some(leaked) = heard.stranger.as_ref().filter(|s| !s.is_empty()) {
        let texts: Vec<String> = leaked.iter().map(|d| d.text.clone()).collect();
        return Err(Evidence::new(format!(
            "a host that did not join {GROUP} got {} of your datagrams",
            texts.len()
        ))
        .expected("none: a multicast datagram reaches the hosts that joined its group only")
        .got(texts.join("\n").as_bytes())
        .into());
    }
    if heard.run.code() != Some(0) {
        return Err(fail(format!(
            "your sender {} after sending",
            describe_status(&heard.run.status)
        )));
    }
    Ok(())
}

fn multicast_ttl(ctx: &mut Ctx) -> Outcome {
    let heard = run_sender(ctx, "news-sender", true)?;
    let ttls: Vec<Option<u8>> = heard
        .members
        .iter()
        .flat_map(|(_, got)| got.iter().map(|d| d.ttl))
        .collect();
    if ttls.is_empty() {
        return Err(Evidence::new(
            "none of your datagrams reached the hosts that joined the group, so no TTL could be seen",
        )
        .expected("the lines of the file, with a TTL above 1")
        .doing(format!("your sender {}", describe_status(&heard.run.status)))
        .into());
    }
    let low: Vec<u8> = ttls
        .iter()
        .map(|t| t.unwrap_or(0))
        .filter(|t| *t < CROSSES_A_ROUTER)
        .collect();
    if let Some(ttl) = low.first() {
        let meaning = match ttl {
            0 => {
                "TTL 0 means this host only (RFC 1112): it should never have left the sender's host, and any router drops it"
            }
            _ => {
                "TTL 1 (the default without IP_MULTICAST_TTL) reaches this network only: the first router drops it"
            }
        };
        return Err(
            Evidence::new(format!("your datagrams arrived with TTL {ttl}: {meaning}"))
                .expected(format!(
                    "a TTL of at least {CROSSES_A_ROUTER} (the book sets 64 with IP_MULTICAST_TTL)"
                ))
                .into(),
        );
    }
    Ok(())
}

fn broadcast_send(ctx: &mut Ctx) -> Outcome {
    let heard = run_sender(ctx, "news-sender-brd", false)?;
    if let Some((host, got)) = members_differ(&heard) {
        return Err(not_delivered(
            &heard,
            &format!("sent to {BROADCAST}"),
            &host,
            &got,
        ));
    }
    if heard.run.code() != Some(0) {
        return Err(fail(format!(
            "your sender {} after sending",
            describe_status(&heard.run.status)
        )));
    }
    Ok(())
}
