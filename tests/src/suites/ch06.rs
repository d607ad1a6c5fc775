//! ch06: the UDP echo server and client, and the connected UDP client.

use std::time::{Duration, Instant};

use crate::check::{
    Chapter, Check, Ctx, Evidence, Outcome, Problem, Readme, Role, RoleKind, Server, fail,
};
use crate::peer::{STRANGER_SAYS, UdpEchoServer, UdpPeer, unused_udp_port};
use crate::procfs::Proto;
use crate::pty::TerminalProgram;
use crate::supervise::describe_status;
use crate::wording::MESSAGE_FROM_SERVER;

use super::{client_role, pattern};

/// Where this chapter's hints send the reader.
pub const CONNECTED_README: Readme = Readme("crates/ch06-connected-udp/README.md");

/// Where this chapter's hints send the reader.
pub const README: Readme = Readme("crates/ch06-udp-echo/README.md");

pub fn chapter() -> Chapter {
    Chapter {
        id: "ch06",
        title: "UDP echo and connected UDP",
        roles: vec![
            Role {
                name: "server",
                kind: RoleKind::Server(Proto::Udp),
                package: "ch06-udp-echo",
                reference_only: false,
                reference: &["server", "{port}"],
                required: &["{port}"],
                allowed: &["{host}", "{port}"],
                example: "./uecho_server {port}",
            },
            client_role(
                "client",
                "ch06-udp-echo",
                &["client", "{host}", "{port}"],
                "./uecho_client {host} {port}",
            ),
            client_role(
                "connected-client",
                "ch06-connected-udp",
                &["client", "{host}", "{port}"],
                "./uecho_con_client {host} {port}",
            ),
        ],
        checks: vec![
            Check {
                name: "echo-datagram",
                role: "server",
                title: "a datagram comes back to its sender",
                hint: "recvfrom() gives the sender's address: sendto() the same bytes back to it",
                see: README.at("The server"),
                run: echo_datagram,
            },
            Check {
                name: "boundaries-kept",
                role: "server",
                title: "datagrams of 1, 100 and 1000 bytes come back as 3 replies of those sizes",
                hint: "one recvfrom() is one datagram: echo each on its own",
                see: README.at("Boundaries"),
                run: boundaries_kept,
            },
            Check {
                name: "max-datagram",
                role: "server",
                title: "a 65,507-byte datagram comes back whole",
                hint: "recvfrom() cuts a datagram longer than the buffer and the rest is lost: receive into 65,507 bytes",
                see: README.at("Buffer size"),
                run: max_datagram,
            },
            Check {
                name: "two-clients-interleaved",
                role: "server",
                title: "replies go to the right sender when two clients take turns",
                hint: "reply to the address recvfrom() returned for this datagram",
                see: README.at("The server"),
                run: two_clients_interleaved,
            },
            Check {
                name: "empty-datagram",
                role: "server",
                title: "an empty datagram is echoed and the server goes on",
                hint: "recvfrom() returning 0 is an empty datagram, not end of stream: UDP has no stream",
                see: README.at("Boundaries"),
                run: empty_datagram,
            },
            Check {
                name: "client-echo",
                role: "client",
                title: "lines typed come back printed; q ends the client with status 0",
                hint: "sendto() the line, recvfrom() the reply, print \"Message from server: \" and it",
                see: README.at("The client"),
                run: client_echo,
            },
            Check {
                name: "client-retries",
                role: "client",
                title: "the first datagram is lost: the client sends again and prints the reply",
                hint: "UDP loses datagrams: wait with a timeout (SO_RCVTIMEO), then send again",
                see: README.at("Loss"),
                run: client_retries,
            },
            Check {
                name: "client-gives-up",
                role: "client",
                title: "no server: the client exits 1 with a message within a few seconds",
                hint: "after a few tries without a reply, say so and exit 1; never wait forever",
                see: README.at("Loss"),
                run: client_gives_up,
            },
            Check {
                name: "client-eof",
                role: "client",
                title: "end of input (Ctrl-D) ends the client with status 0 within 2 s, sending nothing more",
                hint: "fgets() returns NULL at end of input: stop there instead of sending the old line again",
                see: README.at("The client"),
                run: datagram_client_eof,
            },
            Check {
                name: "connected-echo",
                role: "connected-client",
                title: "a connected UDP client's lines come back printed",
                hint: "connect() the UDP socket to the server, then write() and read()",
                see: CONNECTED_README.at("Connected UDP"),
                run: connected_echo,
            },
            Check {
                name: "connected-ignores-strangers",
                role: "connected-client",
                title: "a datagram from another address is not printed as the reply",
                hint: "a connected UDP socket receives only from its peer: connect() it",
                see: CONNECTED_README.at("Connected UDP"),
                run: connected_ignores_strangers,
            },
            Check {
                name: "connected-refused",
                role: "connected-client",
                title: "no server: ECONNREFUSED reported, exit 1 within 2 s",
                hint: "on a connected UDP socket the ICMP port-unreachable comes back as ECONNREFUSED from read(): report it and stop",
                see: CONNECTED_README.at("Connected UDP"),
                run: connected_refused,
            },
            Check {
                name: "connected-eof",
                role: "connected-client",
                title: "end of input (Ctrl-D) ends the connected client with status 0 within 2 s, sending nothing more",
                hint: "fgets() returns NULL at end of input: stop there instead of sending the old line again",
                see: CONNECTED_README.at("Connected UDP"),
                run: datagram_client_eof,
            },
        ],
    }
}

