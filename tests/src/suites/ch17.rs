//! ch17: the epoll echo server, with the shared suite and a thousand connections.

use crate::check::{Chapter, Check, Readme};

use super::{models, tcp_server_role};

/// Where this chapter's hints send the reader.
pub const README: Readme = Readme("crates/ch17-epoll/README.md");

pub fn chapter() -> Chapter {
    let mut checks = models::echo_checks(models::Model::Epoll, README);
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
