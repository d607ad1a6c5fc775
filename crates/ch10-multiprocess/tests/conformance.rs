//! ch10's server, client and process-demo checks on our binary, and the gallery's ch10
//! submissions.

use assert_cmd::Command;
use harness::testing::assert_reference_passes;
use predicates::prelude::*;

const BIN: &str = env!("CARGO_BIN_EXE_ch10-multiprocess");

#[test]
fn reference_passes_every_check() {
    assert_reference_passes("ch10", "ch10-multiprocess", BIN);
}

/// The demo: three clients at once, then no zombie among the server's children.
#[test]
fn demo_leaves_no_zombie() {
    Command::new(BIN)
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "[client1] Message from server: hello from client one",
        ))
        .stdout(
            predicate::str::is_match(r"children of the server \(pid \d+\) in state Z now: none")
                .unwrap(),
        );
}

#[test]
fn fork_demo_shows_two_copies() {
    Command::new(BIN)
        .arg("fork")
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"Child Proc \(pid \d+\): \[13, 27\]").unwrap())
        .stdout(predicate::str::is_match(r"Parent Proc \(pid \d+\): \[9, 23\]").unwrap());
}

#[test]
fn wait_demo_decodes_both_statuses() {
    Command::new(BIN)
        .arg("wait")
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"Child \d+ send one: 3 ").unwrap())
        .stdout(predicate::str::is_match(r"Child \d+ send one: 7 ").unwrap());
}

/// The demo never prints an effect before its cause, run after run: a read() of some
/// bytes never returns before the write() of them began, an accept() never before a
/// connect() began (the two sides' lines are merged on one clock, workbook::timeline).
#[test]
fn demo_prints_causes_before_effects() {
    harness::testing::assert_demo_causal(env!("CARGO_BIN_EXE_ch10-multiprocess"), &[], 50);
}
