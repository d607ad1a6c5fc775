//! The HTTP server when the world is hostile: clients that hold connections, never read,
//! or frame their requests to smuggle another; a FIFO under --root; output nobody
//! reads; too few descriptors. Each test drives our binary from outside, as clients
//! would, on loopback, with a bounded count and time (README, "When things go wrong").

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use harness::hostile::{DEADLINE, Launch, ServerProcess, wait_until};

const BIN: &str = env!("CARGO_BIN_EXE_ch24-http-hello");

fn start(args: &[&str]) -> ServerProcess {
    let mut argv = vec!["server", "0"];
    argv.extend_from_slice(args);
    Launch::new(BIN, &argv).start()
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, DEADLINE).expect("connect");
    stream
        .set_read_timeout(Some(DEADLINE))
        .expect("SO_RCVTIMEO");
    stream
}

/// Sends `request` on a new connection and reads to end of stream (at most 64 MiB).
fn exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = connect(addr);
    stream.write_all(request).expect("send the request");
    let mut got = Vec::new();
    stream
        .take(64 << 20)
        .read_to_end(&mut got)
        .unwrap_or_else(|e| panic!("no end of stream within {DEADLINE:?}: {e}"));
    got
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").into_bytes()
}

fn status_of(response: &[u8]) -> u16 {
    std::str::from_utf8(response.get(9..12).unwrap_or_default())
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Reads one response to a request on a kept-alive connection: the head, then its
/// Content-Length bytes.
fn read_one(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("a response head");
        got.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&got).to_ascii_lowercase();
    let length: usize = head
        .split("content-length:")
        .nth(1)
        .and_then(|v| v.split("\r\n").next())
        .and_then(|v| v.trim().parse().ok())
        .expect("Content-Length");
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).expect("the body");
    got.extend(body);
    got
}

/// Keep-alive clients each hold a worker; the pool grows past --workers, so the next
/// client is served at once, and shrinks back to --workers once they leave. (A fixed
/// pool of 2 left the third client waiting for as long as the two kept asking.)
#[test]
fn keep_alive_clients_do_not_shut_out_the_next_and_the_pool_shrinks_back() {
    let server = start(&["--workers", "2", "--max-workers", "8"]);
    let request = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut held: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = connect(server.addr());
            s.write_all(request).expect("send");
            assert_eq!(status_of(&read_one(&mut s)), 200);
            s
        })
        .collect();
    let started = Instant::now();
    let got = exchange(server.addr(), &get("/"));
    assert_eq!(status_of(&got), 200, "{}", String::from_utf8_lossy(&got));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the fifth client waited {:?} behind four keep-alive clients",
        started.elapsed()
    );
    // The four are still served on their connections.
    for s in &mut held {
        s.write_all(request).expect("send again");
        assert_eq!(status_of(&read_one(s)), 200);
    }
    assert!(server.children().len() >= 5, "{:?}", server.children());
    drop(held);
    assert!(
        wait_until(Duration::from_secs(15), || server.children().len() == 2),
        "the pool did not shrink back to 2 workers: {:?}",
        server.children()
    );
}

/// A client that asks for a large file and never reads it is given up after the send
/// timeout (3 s): its worker is free again, with --max-workers 1 the only one.
#[test]
fn a_client_that_never_reads_frees_its_worker() {
    let root = tempfile::tempdir().expect("tempdir");
    std::fs::write(root.path().join("big.bin"), vec![b'x'; 32 << 20]).expect("write");
    let root_arg = root.path().to_string_lossy().into_owned();
    let server = start(&["--workers", "1", "--max-workers", "1", "--root", &root_arg]);
    let mut stalled = connect(server.addr());
    stalled.write_all(&get("/big.bin")).expect("send");
    let started = Instant::now();
    let got = exchange(server.addr(), &get("/"));
    assert_eq!(status_of(&got), 200);
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(8),
        "the second client waited {waited:?} behind one that never read"
    );
    assert!(
        server.stderr_text().contains("gave up"),
        "{}",
        server.stderr_text()
    );
    drop(stalled);
}

/// An idle connection (no request at all) is closed after the idle limit, 5 s, with no
/// lingering after it: the worker is free then, not 2 s later.
#[test]
fn an_idle_connection_is_closed_after_the_idle_limit() {
    let server = start(&["--workers", "1", "--max-workers", "1"]);
    let mut idle = connect(server.addr());
    let started = Instant::now();
    let mut byte = [0u8; 1];
    assert_eq!(idle.read(&mut byte).expect("end of stream"), 0);
    let after = started.elapsed();
    assert!(
        after > Duration::from_secs(4) && after < Duration::from_millis(5900),
        "closed after {after:?}"
    );
    let got = exchange(server.addr(), &get("/"));
    assert_eq!(status_of(&got), 200);
    assert!(started.elapsed() < Duration::from_millis(6500));
}

