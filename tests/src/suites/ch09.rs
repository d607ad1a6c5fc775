//! ch09: the handshake and backlog queue, TCP states, TIME_WAIT and SO_REUSEADDR,
//! observed from outside: the checker reads /proc/net/tcp itself while our demos run.

use std::net::SocketAddr;

use crate::check::{Chapter, Check, Ctx, Evidence, Outcome, Readme, Role, RoleKind, fail};
use crate::procfs::{self, Proto};

const ESTABLISHED: u8 = 0x01;
const SYN_SENT: u8 = 0x02;
const TIME_WAIT: u8 = 0x06;

fn demo_role(name: &'static str, subcommand: &'static [&'static str]) -> Role {
    Role {
        name,
        kind: RoleKind::Tool,
        package: "ch09-tcp-inside",
        reference_only: true,
        reference: subcommand,
        required: &[],
        allowed: &[],
        example: "(our own binary)",
    }
}

/// Where this chapter's hints send the reader.
pub const README: Readme = Readme("crates/ch09-tcp-inside/README.md");

pub fn chapter() -> Chapter {
    Chapter {
        id: "ch09",
        title: "the handshake, the backlog queue, TCP states and TIME_WAIT",
        roles: vec![
            demo_role("backlog-demo", &["backlog"]),
            demo_role("states-demo", &["states"]),
            demo_role("reuseaddr-demo", &["reuseaddr"]),
        ],
        checks: vec![
            Check {
                name: "connect-before-accept",
                role: "backlog-demo",
                title: "before any accept(), backlog+1 connections are ESTABLISHED and queued; the next SYN waits",
                hint: "the kernel completes the handshake after listen(); accept() only takes a finished connection off the queue",
                see: README.at("The backlog queue"),
                run: connect_before_accept,
            },
            Check {
                name: "backlog-fifo",
                role: "backlog-demo",
                title: "accept() returns the queued connections in the order they connected",
                hint: "the accept queue is first in, first out",
                see: README.at("The backlog queue"),
                run: backlog_fifo,
            },
            Check {
                name: "time-wait-side",
                role: "states-demo",
                title: "TIME_WAIT is on the side that closed first",
                hint: "the side that sends the first FIN ends in TIME_WAIT for 2 MSL",
                see: README.at("States"),
                run: time_wait_side,
            },
            Check {
                name: "reuseaddr",
                role: "reuseaddr-demo",
                title: "during TIME_WAIT bind() fails with EADDRINUSE; with SO_REUSEADDR on both runs it succeeds",
                hint: "set SO_REUSEADDR before bind() on every run of a server",
                see: README.at("SO_REUSEADDR"),
                run: reuseaddr,
            },
        ],
    }
}

/// The first `host:port` in a line that starts with `prefix`.
fn addr_after(text: &str, prefix: &str) -> Option<SocketAddr> {
    text.lines()
        .find(|l| l.starts_with(prefix))?
        .split_whitespace()
        .find_map(|w| w.trim_end_matches([':', ',', ';']).parse().ok())
}

fn connect_before_accept(ctx: &mut Ctx) -> Outcome {
    let demo = ctx.start_tool(&["--backlog", "2", "--clients", "5", "--pause", "2"])?;
    demo.wait_for_line(ctx.secs(10.0), |l| l.starts_with("pausing"))
        .ok_or_else(|| {
            Evidence::new("the demo never reached its pause before accept()").got(&demo.output())
        })?;
    let out = demo.lines().join("\n");
    let server = addr_after(&out, "listening on")
        .ok_or_else(|| Evidence::new("no `listening on ADDR` line").got(out.as_bytes()))?;
    // Observed now, by us, while the demo has not called accept().
    let rows = procfs::sockets(Proto::Tcp);
    let queued = rows
        .iter()
        .find(|r| r.local == server && r.state == procfs::TCP_LISTEN)
        .map_or(0, |r| r.rx_queue);
    let clients: Vec<_> = rows.iter().filter(|r| r.remote == server).collect();
    let established = clients.iter().filter(|r| r.state == ESTABLISHED).count();
    let pending = clients.iter().filter(|r| r.state == SYN_SENT).count();
    if queued != 3 || established != 3 || pending != 2 {
        return Err(Evidence::new(format!(
            "with backlog 2 and no accept() yet, /proc/net/tcp shows {queued} queued, {established} clients ESTABLISHED, {pending} in SYN_SENT"
        ))
        .expected("3 queued (backlog + 1), 3 clients ESTABLISHED, 2 in SYN_SENT")
        .got(out.as_bytes())
        .into());
    }
    Ok(())
}

fn backlog_fifo(ctx: &mut Ctx) -> Outcome {
    let run = ctx.tool(&["--backlog", "2", "--clients", "5"])?;
    let out = run.stdout_text();
    let port = |l: &str| {
        l.split("(port ")
            .nth(1)
            .and_then(|r| r.split(')').next())
            .and_then(|p| p.parse::<u16>().ok())
    };
    let connected: Vec<u16> = out
        .lines()
        .filter(|l| l.starts_with("client "))
        .filter_map(port)
        .collect();
    let accepted: Vec<u16> = out
        .lines()
        .filter(|l| l.starts_with("accept() #"))
        .filter_map(port)
        .collect();
    if connected.len() != 5 || accepted != connected {
        return Err(Evidence::new(
            "the ports accept() returned are not the ports that connected, in order",
        )
        .expected(format!(
            "accept order {} (the connect order)",
            crate::report::list(&connected)
        ))
        .got(format!("accept order {}\n{out}", crate::report::list(&accepted)).as_bytes())
        .into());
    }
    if run.code() != Some(0) {
        return Err(fail(format!(
            "the demo {}",
            crate::supervise::describe_status(&run.status)
        )));
    }
    Ok(())
}

fn time_wait_side(ctx: &mut Ctx) -> Outcome {
    let run = ctx.tool(&[])?;
    let out = run.stdout_text();
    let server = addr_after(&out, "server ")
        .ok_or_else(|| Evidence::new("no `server ADDR` line").got(&run.stdout))?;
    let client = addr_after(&out, "client ")
        .ok_or_else(|| Evidence::new("no `client ADDR` line").got(&run.stdout))?;
    // The demo has exited; TIME_WAIT outlives it (60 s), so we can look ourselves.
    let rows = procfs::sockets(Proto::Tcp);
    let on_client = rows
        .iter()
        .any(|r| r.local == client && r.remote == server && r.state == TIME_WAIT);
    let on_server = rows
        .iter()
        .any(|r| r.local == server && r.remote == client && r.state == TIME_WAIT);
    if !on_client || on_server {
        return Err(Evidence::new(format!(
            "the client {client} closed first, but /proc/net/tcp shows TIME_WAIT on {}",
            match (on_client, on_server) {
                (true, true) => "both sides",
                (false, true) => "the server's side",
                _ => "neither side",
            }
        ))
        .expected(format!("TIME_WAIT on {client} only"))
        .got(&run.stdout)
        .into());
    }
    Ok(())
}

fn reuseaddr(ctx: &mut Ctx) -> Outcome {
    let run = ctx.tool(&[])?;
    let out = run.stdout_text();
    let old = addr_after(&out, "a server without SO_REUSEADDR").ok_or_else(|| {
        Evidence::new("no line about the server without SO_REUSEADDR").got(&run.stdout)
    })?;
    // Our own bind(), without SO_REUSEADDR, on the port the demo left in TIME_WAIT.
    let probe = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .map_err(|e| fail(e.to_string()))?;
    let ours = probe.bind(&old.into());
    let in_use = matches!(&ours, Err(e) if e.kind() == std::io::ErrorKind::AddrInUse);
    let lines_ok = out.contains("restart without SO_REUSEADDR: bind(")
        && out.contains("fails: EADDRINUSE")
        && out.contains("succeeds");
    if !in_use || !lines_ok {
        return Err(Evidence::new(format!(
            "after the demo, our own bind({old}) without SO_REUSEADDR {}",
            if in_use { "failed with EADDRINUSE, as it should" } else { "succeeded: no TIME_WAIT holds that port" }
        ))
        .expected("TIME_WAIT on the server's port; EADDRINUSE without SO_REUSEADDR; success with it on both runs")
        .got(&run.stdout)
        .into());
    }
    Ok(())
}
