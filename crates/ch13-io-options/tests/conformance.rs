//! ch13's receiver and sender checks on our binary, the gallery's ch13 submissions, and
//! the demos.

use assert_cmd::Command;
use harness::testing::assert_reference_passes;
use predicates::prelude::*;

const BIN: &str = env!("CARGO_BIN_EXE_ch13-io-options");

#[test]
fn reference_passes_every_check() {
    assert_reference_passes("ch13", "ch13-io-options", BIN);
}

/// The demo: the urgent bytes apart from the stream, the peek and the read, writev's
/// partial write written whole by calling again, readv's two buffers.
#[test]
fn demo_shows_each_call() {
    Command::new(BIN)
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .success()
        .stdout(predicate::str::contains("[oob-recv] Urgent message: 4"))
        .stdout(predicate::str::contains("[oob-recv] Urgent message: 0"))
        .stdout(predicate::str::contains("[oob-recv] 89"))
        .stdout(predicate::str::contains(
            "[peek-recv] Buffering 3 bytes: 123",
        ))
        .stdout(predicate::str::contains("[peek-recv] Read again: 123"))
        .stdout(predicate::str::contains("[writev] Write bytes: 14"))
        .stdout(predicate::str::contains("all 262155 bytes were written"))
        .stdout(predicate::str::contains("[readv] First message: I lik"));
}

/// readv() from standard input: the first buffer fills before the second.
#[test]
fn readv_fills_the_first_buffer_first() {
    Command::new(BIN)
        .arg("readv")
        .write_stdin("Hi\n")
        .timeout(std::time::Duration::from_secs(10))
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "Read bytes: 3\nFirst message: Hi\nSecond message: \n",
        ));
}
