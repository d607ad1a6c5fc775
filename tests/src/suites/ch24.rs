//! ch24: the HTTP server, checked with raw sockets and with real curl.

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::check::{
    Chapter, Check, Ctx, Evidence, Outcome, Problem, Readme, Role, RoleKind, Server, fail,
};
use crate::peer::Conn;
use crate::procfs::{self, Proto};

const HELLO: &str = "Hello, World!";

/// Where this chapter's hints send the reader.
pub const README: Readme = Readme("crates/ch24-http-hello/README.md");

pub fn chapter() -> Chapter {
    Chapter {
        id: "ch24",
        title: "an HTTP server: the workbook's hello server, done right",
        roles: vec![Role {
            name: "server",
            kind: RoleKind::Server(Proto::Tcp),
            package: "ch24-http-hello",
            reference_only: false,
            reference: &["server", "{port}", "--root={root}", "--workers={workers}"],
            required: &["{port}"],
            allowed: &["{host}", "{port}", "{root}", "{workers}"],
            example: "./httpd {port} {root}",
        }],
        checks: vec![
            Check {
                name: "curl-get",
                role: "server",
                title: "real curl: 200, text/html, Content-Length equal to the body, the page",
                hint: "answer with a status line, Content-Type, an exact Content-Length, a blank line, the body",
                see: README.at("A response"),
                run: curl_get,
            },
            Check {
                name: "head",
                role: "server",
                title: "HEAD: the same headers as GET, and no body",
                hint: "for HEAD send the head only, with the Content-Length the body would have",
                see: README.at("A response"),
                run: head,
            },
            Check {
                name: "not-found",
                role: "server",
                title: "a path that does not exist: 404",
                hint: "route on the path: only / is the page",
                see: README.at("Routing"),
                run: not_found,
            },
            Check {
                name: "method-not-allowed",
                role: "server",
                title: "DELETE: 405 with Allow: GET, HEAD",
                hint: "answer other methods with 405 and an Allow header",
                see: README.at("Routing"),
                run: method_not_allowed,
            },
            Check {
                name: "bad-request",
                role: "server",
                title: "garbage instead of a request: 400",
                hint: "a request line is METHOD SP TARGET SP HTTP/1.x; anything else is 400",
                see: README.at("Reading a request"),
                run: bad_request,
            },
            Check {
                name: "split-request",
                role: "server",
                title: "a request sent one byte per read is answered",
                hint: "read until the blank line (\\r\\n\\r\\n), however many reads it takes",
                see: README.at("Reading a request"),
                run: split_request,
            },
            Check {
                name: "keep-alive",
                role: "server",
                title: "3 requests on one connection, then 3 pipelined in one write",
                hint: "HTTP/1.1 keeps the connection open: answer each request in order, and keep the bytes after a request for the next",
                see: README.at("Keep-alive"),
                run: keep_alive,
            },
            Check {
                name: "slow-client-timeout",
                role: "server",
                title: "a client that dribbles its request is cut off (408 or close), and others are served meanwhile",
                hint: "one deadline for the whole request head, counted from when you start waiting for it, not one per read",
                see: README.at("Reading a request"),
                run: slow_client_timeout,
            },
            Check {
                name: "header-too-large",
                role: "server",
                title: "a 16 KiB request head: 431",
                hint: "limit the head (8 KiB) and answer 431 Request Header Fields Too Large",
                see: README.at("Reading a request"),
                run: header_too_large,
            },
            Check {
                name: "exact-body",
                role: "server",
                title: "no NUL byte, and Content-Length equal to the body",
                hint: "send strlen() bytes, not sizeof(), and say how many",
                see: README.at("What the workbook's C gets wrong"),
                run: exact_body,
            },
            Check {
                name: "no-reset",
                role: "server",
                title: "100 requests with bodies the server ignores: every response ends in end of stream, never a reset",
                hint: "read what the client sent before closing: shutdown(SHUT_WR), drain, then close",
                see: README.at("Closing without a reset"),
                run: no_reset,
            },
            Check {
                name: "path-traversal",
                role: "server",
                title: "/../, %2e%2e and a symlink out of the root reveal nothing outside it",
                hint: "let the kernel resolve beneath the root: openat2(RESOLVE_BENEATH), not string checks",
                see: README.at("Serving files"),
                run: path_traversal,
            },
            Check {
                name: "keep-alive-fairness",
                role: "server",
                title: "4 keep-alive clients hold their connections open; a fifth is still served within 3 s",
                hint: "a kept-alive connection holds its worker: keep a spare worker and fork another while all are busy (up to a maximum), and close idle connections after a few seconds",
                see: README.at("When things go wrong"),
                run: keep_alive_fairness,
            },
            Check {
                name: "send-timeout",
                role: "server",
                title: "a client that asks for a 32 MiB file and never reads is let go within 10 s, and others are served meanwhile",
                hint: "give each piece of the response one deadline: send with MSG_DONTWAIT and poll() for POLLOUT with what is left of it (SO_SNDTIMEO alone restarts its clock at every write, so a client that takes a little now and then holds you forever)",
                see: README.at("When things go wrong"),
                run: send_timeout,
            },
            Check {
                name: "framing",
                role: "server",
                title: "Content-Length 0 and 43 in one request: 400, and the request hidden in the body never served; HTTP/1.1 without Host: 400; GET /?x=1 is the page",
                hint: "RFC 9112: Content-Lengths that differ are an error (never take the first), HTTP/1.1 needs exactly one Host, and the query is not part of the path",
                see: README.at("Framing"),
                run: framing,
            },
            Check {
                name: "fifo-in-root",
                role: "server",
                title: "a FIFO (named pipe) under the root: 403 or 404 within 3 s, and the server still serves",
                hint: "open with O_NONBLOCK (open() of a FIFO waits for a writer), then fstat() and serve regular files only",
                see: README.at("When things go wrong"),
                run: fifo_in_root,
            },
            Check {
                name: "prefork",
                role: "server",
                title: "--workers 4: four workers, 200 requests from 20 clients all answered, SIGTERM leaves nothing",
                hint: "fork() the workers after listen(); each accept()s; the parent reaps them at SIGTERM",
                see: README.at("Prefork"),
                run: prefork,
            },
        ],
    }
}

