//! ch03's conversions check on our binary, a twin that forgets byte order, and the
//! one-line errors for invalid input.

use assert_cmd::Command;
use harness::testing::assert_reference_passes;
use predicates::prelude::*;

const BIN: &str = env!("CARGO_BIN_EXE_ch03-addresses");

#[test]
fn reference_passes_every_check() {
    assert_reference_passes("ch03", "ch03-addresses", BIN);
}

/// The book's failure case: one line, exit 1, never a panic.
#[test]
fn an_invalid_address_is_a_one_line_error() {
    Command::new(BIN)
        .args(["inet-addr", "1.2.3.256"])
        .assert()
        .code(1)
        .stdout("")
        .stderr("error: invalid address \"1.2.3.256\": expected four numbers from 0 to 255 separated by dots, such as 1.2.3.4\n");
    Command::new(BIN)
        .args(["inet-ntoa", "0x1ffffffff"])
        .assert()
        .code(1)
        .stderr(predicate::str::starts_with(
            "error: invalid address value \"0x1ffffffff\"",
        ));
}

/// 255.255.255.255 is valid, and is what C's inet_addr() returns for an error.
#[test]
fn the_broadcast_address_warns_about_inet_addr() {
    Command::new(BIN)
        .args(["inet-addr", "255.255.255.255"])
        .assert()
        .success()
        .stdout(predicate::str::contains("INADDR_NONE"));
}

#[test]
fn demo_runs_every_conversion() {
    Command::new(BIN)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "$ ch03-addresses sockaddr 127.0.0.1 9190",
        ))
        .stdout(predicate::str::contains(
            "error: invalid address \"1.2.3.256\"",
        ));
}
