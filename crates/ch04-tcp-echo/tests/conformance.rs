//! ch04's conformance suite, run on our binary, and the gallery's ch04 submissions
//! graded: the book-style C programs pass everything, each broken twin fails exactly
//! the checks its manifest names.

use harness::testing::assert_reference_passes;

/// Our server and client pass every ch04 check.
#[test]
fn reference_passes_every_check() {
    assert_reference_passes("ch04", "ch04-tcp-echo", env!("CARGO_BIN_EXE_ch04-tcp-echo"));
}

mod commands {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use assert_cmd::Command;
    use predicates::prelude::*;

    const BIN: &str = env!("CARGO_BIN_EXE_ch04-tcp-echo");

    /// The demo: the server is a child process whose own fds are narrated (3 listens,
    /// 4 is the client), both sides are prefixed, and it all ends with status 0.
    #[test]
    fn demo_narrates_the_servers_own_fds_and_exits_zero() {
        let out = harness::testing::demo_transcript(BIN, &[]);
        for wanted in [
            "[server] socket(AF_INET, SOCK_STREAM, 0) = 3",
            "[server] bind(3, 127.0.0.1:0) = 0",
            "[server] listen(3, 128) = 0",
            "[server] read(4, \"Hello socket!\\n\", 1024) = 14",
            "[client] Message from server: Hello socket!",
        ] {
            assert!(out.contains(wanted), "no {wanted:?} in:\n{out}");
        }
        let accept = predicate::str::is_match(r"\[server\] accept\(3\) = 4 \(127\.0\.0\.1:\d+\)");
        assert!(accept.unwrap().eval(&out), "no accept() in:\n{out}");
    }

    /// Piped input: each line is echoed, and end of input ends the client with status 0
    /// (the book's client would loop forever here).
    #[test]
    fn client_stops_at_end_of_piped_input() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind failed");
        let port = listener.local_addr().unwrap().port().to_string();
        let echo = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().expect("accept failed");
            let mut buf = [0u8; 1024];
            loop {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => conn.write_all(&buf[..n]).expect("write failed"),
                }
            }
        });
        Command::new(BIN)
            .args(["client", "127.0.0.1", &port])
            .write_stdin("first\nsecond\n")
            .timeout(std::time::Duration::from_secs(30))
            .assert()
            .success()
            .stdout(predicate::str::contains("Message from server: first\n"))
            .stdout(predicate::str::contains("Message from server: second\n"));
        echo.join().expect("echo thread");
    }

    /// With --trace the client narrates its calls on stderr.
    #[test]
    fn trace_flag_narrates_on_stderr() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind failed");
        let port = listener.local_addr().unwrap().port();
        Command::new(BIN)
            .args(["client", "127.0.0.1", &port.to_string(), "--trace"])
            .write_stdin("Q\n")
            .timeout(std::time::Duration::from_secs(30))
            .assert()
            .success()
            .stderr(predicate::str::contains(format!(
                "connect(3, 127.0.0.1:{port}) = 0"
            )))
            .stderr(predicate::str::contains("close(3) = 0"));
    }

    /// No server: a one-line error with errno, exit 1.
    #[test]
    fn client_without_server_is_a_clear_error() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").expect("bind failed");
            l.local_addr().unwrap().port()
        };
        Command::new(BIN)
            .args(["client", "127.0.0.1", &port.to_string()])
            .timeout(std::time::Duration::from_secs(30))
            .assert()
            .code(1)
            .stderr(format!(
                "error: connect(3, 127.0.0.1:{port}): ECONNREFUSED: Connection refused\n"
            ));
    }
}

/// The lesson of chapter 5, asserted: our chapter 4 client, which keeps the book's
/// single read() per line, fails `ch05/fragmented-reply`.
#[test]
fn our_chapter_4_client_fails_the_chapter_5_check() {
    let records = harness::testing::grade_template(
        "ch05",
        "client",
        &format!(
            "{} client {{host}} {{port}}",
            env!("CARGO_BIN_EXE_ch04-tcp-echo")
        ),
        Some("ch05/fragmented-reply"),
    );
    assert_eq!(records.len(), 1);
    let harness::verdict::Verdict::Fail(evidence) = &records[0].verdict else {
        panic!("ch05/fragmented-reply did not fail: {records:?}");
    };
    assert!(
        evidence
            .message
            .contains("printed the reply before it was whole"),
        "{}",
        evidence.message
    );
}