/// A FIFO under --root is not opened for a reader that never comes: 403 at once, and
/// the only worker serves the next client.
#[test]
fn a_fifo_under_root_does_not_block_a_worker() {
    let root = tempfile::tempdir().expect("tempdir");
    nix::unistd::mkfifo(&root.path().join("pipe"), nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    let root_arg = root.path().to_string_lossy().into_owned();
    let server = start(&["--workers", "1", "--max-workers", "1", "--root", &root_arg]);
    let started = Instant::now();
    let got = exchange(server.addr(), &get("/pipe"));
    assert!(matches!(status_of(&got), 403 | 404), "{got:?}");
    assert_eq!(status_of(&exchange(server.addr(), &get("/"))), 200);
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// A file larger than any fixed limit (20 MiB) is streamed whole, with its exact
/// Content-Length.
#[test]
fn a_large_file_is_streamed_whole() {
    let root = tempfile::tempdir().expect("tempdir");
    let size = 20 << 20;
    std::fs::write(root.path().join("big.bin"), vec![b'y'; size]).expect("write");
    let root_arg = root.path().to_string_lossy().into_owned();
    let server = start(&["--workers", "1", "--root", &root_arg]);
    let got = exchange(server.addr(), &get("/big.bin"));
    assert_eq!(status_of(&got), 200);
    let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
    assert!(String::from_utf8_lossy(&got[..head_end]).contains(&format!("Content-Length: {size}")));
    assert_eq!(got.len() - head_end, size);
}

/// Two Content-Lengths that differ: 400 and a close, and the request hidden in what one
/// of them calls the body is never served (request smuggling, RFC 9112 §6.3).
#[test]
fn conflicting_content_lengths_are_refused_and_nothing_is_smuggled() {
    let server = start(&["--workers", "1"]);
    let (request, _hidden) = harness::suites::ch24::smuggling_request();
    let got = exchange(server.addr(), &request);
    assert_eq!(status_of(&got), 400, "{}", String::from_utf8_lossy(&got));
    assert_eq!(
        got.windows(9).filter(|w| w == b"HTTP/1.1 ").count(),
        1,
        "more than one response: {}",
        String::from_utf8_lossy(&got)
    );
}

/// The head limit is exactly 8 KiB whatever the segmentation: 8,192 bytes are served,
/// 8,193 are 431, sent in one write or in two.
#[test]
fn the_head_limit_is_exact_however_the_request_is_cut() {
    let server = start(&["--workers", "1"]);
    let head_of = |size: usize| {
        let mut head =
            b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-Pad: ".to_vec();
        head.resize(size - 4, b'a');
        head.extend_from_slice(b"\r\n\r\n");
        head
    };
    for (size, status) in [(8192, 200), (8193, 431)] {
        let head = head_of(size);
        assert_eq!(
            status_of(&exchange(server.addr(), &head)),
            status,
            "{size} bytes at once"
        );
        for cut in [100, 4096, 8190] {
            let mut stream = connect(server.addr());
            stream.set_nodelay(true).expect("TCP_NODELAY");
            stream.write_all(&head[..cut]).expect("send");
            // The rest goes once the server has read the first part: two reads.
            let (me, them) = (stream.local_addr().expect("addr"), server.addr());
            assert!(wait_until(DEADLINE, || {
                harness::procfs::unread_at(me, them) == Some(0)
            }));
            stream.write_all(&head[cut..]).expect("send");
            let mut got = Vec::new();
            let _ = stream.read_to_end(&mut got);
            assert_eq!(status_of(&got), status, "{size} bytes cut at {cut}");
        }
    }
}

/// `Expect: 100-continue` is answered with 100 Continue at once, so the client sends
/// its body without waiting out its own timer.
#[test]
fn expect_100_continue_is_answered_at_once() {
    let server = start(&["--workers", "1"]);
    let mut stream = connect(server.addr());
    stream
        .set_read_timeout(Some(Duration::from_millis(900)))
        .expect("SO_RCVTIMEO");
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut interim = [0u8; 25];
    stream
        .read_exact(&mut interim)
        .expect("100 Continue within 0.9 s");
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"hello").expect("send the body");
    stream
        .set_read_timeout(Some(DEADLINE))
        .expect("SO_RCVTIMEO");
    let mut got = Vec::new();
    stream.read_to_end(&mut got).expect("the response");
    assert_eq!(status_of(&got), 405);
}

/// A stdout pipe nobody reads after the first line: the access log's lines are dropped
/// once it is full, and the server goes on serving (it stopped after ~1,200 requests
/// while its log waited in write()).
#[test]
fn a_log_nobody_reads_does_not_stop_the_server() {
    let server = Launch::new(BIN, &["server", "0", "--workers", "2"])
        .undrained_output()
        .start();
    let until = Instant::now() + Duration::from_secs(60);
    for i in 0..1500 {
        assert!(Instant::now() < until, "1,500 requests took over 60 s");
        let got = exchange(server.addr(), &get("/"));
        assert_eq!(status_of(&got), 200, "request {i}");
    }
}

/// Workers that die as they start (too few descriptors to accept() with) are restarted
/// with a doubling pause, logged once, not forked in a tight loop (25,000 in 5 s).
#[test]
fn workers_that_die_at_once_are_restarted_with_a_pause() {
    // stdio, the listening socket, the pool's pipe and the log's own stdout route fit
    // in 7 descriptors; accept() in a worker needs an eighth.
    let mut server = Launch::new(BIN, &["server", "0", "--workers", "2"])
        .open_files(7)
        .start();
    let started = Instant::now();
    assert!(wait_until(DEADLINE, || server
        .stderr_text()
        .contains("EMFILE")));
    // A window to count restarts in (the measure is how many there were in 3 s), not a
    // wait for something to be ready.
    while started.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(100));
    }
    server.assert_running("3 s of workers dying at once");
    let text = server.stderr_text();
    let deaths = text.matches("EMFILE").count();
    assert!(
        (2..40).contains(&deaths),
        "{deaths} workers died in 3 s: {text}"
    );
    assert_eq!(text.matches("growing pause").count(), 1, "{text}");
}

