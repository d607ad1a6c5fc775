//! ch12's suite on our binary (select echo server, chat room, chat client) and the
//! gallery's ch12 twins.

use assert_cmd::Command;
use harness::testing::assert_reference_passes;
use predicates::prelude::*;

const BIN: &str = env!("CARGO_BIN_EXE_ch12-select");

#[test]
fn reference_passes_every_check() {
    assert_reference_passes("ch12", "ch12-select", BIN);
}

#[test]
fn demo_relays_every_line_to_every_member() {
    Command::new(BIN)
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "[carol] [alice] hello, I am alice",
        ))
        .stdout(predicate::str::contains(
            "[alice] [carol] hello, I am carol",
        ));
}

/// The demo never prints an effect before its cause, run after run: a read() of some
/// bytes never returns before the write() of them began, an accept() never before a
/// connect() began (the two sides' lines are merged on one clock, workbook::timeline).
#[test]
fn demo_prints_causes_before_effects() {
    harness::testing::assert_demo_causal(env!("CARGO_BIN_EXE_ch12-select"), &[], 50);
}
