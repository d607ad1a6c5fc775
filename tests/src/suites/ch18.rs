//! ch18: the thread-per-client echo server, with the shared suite.

use crate::check::{Chapter, Readme};

use super::{models, tcp_server_role};

/// Where this chapter's hints send the reader.
pub const README: Readme = Readme("crates/ch18-threads/README.md");

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
        checks: models::echo_checks(models::Model::Threads, README),
    }
}