/// A parsed response.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Everything received, for reports.
    raw: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A response head: status, headers, and its length in bytes.
type Head = (u16, Vec<(String, String)>, usize);

/// Parses one response head from `raw`.
fn parse_head(raw: &[u8]) -> Result<Option<Head>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(raw) {
        Ok(httparse::Status::Complete(n)) => Ok(Some((
            resp.code.unwrap_or(0),
            resp.headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_string(),
                        String::from_utf8_lossy(h.value).trim().to_string(),
                    )
                })
                .collect(),
            n,
        ))),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(format!("not an HTTP response ({e})")),
    }
}

/// Reads one response on a kept-alive connection: the head, then Content-Length bytes
/// (`head_only` for a HEAD). `pending` holds bytes read past the previous response.
fn read_response(
    conn: &mut Conn,
    pending: &mut Vec<u8>,
    head_only: bool,
    deadline: Duration,
) -> Result<Response, Box<Evidence>> {
    let until = Instant::now() + deadline;
    loop {
        if let Some((status, headers, n)) =
            parse_head(pending).map_err(|e| Box::new(Evidence::new(e).got(pending)))?
        {
            let length: usize = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.parse().ok())
                .ok_or_else(|| {
                    Box::new(
                        Evidence::new(
                            "a response without Content-Length on a kept-alive connection",
                        )
                        .got(pending),
                    )
                })?;
            let body_len = if head_only { 0 } else { length };
            while pending.len() < n + body_len {
                let left = until.saturating_duration_since(Instant::now());
                let more = conn.recv_exact(1, left).map_err(|s| {
                    Box::new(
                        Evidence::new(format!("the body was cut short: {}", s.why)).got(pending),
                    )
                })?;
                pending.extend(more);
            }
            let raw: Vec<u8> = pending.drain(..n + body_len).collect();
            return Ok(Response {
                status,
                headers,
                body: raw[n..].to_vec(),
                raw,
            });
        }
        let left = until.saturating_duration_since(Instant::now());
        let more = conn.recv_exact(1, left).map_err(|s| {
            Box::new(Evidence::new(format!("no complete response head: {}", s.why)).got(pending))
        })?;
        pending.extend(more);
    }
}

