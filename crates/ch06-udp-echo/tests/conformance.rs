//! ch06's UDP echo roles on our binary, the gallery's ch06 submissions, and the
//! bound-host demo.

use assert_cmd::Command;
use harness::testing::assert_reference_passes;
use predicates::prelude::*;

const BIN: &str = env!("CARGO_BIN_EXE_ch06-udp-echo");

#[test]
fn reference_passes_every_check() {
    assert_reference_passes("ch06", "ch06-udp-echo", BIN);
}

/// Three datagrams sent back to back are read as three, whole.
#[test]
fn demo_shows_three_datagrams_three_reads() {
    Command::new(BIN)
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "[client] Message from server: Hello UDP!",
        ))
        .stdout(
            predicate::str::is_match(
                r"\[host1\] Message 2: I'm another UDP host! \(21 bytes from 127\.0\.0\.1:\d+\)",
            )
            .unwrap(),
        );
}

/// With --wire: a datagram per sendto(), between it and the recvfrom() that gets it,
/// and no handshake at all.
#[test]
fn demo_with_wire_shows_datagrams_and_no_handshake() {
    use harness::testing::{line_where, wire_demo};
    let Some(out) = wire_demo(env!("CARGO_BIN_EXE_ch06-udp-echo"), &["--wire"]) else {
        return;
    };
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with("[wire]") && l.contains("SYN")),
        "a handshake on UDP:\n{out}"
    );
    let send = line_where(&lines, 0, "the client's sendto()", |l| {
        l.starts_with("[client] sendto(3, \"Hello UDP!\\n\", 11")
    });
    let datagram = line_where(&lines, send, "the datagram", |l| {
        l.starts_with("[wire] client:") && l.contains(" UDP len=11 \"Hello UDP!\\n\"")
    });
    let received = line_where(&lines, datagram, "the server's recvfrom() of it", |l| {
        l.starts_with("[server] ") && l.contains("\"Hello UDP!\\n\", 65507, MSG_TRUNC) = 11")
    });
    assert!(send < datagram && datagram < received, "{out}");
}
