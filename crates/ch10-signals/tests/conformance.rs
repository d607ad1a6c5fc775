//! ch10's signal-demo checks on our binary, and the twins that prove they can fail.

use harness::testing::{assert_reference_passes, assert_submission};

#[test]
fn reference_passes_every_check() {
    assert_reference_passes("ch10", "ch10-signals", env!("CARGO_BIN_EXE_ch10-signals"));
}

#[test]
fn twin_signal_demo_without_sigint_handler() {
    assert_submission("ch10/demo-without-sigint-handler");
}

#[test]
fn twin_remove_zombie_demo_without_sigchld_handler() {
    assert_submission("ch10/demo-without-sigchld-handler");
}
