//! Every chapter's suite, written once against targets: the same checks grade our
//! reference binaries and a student's programs.

use crate::check::{Chapter, Role, RoleKind};
use crate::procfs::Proto;

pub mod ch01;
pub mod ch02;
pub mod ch03;
pub mod ch04;
pub mod ch05;
pub mod ch06;
pub mod ch07;
pub mod ch08;
pub mod ch09;
pub mod ch10;
pub mod ch11;
pub mod ch12;
pub mod ch13;
pub mod ch14;
pub mod ch15;
pub mod ch16;
pub mod ch17;
pub mod ch18;
pub mod ch24;
pub mod chat;
pub mod clients;
pub mod echo;
pub mod models;

/// Every chapter the checker knows, in the book's order.
pub fn chapters() -> Vec<Chapter> {
    vec![
        ch01::chapter(),
        ch02::chapter(),
        ch03::chapter(),
        ch04::chapter(),
        ch05::chapter(),
        ch06::chapter(),
        ch07::chapter(),
        ch08::chapter(),
        ch09::chapter(),
        ch10::chapter(),
        ch11::chapter(),
        ch12::chapter(),
        ch13::chapter(),
        ch14::chapter(),
        ch15::chapter(),
        ch16::chapter(),
        ch17::chapter(),
        ch18::chapter(),
        ch24::chapter(),
    ]
}

/// The chapter with id `id` (`ch04`).
pub fn chapter(id: &str) -> Option<Chapter> {
    chapters().into_iter().find(|c| c.id == id)
}

/// The book's `server <port>` role over TCP, played by `package`'s subcommand
/// `subcommand` in our reference run.
pub fn tcp_server_role(
    name: &'static str,
    package: &'static str,
    reference: &'static [&'static str],
    example: &'static str,
) -> Role {
    Role {
        name,
        kind: RoleKind::Server(Proto::Tcp),
        package,
        reference_only: false,
        reference,
        required: &["{port}"],
        allowed: &["{host}", "{port}"],
        example,
    }
}

/// The book's `client <ip> <port>` role, run on a terminal.
pub fn client_role(
    name: &'static str,
    package: &'static str,
    reference: &'static [&'static str],
    example: &'static str,
) -> Role {
    Role {
        name,
        kind: RoleKind::Client,
        package,
        reference_only: false,
        reference,
        required: &["{port}"],
        allowed: &["{host}", "{port}"],
        example,
    }
}

/// A reference-only one-shot role: our binary run with each check's arguments.
pub fn reference_tool_role(name: &'static str, package: &'static str) -> Role {
    Role {
        name,
        kind: RoleKind::Tool,
        package,
        reference_only: true,
        reference: &[],
        required: &[],
        allowed: &[],
        example: "(our own binary)",
    }
}

/// Deterministic bytes that look random (xorshift), so that a failure is repeatable
/// and a misplaced byte is seen.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    // xorshift64, eight bytes a step: checks make tens of MiB of it.
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}
