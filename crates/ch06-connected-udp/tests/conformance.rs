//! ch06's connected-client role on our binary, its twins, and the demo of the two facts.

use assert_cmd::Command;
use harness::testing::assert_reference_passes;
use predicates::prelude::*;

const BIN: &str = env!("CARGO_BIN_EXE_ch06-connected-udp");

#[test]
fn reference_passes_every_check() {
    assert_reference_passes("ch06", "ch06-connected-udp", BIN);
}

/// The demo shows both facts: strangers dropped, ECONNREFUSED reported.
#[test]
fn demo_shows_both_facts() {
    Command::new(BIN)
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "read: \"from the peer\": the stranger's datagram was dropped",
        ))
        .stdout(predicate::str::contains("read() failed with ECONNREFUSED"));
}

/// With no server, the client says so in one line and exits 1.
#[test]
fn no_server_is_connection_refused() {
    let port = {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind failed");
        probe.local_addr().unwrap().port()
    };
    Command::new(BIN)
        .args(["client", "127.0.0.1", &port.to_string()])
        .write_stdin("hello\n")
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .code(1)
        .stderr(format!(
            "error: connection refused: nothing is bound to UDP port {port} at 127.0.0.1\n"
        ));
}
