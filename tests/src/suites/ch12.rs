//! ch12: the select() echo server (shared suite), the chat room and the chat client
//! (shared with ch18's threads: `chat`).

use crate::check::{Chapter, Readme};

use super::{chat, models, tcp_server_role};

/// Where this chapter's hints send the reader.
pub const README: Readme = Readme("crates/ch12-select/README.md");

pub fn chapter() -> Chapter {
    let mut checks = models::echo_checks(models::Model::Select, README);
    checks.extend(chat::chat_checks(models::Model::Select, README));
    let mut roles = vec![tcp_server_role(
        "server",
        "ch12-select",
        &["echo-server", "{port}"],
        "./echo_selectserv {port}",
    )];
    roles.extend(chat::chat_roles("ch12-select", "./chat_serv {port}"));
    Chapter {
        id: "ch12",
        title: "select(): an echo server and a chat room",
        roles,
        checks,
    }
}