/// What a wait for the server's next datagram brought.
enum Reply {
    Came(Vec<u8>),
    /// None by the deadline.
    TimedOut,
    /// Nothing can come: the server has taken every datagram and waits for the next,
    /// seen twice in /proc 250 ms apart (the reason says so).
    Stuck(String),
}

/// Waits until `until` for the next datagram from the server (others are dropped),
/// ending early on evidence ([`crate::observe::udp_nothing_can_come`]).
fn next_reply(server: &Server, peer: &UdpPeer, until: Instant) -> Result<Reply, String> {
    let mut stuck_since: Option<Instant> = None;
    while Instant::now() < until {
        let slice = until
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(100));
        match peer.recv_from(slice)? {
            Some((reply, from)) if from == server.addr => return Ok(Reply::Came(reply)),
            Some(_) => continue,
            None => {}
        }
        if crate::procfs::stat(server.pid).is_none_or(|p| p.state == 'Z') {
            return Ok(Reply::Stuck("your server is no longer running".into()));
        }
        match crate::observe::udp_nothing_can_come(server.spawned.pid, server.addr.port()) {
            None => stuck_since = None,
            Some(reason) => {
                let since = *stuck_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= Duration::from_millis(250) {
                    return Ok(Reply::Stuck(reason));
                }
            }
        }
    }
    Ok(Reply::TimedOut)
}

/// Sends `data` and waits for the reply from the server, resending up to 3 times (the
/// checker tolerates loss, even though loopback loses nothing).
fn exchange(
    ctx: &mut Ctx,
    server: &Server,
    peer: &UdpPeer,
    data: &[u8],
) -> Result<Vec<u8>, Problem> {
    // The tries end early, on evidence: a server that has taken the datagram and waits
    // for the next will not reply (loopback loses nothing, so a datagram sent again
    // would only be taken again).
    for _ in 0..3 {
        peer.send_to(data, server.addr).map_err(fail)?;
        match next_reply(server, peer, Instant::now() + ctx.secs(2.0)).map_err(fail)? {
            Reply::Came(reply) => return Ok(reply),
            Reply::Stuck(reason) => {
                return Err(ctx.explain(
                    server,
                    Evidence::new(format!("no reply: {reason}"))
                        .sent(&data[..data.len().min(64)])
                        .expected(format!(
                            "the same {} bytes back from {}",
                            data.len(),
                            server.addr
                        )),
                ));
            }
            Reply::TimedOut => {}
        }
    }
    Err(ctx.explain(
        server,
        Evidence::new("no reply after 3 tries, 2 s each")
            .sent(&data[..data.len().min(64)])
            .expected(format!(
                "the same {} bytes back from {}",
                data.len(),
                server.addr
            )),
    ))
}

fn compare(sent: &[u8], got: &[u8], what: &str) -> Outcome {
    if got == sent {
        return Ok(());
    }
    let mut message = format!("{what}: {} bytes sent, {} came back", sent.len(), got.len());
    if got.len() < sent.len() && sent.starts_with(got) {
        message.push_str(&format!(
            ": the datagram was cut to {} bytes (a receive buffer of that size?)",
            got.len()
        ));
    }
    Err(Evidence::new(message)
        .sent(&sent[..sent.len().min(64)])
        .got(&got[..got.len().min(64)])
        .into())
}

fn echo_datagram(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    let peer = UdpPeer::bind(&ctx.recorder).map_err(fail)?;
    let sent = b"Hello, UDP echo server!\n";
    let got = exchange(ctx, &server, &peer, sent)?;
    compare(sent, &got, "the echo differs")
}

