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
            "[ch04/large-message] only 1024 of 1048577 bytes came back",
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

/// The loss lab needs no root: its namespace is a user namespace's own. (Run by root,
/// as in CI, it takes the same path: unshare(CLONE_NEWUSER) first.) TCP delivers every
/// round trip; a retrying UDP client too.
#[test]
fn the_loss_lab_runs_in_a_namespace_of_its_own() {
    if !std::path::Path::new("/usr/sbin/nft").exists()
        && std::process::Command::new("nft")
            .arg("--version")
            .output()
            .is_err()
    {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "no nft (apt-get install nftables); CI=true: a missing tool fails"
        );
        println!("SKIP: no nft (apt-get install nftables)");
        return;
    }
    xtask()
        .args(["lab", "lossy", "--count", "20"])
        .timeout(std::time::Duration::from_secs(120))
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"TCP +20/20").unwrap())
        .stdout(predicate::str::is_match(r"UDP, 200 ms retry +20/20").unwrap());
}

/// `--format json`: one object that parses, with each check's id, role, status and hint.
#[test]
fn json_report_parses() {
    let template = format!(
        "python3 {} {{port}}",
        gallery("ch04/echoes-first-read-only/echo_server.py")
    );
    let out = xtask()
        .args(["check", "ch04", "--server", &template, "--format", "json"])
        .output()
        .expect("run xtask");
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the report is JSON");
    assert_eq!(report["chapter"], "ch04");
    assert_eq!(report["templates"]["server"], template);
    let checks = report["checks"].as_array().expect("checks");
    let large = checks
        .iter()
        .find(|c| c["id"] == "ch04/large-message")
        .expect("large-message");
    assert_eq!(large["status"], "fail");
    assert_eq!(large["role"], "server");
    assert!(large["hint"].as_str().is_some_and(|h| h.contains("read()")));
    assert!(
        large["see"]
            .as_str()
            .is_some_and(|s| s.contains("crates/ch04-tcp-echo/README.md"))
    );
    assert!(
        large["message"]
            .as_str()
            .is_some_and(|m| m.contains("of 1048577 bytes came back"))
    );
    assert_eq!(
        checks
            .iter()
            .find(|c| c["id"] == "ch04/client-eof")
            .expect("client-eof")["status"],
        "skip"
    );
    let failed = checks.iter().filter(|c| c["status"] == "fail").count();
    assert!(failed >= 2, "{report}");
    assert_eq!(report["summary"]["failed"], failed);
}

/// `--format junit --output FILE`: a file a JUnit parser reads back, one testcase per
/// check, the failure text inside the failure element.
#[test]
fn junit_report_is_read_back_by_a_junit_parser() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("report.xml");
    let template = format!(
        "python3 {} {{port}}",
        gallery("ch04/exits-after-first-client/echo_server.py")
    );
    xtask()
        .args([
            "check", "ch04", "--server", &template, "--format", "junit", "--output",
        ])
        .arg(&file)
        .assert()
        .code(1)
        .stdout("")
        .stderr(
            predicate::str::contains("passed,").and(predicate::str::contains("report written to")),
        );
    let suites = junit_parser::from_reader(std::io::BufReader::new(
        std::fs::File::open(&file).expect("open report"),
    ))
    .expect("the JUnit parser reads it");
    assert_eq!(suites.suites.len(), 1);
    let suite = &suites.suites[0];
    assert_eq!(suite.name, "ch04");
    let ch04 = harness::suites::chapter("ch04").expect("ch04");
    assert_eq!(suite.cases.len(), ch04.checks.len());
    let failed = suite
        .cases
        .iter()
        .find(|c| c.original_name == "ch04/sequential-clients")
        .expect("case");
    match &failed.status {
        junit_parser::TestStatus::Failure(f) => assert!(f.text.contains("hint:"), "{}", f.text),
        other => panic!("expected a failure, got {other:?}"),
    }
    assert!(
        suite
            .cases
            .iter()
            .any(|c| c.original_name == "ch04/echo-line" && c.status.is_success())
    );
    assert!(
        suite
            .cases
            .iter()
            .any(|c| c.original_name == "ch04/client-eof" && c.status.is_skipped())
    );
}

