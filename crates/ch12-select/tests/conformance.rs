//! ch12's suite on our binary (select echo server, chat room, chat client) and the
//! gallery's ch12 twins.

use assert_cmd::Command;
use harness::testing::{assert_reference_passes, assert_submission};
use predicates::prelude::*;

const BIN: &str = env!("CARGO_BIN_EXE_ch12-select");

#[test]
fn reference_passes_every_check() {
    assert_reference_passes("ch12", "ch12-select", BIN);
}

/// Blocking writes in a select() loop: a client that stops reading stops everyone.
#[test]
fn twin_select_server_with_blocking_writes() {
    assert_submission("ch12/select-blocking-writes");
}

#[test]
fn twin_chat_room_that_keeps_a_closed_member() {
    assert_submission("ch12/chat-keeps-closed-member");
}

#[test]
fn twin_chat_room_without_framing() {
    assert_submission("ch12/chat-no-framing");
}

#[test]
fn twin_iterative_echo_server() {
    assert_submission("ch12/one-client-at-a-time");
}

/// A thread per client is ch18's model: as ch12 it fails single-process only.
#[test]
fn twin_thread_per_client_server() {
    assert_submission("ch12/thread-per-client");
}

#[test]
fn twin_chat_client_without_its_name() {
    assert_submission("ch12/chat-client-no-name");
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

/// A C model answer (one select() server for echo and chat, and the chat client) passes
/// every ch12 check.
#[test]
fn c_model_answer_passes() {
    assert_submission("ch12/c-model");
}
