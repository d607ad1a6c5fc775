//! ch06's UDP echo roles on our binary, the gallery's ch06 submissions, and the
//! bound-host demo.

use assert_cmd::Command;
use harness::testing::{assert_reference_passes, assert_submission};
use predicates::prelude::*;

const BIN: &str = env!("CARGO_BIN_EXE_ch06-udp-echo");

#[test]
fn reference_passes_every_check() {
    assert_reference_passes("ch06", "ch06-udp-echo", BIN);
}

/// The book's three UDP programs in C, made correct, pass every ch06 check.
#[test]
fn book_style_c_passes() {
    assert_submission("ch06/book-style");
}

#[test]
fn twin_server_with_30_byte_buffer() {
    assert_submission("ch06/server-30-byte-buffer");
}

#[test]
fn twin_server_that_stops_at_an_empty_datagram() {
    assert_submission("ch06/empty-datagram-as-eof");
}

#[test]
fn twin_server_that_answers_its_first_client_only() {
    assert_submission("ch06/replies-to-first-sender");
}

#[test]
fn twin_server_that_replies_to_itself() {
    assert_submission("ch06/replies-to-itself");
}

#[test]
fn twin_client_without_timeout() {
    assert_submission("ch06/client-without-timeout");
}

#[test]
fn twin_client_that_prints_bytes() {
    assert_submission("ch06/client-prints-bytes");
}

/// Three datagrams sent back to back are read as three, whole.
#[test]
fn demo_shows_three_datagrams_three_reads() {
    Command::new(BIN)
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "[client] Message from server: Hello UDP!",
        ))
        .stdout(
            predicate::str::is_match(
                r"\[host1\] Message 2: I'm another UDP host! \(21 bytes from 127\.0\.0\.1:\d+\)",
            )
            .unwrap(),
        );
}