/// Sends `request` on a new connection and reads to end of stream.
fn exchange(ctx: &mut Ctx, server: &Server, request: &[u8]) -> Result<Response, Problem> {
    let mut conn = ctx.connect(server)?;
    conn.send(request)
        .map_err(|e| ctx.explain(server, Evidence::new(e).sent(request)))?;
    let raw = conn.recv_to_end(4 << 20, ctx.secs(10.0)).map_err(|short| {
        ctx.explain(
            server,
            Evidence::new(format!(
                "the response did not end with end of stream: {}",
                short.why
            ))
            .sent(request)
            .got(&short.got),
        )
    })?;
    let (status, headers, n) = parse_head(&raw)
        .map_err(|e| Evidence::new(e).sent(request).got(&raw))?
        .ok_or_else(|| {
            Evidence::new("no complete response head before end of stream")
                .sent(request)
                .got(&raw)
        })?;
    Ok(Response {
        status,
        headers,
        body: raw[n..].to_vec(),
        raw,
    })
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").into_bytes()
}

fn expect_status(resp: &Response, request: &[u8], wanted: &[u16]) -> Outcome {
    if wanted.contains(&resp.status) {
        return Ok(());
    }
    Err(Evidence::new(format!("status {}", resp.status))
        .sent(request)
        .expected(format!(
            "status {}",
            wanted
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(" or ")
        ))
        .got(&resp.raw)
        .into())
}

