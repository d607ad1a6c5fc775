//! ch17: the epoll echo server, with the shared suite and a thousand connections.

use crate::check::Chapter;

use super::{check, models, tcp_server_role};

pub fn chapter() -> Chapter {
    let mut checks = models::echo_checks("ch17", true);
    checks.push(check(
        "ch17",
        "thousand-clients",
        "1,000 connections open at once, every one served",
        "server",
        "raise your open-file limit (setrlimit RLIMIT_NOFILE) and let epoll watch them all (ch17 README, \"Many connections\")",
        models::thousand_clients,
    ));
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
