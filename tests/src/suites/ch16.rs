//! ch16: separating the streams. The server sends three lines, half-closes with dup() and
//! shutdown(SHUT_WR), and still reads the client's answer.

use crate::check::{Chapter, Check, Ctx, Evidence, Outcome, Readme, Server, fail};
use crate::peer::Conn;

use super::tcp_server_role;

/// Where this chapter's hints send the reader.
pub const README: Readme = Readme("crates/ch16-sep-streams/README.md");

/// The book's client's reply.
const REPLY: &[u8] = b"FROM CLIENT: Thank you! \n";

pub fn chapter() -> Chapter {
    Chapter {
        id: "ch16",
        title: "separating the I/O streams: fclose() closes the socket; dup() and shutdown() half-close it",
        roles: vec![tcp_server_role(
            "server",
            "ch16-sep-streams",
            &["sep-serv2", "{port}"],
            "./sep_serv2 {port}",
        )],
        checks: vec![
            Check {
                name: "lines-then-eof",
                role: "server",
                title: "three lines arrive, then end of stream",
                hint: "closing one of two fds of a socket sends nothing: shutdown(fileno(writefp), SHUT_WR) sends end of stream, whatever fds remain",
                see: README.at("Closing a copy closes nothing"),
                run: lines_then_eof,
            },
            Check {
                name: "reply-after-eof",
                role: "server",
                title: "the client's reply, sent after end of stream, is read and printed",
                hint: "fclose(writefp) closes the socket's fd for the reader too: give the writer its own fd with dup(), then shutdown(SHUT_WR) and fclose() it",
                see: README.at("fclose closes the socket"),
                run: reply_after_eof,
            },
        ],
    }
}

/// Reads until end of stream and expects three lines. End of stream must come soon after
/// them (3 s), well before the server stops waiting for the reply (the book's waits for
/// ever; ours and our C model give up after 10 s and close, which is no half-close).
fn three_lines_then_end(ctx: &mut Ctx, server: &Server, conn: &mut Conn) -> Outcome {
    match conn.recv_to_end(64 * 1024, ctx.secs(3.0)) {
        Ok(got) => {
            let lines = got.iter().filter(|b| **b == b'\n').count();
            if lines == 3 && got.ends_with(b"\n") {
                return Ok(());
            }
            Err(Evidence::new(format!(
                "{lines} lines came before end of stream, in {} bytes",
                got.len()
            ))
            .expected("three lines (the book's FROM SERVER: Hi~ client? and the two after it), then end of stream")
            .got(&got)
            .into())
        }
        Err(short) => {
            let lines = short.got.iter().filter(|b| **b == b'\n').count();
            let doing = ctx.doing(server.pid);
            Err(ctx.explain(
                server,
                Evidence::new(format!(
                    "{lines} lines came, and no end of stream: {}",
                    short.why
                ))
                .expected("end of stream after the three lines: shutdown(SHUT_WR)")
                .got(&short.got)
                .doing(doing),
            ))
        }
    }
}

fn lines_then_eof(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    let mut conn = ctx.connect(&server)?;
    let outcome = three_lines_then_end(ctx, &server, &mut conn);
    // Be polite either way: the server may be waiting for it.
    let _ = conn.send(REPLY);
    outcome
}

fn reply_after_eof(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    let mut conn = ctx.connect(&server)?;
    three_lines_then_end(ctx, &server, &mut conn)?;
    conn.send(REPLY).map_err(|e| {
        fail(format!(
            "sending the reply after end of stream failed ({e}): the server closed the whole connection, not its writing half"
        ))
    })?;
    let _ = conn.stream.shutdown(std::net::Shutdown::Write);
    ctx.expect_server_line(&server, "FROM CLIENT: Thank you!", ctx.secs(5.0))
        .map_err(|p| {
            super::echo::with_prefix(
                p,
                "the client read end of stream, then sent \"FROM CLIENT: Thank you! \\n\"",
            )
        })
}
