//! ch08's checks on our binary, the gallery's ch08 submissions, and the one-line errors.
//! No network: every expectation comes from getent on this machine, and unknown names are
//! in the reserved `.invalid` domain.

use assert_cmd::Command;
use harness::testing::assert_reference_passes;
use predicates::prelude::*;

const BIN: &str = env!("CARGO_BIN_EXE_ch08-dns-lookup");

#[test]
fn reference_passes_every_check() {
    assert_reference_passes("ch08", "ch08-dns-lookup", BIN);
}

fn lookup() -> Command {
    let mut command = Command::new(BIN);
    command
        .env("RES_OPTIONS", "timeout:1 attempts:1")
        .timeout(std::time::Duration::from_secs(30));
    command
}

#[test]
fn an_unknown_name_is_no_such_host() {
    lookup()
        .args(["name", "no-such-host.invalid"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::is_match(r"^error: (no such host: no-such-host\.invalid|name resolution failed temporarily: no-such-host\.invalid.*)\n$").unwrap());
}

#[test]
fn a_malformed_address_is_one_line() {
    lookup()
        .args(["addr", "1.2.3.256"])
        .assert()
        .code(1)
        .stderr("error: invalid address \"1.2.3.256\": give an IPv4 address such as 127.0.0.1 or an IPv6 address such as ::1\n");
}

#[test]
fn the_ipv6_loopback_resolves_everywhere() {
    lookup()
        .args(["name", "::1"])
        .assert()
        .success()
        .stdout(predicate::str::contains("IP addr 1: ::1 (AF_INET6)"));
}