/// `grade` over a gallery folder: every member is graded, and the table's FAILs are
/// exactly each manifest's must_fail; the files are written.
#[test]
fn grade_reproduces_every_manifest_of_a_gallery_folder() {
    let out_dir = tempfile::tempdir().expect("temp dir");
    let output = xtask()
        .args(["grade", &gallery("ch01"), "--chapter", "ch01", "--out"])
        .arg(out_dir.path())
        .output()
        .expect("run xtask grade");
    let table = String::from_utf8_lossy(&output.stdout);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().expect("header").split_whitespace().collect();
    assert_eq!(&header[..3], ["member", "hello", "client-prints"]);
    let mut members = 0;
    for line in lines {
        let cells: Vec<&str> = line.split_whitespace().collect();
        let manifest =
            std::fs::read_to_string(format!("{}/{}/submission.toml", gallery("ch01"), cells[0]))
                .expect("manifest");
        for (i, check) in ["ch01/hello", "ch01/client-prints"].iter().enumerate() {
            let must_fail = manifest.contains(&format!("\"{check}\""));
            assert_eq!(
                cells[1 + i] == "FAIL",
                must_fail,
                "{} {check}: {line}",
                cells[0]
            );
        }
        members += 1;
    }
    let entries = std::fs::read_dir(gallery("ch01"))
        .expect("read the ch01 gallery")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().join("submission.toml").is_file())
        })
        .count();
    assert_eq!(members, entries, "{table}");
    assert!(out_dir.path().join("results.md").is_file());
    assert!(
        std::fs::read_to_string(out_dir.path().join("results.csv"))
            .expect("csv")
            .starts_with("member,hello,client-prints,")
    );
    assert!(out_dir.path().join("junit/sizeof-nul.xml").is_file());
}

/// A server on another port than the one it was given: the report says where it is.
#[test]
fn a_server_on_the_wrong_port_is_told_where_it_listens() {
    let wrong = "python3 -c \"import socket,time; s=socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); time.sleep(30)\" {port}";
    xtask()
        .args(["check", "ch04", "--server", wrong, "--only", "ch04/echo-line", "--timeout", "0.3"])
        .assert()
        .code(1)
        .stdout(predicate::str::is_match(r"did not listen on port \d+, the port it was given; it listens on 127\.0\.0\.1:\d+ instead").unwrap());
}

/// A server on every address when asked for 127.0.0.1 passes, with a note.
#[test]
fn a_server_on_every_address_gets_a_note() {
    let everywhere = "python3 -c \"import socket,sys; s=socket.socket(); s.bind(('0.0.0.0', int(sys.argv[1]))); s.listen(); c,_=s.accept(); [c.sendall(d) for d in iter(lambda: c.recv(100), b'')]\" {port}";
    xtask()
        .args([
            "check",
            "ch04",
            "--server",
            everywhere,
            "--only",
            "ch04/echo-line",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "note: your server listens on 0.0.0.0 ",
        ));
}

