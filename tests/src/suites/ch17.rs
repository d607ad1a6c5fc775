//! ch17: the epoll echo server, with the shared suite and a thousand connections.

use crate::check::{Chapter, Check, Readme};

use super::{models, tcp_server_role};

/// Where this chapter's hints send the reader.
pub const README: Readme = Readme("crates/ch17-epoll/README.md");

pub fn chapter() -> Chapter {
    let mut checks = models::echo_checks(models::Model::Epoll, README);
    checks.push(Check {
        name: "stream-integrity",
        role: "server",
        title: "a stream of several MiB through a client that reads only once the server has had to wait for it: every byte back, in order",
        hint: "write() on a non-blocking socket may take only part of what you give it, or none (EAGAIN): keep the rest in the client's outbox and write it when EPOLLOUT says so; never drop it",
        see: README.at("Slow clients"),
        run: models::stream_integrity,
    });
    checks.push(Check {
        name: "burst-after-stop",
        role: "server",
        title: "connections that arrive while the server is stopped (SIGSTOP, as Ctrl-Z), then it is continued: every one accepted and served",
        hint: "after a stop epoll_wait() returns -1 with EINTR: retry it, it is no error; and an edge-triggered listener reports the waiting connections as one edge: accept until EAGAIN",
        see: README.at("A burst, and EINTR"),
        run: models::burst_after_stop,
    });
    checks.push(Check {
        name: "thousand-clients",
        role: "server",
        title: "1,000 connections open at once, every one served",
        hint: "raise your open-file limit (setrlimit RLIMIT_NOFILE) and let epoll watch them all",
        see: README.at("Many connections"),
        run: models::thousand_clients,
    });
    Chapter {
        id: "ch17",
        title: "epoll: level- and edge-triggered",
        roles: vec![tcp_server_role(
            "server",
            "ch17-epoll",
            &["echo-server", "{port}"],
            "./echo_epollserv {port}",
        )],
        checks,
    }
}
