//! The thread-per-client server when the world is hostile: out of descriptors, out of
//! threads, output nobody reads. Each test drives our binary from outside, as clients
//! would (README, "When things go wrong").

use harness::hostile::{
    assert_echoes, assert_turns_away_one_client_at_the_process_limit,
    assert_waits_out_a_shortage_of_fds, server_with_a_full_unread_log,
};

const BIN: &str = env!("CARGO_BIN_EXE_ch18-threads");

/// A server whose stdout and stderr nobody reads keeps serving: its log lines are
/// dropped and counted once the pipes are full, instead of stopping it in write().
#[test]
fn a_log_nobody_reads_does_not_stop_the_server() {
    let server = server_with_a_full_unread_log(BIN, &["echo-server", "0"]);
    assert_echoes(server.addr(), b"still serving\n", "150 connections logged");
}

/// Out of descriptors (RLIMIT_NOFILE 32, 40 clients): the main thread stops accepting
/// until a client leaves, logged once, without spinning or exiting; the clients that
/// waited in the backlog are served once others leave.
#[test]
fn out_of_descriptors_the_server_waits_without_spinning() {
    assert_waits_out_a_shortage_of_fds(BIN, &["echo-server", "0"]);
}

/// No thread to be had (RLIMIT_NPROC 3: the main thread and two clients' threads): the
/// third client is closed and logged, the others are served, and once a client's thread
/// has ended the next client gets one. (As root RLIMIT_NPROC is not enforced, so the
/// server runs as a uid of its own.)
#[test]
fn a_thread_that_cannot_be_created_closes_that_client_only() {
    assert_turns_away_one_client_at_the_process_limit(
        BIN,
        &["echo-server", "0"],
        "no thread for it",
        |s| s.thread_count() == 2,
    );
}
