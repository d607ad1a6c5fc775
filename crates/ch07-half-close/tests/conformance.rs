//! ch07's conformance suite on our binary, the gallery's ch07 submissions, and the
//! start-up error for a missing file.

use assert_cmd::Command;
use harness::testing::assert_reference_passes;

const BIN: &str = env!("CARGO_BIN_EXE_ch07-half-close");

#[test]
fn reference_passes_every_check() {
    assert_reference_passes("ch07", "ch07-half-close", BIN);
}

/// A missing file is a one-line error before the server listens (the book's crashes
/// when the first client arrives).
#[test]
fn a_missing_file_fails_at_start_up() {
    Command::new(BIN)
        .args(["server", "0", "/no/such/file"])
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .code(1)
        .stdout("")
        .stderr("error: open(\"/no/such/file\", O_RDONLY|O_NONBLOCK): ENOENT: No such file or directory\n");
}

/// The demo: the file goes, the server half-closes, the thanks come back and the saved
/// copy is identical.
#[test]
fn demo_half_closes_and_hears_the_thanks() {
    let out = harness::testing::demo_transcript(BIN, &[]);
    for wanted in [
        "[server] shutdown(4, SHUT_WR) = 0",
        "[server] Message from client: Thank you",
        "they are identical to the server's",
    ] {
        assert!(out.contains(wanted), "no {wanted:?} in:\n{out}");
    }
}

/// The demo never prints an effect before its cause, run after run: a read() of some
/// bytes never returns before the write() of them began, an accept() never before a
/// connect() began (the two sides' lines are merged on one clock, workbook::timeline).
#[test]
fn demo_prints_causes_before_effects() {
    harness::testing::assert_demo_causal(env!("CARGO_BIN_EXE_ch07-half-close"), &[], 50);
}

/// With --wire: the server's shutdown(SHUT_WR) sends its FIN while the connection still
/// carries data the other way: the client's Thank you comes after the FIN, and the
/// server reads it.
#[test]
fn demo_with_wire_shows_the_fin_at_shutdown_and_the_thanks_after_it() {
    use harness::testing::{line_where, wire_demo};
    let Some(out) = wire_demo(env!("CARGO_BIN_EXE_ch07-half-close"), &["--wire"]) else {
        return;
    };
    let lines: Vec<&str> = out.lines().collect();
    let shutdown = line_where(&lines, 0, "shutdown()", |l| {
        l.starts_with("[server] shutdown(4, SHUT_WR")
    });
    let fin = line_where(&lines, shutdown, "the server's FIN", |l| {
        l.starts_with("[wire] server:") && l.contains("FIN")
    });
    let thanks = line_where(&lines, fin, "the client's Thank you", |l| {
        l.starts_with("[wire] client:") && l.contains(" len=10 \"Thank you\\x00\"")
    });
    let read = line_where(&lines, thanks, "the server's read() of it", |l| {
        l.starts_with("[server] ") && l.ends_with("\"Thank you\\x00\", 256) = 10")
    });
    assert!(shutdown < fin && fin < thanks && thanks < read, "{out}");
}
