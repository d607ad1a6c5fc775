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