/// The demo never prints an effect before its cause, run after run: a read() of some
/// bytes never returns before the write() of them began, an accept() never before a
/// connect() began (the two sides' lines are merged on one clock, workbook::timeline).
#[test]
fn demo_prints_causes_before_effects() {
    harness::testing::assert_demo_causal(env!("CARGO_BIN_EXE_ch04-tcp-echo"), &[], 50);
}

/// With --wire, each segment is printed where it happened among the calls: the
/// three-way handshake completes before accept() returns (the kernel does it, not
/// accept()), connect() returns after the SYN-ACK, the data segment comes between the
/// client's write() and the server's read(), and the client's close() sends the FIN.
#[test]
fn demo_with_wire_shows_each_segment_between_its_calls() {
    use harness::testing::{line_where, wire_demo};
    let Some(out) = wire_demo(env!("CARGO_BIN_EXE_ch04-tcp-echo"), &["--wire"]) else {
        return;
    };
    let lines: Vec<&str> = out.lines().collect();
    let syn = line_where(&lines, 0, "SYN", |l| {
        l.starts_with("[wire] client:") && l.contains(" SYN seq=0")
    });
    let syn_ack = line_where(&lines, syn, "SYN-ACK", |l| {
        l.starts_with("[wire] server:") && l.contains(" SYN-ACK ")
    });
    let ack = line_where(&lines, syn_ack, "the handshake's ACK", |l| {
        l.starts_with("[wire] client:") && l.contains(" ACK seq=1 ack=1 ")
    });
    let accepted = line_where(&lines, 0, "accept() returning", |l| {
        l.starts_with("[server] accept(3) = 4")
            || l.starts_with("[server] <... accept resumed>) = 4")
    });
    let connected = line_where(&lines, 0, "connect() returning", |l| {
        (l.starts_with("[client] connect(3, ") && l.ends_with(") = 0"))
            || l.starts_with("[client] <... connect resumed>) = 0")
    });
    assert!(
        ack < accepted,
        "the handshake after accept() returned:\n{out}"
    );
    assert!(
        syn_ack < connected,
        "connect() returned before the SYN-ACK:\n{out}"
    );
    let write = line_where(&lines, 0, "the client's write()", |l| {
        l.starts_with("[client] write(3, \"Hello socket!\\n\", 14")
    });
    let data = line_where(&lines, 0, "the data segment", |l| {
        l.starts_with("[wire] client:") && l.contains(" len=14 \"Hello socket!\\n\"")
    });
    let read = line_where(&lines, 0, "the server's read() returning", |l| {
        l.starts_with("[server] ") && l.ends_with("\"Hello socket!\\n\", 1024) = 14")
    });
    assert!(
        write < data && data < read,
        "the data not between write() and read():\n{out}"
    );
    let close = line_where(&lines, 0, "the client's close()", |l| {
        l.starts_with("[client] close(3")
    });
    let fin = line_where(&lines, 0, "the client's FIN", |l| {
        l.starts_with("[wire] client:") && l.contains(" FIN-")
    });
    assert!(close < fin, "the FIN before close():\n{out}");
}

/// --pcap writes the same capture as a pcap file that tcpdump reads back: the
/// handshake, the data and the FINs.
#[test]
fn demo_pcap_is_read_back_by_tcpdump() {
    let file = std::env::temp_dir().join(format!("ch04-wire-{}.pcap", std::process::id()));
    let file_arg = file.to_string_lossy().into_owned();
    let out =
        harness::testing::wire_demo(env!("CARGO_BIN_EXE_ch04-tcp-echo"), &["--pcap", &file_arg]);
    let read = out.as_ref().and_then(|_| {
        harness::testing::tool_output("tcpdump", "tcpdump", &["-nn", "-r", &file_arg])
    });
    let _ = std::fs::remove_file(&file);
    let (Some(out), Some(read)) = (out, read) else {
        return;
    };
    let frames = out.lines().filter(|l| l.starts_with("[wire] ")).count();
    assert!(
        out.contains(&format!("{frames} frames written to")),
        "{out}"
    );
    for flags in ["Flags [S]", "Flags [S.]", "Flags [P.]", "Flags [F.]"] {
        assert!(read.contains(flags), "tcpdump shows no {flags}:\n{read}");
    }
    assert_eq!(
        read.lines().count(),
        frames,
        "tcpdump:\n{read}\ndemo:\n{out}"
    );
}
