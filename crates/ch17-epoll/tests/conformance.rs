//! ch17's suite on our epoll server, level-triggered (the reference) and edge-triggered.

use assert_cmd::Command;
use harness::testing::assert_reference_passes;
use predicates::prelude::*;

const BIN: &str = env!("CARGO_BIN_EXE_ch17-epoll");

#[test]
fn reference_passes_every_check() {
    assert_reference_passes("ch17", "ch17-epoll", BIN);
}

/// The edge-triggered server passes the same suite.
#[test]
fn edge_triggered_passes_every_check() {
    harness::testing::assert_template_passes(
        "ch17",
        "server",
        &format!("{BIN} echo-server {{port}} --edge"),
    );
}

#[test]
fn demo_runs_both_triggers() {
    Command::new(BIN)
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .success()
        .stdout(predicate::str::contains("level-triggered:"))
        .stdout(predicate::str::contains(
            "[server] epoll_ctl(6, EPOLL_CTL_ADD, 7, EPOLLIN|EPOLLET|EPOLLRDHUP) = 0",
        ));
}
