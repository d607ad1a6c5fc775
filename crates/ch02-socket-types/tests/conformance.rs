//! ch02's conformance suite on our binary, the gallery's ch02 submissions, and the
//! datagrams demo.

use assert_cmd::Command;
use harness::testing::assert_reference_passes;
use predicates::prelude::*;

const BIN: &str = env!("CARGO_BIN_EXE_ch02-socket-types");

#[test]
fn reference_passes_every_check() {
    assert_reference_passes("ch02", "ch02-socket-types", BIN);
}

/// Three sendto() calls, three recvfrom() results, each a whole datagram.
#[test]
fn datagrams_keep_their_boundaries() {
    Command::new(BIN)
        .arg("datagrams")
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .success()
        .stdout(
            predicate::str::is_match(r"recvfrom\(\) #1: 3 bytes from 127\.0\.0\.1:\d+: Hi!\n")
                .unwrap(),
        )
        .stdout(
            predicate::str::is_match(r"recvfrom\(\) #2: 21 bytes from .*: I'm another UDP host!\n")
                .unwrap(),
        )
        .stdout(
            predicate::str::is_match(r"recvfrom\(\) #3: 16 bytes from .*: Nice to meet you\n")
                .unwrap(),
        );
}

/// The demo: one write on the server's side, twelve reads on the client's.
#[test]
fn demo_shows_one_write_and_twelve_reads() {
    let out = harness::testing::demo_transcript(BIN, &[]);
    for wanted in [
        "[server] write(4, \"Hello World!\", 12) = 12",
        "[client] Function read call count: 12",
        "[udp] 3 recvfrom() calls, one per datagram",
    ] {
        assert!(out.contains(wanted), "no {wanted:?} in:\n{out}");
    }
}

/// The demo never prints an effect before its cause, run after run: a read() of some
/// bytes never returns before the write() of them began, an accept() never before a
/// connect() began (the two sides' lines are merged on one clock, workbook::timeline).
#[test]
fn demo_prints_causes_before_effects() {
    harness::testing::assert_demo_causal(env!("CARGO_BIN_EXE_ch02-socket-types"), &[], 50);
}
