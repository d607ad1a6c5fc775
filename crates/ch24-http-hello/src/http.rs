//! One connection: requests read until the blank line (with a size limit and a
//! deadline), parsed with httparse, answered, kept alive or closed without a reset.

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use syscalls::{
    Errno, Shutdown, SysError, openat2_beneath, read, regular_file_size, shutdown, wait_readable,
    write_all,
};

/// The largest request head accepted; a larger one is answered 431.
pub const MAX_HEAD: usize = 8 * 1024;
/// The largest request body read (and ignored); a larger one is answered 413.
pub const MAX_BODY: usize = 1024 * 1024;
/// The largest file served from `--root`.
pub const MAX_FILE: u64 = 16 * 1024 * 1024;

/// Deadlines of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The whole request head, from the first moment we wait for it.
    pub head: Duration,
    /// An idle keep-alive connection before we close it quietly.
    pub idle: Duration,
    /// The lingering close: how long we drain what the client still sends.
    pub linger: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            head: Duration::from_secs(5),
            idle: Duration::from_secs(5),
            linger: Duration::from_secs(2),
        }
    }
}

/// The page at `/`: exact bytes, no NUL, its length known.
pub const PAGE: &str = "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>Hello</title></head>\n<body><h1>Hello, World!</h1><p>Served by ch24-http-hello, the socket workbook's web server.</p></body>\n</html>\n";

/// A response to write.
struct Response {
    status: u16,
    reason: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
    allow: bool,
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
            body: body.into(),
            allow: false,
        }
    }

    fn error(status: u16, reason: &'static str) -> Response {
        let body =
            format!("<!DOCTYPE html>\n<html><body><h1>{status} {reason}</h1></body></html>\n");
        Response::page(status, reason, body, "text/html; charset=utf-8")
    }

    /// Head (and body, unless HEAD) as bytes. Content-Length is the body's exact length
    /// in both cases.
    fn bytes(&self, head_only: bool, keep_alive: bool) -> Vec<u8> {
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
        if !head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }
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

/// A file beneath `root`, resolved by the kernel (openat2 RESOLVE_BENEATH).
fn serve_file(root: &OwnedFd, target: &str) -> Response {
    let path = target.split(['?', '#']).next().unwrap_or_default();
    let Some(decoded) = percent_decode(path) else {
        return Response::error(400, "Bad Request");
    };
    let relative = decoded.trim_start_matches('/');
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
        Err(_) => return Response::error(500, "Internal Server Error"),
    };
    let size = match regular_file_size(&file) {
        Ok(Some(size)) if size <= MAX_FILE => size,
        Ok(Some(_)) => return Response::error(500, "Internal Server Error"),
        Ok(None) | Err(_) => return Response::error(404, "Not Found"),
    };
    let mut body = vec![0u8; size as usize];
    let mut filled = 0;
    while filled < body.len() {
        match read(&file, &mut body[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.is_interrupted() => continue,
            Err(_) => return Response::error(500, "Internal Server Error"),
        }
    }
    body.truncate(filled);
    Response::page(200, "OK", body, content_type(relative))
}

/// How reading a request head ended.
enum Head {
    Complete(usize),
    Closed,
    Idle,
    TooLarge,
    TimedOut,
}

/// Reads into `buf` until it holds a complete head (`\r\n\r\n`), the size limit, the
/// deadline, or end of stream.
fn read_head(
    fd: &OwnedFd,
    buf: &mut Vec<u8>,
    limits: &Limits,
    first_wait: Duration,
) -> Result<Head, SysError> {
    let started = Instant::now();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = find_head_end(buf) {
            return Ok(Head::Complete(end));
        }
        if buf.len() > MAX_HEAD {
            return Ok(Head::TooLarge);
        }
        // Before the first byte the idle limit applies; after it, the head deadline.
        let limit = if buf.is_empty() {
            first_wait
        } else {
            limits.head
        };
        let left = limit.saturating_sub(started.elapsed());
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

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| at + 4)
}

