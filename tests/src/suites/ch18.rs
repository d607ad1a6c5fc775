//! ch18: the thread-per-client echo server, with the shared suite.

use crate::check::Chapter;

use super::{models, tcp_server_role};

pub fn chapter() -> Chapter {
    Chapter {
        id: "ch18",
        title: "threads: a thread per client",
        roles: vec![tcp_server_role(
            "server",
            "ch18-threads",
            &["echo-server", "{port}"],
            "./echo_thrserv {port}",
        )],
        checks: models::echo_checks("ch18", false),
    }
}