/// The bench's report has its shape (not its numbers): one quick UDP cell against the
/// servers test-all built (no nested cargo build, see the top of this file), then the
/// JSON on stdout, report.md, report.json and the cell's chart.
#[test]
fn bench_quick_writes_a_report_of_the_documented_shape() {
    let out = tempfile::tempdir().unwrap();
    let built = std::path::Path::new(env!("CARGO_BIN_EXE_xtask"))
        .parent()
        .unwrap()
        .to_path_buf();
    let assert = xtask()
        .args([
            "bench",
            "--quick",
            "--json",
            "--cell",
            "udp-1",
            "--prebuilt",
        ])
        .arg(&built)
        .arg("--out")
        .arg(out.path())
        .assert()
        .success();
    let json: serde_json::Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    for key in [
        "machine",
        "placement",
        "timing",
        "cells",
        "skipped",
        "elapsed",
    ] {
        assert!(json.get(key).is_some(), "no {key} in {json}");
    }
    assert!(json["machine"]["cpus"].as_u64().unwrap() >= 1);
    let cells = json["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 1, "only the cell asked for: {json}");
    assert_eq!(cells[0]["id"], "udp-1");
    let rows = cells[0]["rows"].as_array().unwrap();
    let labels: Vec<&str> = rows.iter().map(|r| r["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["udp (workbook)", "udp (C)"]);
    for row in rows {
        for figure in [
            "p50_us",
            "p99_us",
            "fairness",
            "server_cpu_us_per_op",
            "pss_kib",
            "generator_load",
        ] {
            assert!(row[figure].is_number(), "{figure} in {row}");
        }
        assert!(
            row["ops_per_sec"]["median"].as_f64().unwrap() > 0.0,
            "{row}"
        );
        assert_eq!(row["rounds"].as_array().unwrap().len(), 1);
    }
    assert!(rows[0]["ratio_to_c"].is_number() && rows[1]["ratio_to_c"].is_null());
    for row in rows {
        let p = &row["per_connection"];
        assert_eq!(p["connections"], 1, "{row}");
        for figure in [
            "min_over_median",
            "starved",
            "unanswered",
            "longest_wait_us",
        ] {
            assert!(p[figure].is_number(), "{figure} in {row}");
        }
    }
    let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(
        md.contains("## udp-1: UDP, 1 socket, 64 B datagrams"),
        "{md}"
    );
    assert!(md.contains("| server | ops/s | spread | p50 µs | p99 µs | fairness |"));
    assert!(md.contains("| udp (workbook) |") && md.contains("| udp (C) |"));
    let svg = std::fs::read_to_string(out.path().join("udp-1.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("udp (C)"));
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(written["cells"][0]["id"], "udp-1");
}

/// The HTTP cell runs without wrk, on the bench's own generator, and reports how each
/// server shared itself among its 50 connections: in the JSON and in a table of its own.
/// nginx is a third row where it is installed.
#[test]
fn bench_http_cell_reports_each_servers_connections() {
    let out = tempfile::tempdir().unwrap();
    let built = std::path::Path::new(env!("CARGO_BIN_EXE_xtask"))
        .parent()
        .unwrap()
        .to_path_buf();
    let assert = xtask()
        .args(["bench", "--quick", "--json", "--cell", "http", "--prebuilt"])
        .arg(&built)
        .arg("--out")
        .arg(out.path())
        .assert()
        .success();
    let json: serde_json::Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    let cells = json["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 1, "{json}");
    assert_eq!(cells[0]["id"], "http");
    let rows = cells[0]["rows"].as_array().unwrap();
    let labels: Vec<&str> = rows.iter().map(|r| r["label"].as_str().unwrap()).collect();
    assert_eq!(
        labels[..3],
        [
            "ch24 1 worker (fixed)",
            "ch24 2 workers (fixed)",
            "ch24 pool 2..64"
        ],
        "{json}"
    );
    for row in rows {
        assert!(
            row["ops_per_sec"]["median"].as_f64().unwrap() > 0.0,
            "{row}"
        );
        let p = &row["per_connection"];
        assert_eq!(p["connections"], 50, "{row}");
        assert!(p["max"].as_u64().unwrap() > 0, "{row}");
        for figure in [
            "min",
            "median",
            "min_over_median",
            "starved",
            "unanswered",
            "failed",
        ] {
            assert!(p[figure].is_number(), "{figure} in {row}");
        }
        assert!(p["longest_wait_us"].as_f64().unwrap() > 0.0, "{row}");
    }
    let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(
        md.contains("| server | conns | min | median | max | min/median | starved |"),
        "{md}"
    );
    assert!(md.contains("| ch24 2 workers (fixed) | 50 |"), "{md}");
}

#[test]
fn bench_with_an_unknown_cell_exits_two_and_names_the_cells() {
    xtask()
        .args(["bench", "--cell", "nonesuch"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("tcp-1x64, tcp-50x64"))
        .stderr(predicate::str::contains("http"));
}

/// The student's path starts a program as a shell would: `cargo xtask check` blocks
/// SIGINT, SIGTERM and SIGHUP for its own signal thread and raises its own open-file
/// limit, and the program under test must see none of it. The checker is started here
/// as from a shell with `ulimit -n 1000`; the probe (an echo server that writes down its
/// /proc/self/status and limits) must get 1000, no blocked and no ignored signal.
#[test]
fn a_program_under_check_starts_as_a_shell_would_start_it() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(probe) = harness::testing::build_probe(dir.path()) else {
        return;
    };
    let record = dir.path().join("started.txt");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["check", "ch04", "--only", "ch04/echo-line", "--server"])
        .arg(format!("{} {{port}} {}", probe.display(), record.display()));
    // SAFETY: setrlimit is async-signal-safe and nothing is allocated after the fork.
    unsafe {
        command.pre_exec(|| {
            use nix::sys::resource::{Resource, getrlimit, setrlimit};
            let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
            setrlimit(Resource::RLIMIT_NOFILE, 1000.min(hard), hard)?;
            Ok(())
        });
    }
    Command::from_std(command)
        .timeout(std::time::Duration::from_secs(120))
        .assert()
        .success();
    harness::testing::assert_started_as_a_shell_starts(&record, 1000);
}

/// One grading path: what `cargo xtask check --submission` prints for a gallery entry
/// is, normalised, the `report.txt` that the entry's conformance test asserts.
#[test]
fn check_prints_for_a_gallery_entry_the_report_its_test_asserts() {
    for entry in ["ch04/dies-of-sigpipe", "ch01/student-hello-client-c"] {
        let output = xtask()
            .args(["check", &entry[..4], "--submission", &gallery(entry)])
            .output()
            .expect("run xtask check");
        let printed = String::from_utf8_lossy(&output.stdout);
        let golden =
            std::fs::read_to_string(format!("{}/report.txt", gallery(entry))).expect("report.txt");
        assert_eq!(
            harness::gallery::normalized_report(&printed),
            golden,
            "{entry}: cargo xtask check printed another report than the tests assert"
        );
    }
}

/// `check --wire`: the checks run on a captured private loopback, and a failing check's
/// evidence shows the segments of its connection: the twin that calls close() where the
/// book calls shutdown() answers the client's Thank you with RST.
#[test]
fn check_with_wire_shows_the_reset_of_a_server_that_closed() {
    if harness::template::resolve_program("cc").is_err() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "needs cc");
        println!("SKIP: needs cc");
        return;
    }
    let run = xtask()
        .args([
            "check",
            "ch07",
            "--submission",
            &gallery("ch07/close-instead-of-shutdown"),
            "--only",
            "ch07/thank-you-after-eof",
            "--wire",
        ])
        .assert()
        .code(1);
    let output = run.get_output();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains("no private network") {
        println!("SKIP: {stderr}");
        return;
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("[ch07/thank-you-after-eof] wire:     your server sent RST after its FIN"),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.contains(" | ") && l.contains(" server:") && l.contains(" RST ")),
        "{stdout}"
    );
}
