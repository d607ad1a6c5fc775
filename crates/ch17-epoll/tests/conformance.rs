//! ch17's suite on our epoll server, level-triggered (the reference) and edge-triggered.

use harness::testing::assert_reference_passes;

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
    let out = harness::testing::demo_transcript(BIN, &[]);
    for wanted in [
        "level-triggered:",
        "[server] epoll_ctl(6, EPOLL_CTL_ADD, 7, EPOLLIN|EPOLLET|EPOLLRDHUP) = 0",
    ] {
        assert!(out.contains(wanted), "no {wanted:?} in:\n{out}");
    }
}

/// The demo never prints an effect before its cause, run after run: a read() of some
/// bytes never returns before the write() of them began, an accept() never before a
/// connect() began (the two sides' lines are merged on one clock, workbook::timeline).
#[test]
fn demo_prints_causes_before_effects() {
    harness::testing::assert_demo_causal(env!("CARGO_BIN_EXE_ch17-epoll"), &[], 50);
}
