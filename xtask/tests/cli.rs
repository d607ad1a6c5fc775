//! `cargo xtask` as a user meets it: exit statuses and the one-line messages for
//! command lines that cannot run. (Grading our own binaries needs a nested cargo build,
//! which would wait on the lock of the cargo running these tests; the chapters'
//! conformance tests grade them instead.)

use assert_cmd::Command;
use predicates::prelude::*;

fn xtask() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .timeout(std::time::Duration::from_secs(120));
    command
}

/// A twin from the gallery, by path from the repository root.
fn gallery(path: &str) -> String {
    format!(
        "{}/../examples/submissions/{path}",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn list_shows_chapters_roles_placeholders_and_check_ids() {
    xtask()
        .arg("list")
        .assert()
        .success()
        .stdout(predicate::str::contains("ch04  TCP echo server and client"))
        .stdout(predicate::str::contains(
            "./echo_server {port}   placeholders: {host} {port}",
        ))
        .stdout(predicate::str::contains("ch04/peer-stops-reading"))
        .stdout(predicate::str::contains("ch01/client-prints"));
}

#[test]
fn an_unknown_chapter_exits_two_with_one_line() {
    xtask().args(["check", "ch99"]).assert().code(2).stderr(
        predicate::str::is_match(
            r#"^error: unknown chapter "ch99"; the chapters are (ch\d\d, )+ch\d\d\n$"#,
        )
        .unwrap(),
    );
}

#[test]
fn a_missing_program_exits_two_before_any_check() {
    xtask()
        .args(["check", "ch04", "--server", "./no_such_server {port}"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::starts_with("error: program not found: "));
}

#[test]
fn a_file_that_is_not_executable_says_how_to_fix_it() {
    xtask()
        .args(["check", "ch04", "--server", "./Cargo.toml {port}"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is not executable: run `chmod +x"));
}

#[test]
fn a_template_without_its_placeholder_exits_two() {
    xtask()
        .args(["check", "ch04", "--server", "python3 server.py"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("has no {port}"));
}

#[test]
fn an_unknown_role_or_check_exits_two() {
    xtask()
        .args(["check", "ch04", "--role", "calc-server=python3 x.py {port}"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "chapter ch04 has no role \"calc-server\"; its roles are server, client",
        ));
    xtask()
        .args([
            "check",
            "ch04",
            "--server",
            "python3 x.py {port}",
            "--only",
            "ch04/no-such-check",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "has no check \"ch04/no-such-check\"",
        ));
}

#[test]
fn only_a_check_of_a_role_without_template_exits_two() {
    xtask()
        .args([
            "check",
            "ch04",
            "--server",
            "python3 x.py {port}",
            "--only",
            "ch04/client-eof",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "tests role client, but no template was given for it",
        ));
}

/// A student's server that passes: exit 0; the client checks are SKIP.
#[test]
fn a_passing_program_exits_zero_and_other_roles_skip() {
    let template = format!(
        "python3 {} {{port}}",
        gallery("ch04/exits-after-first-client/echo_server.py")
    );
    xtask()
        .args([
            "check",
            "ch04",
            "--server",
            &template,
            "--only",
            "ch04/echo-line",
        ])
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"ch04/echo-line +PASS").unwrap())
        .stdout(predicate::str::ends_with("1 passed, 0 failed, 0 skipped\n"));
    xtask()
        .args(["check", "ch04", "--server", &template])
        .assert()
        .code(1)
        .stdout(predicate::str::is_match(r"ch04/client-eof +SKIP").unwrap())
        .stdout(predicate::str::contains(
            "skipped: no template for role client",
        ));
}

/// A failing check exits 1 and says what was sent, what came back, and the hint.
#[test]
fn a_failing_program_exits_one_with_evidence_and_hint() {
    let template = format!(
        "python3 {} {{port}}",
        gallery("ch04/echoes-first-read-only/echo_server.py")
    );
    xtask()
        .args([
            "check",
            "ch04",
            "--server",
            &template,
            "--only",
            "ch04/large-message",
        ])
        .assert()
        .code(1)
        .stdout(predicate::str::is_match(r"ch04/large-message +FAIL").unwrap())
        .stdout(predicate::str::contains(
            "[ch04/large-message] only 1024 of 1048576 bytes came back",
        ))
        .stdout(predicate::str::contains("[ch04/large-message] hint: "))
        .stdout(predicate::str::ends_with("0 passed, 1 failed, 0 skipped\n"));
}

/// A program that prints its usage and exits instead of listening: the report says it
/// exited before it listened, with its status and its last output.
#[test]
fn a_program_that_exits_at_once_is_reported_with_its_status_and_stderr() {
    xtask()
        .args([
            "check",
            "ch04",
            "--server",
            "sh -c 'echo usage: server PORT >&2; exit 3' {port}",
            "--only",
            "ch04/echo-line",
        ])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "your program exited with status 3 before it listened on port",
        ))
        .stdout(predicate::str::contains("usage: server PORT"));
}

#[test]
fn an_unknown_lab_exits_two() {
    xtask()
        .args(["lab", "noisy"])
        .assert()
        .code(2)
        .stderr("error: unknown lab \"noisy\"; the labs are: lossy\n");
}
