//! Addresses in the forms the C library accepts, which `name` always took and `addr` and
//! `lookup` refused: inet_aton's short forms (`127.1`) and IPv6 scopes (`fe80::1%lo`).
//! (README, "When things go wrong".)

use assert_cmd::Command;
use predicates::prelude::*;

const BIN: &str = env!("CARGO_BIN_EXE_ch08-dns-lookup");

/// The command, with a resolver that gives up within a second when offline.
fn run(args: &[&str]) -> assert_cmd::assert::Assert {
    Command::new(BIN)
        .args(args)
        .env("RES_OPTIONS", "timeout:1 attempts:1")
        .timeout(std::time::Duration::from_secs(30))
        .assert()
}

/// `127.1` is 127.0.0.1 to inet_aton(), to getaddrinfo() and so to `name`; `addr` and
/// `lookup` used to call it an invalid address. Now all three agree.
#[test]
fn a_short_ipv4_address_is_the_address_everywhere() {
    let expected = run(&["addr", "127.0.0.1"]).get_output().clone();
    for args in [["addr", "127.1"], ["lookup", "127.1"]] {
        run(&args)
            .code(expected.status.code().expect("an exit code"))
            .stdout(String::from_utf8_lossy(&expected.stdout).into_owned())
            .stderr(predicate::str::contains("invalid address").not());
    }
    run(&["name", "127.1"])
        .success()
        .stdout(predicate::str::contains("IP addr 1: 127.0.0.1 (AF_INET)"));
}

/// A link-local IPv6 address with its scope (the interface it belongs to) is an address:
/// the answer is a name, or that it has none, never "invalid address".
#[test]
fn a_scoped_ipv6_address_is_an_address() {
    for command in ["addr", "lookup"] {
        run(&[command, "fe80::1%lo"])
            .stderr(predicate::str::contains("invalid address").not())
            .stderr(predicate::str::is_match(
                r"^(|error: (no name for address|name resolution failed[^:]*): fe80::1%lo.*\n)$",
            ).unwrap());
    }
}

/// A scope naming no interface, and what only looks like an address, stay one-line
/// errors.
#[test]
fn what_the_c_library_does_not_parse_is_still_an_invalid_address() {
    for args in [
        ["addr", "fe80::1%no-such-interface"],
        ["lookup", "1.2.3.256"],
    ] {
        run(&args)
            .code(1)
            .stdout("")
            .stderr(predicate::str::starts_with("error: invalid address"))
            .stderr(predicate::str::is_match("^[^\n]*\n$").unwrap());
    }
}
