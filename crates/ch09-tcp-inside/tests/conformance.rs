//! ch09's checks on our demos (observed from /proc), and the twins that prove each
//! check can fail.

use assert_cmd::Command;
use harness::testing::{assert_reference_passes, assert_submission};
use predicates::prelude::*;

const BIN: &str = env!("CARGO_BIN_EXE_ch09-tcp-inside");

#[test]
fn reference_passes_every_check() {
    assert_reference_passes("ch09", "ch09-tcp-inside", BIN);
}

#[test]
fn twin_backlog_demo_that_accepts_at_once() {
    assert_submission("ch09/backlog-accepts-at-once");
}

#[test]
fn twin_backlog_demo_that_misnumbers() {
    assert_submission("ch09/backlog-misnumbered");
}

#[test]
fn twin_states_demo_where_the_server_closes_first() {
    assert_submission("ch09/states-server-closes-first");
}

#[test]
fn twin_reuseaddr_demo_where_the_client_closes_first() {
    assert_submission("ch09/reuseaddr-client-closes-first");
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
