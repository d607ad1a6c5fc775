//! ch15: the echo server and client over standard I/O streams on the socket: fgets,
//! fputs, and the fflush() without which a reply never leaves.

use crate::check::{Chapter, Check, Ctx, Evidence, Outcome, Readme};

use super::echo::round_trip;
use super::{client_role, pattern, tcp_server_role};

/// Where this chapter's hints send the reader.
pub const README: Readme = Readme("crates/ch15-stdio/README.md");

pub fn chapter() -> Chapter {
    Chapter {
        id: "ch15",
        title: "sockets and standard I/O: buffered streams, fflush, fdopen",
        roles: vec![
            tcp_server_role(
                "server",
                "ch15-stdio",
                &["echo-stdserv", "{port}"],
                "./echo_stdserv {port}",
            ),
            client_role(
                "client",
                "ch15-stdio",
                &["echo-client", "{host}", "{port}"],
                "./echo_client {host} {port}",
            ),
        ],
        checks: vec![
            Check {
                name: "reply-flushed",
                role: "server",
                title: "a line comes back while the connection stays open: the reply is flushed, not left in the buffer",
                hint: "fputs() only puts the line into the stream's buffer: fflush(writefp) after it sends it",
                see: README.at("fflush"),
                run: reply_flushed,
            },
            Check {
                name: "long-line",
                role: "server",
                title: "a 100,000-byte line, longer than any stdio buffer, comes back byte-identical",
                hint: "fgets() returns a line in pieces when it is longer than the buffer: write each piece back as it is, adding nothing",
                see: README.at("Lines longer than the buffer"),
                run: long_line,
            },
            Check {
                name: "last-line-once",
                role: "server",
                title: "three lines, then end of stream: each comes back once, then the server closes",
                hint: "stop when fgets() returns NULL; while (!feof(readfp)) runs once more after the last line and echoes it again",
                see: README.at("End of stream: fgets and feof"),
                run: last_line_once,
            },
            Check {
                name: "client-echo",
                role: "client",
                title: "lines typed come back printed; Q ends the client with status 0",
                hint: "fputs() the line to the socket's stream, then fflush() it: the server sees nothing until then",
                see: README.at("fflush"),
                run: super::ch04::client_echo,
            },
        ],
    }
}

fn reply_flushed(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    let mut conn = ctx.connect(&server)?;
    let line = b"Hello, standard I/O!\n";
    conn.send(line).map_err(crate::check::fail)?;
    match conn.recv_exact(line.len(), ctx.secs(3.0)) {
        Ok(got) if got == line => Ok(()),
        Ok(got) => Err(Evidence::new("the echo differs from what was sent")
            .sent(line)
            .got(&got)
            .into()),
        Err(short) if short.got.is_empty() && ctx.server_gone(&server).is_none() => {
            let doing = ctx.doing(server.pid);
            Err(Evidence::new(format!(
                "nothing came back, and the connection is still open: {}",
                short.why
            ))
            .sent(line)
            .expected("the line back at once: fputs() then fflush()")
            .doing(doing)
            .into())
        }
        Err(short) => Err(ctx.explain(
            &server,
            Evidence::new(format!(
                "{} of {} bytes came back: {}",
                short.got.len(),
                line.len(),
                short.why
            ))
            .sent(line)
            .got(&short.got),
        )),
    }
}

fn long_line(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    let mut conn = ctx.connect(&server)?;
    // Letters only, then the newline: one line of 100,000 bytes.
    let mut line: Vec<u8> = pattern(99_999, 0x1515)
        .into_iter()
        .map(|b| b'a' + b % 26)
        .collect();
    line.push(b'\n');
    round_trip(ctx, &server, &mut conn, &line)
}

fn last_line_once(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    let mut conn = ctx.connect(&server)?;
    let lines = b"first line\nsecond line\nlast line\n";
    conn.send(lines).map_err(crate::check::fail)?;
    let _ = conn.stream.shutdown(std::net::Shutdown::Write);
    match conn.recv_to_end(64 * 1024, ctx.secs(5.0)) {
        Ok(got) if got == lines => Ok(()),
        Ok(got) if got.starts_with(lines) => Err(Evidence::new(format!(
            "after the three lines, {} bytes more came back before the server closed",
            got.len() - lines.len()
        ))
        .sent(lines)
        .expected("each line once, then end of stream")
        .got(&got[lines.len()..])
        .into()),
        Ok(got) => Err(Evidence::new("the echo differs from what was sent")
            .sent(lines)
            .expected("each line once, then end of stream")
            .got(&got)
            .into()),
        Err(short) => Err(ctx.explain(
            &server,
            Evidence::new(format!(
                "after the client's end of stream, {} bytes came back, then: {}",
                short.got.len(),
                short.why
            ))
            .sent(lines)
            .expected(
                "each line once, then end of stream: the server closes when fgets() returns NULL",
            )
            .got(&short.got),
        )),
    }
}
