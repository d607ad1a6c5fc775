//! ch01's conformance suite on our binary, and the gallery's ch01 submissions graded.

use assert_cmd::Command;
use harness::testing::{assert_reference_passes, demo_transcript};
use predicates::prelude::*;

/// Our server and client pass every ch01 check.
#[test]
fn reference_passes_every_check() {
    assert_reference_passes("ch01", "ch01-hello", env!("CARGO_BIN_EXE_ch01-hello"));
}

/// `fds`: 0, 1 and 2 are taken before main(), so the file and the two sockets get 3,
/// 4 and 5, and the listing shows them as lsof would.
#[test]
fn fds_shows_three_four_and_five() {
    Command::new(env!("CARGO_BIN_EXE_ch01-hello"))
        .arg("fds")
        .assert()
        .success()
        .stdout(predicate::str::contains("file descriptor 1: 3 (a file)"))
        .stdout(predicate::str::contains(
            "file descriptor 2: 4 (a TCP socket)",
        ))
        .stdout(predicate::str::contains(
            "file descriptor 3: 5 (a UDP socket)",
        ))
        .stdout(predicate::str::is_match(r"(?m)^4 +sock +socket:\[\d+\]$").unwrap());
}

/// The demo runs the server as a child process, narrates both sides, and exits 0.
#[test]
fn demo_narrates_both_sides_and_exits_zero() {
    let out = demo_transcript(env!("CARGO_BIN_EXE_ch01-hello"), &[]);
    for wanted in [
        "[server] socket(AF_INET, SOCK_STREAM, 0) = 3",
        "[server] listen(3, 128) = 0",
        "[server] write(4, \"Hello World!\", 12) = 12",
        "[client] Message from server: Hello World!",
    ] {
        assert!(out.contains(wanted), "no {wanted:?} in:\n{out}");
    }
    let accept = predicate::str::is_match(r"\[server\] accept\(3\) = 4 \(127\.0\.0\.1:\d+\)");
    assert!(accept.unwrap().eval(&out), "no accept() in:\n{out}");
}

/// A port in use is a one-line error naming the call, the address and errno: exit 1.
#[test]
fn port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind failed");
    let port = taken.local_addr().unwrap().port().to_string();
    Command::new(env!("CARGO_BIN_EXE_ch01-hello"))
        .args(["server", &port])
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .code(1)
        .stderr(format!(
            "error: bind(3, 127.0.0.1:{port}): EADDRINUSE: Address already in use\n"
        ));
}

/// A client given something that is not an IP address: exit 1, one line.
#[test]
fn bad_address_is_a_clear_error() {
    Command::new(env!("CARGO_BIN_EXE_ch01-hello"))
        .args(["client", "not-an-ip", "9190"])
        .assert()
        .code(1)
        .stderr(predicate::str::starts_with(
            "error: invalid address \"not-an-ip\"",
        ));
}

/// A command line clap rejects: exit 2.
#[test]
fn bad_command_line_exits_two() {
    Command::new(env!("CARGO_BIN_EXE_ch01-hello"))
        .args(["server", "not-a-port"])
        .assert()
        .code(2);
}

/// The demo never prints an effect before its cause, run after run: a read() of some
/// bytes never returns before the write() of them began, an accept() never before a
/// connect() began (the two sides' lines are merged on one clock, workbook::timeline).
#[test]
fn demo_prints_causes_before_effects() {
    harness::testing::assert_demo_causal(env!("CARGO_BIN_EXE_ch01-hello"), &[], 50);
}
