//! ch04's conformance suite, run on our binary, and the gallery's ch04 submissions
//! graded: the book-style C programs pass everything, each broken twin fails exactly
//! the checks its manifest names.

use harness::testing::{assert_reference_passes, assert_submission};

/// Our server and client pass every ch04 check.
#[test]
fn reference_passes_every_check() {
    assert_reference_passes("ch04", env!("CARGO_BIN_EXE_ch04-tcp-echo"));
}

/// The book's C, made correct (a server that serves 5 clients and exits), passes.
#[test]
fn book_style_c_passes() {
    assert_submission("ch04/book-style");
}

#[test]
fn twin_without_sigpipe_handling_dies() {
    assert_submission("ch04/dies-of-sigpipe");
}

#[test]
fn twin_that_exits_after_its_first_client() {
    assert_submission("ch04/exits-after-first-client");
}

#[test]
fn twin_that_echoes_its_first_read_only() {
    assert_submission("ch04/echoes-first-read-only");
}

#[test]
fn twin_client_that_loops_at_end_of_input() {
    assert_submission("ch04/loops-at-eof");
}
