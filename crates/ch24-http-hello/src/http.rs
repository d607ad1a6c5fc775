//! One connection: requests read until the blank line (with a size limit and a
//! deadline), parsed with httparse, framed as RFC 9112 says, answered (files streamed),
//! kept alive or closed without a reset.

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use syscalls::{
    Errno, FileKind, MsgFlags, Shutdown, SysError, fstat, openat2_beneath, read, send, shutdown,
    wait_readable, wait_writable, write_all,
};

/// The largest request head accepted, the blank line included; a larger one is 431,
/// however TCP cut it up.
pub const MAX_HEAD: usize = 8 * 1024;
/// The longest request target; a longer one is 414.
pub const MAX_TARGET: usize = 4 * 1024;
/// The largest request body read (and ignored); a larger one is answered 413.
pub const MAX_BODY: usize = 1024 * 1024;
/// How much of a file is read and written at a time: files of any size are streamed
/// through this much memory.
const FILE_CHUNK: usize = 64 * 1024;

/// Deadlines of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The whole request head, from the first moment we wait for it.
    pub head: Duration,
    /// An idle keep-alive connection before we close it quietly.
    pub idle: Duration,
    /// An idle keep-alive connection while a client waits for a worker (every worker
    /// busy, the pool at its maximum): it gives way after this long.
    pub crowded_idle: Duration,
    /// The lingering close: how long we drain what the client still sends.
    pub linger: Duration,
    /// How long the client may take to make room for each piece of a response (at most
    /// [`FILE_CHUNK`] bytes): a client that stops reading is given up after this long.
    pub send: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            head: Duration::from_secs(5),
            idle: Duration::from_secs(5),
            crowded_idle: Duration::from_secs(1),
            linger: Duration::from_secs(2),
            send: Duration::from_secs(3),
        }
    }
}
/// The page at `/`: exact bytes, no NUL, its length known.
pub const PAGE: &str = "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>Hello</title></head>\n<body><h1>Hello, World!</h1><p>Served by ch24-http-hello, the socket workbook's web server.</p></body>\n</html>\n";

/// A response to write: a head, and a body from memory or streamed from a file.
struct Response {
    status: u16,
    reason: &'static str,
    content_type: &'static str,
    body: Body,
    allow: bool,
}

/// Where a response's body comes from.
enum Body {
    Bytes(Vec<u8>),
    /// An open regular file and its size when fstat() was asked: read and written a
    /// chunk at a time, so that a file of any size needs no more memory than a chunk.
    File(OwnedFd, u64),
}

impl Body {
    fn len(&self) -> u64 {
        match self {
            Body::Bytes(bytes) => bytes.len() as u64,
            Body::File(_, size) => *size,
        }
    }
}

impl Response {
    fn page(
        status: u16,
        reason: &'static str,
        body: impl Into<Vec<u8>>,
        content_type: &'static str,
    ) -> Response {
        Response {
            status,
            reason,
            content_type,
            body: Body::Bytes(body.into()),
            allow: false,
        }
    }

    fn error(status: u16, reason: &'static str) -> Response {
        let body =
            format!("<!DOCTYPE html>\n<html><body><h1>{status} {reason}</h1></body></html>\n");
        Response::page(status, reason, body, "text/html; charset=utf-8")
    }

