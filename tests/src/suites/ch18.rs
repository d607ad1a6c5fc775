//! ch18: the thread-per-client echo server (shared suite), and the book's thread chat
//! room and client (the chat checks ch12 has, with hints for threads).

use crate::check::{Chapter, Readme};

use super::{chat, models, tcp_server_role};

/// Where this chapter's hints send the reader.
pub const README: Readme = Readme("crates/ch18-threads/README.md");

pub fn chapter() -> Chapter {
    let mut checks = models::echo_checks(models::Model::Threads, README);
    checks.extend(chat::chat_checks(models::Model::Threads, README));
    let mut roles = vec![tcp_server_role(
        "server",
        "ch18-threads",
        &["echo-server", "{port}"],
        "./echo_thrserv {port}",
    )];
    roles.extend(chat::chat_roles("ch18-threads", "./chat_server {port}"));
    Chapter {
        id: "ch18",
        title: "threads: a thread per client, and a chat room",
        roles,
        checks,
    }
}
