//! ch09's checks on our demos (observed from /proc), and the twins that prove each
//! check can fail.

use assert_cmd::Command;
use harness::testing::assert_reference_passes;
use predicates::prelude::*;

const BIN: &str = env!("CARGO_BIN_EXE_ch09-tcp-inside");

#[test]
fn reference_passes_every_check() {
    assert_reference_passes("ch09", "ch09-tcp-inside", BIN);
}

#[test]
fn every_demo_runs_in_seconds() {
    Command::new(BIN)
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "queued: 3 completed connections wait in the listen queue",
        ))
        .stdout(predicate::str::contains("Input buffer size: 6144"))
        .stdout(predicate::str::contains("Socket type two: 2"))
        .stdout(predicate::str::is_match(r"TCP_NODELAY +TCP_NODELAY +0\.\d\d ms").unwrap())
        .stdout(predicate::str::contains("FIFO: yes"))
        .stdout(
            predicate::str::is_match(r"client after the server's close\(\) +TIME_WAIT").unwrap(),
        )
        .stdout(
            predicate::str::contains("restart with SO_REUSEADDR: bind(")
                .and(predicate::str::contains("succeeds")),
        );
}

/// The stall and its cure, as the demo measures them: about 40 ms a round trip for each
/// side that writes in pieces with Nagle on, well under one with TCP_NODELAY on both.
#[test]
fn nagle_demo_measures_the_stall_and_its_cure() {
    let out = Command::new(BIN)
        .args(["nagle", "--rounds", "6"])
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .expect("run the nagle demo");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let median = |client: &str, server: &str| -> f64 {
        text.lines()
            .find(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                w.first() == Some(&client) && w.get(1) == Some(&server)
            })
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {client}/{server} row in:\n{text}"))
    };
    assert!(median("Nagle", "Nagle") >= 60.0, "{text}");
    assert!(median("TCP_NODELAY", "Nagle") >= 30.0, "{text}");
    assert!(median("Nagle", "TCP_NODELAY") >= 30.0, "{text}");
    assert!(median("TCP_NODELAY", "TCP_NODELAY") < 15.0, "{text}");
}