fn boundaries_kept(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    let peer = UdpPeer::bind(&ctx.recorder).map_err(fail)?;
    let sizes = [1usize, 100, 1000];
    let datagrams: Vec<Vec<u8>> = sizes.iter().map(|n| pattern(*n, *n as u64)).collect();
    for d in &datagrams {
        peer.send_to(d, server.addr).map_err(fail)?;
    }
    let mut got = Vec::new();
    let until = Instant::now() + ctx.secs(5.0);
    while got.len() < sizes.len() {
        match next_reply(&server, &peer, until).map_err(fail)? {
            Reply::Came(reply) => got.push(reply),
            Reply::TimedOut | Reply::Stuck(_) => break,
        }
    }
    let got_sizes: Vec<usize> = got.iter().map(Vec::len).collect();
    if got != datagrams {
        return Err(ctx.explain(
            &server,
            Evidence::new(format!(
                "3 datagrams of 1, 100 and 1000 bytes were sent back to back; replies of {} bytes came back",
            crate::report::list(&got_sizes)
            ))
            .expected("3 replies of 1, 100 and 1000 bytes, each identical to its datagram"),
        ));
    }
    Ok(())
}

fn max_datagram(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    let peer = UdpPeer::bind(&ctx.recorder).map_err(fail)?;
    let sent = pattern(65_507, 65_507);
    let got = exchange(ctx, &server, &peer, &sent)?;
    compare(&sent, &got, "a maximum-size datagram")
}

fn two_clients_interleaved(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    let a = UdpPeer::bind(&ctx.recorder).map_err(fail)?;
    let b = UdpPeer::bind(&ctx.recorder).map_err(fail)?;
    for round in 1..=3 {
        for (name, peer) in [("A", &a), ("B", &b)] {
            let sent = format!("client {name}, datagram {round}\n");
            let got = exchange(ctx, &server, peer, sent.as_bytes())?;
            compare(
                sent.as_bytes(),
                &got,
                &format!("client {name} got someone else's reply"),
            )?;
        }
    }
    Ok(())
}

fn empty_datagram(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    let peer = UdpPeer::bind(&ctx.recorder).map_err(fail)?;
    let got = exchange(ctx, &server, &peer, b"")?;
    compare(b"", &got, "an empty datagram")?;
    let after = b"after the empty one\n";
    let got = exchange(ctx, &server, &peer, after)
        .map_err(|p| super::echo::with_prefix(p, "after an empty datagram"))?;
    compare(after, &got, "after an empty datagram")
}

/// Types each line and waits for its reply line, then `q` and a clean exit.
fn type_and_expect(ctx: &mut Ctx, client: &mut TerminalProgram, lines: &[&str]) -> Outcome {
    for line in lines {
        client
            .type_text(&format!("{line}\n"))
            .map_err(|e| fail(format!("{e:#}")))?;
        ctx.expect_reply(client, MESSAGE_FROM_SERVER, line, ctx.secs(6.0))?;
    }
    client
        .type_text("q\n")
        .map_err(|e| fail(format!("{e:#}")))?;
    ctx.expect_exit_zero(client.spawned.pid, "after q")
}

fn client_echo(ctx: &mut Ctx) -> Outcome {
    let server = UdpEchoServer::start(0, false, &ctx.recorder).map_err(fail)?;
    let mut client = ctx.client(server.addr, &[])?;
    type_and_expect(ctx, &mut client, &["Hello, UDP!", "a second datagram"])
}

fn client_retries(ctx: &mut Ctx) -> Outcome {
    let server = UdpEchoServer::start(1, false, &ctx.recorder).map_err(fail)?;
    let mut client = ctx.client(server.addr, &[])?;
    type_and_expect(ctx, &mut client, &["this one is lost the first time"])
}