fn curl_get(ctx: &mut Ctx) -> Outcome {
    ctx.require_tool("curl", "curl")?;
    let server = ctx.server()?;
    let url = format!("http://{}/", server.addr);
    let out = Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--include",
            "--max-time",
            "10",
            &url,
        ])
        .output()
        .map_err(|e| fail(format!("run curl: {e}")))?;
    if !out.status.success() {
        return Err(ctx.explain(
            &server,
            Evidence::new(format!(
                "curl {url} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
            .got(&out.stdout),
        ));
    }
    let (status, headers, n) = parse_head(&out.stdout)
        .map_err(|e| Evidence::new(format!("curl got {e}")).got(&out.stdout))?
        .ok_or_else(|| Evidence::new("curl got no complete head").got(&out.stdout))?;
    let resp = Response {
        status,
        headers,
        body: out.stdout[n..].to_vec(),
        raw: out.stdout.clone(),
    };
    expect_status(&resp, format!("curl {url}").as_bytes(), &[200])?;
    let ctype = resp.header("content-type").unwrap_or_default();
    if !ctype.to_ascii_lowercase().starts_with("text/html") {
        return Err(
            Evidence::new(format!("Content-Type is {}", crate::report::quote(ctype)))
                .expected("text/html; charset=utf-8")
                .got(&resp.raw)
                .into(),
        );
    }
    check_length(&resp, "curl")?;
    if !String::from_utf8_lossy(&resp.body).contains(HELLO) {
        return Err(Evidence::new("the page does not say Hello, World!")
            .got(&resp.body)
            .into());
    }
    Ok(())
}

fn check_length(resp: &Response, what: &str) -> Outcome {
    let Some(length) = resp.header("content-length") else {
        return Err(Evidence::new(format!("{what}: no Content-Length header"))
            .expected("Content-Length: the body's exact length in bytes")
            .got(&resp.raw)
            .into());
    };
    if length.parse::<usize>().ok() != Some(resp.body.len()) {
        return Err(Evidence::new(format!(
            "{what}: Content-Length {length} but {} bytes of body",
            resp.body.len()
        ))
        .got(&resp.raw)
        .into());
    }
    if resp.body.contains(&0) {
        return Err(Evidence::new(format!(
            "{what}: the body has a NUL byte (sizeof() instead of strlen()?)"
        ))
        .got(&resp.body)
        .into());
    }
    Ok(())
}

fn head(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    let get_resp = exchange(ctx, &server, &get("/"))?;
    let request = b"HEAD / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let resp = exchange(ctx, &server, request)?;
    expect_status(&resp, request, &[200])?;
    if !resp.body.is_empty() {
        return Err(Evidence::new(format!(
            "{} bytes of body after the head of a HEAD response",
            resp.body.len()
        ))
        .sent(request)
        .expected("the head only")
        .got(&resp.raw)
        .into());
    }
    if resp.header("content-length") != get_resp.header("content-length") {
        return Err(Evidence::new(format!(
            "HEAD says Content-Length {}, GET {}",
            resp.header("content-length").unwrap_or("(none)"),
            get_resp.header("content-length").unwrap_or("(none)")
        ))
        .sent(request)
        .expected("the same headers as GET")
        .into());
    }
    Ok(())
}

fn not_found(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    let request = get("/no-such-page");
    let resp = exchange(ctx, &server, &request)?;
    expect_status(&resp, &request, &[404])
}

fn method_not_allowed(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    let request = b"DELETE / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let resp = exchange(ctx, &server, request)?;
    expect_status(&resp, request, &[405])?;
    let allow = resp
        .header("allow")
        .unwrap_or_default()
        .to_ascii_uppercase();
    if !(allow.contains("GET") && allow.contains("HEAD")) {
        return Err(
            Evidence::new(format!("Allow: {}", crate::report::quote(&allow)))
                .expected("Allow: GET, HEAD")
                .got(&resp.raw)
                .into(),
        );
    }
    Ok(())
}

fn bad_request(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    let request = b"THIS IS NOT HTTP\r\n\r\n";
    let resp = exchange(ctx, &server, request)?;
    expect_status(&resp, request, &[400])
}

fn split_request(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    let request = get("/");
    let mut conn = ctx.connect(&server)?;
    conn.nodelay();
    for (i, b) in request.iter().enumerate() {
        if let Err(e) = conn.send(std::slice::from_ref(b)) {
            let got = conn
                .recv_to_end(1 << 20, ctx.secs(2.0))
                .unwrap_or_else(|s| s.got);
            return Err(Evidence::new(format!(
                "the server closed the connection after {i} of {} bytes of the request ({e}): it answered before the request was complete",
                request.len()
            ))
            .sent(&request)
            .expected("read until the blank line, then answer")
            .got(&got)
            .into());
        }
        // The first bytes go once the server has read the one before, so a server that
        // reads once has read (and answered) by then; the rest follow one byte per write
        // without waiting, so a slow but correct server is not held past its deadline.
        if i < 3 {
            conn.wait_consumed(ctx.secs(1.0));
        }
    }
    let raw = conn.recv_to_end(1 << 20, ctx.secs(10.0)).map_err(|s| {
        ctx.explain(
            &server,
            Evidence::new(format!("no complete response: {}", s.why))
                .sent(&request)
                .got(&s.got),
        )
    })?;
    let (status, headers, n) = parse_head(&raw)
        .map_err(|e| Evidence::new(e).got(&raw))?
        .ok_or_else(|| Evidence::new("no complete response head").got(&raw))?;
    let resp = Response {
        status,
        headers,
        body: raw[n..].to_vec(),
        raw: raw.clone(),
    };
    expect_status(&resp, &request, &[200])?;
    if !String::from_utf8_lossy(&resp.body).contains(HELLO) {
        return Err(Evidence::new(
            "the request arrived one byte per read, and the answer is not the page",
        )
        .sent(&request)
        .got(&resp.raw)
        .into());
    }
    Ok(())
}

fn keep_alive(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    let mut conn = ctx.connect(&server)?;
    let mut pending = Vec::new();
    let request = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    for i in 1..=3 {
        conn.send(request).map_err(|e| {
            fail(format!("request {i} on the same connection could not be sent: {e} (did the server close after the first?)"))
        })?;
        let resp = read_response(&mut conn, &mut pending, false, ctx.secs(5.0)).map_err(|f| {
            super::echo::with_prefix(
                Problem::Fail(f),
                &format!("request {i} of 3 on one connection"),
            )
        })?;
        expect_status(&resp, request, &[200])?;
    }
    let pipelined = [
        &request[..],
        b"HEAD / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"GET /no-such-page HTTP/1.1\r\nHost: localhost\r\n\r\n",
    ]
    .concat();
    conn.send(&pipelined).map_err(fail)?;
    for (i, (head_only, status)) in [(false, 200u16), (true, 200), (false, 404)]
        .iter()
        .enumerate()
    {
        let resp =
            read_response(&mut conn, &mut pending, *head_only, ctx.secs(5.0)).map_err(|f| {
                super::echo::with_prefix(
                    Problem::Fail(f),
                    &format!(
                        "pipelined request {} of 3 (GET /, HEAD /, GET /no-such-page in one write)",
                        i + 1
                    ),
                )
            })?;
        if resp.status != *status {
            return Err(Evidence::new(format!(
                "pipelined response {} has status {}",
                i + 1,
                resp.status
            ))
            .sent(&pipelined)
            .expected(format!(
                "200, 200, 404 in that order; response {} is {status}",
                i + 1
            ))
            .got(&resp.raw)
            .into());
        }
    }
    Ok(())
}

fn slow_client_timeout(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    let slow = ctx.connect(&server)?;
    let mut writer = slow.stream.try_clone().map_err(|e| fail(e.to_string()))?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_dribble = stop.clone();
    // A byte every 250 ms: no read ever waits long, but the head never ends.
    let dribbler = std::thread::spawn(move || {
        let _ = writer.write_all(b"GET / HTTP/1.1\r\n");
        for _ in 0..240 {
            if stop_dribble.load(std::sync::atomic::Ordering::SeqCst)
                || writer.write_all(b"X").is_err()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    });
    let result = (|| {
        let resp = exchange(ctx, &server, &get("/")).map_err(|p| {
            super::echo::with_prefix(p, "while one client dribbled its request, another client")
        })?;
        expect_status(&resp, &get("/"), &[200])?;
        let mut slow = slow;
        match slow.recv_to_end(1 << 20, ctx.secs(30.0)) {
            Ok(got) => {
                if got.is_empty()
                    || got.starts_with(b"HTTP/1.1 408")
                    || got.starts_with(b"HTTP/1.0 408")
                {
                    Ok(())
                } else {
                    Err(
                        Evidence::new("the dribbling client got another answer than 408")
                            .expected("408 Request Timeout, or the connection closed")
                            .got(&got)
                            .into(),
                    )
                }
            }
            Err(short) if short.why.contains("reset") => Ok(()),
            Err(short) => {
                let evidence = Evidence::new(format!(
                    "a client that sent a byte every 250 ms was not cut off: {}",
                    short.why
                ))
                .expected("408 or a close within a few seconds: one deadline for the whole head")
                .got(&short.got);
                Err(ctx.explain(&server, evidence))
            }
        }
    })();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = dribbler.join();
    result
}

fn header_too_large(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    let request = format!(
        "GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(16 * 1024)
    )
    .into_bytes();
    match exchange(ctx, &server, &request) {
        Ok(resp) => expect_status(&resp, &request, &[431, 400, 413]),
        // The refusal was sent, then a reset destroyed the connection: the server
        // closed with the rest of the head unread, and close() with unread bytes makes
        // the kernel send RST (which can take the 431 with it). The answer is right; the
        // close is the bug, and its lesson is another section's.
        Err(Problem::Fail(mut evidence))
            if evidence.message.contains("reset")
                && evidence.got.as_ref().is_some_and(|g| {
                    [&b"HTTP/1.1 4"[..], b"HTTP/1.0 4"]
                        .iter()
                        .any(|p| g.starts_with(p))
                }) =>
        {
            evidence.message = format!(
                "{}: the refusal came, then a reset (the server closed with the rest of the head unread)",
                evidence.message
            );
            evidence.cause = Some(crate::check::Cause {
                key: "a refusal followed by a reset".into(),
                hint: Some(crate::check::Hint {
                    text: "after the refusal, shutdown(SHUT_WR) and read (and drop) what the client still sends, for a moment, before close(): a close() with bytes unread sends a reset, which can destroy the answer before the client reads it",
                    see: README.at("Closing without a reset"),
                }),
            });
            Err(Problem::Fail(evidence))
        }
        Err(problem) => Err(problem),
    }
}

fn exact_body(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    let resp = exchange(ctx, &server, &get("/"))?;
    expect_status(&resp, &get("/"), &[200])?;
    check_length(&resp, "GET /")
}

fn no_reset(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    let body = vec![b'x'; 64 * 1024];
    let mut request = format!(
        "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    for i in 1..=100 {
        let mut conn = ctx.connect(&server)?;
        let sent = conn.send(&request);
        let received = conn.recv_to_end(4 << 20, ctx.secs(10.0));
        match (sent, received) {
            (Ok(()), Ok(got)) if got.starts_with(b"HTTP/1.") => {}
            (Ok(()), Ok(got)) => {
                return Err(
                    Evidence::new(format!("request {i} of 100 got no HTTP response"))
                        .got(&got)
                        .into(),
                );
            }
            (Err(e), _) => {
                return Err(Evidence::new(format!(
                    "request {i} of 100: sending its 64 KiB body failed: {e}"
                ))
                .expected("the server reads (or drains) what the client sends before it closes")
                .into());
            }
            (Ok(()), Err(short)) => {
                return Err(ctx.explain(
                    &server,
                    Evidence::new(format!("request {i} of 100 (a GET with a 64 KiB body the server ignores): {}", short.why))
                        .expected("the response, then end of stream: a close with unread data sends RST instead")
                        .got(&short.got),
                ));
            }
        }
    }
    Ok(())
}

fn path_traversal(ctx: &mut Ctx) -> Outcome {
    if !ctx.template_uses("{root}") {
        return Err(Problem::Skip("the server template has no {root}".into()));
    }
    let work = ctx.sup.workdir().to_path_buf();
    let root = work.join("site");
    let secret = b"THE SECRET OUTSIDE THE ROOT\n";
    let setup = || -> std::io::Result<()> {
        std::fs::create_dir_all(root.join("sub"))?;
        std::fs::write(root.join("hello.txt"), b"hello from the root\n")?;
        std::fs::write(work.join("secret.txt"), secret)?;
        std::os::unix::fs::symlink("../secret.txt", root.join("escape.txt"))?;
        std::os::unix::fs::symlink("..", root.join("sub/up"))?;
        Ok(())
    };
    setup().map_err(|e| fail(format!("set up the root: {e}")))?;
    let server = ctx.server_of("server", &[("{root}", root.to_string_lossy().into_owned())])?;
    let inside = exchange(ctx, &server, &get("/hello.txt"))?;
    if inside.status != 200 || inside.body != b"hello from the root\n" {
        return Err(Evidence::new("a file inside {root} was not served")
            .sent(&get("/hello.txt"))
            .expected("200 and the file's bytes (\"hello from the root\\n\")")
            .got(&inside.raw)
            .into());
    }
    for path in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/escape.txt",
        "/sub/up/secret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
    ] {
        let request = get(path);
        let resp = exchange(ctx, &server, &request)?;
        if resp.status == 200 || resp.raw.windows(secret.len()).any(|w| w == secret) {
            return Err(
                Evidence::new(format!("GET {path} reached a file outside the root"))
                    .sent(&request)
                    .expected("404 (or 403, 400): nothing outside {root}")
                    .got(&resp.raw)
                    .into(),
            );
        }
    }
    Ok(())
}

fn prefork(ctx: &mut Ctx) -> Outcome {
    if !ctx.template_uses("{workers}") {
        return Err(Problem::Skip("the server template has no {workers}".into()));
    }
    let server = ctx.server_of("server", &[("{workers}", "4".to_string())])?;
    let inode = procfs::ready_socket(Proto::Tcp, server.addr.port())
        .map(|r| r.inode)
        .ok_or_else(|| fail("the listening socket is gone"))?;
    let until = Instant::now() + ctx.secs(5.0);
    let holders = loop {
        let holders: Vec<i32> = ctx
            .sup
            .processes()
            .into_iter()
            .filter(|p| {
                p.state != 'Z'
                    && p.pid != server.pid
                    && procfs::socket_inodes(p.pid).contains(&inode)
            })
            .map(|p| p.pid)
            .collect();
        if holders.len() >= 4 || Instant::now() >= until {
            break holders;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    if holders.len() < 4 {
        return Err(Evidence::new(format!(
            "with {{workers}} = 4, {} processes besides pid {} hold the listening socket",
            holders.len(),
            server.pid
        ))
        .expected("4 worker processes, each accept()ing on the listening socket")
        .into());
    }
    let addr = server.addr;
    let deadline = ctx.secs(20.0);
    let clients: Vec<_> = (0..20)
        .map(|_| {
            let recorder = ctx.recorder.clone();
            std::thread::spawn(move || -> Result<(), String> {
                for _ in 0..10 {
                    let mut conn = Conn::connect(addr, deadline, &recorder)?;
                    conn.send(&get("/"))?;
                    let got = conn.recv_to_end(1 << 20, deadline).map_err(|s| s.why)?;
                    if !got.starts_with(b"HTTP/1.1 200") {
                        return Err(format!("got {}", crate::report::escape(&got, 40)));
                    }
                }
                Ok(())
            })
        })
        .collect();
    for (i, client) in clients.into_iter().enumerate() {
        client
            .join()
            .map_err(|_| fail("a client thread panicked"))?
            .map_err(|e| fail(format!("client {} of 20 (10 requests each): {e}", i + 1)))?;
    }
    ctx.expect_clean_stop(&server, ctx.secs(5.0))
}

/// Reads one response on a kept-alive connection, as a failure of this check.
fn read_kept(conn: &mut Conn, what: &str, deadline: Duration) -> Result<Response, Problem> {
    let mut pending = Vec::new();
    read_response(conn, &mut pending, false, deadline)
        .map_err(|f| super::echo::with_prefix(Problem::Fail(f), what))
}

fn keep_alive_fairness(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    let request = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut held = Vec::new();
    for i in 1..=4 {
        let mut conn = ctx.connect(&server)?;
        conn.send(request).map_err(fail)?;
        let resp = read_kept(
            &mut conn,
            &format!("keep-alive client {i} of 4 (the others holding their connections)"),
            ctx.secs(3.0),
        )?;
        expect_status(&resp, request, &[200])?;
        held.push(conn);
    }
    // The four stay connected, idle for less than a keep-alive timeout; the fifth asks.
    let started = Instant::now();
    ctx.stated_deadline_starts();
    let mut fifth = ctx.connect(&server)?;
    fifth.send(&get("/")).map_err(fail)?;
    let got = fifth.recv_to_end(1 << 20, ctx.secs(3.0));
    let waited = started.elapsed();
    drop(held);
    match got {
        Ok(raw) if raw.starts_with(b"HTTP/1.1 200") || raw.starts_with(b"HTTP/1.0 200") => Ok(()),
        Ok(raw) => Err(Evidence::new("the fifth client got another answer than 200")
            .sent(&get("/"))
            .got(&raw)
            .into()),
        Err(short) => Err(ctx.explain(
            &server,
            Evidence::new(format!(
                "while 4 keep-alive clients held their connections, a fifth waited {:.1} s: {}",
                waited.as_secs_f64(),
                short.why
            ))
            .sent(&get("/"))
            .expected("the page within 3 s: a spare worker (or thread, or event loop) for the next client")
            .got(&short.got),
        )),
    }
}

/// A directory for one check's `{root}`, and the server started with it.
fn server_with_root(
    ctx: &mut Ctx,
    name: &str,
    setup: impl FnOnce(&std::path::Path) -> std::io::Result<()>,
) -> Result<Server, Problem> {
    if !ctx.template_uses("{root}") {
        return Err(Problem::Skip("the server template has no {root}".into()));
    }
    let root = ctx.sup.workdir().join(name);
    std::fs::create_dir_all(&root)
        .and_then(|()| setup(&root))
        .map_err(|e| fail(format!("set up the root: {e}")))?;
    ctx.server_of("server", &[("{root}", root.to_string_lossy().into_owned())])
}

fn send_timeout(ctx: &mut Ctx) -> Outcome {
    let server = server_with_root(ctx, "site-large", |root| {
        std::fs::write(root.join("large.bin"), vec![b'x'; 32 << 20])
    })?;
    let request = get("/large.bin");
    let mut stalled = ctx.connect(&server)?;
    stalled.send(&request).map_err(fail)?;
    let me = stalled
        .stream
        .local_addr()
        .map_err(|e| fail(e.to_string()))?;
    // The server's side of the connection, once it holds it (accept()ed: an inode) and
    // has begun to answer (bytes wait in our receive queue, unread).
    let until = Instant::now() + ctx.secs(5.0);
    loop {
        let held = procfs::connection(server.addr, me).is_some_and(|r| r.inode != 0);
        if held && procfs::unread_at(server.addr, me).is_some_and(|n| n > 0) {
            break;
        }
        if Instant::now() >= until {
            return Err(ctx.explain(
                &server,
                Evidence::new("GET /large.bin (32 MiB in {root}) was not answered within 5 s")
                    .sent(&request),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    ctx.stated_deadline_starts();
    let other = exchange(ctx, &server, &get("/")).map_err(|p| {
        super::echo::with_prefix(
            p,
            "while one client read nothing of a 32 MiB response, another client",
        )
    })?;
    expect_status(&other, &get("/"), &[200])?;
    // Let go: no process of the server holds its side any more (an orphan has inode 0),
    // or the connection is gone.
    let until = started + ctx.secs(10.0);
    loop {
        let row = procfs::connection(server.addr, me);
        if row.as_ref().is_none_or(|r| r.inode == 0) {
            return Ok(());
        }
        if Instant::now() >= until {
            let queued = row.map_or(0, |r| r.tx_queue);
            return Err(ctx.explain(
                &server,
                Evidence::new(format!(
                    "a client that read nothing of its 32 MiB response was still held after {:.0} s ({queued} bytes queued to it)",
                    started.elapsed().as_secs_f64()
                ))
                .sent(&request)
                .expected("the connection given up after a few seconds: a deadline for each piece of the response, not a per-write timeout"),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A request with two Content-Lengths that differ (0, and the length of a second
/// request hidden in what it calls the body), and that hidden request: request smuggling
/// (RFC 9112 §6.3). Shared with ch24's own hostile tests.
pub fn smuggling_request() -> (Vec<u8>, &'static [u8]) {
    let hidden = b"GET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut request = format!(
        "GET / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nContent-Length: {}\r\n\r\n",
        hidden.len()
    )
    .into_bytes();
    request.extend_from_slice(hidden);
    (request, hidden)
}

fn framing(ctx: &mut Ctx) -> Outcome {
    let server = ctx.server()?;
    let (request, hidden) = smuggling_request();
    // Whatever it answers, the answers end once it closes; a server that kept the
    // connection open has shown what it made of the bytes within 2 s.
    let mut conn = ctx.connect(&server)?;
    conn.send(&request).map_err(fail)?;
    let raw = match conn.recv_to_end(1 << 20, ctx.secs(2.0)) {
        Ok(raw) => raw,
        Err(short) => short.got,
    };
    let answers = raw.windows(9).filter(|w| w.starts_with(b"HTTP/1.")).count();
    if !(raw.starts_with(b"HTTP/1.1 400") || raw.starts_with(b"HTTP/1.0 400")) || answers > 1 {
        return Err(Evidence::new(format!(
            "two Content-Length headers that differ (0 and {}), then a request in what the second calls the body: {answers} response(s)",
            hidden.len()
        ))
        .sent(&request)
        .expected("one response, 400 Bad Request, and the connection closed: which length is right cannot be known, and taking one lets a request hide past a proxy that took the other")
        .got(&raw)
        .into());
    }
    let no_host = b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n";
    let resp = exchange(ctx, &server, no_host)?;
    expect_status(&resp, no_host, &[400])
        .map_err(|p| super::echo::with_prefix(p, "an HTTP/1.1 request without Host"))?;
    let query = get("/?x=1");
    let resp = exchange(ctx, &server, &query)?;
    expect_status(&resp, &query, &[200]).map_err(|p| {
        super::echo::with_prefix(p, "GET /?x=1 (the query is not part of the path)")
    })?;
    if !String::from_utf8_lossy(&resp.body).contains(HELLO) {
        return Err(Evidence::new("GET /?x=1 is not the page")
            .sent(&query)
            .got(&resp.raw)
            .into());
    }
    Ok(())
}

fn fifo_in_root(ctx: &mut Ctx) -> Outcome {
    use std::os::unix::fs::OpenOptionsExt;
    let mut fifo = std::path::PathBuf::new();
    let server = server_with_root(ctx, "site-fifo", |root| {
        fifo = root.join("pipe");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).map_err(std::io::Error::from)
    })?;
    let request = get("/pipe");
    ctx.stated_deadline_starts();
    let mut conn = ctx.connect(&server)?;
    conn.send(&request).map_err(fail)?;
    let got = conn.recv_to_end(1 << 20, ctx.secs(3.0));
    // A reader blocked in open() is let go: a writer opens the FIFO (without waiting)
    // and closes it, so a stuck worker does not outlive the check.
    let release = || {
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo);
    };
    let raw = match got {
        Ok(raw) => raw,
        Err(short) => {
            let problem = ctx.explain(
                &server,
                Evidence::new(format!("GET /pipe (a FIFO under {{root}}): {}", short.why))
                    .sent(&request)
                    .expected("403 or 404 at once: open() with O_NONBLOCK, then fstat(): not a regular file")
                    .got(&short.got),
            );
            release();
            return Err(problem);
        }
    };
    let (status, ..) = parse_head(&raw)
        .map_err(|e| Evidence::new(e).got(&raw))?
        .ok_or_else(|| Evidence::new("no complete response head").got(&raw))?;
    if !matches!(status, 403 | 404) {
        return Err(
            Evidence::new(format!("GET /pipe (a FIFO) got status {status}"))
                .sent(&request)
                .expected("403 or 404: only regular files are served")
                .got(&raw)
                .into(),
        );
    }
    let resp = exchange(ctx, &server, &get("/"))?;
    expect_status(&resp, &get("/"), &[200])
}