/// The rest of RFC 9112's framing, over the wire, each answered at once (the whole list
/// within 3 s): a bare LF ends a line (it waited 5 s for a 408), a signed length and two
/// Hosts are 400, the query is not the path (it was 404), a name longer than the file
/// system allows is 414 (it was 500), HTTP/2.0 is 505 (it was 400).
#[test]
fn framing_is_decided_at_once() {
    let root = tempfile::tempdir().expect("tempdir");
    let root_arg = root.path().to_string_lossy().into_owned();
    let server = start(&["--workers", "1", "--root", &root_arg]);
    let long = format!("/{}", "a".repeat(300));
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (
            b"GET / HTTP/1.1\nHost: a\nConnection: close\n\n".to_vec(),
            200,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n".to_vec(),
            400,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".to_vec(),
            400,
        ),
        (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(), 400),
        (get("/?x=1"), 200),
        (get(&long), 414),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n".to_vec(), 505),
    ];
    let started = Instant::now();
    for (request, status) in cases {
        let got = exchange(server.addr(), &request);
        assert_eq!(
            status_of(&got),
            status,
            "{:?} got {:?}",
            String::from_utf8_lossy(&request),
            String::from_utf8_lossy(&got)
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

/// `Connection` is a token list: `notclose` keeps the connection open (it closed it).
#[test]
fn only_the_close_token_closes() {
    let server = start(&["--workers", "1"]);
    let mut stream = connect(server.addr());
    for _ in 0..2 {
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: notclose\r\n\r\n")
            .expect("send on the same connection");
        assert_eq!(status_of(&read_one(&mut stream)), 200);
    }
}

/// With every worker busy and the pool at its maximum, an idle kept-alive connection
/// gives way after 1 s instead of 5 s when a client waits in the listening queue.
#[test]
fn an_idle_kept_alive_connection_gives_way_when_clients_wait() {
    let server = start(&["--workers", "1", "--max-workers", "1"]);
    let mut kept = connect(server.addr());
    kept.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .expect("send");
    assert_eq!(status_of(&read_one(&mut kept)), 200);
    let started = Instant::now();
    let got = exchange(server.addr(), &get("/"));
    assert_eq!(status_of(&got), 200);
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "the waiting client was served after {:?}",
        started.elapsed()
    );
    let mut byte = [0u8; 1];
    assert_eq!(kept.read(&mut byte).expect("end of stream"), 0);
}
