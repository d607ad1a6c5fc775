//! The epoll server, level- and edge-triggered, when the world is hostile: limits
//! reached, clients that half-close or read late, output nobody reads. Each test drives
//! our binary from outside, as clients would (README, "When things go wrong"), and runs
//! once per trigger mode.

use harness::hostile::{
    Launch, assert_echoes, assert_half_closed_echo_is_whole, assert_late_reader_gets_everything,
    assert_waits_out_a_shortage_of_fds, server_with_a_full_unread_log,
};

const BIN: &str = env!("CARGO_BIN_EXE_ch17-epoll");

/// The server's command line, level- or edge-triggered.
fn args(edge: bool) -> &'static [&'static str] {
    if edge {
        &["echo-server", "0", "--edge"]
    } else {
        &["echo-server", "0"]
    }
}

/// A test per trigger mode: `name_level` and `name_edge` run `body(edge)`.
macro_rules! in_both_modes {
    ($($(#[$doc:meta])* $level:ident, $edge:ident => $body:ident;)*) => {$(
        $(#[$doc])*
        #[test]
        fn $level() {
            $body(false);
        }
        $(#[$doc])*
        #[test]
        fn $edge() {
            $body(true);
        }
    )*};
}

in_both_modes! {
    /// A server whose stdout and stderr nobody reads keeps serving: its log lines are
    /// dropped and counted once the pipes are full, instead of stopping it in write().
    a_log_nobody_reads_does_not_stop_the_server_level,
    a_log_nobody_reads_does_not_stop_the_server_edge => unread_log;
    /// Out of descriptors (RLIMIT_NOFILE 32, 40 clients): accepting pauses, logged once,
    /// no CPU spent; once clients leave, the ones that waited in the backlog are accepted
    /// and served with no new connection to wake the server.
    out_of_descriptors_the_server_waits_without_spinning_level,
    out_of_descriptors_the_server_waits_without_spinning_edge => shortage_of_fds;
    /// 64 KiB, then shutdown(SHUT_WR), twenty times: every echo is whole. Data and FIN
    /// often arrive in one wakeup; the outbox is flushed before the close.
    a_half_closed_client_gets_its_whole_echo_level,
    a_half_closed_client_gets_its_whole_echo_edge => half_closed;
    /// A client that reads only once its sends stay at EAGAIN gets all 6 MiB back: when
    /// the outbox limit stops a read loop before EAGAIN, the socket is re-armed.
    a_client_that_reads_late_gets_everything_level,
    a_client_that_reads_late_gets_everything_edge => late_reader;
}

fn unread_log(edge: bool) {
    let server = server_with_a_full_unread_log(BIN, args(edge));
    assert_echoes(server.addr(), b"still serving\n", "150 connections logged");
}

fn shortage_of_fds(edge: bool) {
    assert_waits_out_a_shortage_of_fds(BIN, args(edge));
}

fn half_closed(edge: bool) {
    let server = Launch::new(BIN, args(edge)).start();
    assert_half_closed_echo_is_whole(server.addr(), 64 * 1024, 20);
}

fn late_reader(edge: bool) {
    let server = Launch::new(BIN, args(edge)).start();
    assert_late_reader_gets_everything(server.addr(), 6 << 20);
}