/// No server: the client must give up by itself, with status 1 and a message.
fn gives_up(ctx: &mut Ctx, within: Duration, what: &str) -> Outcome {
    let nobody = unused_udp_port().map_err(fail)?;
    let mut client = ctx.client(nobody, &[])?;
    client
        .type_text("is anyone there?\n")
        .map_err(|e| fail(format!("{e:#}")))?;
    ctx.stated_deadline_starts();
    let status = ctx.sup.wait_exit(client.spawned.pid, within);
    let printed_reply = crate::wording::find_shown(
        &crate::wording::lines_of(&client.output_now()),
        "is anyone there?",
    )
    .is_some();
    let stderr = client.spawned.stderr_tail(3);
    match status {
        _ if printed_reply => Err(Evidence::new(format!(
            "with no server at {nobody}, your client printed a reply"
        ))
        .expected(format!("{what}, exit status 1"))
        .got(&client.output())
        .into()),
        Some(nix::sys::wait::WaitStatus::Exited(_, 1)) if !stderr.trim().is_empty() => Ok(()),
        Some(nix::sys::wait::WaitStatus::Exited(_, 1)) => {
            Err(fail("your client exited 1 but said nothing on stderr"))
        }
        Some(status) => Err(Evidence::new(format!(
            "with no server at {nobody}, your client {}",
            describe_status(&status)
        ))
        .expected(format!("{what}, exit status 1"))
        .got(stderr.as_bytes())
        .into()),
        None => Err(Evidence::new(format!(
            "with no server at {nobody}, your client was still running after {within:.1?}"
        ))
        .expected(format!("{what}, exit status 1"))
        .got(&client.output())
        .into()),
    }
}

fn client_gives_up(ctx: &mut Ctx) -> Outcome {
    let within = ctx.secs(10.0);
    gives_up(
        ctx,
        within,
        "a message such as \"no reply from ... after 3 tries\" on stderr",
    )
}

fn connected_echo(ctx: &mut Ctx) -> Outcome {
    let server = UdpEchoServer::start(0, false, &ctx.recorder).map_err(fail)?;
    let mut client = ctx.client(server.addr, &[])?;
    type_and_expect(
        ctx,
        &mut client,
        &["Hello, connected UDP!", "a second datagram"],
    )
}

fn connected_ignores_strangers(ctx: &mut Ctx) -> Outcome {
    let server = UdpEchoServer::start(0, true, &ctx.recorder).map_err(fail)?;
    let mut client = ctx.client(server.addr, &[])?;
    type_and_expect(ctx, &mut client, &["only my server may answer"])?;
    let stranger = String::from_utf8_lossy(STRANGER_SAYS).trim().to_string();
    if client.lines().iter().any(|l| l.contains(&stranger)) {
        return Err(Evidence::new(
            "your client printed a datagram that came from another address than its server's",
        )
        .expected("only the server's reply")
        .got(&client.output())
        .into());
    }
    Ok(())
}

fn connected_refused(ctx: &mut Ctx) -> Outcome {
    let within = ctx.secs(2.0);
    gives_up(
        ctx,
        within,
        "\"connection refused\" (ECONNREFUSED from the ICMP port-unreachable)",
    )
}

/// End of input after one exchange: the client exits with status 0 within 2 s and
/// sends no more datagrams (the book's client sends its last line again and again).
fn datagram_client_eof(ctx: &mut Ctx) -> Outcome {
    use std::sync::atomic::Ordering;
    let server = UdpEchoServer::start(0, false, &ctx.recorder).map_err(fail)?;
    let mut client = ctx.client(server.addr, &[])?;
    // One exchange first, so the client is in its loop; its reply's wording is another
    // check's business: the datagram's arrival and a line printed suffice.
    let printed = client.line_count();
    client
        .type_text("last\n")
        .map_err(|e| fail(format!("{e:#}")))?;
    let until = Instant::now() + ctx.secs(6.0);
    while server.received.load(Ordering::SeqCst) == 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    client.wait_for_more_lines(printed, ctx.secs(2.0));
    let before = server.received.load(Ordering::SeqCst);
    client.end_input().map_err(|e| fail(format!("{e:#}")))?;
    ctx.stated_deadline_starts();
    let deadline = ctx.secs(2.0);
    let until = Instant::now() + deadline;
    loop {
        if let Some(status) = ctx
            .sup
            .wait_exit(client.spawned.pid, Duration::from_millis(50))
        {
            return match status {
                nix::sys::wait::WaitStatus::Exited(_, 0) => Ok(()),
                status => Err(fail(format!(
                    "at end of input your client {}",
                    describe_status(&status)
                ))),
            };
        }
        let more = server
            .received
            .load(Ordering::SeqCst)
            .saturating_sub(before);
        if more > 8 || Instant::now() >= until {
            let mut message =
                format!("your client was still running {deadline:.1?} after end of input (Ctrl-D)");
            if more > 0 {
                message.push_str(&format!(
                    "; meanwhile it sent {more} more datagrams: it sends the last line again and again"
                ));
            }
            return Err(Evidence::new(message)
                .got(&client.output())
                .doing(ctx.doing(client.spawned.pid))
                .into());
        }
    }
}
