//! The multi-process server when the world is hostile: fork() refused, the parent
//! killed, output nobody reads. Each test drives our binary from outside, as clients
//! would (README, "When things go wrong").

use workbook::testing::{assert_echoes, server_with_a_full_unread_log};

const BIN: &str = env!("CARGO_BIN_EXE_ch10-multiprocess");

/// A server whose stdout and stderr nobody reads keeps serving: its log lines (the
/// parent's and its children's) are dropped and counted once the pipes are full,
/// instead of stopping it in write().
#[test]
fn a_log_nobody_reads_does_not_stop_the_server() {
    let server = server_with_a_full_unread_log(BIN, &["echo-server", "0"]);
    assert_echoes(server.addr(), b"still serving\n", "150 connections logged");
}
