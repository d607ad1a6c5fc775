//! ch01: the hello server and client.

use crate::check::{Chapter, Check, Ctx, Evidence, Outcome, Readme, fail};
use crate::wording::MESSAGE_FROM_SERVER;

use super::{client_role, tcp_server_role};

const GREETING: &[u8] = b"Hello World!";

/// Where this chapter's hints send the reader.
pub const README: Readme = Readme("crates/ch01-hello/README.md");

pub fn chapter() -> Chapter {
    Chapter {
        id: "ch01",
        title: "hello server and client; file descriptors",
        roles: vec![
            tcp_server_role(
                "server",
                "ch01-hello",
                &["server", "{port}"],
                "./hello_server {port}",
            ),
            client_role(
                "client",
                "ch01-hello",
                &["client", "{host}", "{port}"],
                "./hello_client {host} {port}",
            ),
        ],
        checks: vec![
            Check {
                name: "hello",
                role: "server",
                title: "the server sends exactly `Hello World!`, then end of stream",
                hint: "write the 12 bytes of the text, not sizeof() of the array, which counts its NUL; then close()",
                see: README.at("What the book gets wrong"),
                run: hello,
            },
            Check {
                name: "client-prints",
                role: "client",
                title: "the client prints `Message from server: Hello World!` and exits 0",
                hint: "connect to the address and port you are given, read until read() returns 0, print the text",
                see: README.at("The client"),
                run: client_prints,
            },
        ],
    }
}

fn hello(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    let mut conn = ctx.connect(&server)?;
    match conn.recv_to_end(64 * 1024, ctx.secs(5.0)) {
        Ok(got) if got == GREETING => Ok(()),
        Ok(got) => Err(
            Evidence::new("the server sent something other than the greeting")
                .expected("\"Hello World!\" (12 bytes), then end of stream")
                .got(&got)
                .into(),
        ),
        Err(short) => Err(ctx.explain(
            &server,
            Evidence::new(format!(
                "no end of stream after the greeting: {}",
                short.why
            ))
            .expected("\"Hello World!\", then end of stream (the server closes the connection)")
            .got(&short.got),
        )),
    }
}

fn client_prints(ctx: &mut Ctx) -> Outcome {
    let server = ctx.harness_server()?;
    let client = ctx.client(server.addr, &[])?;
    let mut conn = server.accept(ctx.secs(10.0)).map_err(fail)?;
    conn.send(GREETING).map_err(fail)?;
    drop(conn);
    ctx.expect_reply(&client, MESSAGE_FROM_SERVER, "Hello World!", ctx.secs(5.0))?;
    ctx.expect_exit_zero(client.spawned.pid, "after the server closed the connection")
}
