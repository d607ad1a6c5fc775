//! ch18's suite on our thread-per-client server, and the iterative twin.

use assert_cmd::Command;
use harness::testing::assert_reference_passes;
use predicates::prelude::*;

const BIN: &str = env!("CARGO_BIN_EXE_ch18-threads");

#[test]
fn reference_passes_every_check() {
    assert_reference_passes("ch18", "ch18-threads", BIN);
}

#[test]
fn demo_shows_a_thread_per_client() {
    Command::new(BIN)
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "the server has 4 threads: the main one and one per client",
        ));
}

/// The demo never prints an effect before its cause, run after run: a read() of some
/// bytes never returns before the write() of them began, an accept() never before a
/// connect() began (the two sides' lines are merged on one clock, workbook::timeline).
#[test]
fn demo_prints_causes_before_effects() {
    harness::testing::assert_demo_causal(env!("CARGO_BIN_EXE_ch18-threads"), &[], 50);
}
