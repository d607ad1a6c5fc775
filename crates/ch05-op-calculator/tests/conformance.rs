//! ch05's calculator roles on our binary, the book-style C (all four ch05 roles), and
//! the calculator twins.

use assert_cmd::Command;
use harness::testing::assert_reference_passes;
use predicates::prelude::*;

const BIN: &str = env!("CARGO_BIN_EXE_ch05-op-calculator");

#[test]
fn reference_passes_every_check() {
    assert_reference_passes("ch05", "ch05-op-calculator", BIN);
}

/// The demo: three calculations and an overflow that wraps.
#[test]
fn demo_calculates_and_wraps() {
    Command::new(BIN)
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .success()
        .stdout(predicate::str::contains("[client] Operation result: 15"))
        .stdout(predicate::str::contains("[client] Operation result: -24"))
        .stdout(predicate::str::contains(
            "[client] Operation result: -2147483648",
        ));
}

/// Bad input on the client's command line: one line, exit 1, nothing sent.
#[test]
fn client_rejects_an_unknown_operator() {
    Command::new(BIN)
        .args(["calc-client", "127.0.0.1", "9", "--operator", "/", "1", "2"])
        .assert()
        .code(1)
        .stderr("error: unknown operator '/': use +, - or *\n");
}

/// The demo never prints an effect before its cause, run after run: a read() of some
/// bytes never returns before the write() of them began, an accept() never before a
/// connect() began (the two sides' lines are merged on one clock, workbook::timeline).
#[test]
fn demo_prints_causes_before_effects() {
    harness::testing::assert_demo_causal(env!("CARGO_BIN_EXE_ch05-op-calculator"), &[], 50);
}
