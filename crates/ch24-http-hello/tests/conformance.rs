//! ch24's suite on our server, the gallery's ch24 twins, and the page rendered by a real
//! browser (headless Chromium).

use std::process::Command as StdCommand;

use assert_cmd::Command;
use harness::testing::assert_reference_passes;
use predicates::prelude::*;

const BIN: &str = env!("CARGO_BIN_EXE_ch24-http-hello");

#[test]
fn reference_passes_every_check() {
    assert_reference_passes("ch24", "ch24-http-hello", BIN);
}

#[test]
fn demo_shows_get_head_and_404() {
    Command::new(BIN)
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .success()
        .stdout(predicate::str::contains("[client] < HTTP/1.1 200 OK"))
        .stdout(predicate::str::contains(
            "[client] < HTTP/1.1 404 Not Found",
        ))
        .stdout(
            predicate::str::is_match(
                r#"\[worker \d+\] 127\.0\.0\.1:\d+ "HEAD / HTTP/1\.1" 200 \d+"#,
            )
            .unwrap(),
        );
}

#[test]
fn a_missing_root_is_an_error_before_listening() {
    Command::new(BIN)
        .args(["server", "0", "--root", "/no/such/dir"])
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .code(1)
        .stdout("")
        .stderr(
            "error: --root /no/such/dir: open(\"/no/such/dir\", O_PATH|O_DIRECTORY): ENOENT: No such file or directory\n",
        );
}

/// The page in a real browser: headless Chromium loads it and we read the rendered DOM.
/// Chromium is a Debian package (`chromium`); .ci/run installs it. Without it the test is
/// skipped, except under CI, where a missing tool fails.
#[test]
fn headless_chromium_renders_the_page() {
    let chromium = ["chromium", "chromium-browser"].into_iter().find(|c| {
        StdCommand::new("sh")
            .args(["-c", &format!("command -v {c}")])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let Some(chromium) = chromium else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "chromium is missing: apt-get install chromium"
        );
        println!("SKIP: chromium is missing (apt-get install chromium)");
        return;
    };
    // The server, as a user runs it; stopped by the guard at the end.
    let mut server = StdCommand::new(BIN)
        .args(["server", "0", "--workers", "2"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the server");
    struct Stop(std::process::Child);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.0.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = self.0.wait();
        }
    }
    let stdout = server.stdout.take().expect("stdout");
    let server = Stop(server);
    // One thread reads everything the server prints, from the start, so its stdout never
    // fills or closes; the first line comes back through a channel.
    let (first_line, first) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
            let _ = first_line.send(line);
        }
    });
    let first = first
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("the server's first line");
    let addr = first
        .trim()
        .strip_prefix("listening on ")
        .expect("listening line")
        .to_string();
    let profile = tempfile::tempdir().expect("profile dir");
    let out = StdCommand::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            &format!("--user-data-dir={}", profile.path().display()),
            "--dump-dom",
            &format!("http://{addr}/"),
        ])
        .output()
        .expect("run chromium");
    drop(server);
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("<h1>Hello, World!</h1>"),
        "chromium rendered:\n{dom}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The demo never prints an effect before its cause, run after run: a read() of some
/// bytes never returns before the write() of them began, an accept() never before a
/// connect() began (the two sides' lines are merged on one clock, workbook::timeline).
#[test]
fn demo_prints_causes_before_effects() {
    harness::testing::assert_demo_causal(env!("CARGO_BIN_EXE_ch24-http-hello"), &[], 50);
}