/// Serves one connection until it closes, fails, or is not kept alive; then closes it
/// without a reset. Returns the access-log lines.
pub fn serve_connection(
    fd: &OwnedFd,
    root: Option<&OwnedFd>,
    limits: &Limits,
    log: &mut dyn FnMut(String),
) -> Result<(), SysError> {
    let mut buf: Vec<u8> = Vec::new();
    let mut first = true;
    loop {
        let wait = if first { limits.head } else { limits.idle };
        first = false;
        let (response, head_only, keep_alive, request_line) =
            match read_head(fd, &mut buf, limits, wait)? {
                Head::Closed | Head::Idle => break,
                Head::TooLarge => (
                    Response::error(431, "Request Header Fields Too Large"),
                    false,
                    false,
                    "(head over 8 KiB)".to_string(),
                ),
                Head::TimedOut => (
                    Response::error(408, "Request Timeout"),
                    false,
                    false,
                    "(head not complete in time)".to_string(),
                ),
                Head::Complete(end) => {
                    let mut headers = [httparse::EMPTY_HEADER; 64];
                    let mut req = httparse::Request::new(&mut headers);
                    match req.parse(&buf[..end]) {
                        Ok(httparse::Status::Complete(_)) => {
                            let method = req.method.unwrap_or_default().to_string();
                            let target = req.path.unwrap_or_default().to_string();
                            let version = req.version.unwrap_or(0);
                            let header = |name: &str| {
                                req.headers
                                    .iter()
                                    .find(|h| h.name.eq_ignore_ascii_case(name))
                                    .map(|h| {
                                        String::from_utf8_lossy(h.value).trim().to_ascii_lowercase()
                                    })
                            };
                            let connection = header("connection").unwrap_or_default();
                            let length = header("content-length");
                            let chunked = header("transfer-encoding").is_some();
                            let keep = if version == 1 {
                                !connection.contains("close")
                            } else {
                                connection.contains("keep-alive")
                            };
                            let request_line = format!("{method} {target} HTTP/1.{version}");
                            let body_len = match length.as_deref().map(str::parse::<usize>) {
                                None => Some(0),
                                Some(Ok(n)) if n <= MAX_BODY => Some(n),
                                Some(_) => None,
                            };
                            buf.drain(..end);
                            if chunked {
                                (
                                    Response::error(501, "Not Implemented"),
                                    method == "HEAD",
                                    false,
                                    request_line,
                                )
                            } else if let Some(body_len) = body_len {
                                // The body is read and ignored: the next request starts after it.
                                if !skip_body(fd, &mut buf, body_len, limits)? {
                                    break;
                                }
                                let response = match (method.as_str(), target.as_str()) {
                                    ("GET" | "HEAD", "/") => {
                                        Response::page(200, "OK", PAGE, "text/html; charset=utf-8")
                                    }
                                    ("GET" | "HEAD", _) => match root {
                                        Some(root) => serve_file(root, &target),
                                        None => Response::error(404, "Not Found"),
                                    },
                                    _ => {
                                        let mut r = Response::error(405, "Method Not Allowed");
                                        r.allow = true;
                                        r
                                    }
                                };
                                (response, method == "HEAD", keep, request_line)
                            } else {
                                (
                                    Response::error(413, "Content Too Large"),
                                    false,
                                    false,
                                    request_line,
                                )
                            }
                        }
                        _ => (
                            Response::error(400, "Bad Request"),
                            false,
                            false,
                            "(not an HTTP request)".to_string(),
                        ),
                    }
                }
            };
        log(format!(
            "\"{request_line}\" {} {}",
            response.status,
            response.body.len()
        ));
        write_all(fd, &response.bytes(head_only, keep_alive))?;
        if !keep_alive {
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
        let head = String::from_utf8(r.bytes(true, true)).unwrap();
        assert!(head.contains("Content-Length: 3\r\n"));
        assert!(head.ends_with("\r\n\r\n"));
        assert!(
            String::from_utf8(r.bytes(false, false))
                .unwrap()
                .ends_with("\r\n\r\nabc")
        );
        assert!(!PAGE.contains('\0'));
    }
}
