//! The select() servers when the world is hostile: limits reached, output nobody reads.
//! Each test drives our binary from outside, as clients would (README, "When things go
//! wrong").

use std::io::{Read, Write};

use harness::hostile::{
    DEADLINE, Launch, assert_echo_on, assert_echoes, assert_half_closed_echo_is_whole,
    assert_late_reader_gets_everything, assert_waits_out_a_shortage_of_fds, connect_clients,
    server_with_a_full_unread_log, wait_until,
};

const BIN: &str = env!("CARGO_BIN_EXE_ch12-select");

/// A server whose stdout and stderr nobody reads keeps serving: its log lines are
/// dropped and counted once the pipes are full, instead of stopping it in write().
#[test]
fn a_log_nobody_reads_does_not_stop_the_server() {
    let server = server_with_a_full_unread_log(BIN, &["echo-server", "0"]);
    assert_echoes(server.addr(), b"still serving\n", "150 connections logged");
}

/// Out of descriptors (RLIMIT_NOFILE 32, 40 clients): accepting pauses, logged once, no
/// CPU spent, and the clients that waited are served once others leave.
#[test]
fn out_of_descriptors_the_server_waits_without_spinning() {
    assert_waits_out_a_shortage_of_fds(BIN, &["echo-server", "0"]);
}

/// A client that half-closes gets its whole echo before the server closes it.
#[test]
fn a_half_closed_client_gets_its_whole_echo() {
    let server = Launch::new(BIN, &["echo-server", "0"]).start();
    assert_half_closed_echo_is_whole(server.addr(), 64 * 1024, 20);
}

/// A client that reads only once its sends stay at EAGAIN gets every byte back.
#[test]
fn a_client_that_reads_late_gets_everything() {
    let server = Launch::new(BIN, &["echo-server", "0"]).start();
    assert_late_reader_gets_everything(server.addr(), 6 << 20);
}

/// Connections whose fd is FD_SETSIZE (1024) or more, which select() cannot watch, are
/// refused (the client reads end of stream), logged once, and the server goes on
/// serving the others, echo and chat alike; a connection fits again once one leaves.
#[test]
fn a_connection_past_fd_setsize_is_refused_and_the_others_served() {
    let (_, limit) = syscalls::raise_open_file_limit().expect("setrlimit");
    if limit < 2400 {
        eprintln!("skipped: needs an open-file hard limit of 2400 (this one: {limit})");
        return;
    }
    for mode in ["echo-server", "chat-server"] {
        let mut server = Launch::new(BIN, &[mode, "0"]).open_files(1100).start();
        // fds 0-5 are stdio, the stop pipe and the listening socket: about 1,018
        // clients fit below 1024, and the rest must be refused.
        let mut clients = connect_clients(server.addr(), 1050);
        server.assert_running(&format!("{mode}: 1,050 clients connected"));
        let refused = |c: &mut std::net::TcpStream| matches!(c.read(&mut [0u8; 1]), Ok(0));
        assert!(
            refused(&mut clients[1049]),
            "{mode}: the 1,050th client was not refused"
        );
        let text = server.stderr_text();
        assert_eq!(
            text.matches("FD_SETSIZE").count(),
            1,
            "{mode}: the refusals are logged once; stderr: {text}"
        );
        if mode == "echo-server" {
            assert_echo_on(&mut clients[0], "the first client");
            assert_echo_on(&mut clients[1000], "the 1,001st client");
        } else {
            clients[0].write_all(b"[a] hello\n").expect("write");
            let mut line = [0u8; 10];
            clients[1000]
                .read_exact(&mut line)
                .expect("the 1,001st member hears it");
            assert_eq!(&line, b"[a] hello\n");
        }
        drop(clients.drain(..10));
        wait_until(DEADLINE, || {
            server
                .stdout_lines()
                .iter()
                .filter(|l| l.starts_with("closed client"))
                .count()
                >= 10
        });
        let mut late = connect_clients(server.addr(), 1);
        if mode == "echo-server" {
            assert_echo_on(&mut late[0], "a client after ten left");
        } else {
            server.assert_running("ten members left");
        }
    }
}
