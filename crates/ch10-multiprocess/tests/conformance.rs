//! ch10's server, client and process-demo checks on our binary, and the gallery's ch10
//! submissions.

use assert_cmd::Command;
use harness::testing::{assert_reference_passes, assert_submission};
use predicates::prelude::*;

const BIN: &str = env!("CARGO_BIN_EXE_ch10-multiprocess");

#[test]
fn reference_passes_every_check() {
    assert_reference_passes("ch10", "ch10-multiprocess", BIN);
}

#[test]
fn book_style_c_passes() {
    assert_submission("ch10/book-style");
}

#[test]
fn twin_that_never_reaps() {
    assert_submission("ch10/never-reaps");
}

/// The book's handler: one waitpid() per SIGCHLD. Bursts of 20 simultaneous exits leave
/// zombies every time.
#[test]
fn twin_with_one_wait_per_signal() {
    assert_submission("ch10/one-wait-per-signal");
}

#[test]
fn twin_whose_parent_keeps_the_client_socket() {
    assert_submission("ch10/parent-keeps-client-socket");
}

#[test]
fn twin_that_serves_one_client_at_a_time() {
    assert_submission("ch10/one-client-at-a-time");
}

#[test]
fn twin_client_that_loops_at_end_of_input() {
    assert_submission("ch10/client-loops-at-eof");
}

#[test]
fn twin_zombie_demo_that_reaps_at_once() {
    assert_submission("ch10/demo-reaps-at-once");
}

#[test]
fn twin_waitpid_demo_that_blocks() {
    assert_submission("ch10/demo-blocking-wait");
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
