//! The multi-process server when the world is hostile: fork() refused, the parent
//! killed, output nobody reads. Each test drives our binary from outside, as clients
//! would (README, "When things go wrong").

use harness::hostile::{
    DEADLINE, Launch, assert_echo_on, assert_echoes,
    assert_turns_away_one_client_at_the_process_limit, connect_clients, has_ended,
    server_with_a_full_unread_log, wait_until, was_refused,
};

const BIN: &str = env!("CARGO_BIN_EXE_ch10-multiprocess");

/// A server whose stdout and stderr nobody reads keeps serving: its log lines (the
/// parent's and its children's) are dropped and counted once the pipes are full,
/// instead of stopping it in write().
#[test]
fn a_log_nobody_reads_does_not_stop_the_server() {
    let server = server_with_a_full_unread_log(BIN, &["echo-server", "0"]);
    assert_echoes(server.addr(), b"still serving\n", "150 connections logged");
}

/// fork() refused (RLIMIT_NPROC 3: the server and two children): the third client is
/// closed and logged, the server goes on serving, and once a child has ended the next
/// client gets one. (As root RLIMIT_NPROC is not enforced, so the server runs as a uid
/// of its own.)
#[test]
fn a_fork_that_fails_closes_that_client_and_the_server_goes_on() {
    let Some(mut server) = assert_turns_away_one_client_at_the_process_limit(
        BIN,
        &["echo-server", "0"],
        "fork(): EAGAIN",
        |s| s.children().len() == 1,
    ) else {
        return;
    };
    let children = server.children();
    let status = server.stop().expect("the server stops on SIGTERM");
    assert!(status.success(), "the server exits 0 ({status})");
    assert!(
        children.iter().all(|c| has_ended(*c)),
        "every child {children:?} ended with the server"
    );
}

/// A server killed with SIGKILL cannot end its children itself: each child asked the
/// kernel for SIGTERM when its parent dies (PR_SET_PDEATHSIG), so none outlives it.
#[test]
fn children_do_not_outlive_a_killed_server() {
    let server = Launch::new(BIN, &["echo-server", "0"]).start();
    let mut clients = connect_clients(server.addr(), 3);
    for client in &mut clients {
        assert_echo_on(client, "a client served by a child");
    }
    let children = server.children();
    assert_eq!(children.len(), 3, "a child per client");
    server.signal(nix::sys::signal::Signal::SIGKILL);
    assert!(
        wait_until(DEADLINE, || children.iter().all(|c| has_ended(*c))),
        "children {children:?} are still running after their parent was killed"
    );
    for client in &mut clients {
        assert!(
            was_refused(client),
            "the client's connection ended with its child"
        );
    }
}