    /// The head as bytes. Content-Length is the body's exact length, for HEAD too.
    fn head(&self, keep_alive: bool) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nServer: ch24-http-hello\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {}\r\n",
            self.status,
            self.reason,
            self.content_type,
            self.body.len(),
            if keep_alive { "keep-alive" } else { "close" }
        )
        .into_bytes();
        if self.allow {
            out.extend_from_slice(b"Allow: GET, HEAD\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    /// An error page's head and body in one buffer; the connection closes after it.
    fn head_and_body(&self) -> Vec<u8> {
        let mut out = self.head(false);
        if let Body::Bytes(bytes) = &self.body {
            out.extend_from_slice(bytes);
        }
        out
    }

    /// Writes the response (the head only for HEAD). False when a file's body came out
    /// shorter than its Content-Length said (the file shrank meanwhile): the connection
    /// must then close, since the client cannot find where the next response starts.
    fn send(
        self,
        fd: &OwnedFd,
        head_only: bool,
        keep_alive: bool,
        limits: &Limits,
    ) -> Result<bool, SysError> {
        let mut head = self.head(keep_alive);
        match self.body {
            Body::Bytes(bytes) => {
                if !head_only {
                    // Head and a small body in one write: one segment, as the demo shows.
                    head.extend_from_slice(&bytes);
                }
                send_within(fd, &head, limits.send)?;
                Ok(true)
            }
            Body::File(file, size) => {
                send_within(fd, &head, limits.send)?;
                if head_only {
                    return Ok(true);
                }
                let mut chunk = vec![0u8; FILE_CHUNK];
                let mut left = size;
                while left > 0 {
                    let want = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let n = match read(&file, &mut chunk[..want]) {
                        Ok(0) => return Ok(false),
                        Ok(n) => n,
                        Err(e) if e.is_interrupted() => continue,
                        Err(_) => return Ok(false),
                    };
                    send_within(fd, &chunk[..n], limits.send)?;
                    left -= n as u64;
                }
                Ok(true)
            }
        }
    }
}

/// Sends all of `bytes` (at most a chunk) within `limit`: send(MSG_DONTWAIT), and poll for
/// room with what is left of the deadline. EAGAIN when the client has not made room in
/// time. One deadline for the whole piece, not one per call: SO_SNDTIMEO alone restarts
/// its clock at every write, so a client that takes a few bytes now and then, or a queue
/// the kernel compacts under memory pressure, would hold the worker for ever.
fn send_within(fd: &OwnedFd, mut bytes: &[u8], limit: Duration) -> Result<(), SysError> {
    let deadline = Instant::now() + limit;
    while !bytes.is_empty() {
        match send(fd, bytes, MsgFlags::MSG_DONTWAIT) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.is_interrupted() => {}
            Err(e) if e.errno == Errno::EAGAIN => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() || !wait_writable(fd, left)? {
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Content-Type by extension, for the few kinds `--root` serves.
fn content_type(path: &str) -> &'static str {
    match path
        .rsplit('.')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
        .as_str()
    {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "png" => "image/png",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Decodes `%XX` escapes; None for a malformed escape or a NUL byte.
fn percent_decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    if out.contains(&0) {
        return None;
    }
    String::from_utf8(out).ok()
}

/// A file beneath `root`, resolved by the kernel (openat2 RESOLVE_BENEATH); `path` is
/// the target without its query.
fn serve_file(root: &OwnedFd, path: &str) -> Response {
    let Some(decoded) = percent_decode(path) else {
        return Response::error(400, "Bad Request");
    };
    let relative = decoded.trim_start_matches('/');
    // O_NONBLOCK (openat2_beneath): a FIFO's open() would otherwise wait for a writer.
    let file = match openat2_beneath(root, relative) {
        Ok(file) => file,
        // EXDEV: the path would leave the root (.., an absolute path, a symlink out).
        // Said as "not found", so that nothing about the outside is revealed.
        Err(e)
            if matches!(
                e.errno,
                Errno::EXDEV | Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP | Errno::EACCES
            ) =>
        {
            return Response::error(404, "Not Found");
        }
        // A name longer than the file system allows (NAME_MAX, PATH_MAX).
        Err(e) if e.errno == Errno::ENAMETOOLONG => return Response::error(414, "URI Too Long"),
        Err(_) => return Response::error(500, "Internal Server Error"),
    };
    match fstat(&file) {
        Ok(st) if st.kind == FileKind::Regular => Response {
            status: 200,
            reason: "OK",
            content_type: content_type(relative),
            body: Body::File(file, st.size),
            allow: false,
        },
        Ok(st) if st.kind == FileKind::Directory => Response::error(404, "Not Found"),
        // A FIFO, a device, a socket: reading one may wait forever or never end.
        Ok(_) => Response::error(403, "Forbidden"),
        Err(_) => Response::error(500, "Internal Server Error"),
    }
}

/// How reading a request head ended.
enum Head {
    Complete(usize),
    Closed,
    Idle,
    TooLarge,
    TimedOut,
    Malformed(httparse::Error),
}

/// The most header fields a request may have; more is 431.
const MAX_HEADERS: usize = 100;

/// What the bytes read so far say: a complete head of `n` bytes, a head that cannot fit
/// in [`MAX_HEAD`], not a request at all, or nothing yet. Only the first `MAX_HEAD`
/// bytes are looked at, so the limit is the same however TCP cut the request up.
fn head_status(buf: &[u8]) -> Option<Head> {
    if buf.is_empty() {
        return None;
    }
    let window = &buf[..buf.len().min(MAX_HEAD)];
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match httparse::Request::new(&mut headers).parse(window) {
        Ok(httparse::Status::Complete(n)) => Some(Head::Complete(n)),
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => Some(Head::TooLarge),
        Ok(httparse::Status::Partial) => None,
        Err(httparse::Error::TooManyHeaders) => Some(Head::TooLarge),
        Err(e) => Some(Head::Malformed(e)),
    }
}

/// Reads into `buf` until it holds a complete head (a blank line ends it; a bare LF
/// ends a line too, RFC 9112 §2.2), the size limit, the deadline, or end of stream.
///
/// `crowded`, for a kept-alive connection's wait for its next request: looked at after
/// every `limits.crowded_idle` of silence; when true (a client waits for a worker), the
/// connection gives way at once, as Idle.
fn read_head(
    fd: &OwnedFd,
    buf: &mut Vec<u8>,
    limits: &Limits,
    first_wait: Duration,
    crowded: Option<&dyn Fn() -> bool>,
) -> Result<Head, SysError> {
    let started = Instant::now();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(status) = head_status(buf) {
            return Ok(status);
        }
        // Before the first byte the idle limit applies; after it, the head deadline.
        let limit = if buf.is_empty() {
            first_wait
        } else {
            limits.head
        };
        let left = limit.saturating_sub(started.elapsed());
        if let Some(crowded) = crowded
            && buf.is_empty()
            && !left.is_zero()
            && !wait_readable(fd, left.min(limits.crowded_idle))?
        {
            if crowded() {
                return Ok(Head::Idle);
            }
            continue;
        }
        if left.is_zero() || !wait_readable(fd, left)? {
            return Ok(if buf.is_empty() {
                Head::Idle
            } else {
                Head::TimedOut
            });
        }
        match read(fd, &mut chunk) {
            Ok(0) => return Ok(Head::Closed),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(e),
        }
    }
}

/// A request the server will answer, framed.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    method: String,
    /// The target as sent, for the access log.
    target: String,
    /// The target's path: without its query (RFC 9112 §3.2.1, origin-form).
    path: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    version: u8,
    keep_alive: bool,
    body_len: usize,
    expect_continue: bool,
}

/// A request refused before it is routed: the status, and why (for the access log).
/// The connection closes after it: whatever follows cannot be trusted to be framed.
#[derive(Debug, PartialEq, Eq)]
struct Refusal(u16, &'static str, &'static str);

/// The comma-separated elements of every field named `name`, trimmed (RFC 9110 §5.6.1).
fn list<'a>(headers: &'a [httparse::Header<'a>], name: &str) -> Vec<&'a [u8]> {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .flat_map(|h| h.value.split(|b| *b == b','))
        .map(|element| element.trim_ascii())
        .collect()
}

/// Frames a complete head as RFC 9112 requires of a server.
fn frame(head: &[u8]) -> Result<Request, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    if !matches!(req.parse(head), Ok(httparse::Status::Complete(_))) {
        return Err(Refusal(400, "Bad Request", "not an HTTP request"));
    }
    let method = req.method.unwrap_or_default().to_string();
    let target = req.path.unwrap_or_default().to_string();
    let version = req.version.unwrap_or(0);
    if target.len() > MAX_TARGET {
        return Err(Refusal(414, "URI Too Long", "target too long"));
    }
    // Origin-form only (§3.2.1): a path, perhaps with a query, which names no file.
    if !target.starts_with('/') {
        return Err(Refusal(400, "Bad Request", "target not a path"));
    }
    let path = target
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .to_string();
    // §3.2: a 1.1 request without exactly one Host is 400; two are 400 in any version.
    let hosts = req
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("host"))
        .count();
    if hosts > 1 || (version == 1 && hosts == 0) {
        return Err(Refusal(400, "Bad Request", "not exactly one Host"));
    }
    let lengths = list(req.headers, "content-length");
    let transfer = list(req.headers, "transfer-encoding");
    // §6.1: both framings at once is how requests are smuggled past a proxy.
    if !transfer.is_empty() && !lengths.is_empty() {
        return Err(Refusal(
            400,
            "Bad Request",
            "Content-Length and Transfer-Encoding",
        ));
    }
    if !transfer.is_empty() {
        return Err(Refusal(
            501,
            "Not Implemented",
            "Transfer-Encoding not supported",
        ));
    }
    // §6.3: Content-Length is 1*DIGIT (no sign, no space); several values that differ
    // leave the body's end in doubt, so the request is refused, never guessed at.
    let body_len = match lengths.split_first() {
        None => 0,
        Some((first, rest)) => {
            if first.is_empty()
                || !first.iter().all(u8::is_ascii_digit)
                || rest.iter().any(|other| other != first)
            {
                return Err(Refusal(400, "Bad Request", "bad Content-Length"));
            }
            std::str::from_utf8(first)
                .ok()
                .and_then(|digits| digits.parse::<usize>().ok())
                .unwrap_or(usize::MAX)
        }
    };
    if body_len > MAX_BODY {
        return Err(Refusal(413, "Content Too Large", "body too large"));
    }
    // §9.3: the connection options are a token list; only `close` closes (1.1), only
    // `keep-alive` keeps (1.0); case does not matter.
    let options = list(req.headers, "connection");
    let has = |token: &str| {
        options
            .iter()
            .any(|o| o.eq_ignore_ascii_case(token.as_bytes()))
    };
    let keep_alive = if version == 1 {
        !has("close")
    } else {
        has("keep-alive")
    };
    // RFC 9110 §10.1.1: 100-continue is the only expectation; any other is 417.
    let expectations = list(req.headers, "expect");
    if expectations
        .iter()
        .any(|e| !e.eq_ignore_ascii_case(b"100-continue"))
    {
        return Err(Refusal(417, "Expectation Failed", "unknown expectation"));
    }
    Ok(Request {
        method,
        target,
        path,
        version,
        keep_alive,
        body_len,
        expect_continue: version == 1 && !expectations.is_empty(),
    })
}

/// The refusal of a head httparse could not parse: 505 when it is a request line of
/// another major version of HTTP (RFC 9110 §15.6.6), else 400.
fn malformed(buf: &[u8], error: httparse::Error) -> Refusal {
    let line = buf.split(|b| *b == b'\n').next().unwrap_or_default();
    let version = line
        .trim_ascii()
        .rsplit(|b| *b == b' ')
        .next()
        .unwrap_or_default();
    if error == httparse::Error::Version
        && let Some(rest) = version.strip_prefix(b"HTTP/")
        && let [major, b'.', minor] = rest
        && major.is_ascii_digit()
        && minor.is_ascii_digit()
        && *major != b'1'
    {
        return Refusal(505, "HTTP Version Not Supported", "another HTTP version");
    }
    Refusal(400, "Bad Request", "not an HTTP request")
}

/// Serves one connection until it closes, fails, or is not kept alive; then closes it
/// without a reset. Each response is logged with `log`.
///
/// `crowded` says whether a client waits for a worker (for a prefork worker: the listening
/// socket is readable, nobody has accepted the connection waiting there); an idle
/// kept-alive connection then gives way after `limits.crowded_idle`, not `limits.idle`.
pub fn serve_connection(
    fd: &OwnedFd,
    root: Option<&OwnedFd>,
    limits: &Limits,
    crowded: &dyn Fn() -> bool,
    log: &mut dyn FnMut(String),
) -> Result<(), SysError> {
    let mut buf: Vec<u8> = Vec::new();
    let mut first = true;
    loop {
        let (wait, watch) = if first {
            (limits.head, None)
        } else {
            (limits.idle, Some(crowded))
        };
        first = false;
        let outcome = match read_head(fd, &mut buf, limits, wait, watch)? {
            Head::Closed => break,
            // Nothing sent and nothing unread: a plain close() sends FIN, not RST, so
            // there is nothing to linger for, and the worker is free at once.
            Head::Idle => return Ok(()),
            Head::TooLarge => Err(Refusal(
                431,
                "Request Header Fields Too Large",
                "head over 8 KiB",
            )),
            Head::TimedOut => Err(Refusal(408, "Request Timeout", "head not complete in time")),
            Head::Malformed(e) => Err(malformed(&buf, e)),
            Head::Complete(end) => {
                let framed = frame(&buf[..end]);
                buf.drain(..end);
                framed
            }
        };
        let request = match outcome {
            Ok(request) => request,
            Err(Refusal(status, reason, why)) => {
                log(format!("\"({why})\" {status} -"));
                write_all(fd, &Response::error(status, reason).head_and_body())?;
                break;
            }
        };
        if request.expect_continue && request.body_len > buf.len() {
            // The client waits for this before it sends the body (RFC 9110 §10.1.1).
            write_all(fd, b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        // The body is read and ignored: the next request starts after it.
        if !skip_body(fd, &mut buf, request.body_len, limits)? {
            break;
        }
        let response = match (request.method.as_str(), request.path.as_str()) {
            ("GET" | "HEAD", "/") => Response::page(200, "OK", PAGE, "text/html; charset=utf-8"),
            ("GET" | "HEAD", path) => match root {
                Some(root) => serve_file(root, path),
                None => Response::error(404, "Not Found"),
            },
            _ => {
                let mut r = Response::error(405, "Method Not Allowed");
                r.allow = true;
                r
            }
        };
        log(format!(
            "\"{} {} HTTP/1.{}\" {} {}",
            request.method,
            request.target,
            request.version,
            response.status,
            response.body.len()
        ));
        let complete = response.send(fd, request.method == "HEAD", request.keep_alive, limits)?;
        if !complete || !request.keep_alive {
            break;
        }
    }
    linger(fd, limits);
    Ok(())
}

/// Reads and drops `len` body bytes (some may be in `buf` already). False when the
/// client closed or stalled first.
fn skip_body(
    fd: &OwnedFd,
    buf: &mut Vec<u8>,
    len: usize,
    limits: &Limits,
) -> Result<bool, SysError> {
    let have = buf.len().min(len);
    buf.drain(..have);
    let mut left = len - have;
    let started = Instant::now();
    let mut chunk = [0u8; 16 * 1024];
    while left > 0 {
        let wait = limits.head.saturating_sub(started.elapsed());
        if wait.is_zero() || !wait_readable(fd, wait)? {
            return Ok(false);
        }
        match read(fd, &mut chunk[..left.min(16 * 1024)]) {
            Ok(0) => return Ok(false),
            Ok(n) => left -= n,
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// A lingering close: shutdown(SHUT_WR) so the client reads end of stream after the
/// response, then read and drop what it still sends (up to 64 KiB and `limits.linger`)
/// until it closes. Closing with unread data would make the kernel send RST, and a
/// client still reading our response would see "connection reset" instead of it.
fn linger(fd: &OwnedFd, limits: &Limits) {
    if shutdown(fd, Shutdown::Write).is_err() {
        return;
    }
    let started = Instant::now();
    let mut drained = 0usize;
    let mut chunk = [0u8; 4096];
    while drained < 64 * 1024 {
        let left = limits.linger.saturating_sub(started.elapsed());
        match wait_readable(fd, left) {
            Ok(true) => {}
            _ => return,
        }
        match read(fd, &mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => drained += n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_catches_nul_and_malformed_escapes() {
        assert_eq!(percent_decode("/%2e%2e/x").as_deref(), Some("/../x"));
        assert_eq!(percent_decode("/a%2"), None);
        assert_eq!(percent_decode("/a%00b"), None);
    }

    #[test]
    fn responses_carry_the_exact_length_even_for_head() {
        let r = Response::page(200, "OK", "abc", "text/plain; charset=utf-8");
        let head = String::from_utf8(r.head(true)).unwrap();
        assert!(head.contains("Content-Length: 3\r\n"));
        assert!(head.ends_with("\r\n\r\n"));
        assert!(
            String::from_utf8(r.head_and_body())
                .unwrap()
                .ends_with("\r\n\r\nabc")
        );
        assert!(!PAGE.contains('\0'));
    }

    fn refused(head: &str) -> u16 {
        match frame(head.as_bytes()) {
            Ok(r) => panic!("{head:?} was accepted: {r:?}"),
            Err(Refusal(status, ..)) => status,
        }
    }

    #[test]
    fn framing_follows_rfc_9112() {
        assert_eq!(
            refused("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 60\r\n\r\n"),
            400
        );
        assert_eq!(
            refused("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0, 5\r\n\r\n"),
            400
        );
        assert_eq!(
            refused("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n"),
            400
        );
        assert_eq!(refused("GET / HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(refused("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
        assert_eq!(
            refused(
                "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
            ),
            400
        );
        let twice = frame(b"GET /?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\nConnection: Upgrade, CLOSE\r\n\r\n").unwrap();
        assert_eq!(
            (twice.path.as_str(), twice.body_len, twice.keep_alive),
            ("/", 5, false)
        );
        let kept = frame(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: notclose\r\n\r\n").unwrap();
        assert!(kept.keep_alive);
        let old = frame(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        assert!(!old.keep_alive);
    }

    #[test]
    fn the_head_limit_does_not_depend_on_segmentation() {
        let mut head = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
        head.resize(MAX_HEAD - 4, b'a');
        head.extend_from_slice(b"\r\n\r\n");
        assert!(matches!(head_status(&head), Some(Head::Complete(n)) if n == MAX_HEAD));
        let mut over = head.clone();
        over.insert(30, b'a');
        assert!(matches!(head_status(&over), Some(Head::TooLarge)));
        assert!(matches!(
            head_status(&over[..MAX_HEAD]),
            Some(Head::TooLarge)
        ));
        assert!(head_status(&over[..MAX_HEAD - 1]).is_none());
    }

    #[test]
    fn bare_lf_ends_lines_and_http_2_is_505() {
        assert!(matches!(
            head_status(b"GET / HTTP/1.1\nHost: a\n\n"),
            Some(Head::Complete(_))
        ));
        let Some(Head::Malformed(e)) = head_status(b"GET / HTTP/2.0\r\n\r\n") else {
            panic!("HTTP/2.0 parsed");
        };
        assert_eq!(malformed(b"GET / HTTP/2.0\r\n\r\n", e).0, 505);
    }
}
