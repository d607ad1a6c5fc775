//! ch05's echo roles on our binary, and the gallery's echo twins.

use harness::testing::assert_reference_passes;

const BIN: &str = env!("CARGO_BIN_EXE_ch05-echo-client-fix");

/// Our server and our fixed client pass ch05's echo checks.
#[test]
fn reference_passes_every_check() {
    assert_reference_passes("ch05", "ch05-echo-client-fix", BIN);
}

/// The demo sends a 1,501-byte line: the reply takes more than one read, and is
/// printed whole.
#[test]
fn demo_prints_a_long_reply_whole() {
    let long_line = "0123456789".repeat(150);
    let out = harness::testing::demo_transcript(BIN, &[]);
    for wanted in [
        "[client] read(3, \"01234567890123456789012345678901\"..., 1024) = 1024".to_string(),
        format!("[client] Message from server: {long_line}\n"),
    ] {
        assert!(out.contains(&wanted), "no {wanted:?} in:\n{out}");
    }
}

/// The demo never prints an effect before its cause, run after run: a read() of some
/// bytes never returns before the write() of them began, an accept() never before a
/// connect() began (the two sides' lines are merged on one clock, workbook::timeline).
#[test]
fn demo_prints_causes_before_effects() {
    harness::testing::assert_demo_causal(env!("CARGO_BIN_EXE_ch05-echo-client-fix"), &[], 50);
}
