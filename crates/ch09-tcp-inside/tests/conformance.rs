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
fn all_three_demos_run_in_seconds() {
    Command::new(BIN)
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "queued: 3 completed connections wait in the listen queue",
        ))
        .stdout(predicate::str::contains("FIFO: yes"))
        .stdout(
            predicate::str::is_match(r"client after the server's close\(\) +TIME_WAIT").unwrap(),
        )
        .stdout(
            predicate::str::contains("restart with SO_REUSEADDR: bind(")
                .and(predicate::str::contains("succeeds")),
        );
}
