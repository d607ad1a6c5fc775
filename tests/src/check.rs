//! What a check is, and what it has at hand while it runs.
//!
//! A chapter has roles (the programs a student may hand in) and checks (each aimed at
//! one role, or reference-only). A check is a plain function of a [`Ctx`], which
//! starts the programs under test from their templates, supervises them, and explains
//! their deaths.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::peer::{self, Conn};
use crate::procfs::{self, Proto};
use crate::pty::TerminalProgram;
use crate::supervise::{Spawned, Streams, Supervisor, describe_status};
use crate::template::Template;

/// What kind of program a role is, which decides how the checker runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleKind {
    /// A server: started with a free `{port}`, ready once it listens (TCP) or is bound
    /// (UDP) there.
    Server(Proto),
    /// An interactive client: run under a pseudo-terminal against a checker's server.
    Client,
    /// A one-shot command: run with arguments, its output and exit status compared.
    Tool,
}

/// A program a student may hand in for a chapter.
#[derive(Debug, Clone)]
pub struct Role {
    pub name: &'static str,
    pub kind: RoleKind,
    /// The cargo package whose binary plays this role in our reference run.
    pub package: &'static str,
    /// A role only our own binary plays (a demo observed from outside): `check` takes
    /// no template for it, and its checks run only against our binaries (or, to prove
    /// they can fail, a gallery twin).
    pub reference_only: bool,
    /// Our binary's arguments for this role, placeholders included:
    /// `["server", "{port}"]`.
    pub reference: &'static [&'static str],
    /// Placeholders a template of this role must use.
    pub required: &'static [&'static str],
    /// Placeholders a template of this role may use (the required ones included).
    pub allowed: &'static [&'static str],
    /// A template as a student would write it, for `list` and error messages.
    pub example: &'static str,
}

/// Why a check did not pass.
#[derive(Debug, Clone)]
pub enum Problem {
    Fail(Box<Failure>),
    Skip(String),
}

/// A check's result: `Ok(())` is PASS.
pub type Outcome = Result<(), Problem>;

/// What went wrong, with the evidence: what was sent, what was expected, what came.
#[derive(Debug, Clone, Default)]
pub struct Failure {
    pub message: String,
    pub sent: Option<Vec<u8>>,
    pub expected: Option<String>,
    pub got: Option<Vec<u8>>,
    /// The last lines the program under test wrote to stderr (the runner adds them).
    pub stderr: Option<String>,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            ..Failure::default()
        }
    }
    pub fn sent(mut self, bytes: &[u8]) -> Failure {
        self.sent = Some(bytes.to_vec());
        self
    }
    pub fn expected(mut self, what: impl Into<String>) -> Failure {
        self.expected = Some(what.into());
        self
    }
    pub fn got(mut self, bytes: &[u8]) -> Failure {
        self.got = Some(bytes.to_vec());
        self
    }
}

impl From<Failure> for Problem {
    fn from(f: Failure) -> Problem {
        Problem::Fail(Box::new(f))
    }
}

/// A FAIL with just a message.
pub fn fail(message: impl Into<String>) -> Problem {
    Failure::new(message).into()
}

/// One check of a chapter's suite.
#[derive(Debug, Clone)]
pub struct Check {
    /// `<chapter>/<name>`: the contract other tools and manifests use.
    pub id: String,
    pub title: &'static str,
    /// The role it tests.
    pub role: &'static str,
    /// What to reread when it fails: the chapter README section.
    pub hint: &'static str,
    pub run: fn(&mut Ctx) -> Outcome,
}

/// A chapter: its crate, roles and checks.
#[derive(Debug, Clone)]
pub struct Chapter {
    /// The book's chapter: `ch04`.
    pub id: &'static str,
    pub title: &'static str,
    pub roles: Vec<Role>,
    pub checks: Vec<Check>,
}

impl Chapter {
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.name == name)
    }

    /// The cargo packages of the chapter's reference programs, in role order.
    pub fn packages(&self) -> Vec<&'static str> {
        let mut packages: Vec<&'static str> = Vec::new();
        for role in &self.roles {
            if !packages.contains(&role.package) {
                packages.push(role.package);
            }
        }
        packages
    }
}

/// How the checks run: the deadline factor and what to record.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Every deadline is multiplied by this (`--timeout`).
    pub timeout: f64,
    /// Under CI (`CI=true`) a missing tool fails a check instead of skipping it.
    pub ci: bool,
    /// Record every byte the checker sends and receives (`--verbose`).
    pub verbose: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            timeout: 1.0,
            ci: std::env::var("CI").is_ok_and(|v| v == "true"),
            verbose: false,
        }
    }
}

/// A server under test that is listening.
#[derive(Debug, Clone)]
pub struct Server {
    /// Where the checker connects: 127.0.0.1 and the port it gave.
    pub addr: SocketAddr,
    /// The process that holds the listening socket, whatever wrapper started it.
    pub pid: i32,
    /// The program the checker started (the wrapper, when there is one).
    pub spawned: Spawned,
    /// Its stdin and stdout: a terminal, as when a person runs it, so that C stdio and
    /// Python print each line as it comes rather than when their buffer fills.
    pub terminal: std::sync::Arc<TerminalProgram>,
}

impl Server {
    /// The lines the server printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.terminal.lines()
    }
}

/// Renders `template` with `values`, leaving out every word that holds a placeholder
/// without a value (`--root={root}` when a check gives no root).
fn render_filled(template: &Template, values: &BTreeMap<&str, String>) -> Vec<String> {
    let unused: Vec<String> = template
        .placeholders()
        .into_iter()
        .filter(|p| !values.contains_key(p.as_str()))
        .collect();
    let kept = Template::from_words(
        template
            .words
            .iter()
            .filter(|w| !unused.iter().any(|u| w.contains(u.as_str())))
            .cloned()
            .collect(),
    );
    kept.render(values)
}

/// A finished run of a tool role.
#[derive(Debug, Clone)]
pub struct ToolRun {
    pub command: String,
    pub status: nix::sys::wait::WaitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl ToolRun {
    /// The exit code, when it exited rather than died of a signal.
    pub fn code(&self) -> Option<i32> {
        match self.status {
            nix::sys::wait::WaitStatus::Exited(_, code) => Some(code),
            _ => None,
        }
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// What a check has at hand: the templates, the deadlines, its own processes.
#[derive(Debug)]
pub struct Ctx<'a> {
    pub chapter: &'a Chapter,
    pub check: &'a Check,
    templates: &'a BTreeMap<String, Template>,
    pub settings: &'a Settings,
    pub sup: Supervisor,
    /// Things worth saying that are not failures (a server on every address).
    pub notes: Vec<String>,
}

impl<'a> Ctx<'a> {
    pub fn new(
        chapter: &'a Chapter,
        check: &'a Check,
        templates: &'a BTreeMap<String, Template>,
        settings: &'a Settings,
    ) -> anyhow::Result<Ctx<'a>> {
        let grace = Duration::from_secs_f64(1.0 * settings.timeout);
        Ok(Ctx {
            chapter,
            check,
            templates,
            settings,
            sup: Supervisor::new(grace)?,
            notes: Vec::new(),
        })
    }

    /// `base` scaled by `--timeout`.
    pub fn deadline(&self, base: Duration) -> Duration {
        base.mul_f64(self.settings.timeout)
    }

    /// `secs` seconds, scaled by `--timeout`.
    pub fn secs(&self, secs: f64) -> Duration {
        self.deadline(Duration::from_secs_f64(secs))
    }

    fn template(&self, role: &str) -> Result<&'a Template, Problem> {
        self.templates
            .get(role)
            .ok_or_else(|| Problem::Skip(format!("no template for role {role}")))
    }

    /// A tool a check needs (cc, curl, ...): SKIP with the package to install when it
    /// is missing, or FAIL under CI, so that CI cannot pass by skipping.
    pub fn require_tool(&self, tool: &str, package: &str) -> Outcome {
        if crate::template::resolve_program(tool).is_ok() {
            return Ok(());
        }
        let why = format!("needs {tool}: install it with `apt-get install {package}`");
        if self.settings.ci {
            Err(fail(why))
        } else {
            Err(Problem::Skip(why))
        }
    }

    /// Starts the check's role as a server on a free port and waits until it listens.
    pub fn server(&mut self) -> Result<Server, Problem> {
        self.server_of(self.check.role, &[])
    }

    /// Starts `role` as a server with extra placeholder values (`{file}`, ...).
    pub fn server_of(
        &mut self,
        role: &str,
        extra: &[(&'static str, String)],
    ) -> Result<Server, Problem> {
        let template = self.template(role)?;
        let RoleKind::Server(proto) = self.chapter.role(role).expect("known role").kind else {
            panic!("role {role} is not a server");
        };
        let port = peer::free_port().map_err(fail)?;
        let mut values: BTreeMap<&str, String> = BTreeMap::new();
        values.insert("{host}", "127.0.0.1".into());
        values.insert("{port}", port.to_string());
        values.extend(extra.iter().cloned());
        let argv = render_filled(template, &values);
        let terminal =
            TerminalProgram::spawn(&mut self.sup, &argv).map_err(|e| fail(format!("{e:#}")))?;
        let spawned = terminal.spawned.clone();
        let pid = self.wait_ready(&spawned, &terminal, proto, port)?;
        Ok(Server {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            pid,
            spawned,
            terminal: std::sync::Arc::new(terminal),
        })
    }

    /// Waits until a socket on `port` is listening (TCP) or bound (UDP) in
    /// /proc/net, held by one of this check's processes. Never connects to find out:
    /// a probe connection would use up one of the server's accepts.
    fn wait_ready(
        &mut self,
        spawned: &Spawned,
        terminal: &TerminalProgram,
        proto: Proto,
        port: u16,
    ) -> Result<i32, Problem> {
        let deadline = self.secs(10.0);
        let until = Instant::now() + deadline;
        let what = match proto {
            Proto::Tcp => "listened",
            Proto::Udp => "bound its socket",
        };
        loop {
            if let Some(row) = procfs::ready_socket(proto, port) {
                let holder =
                    self.sup.processes().into_iter().find(|p| {
                        p.state != 'Z' && procfs::socket_inodes(p.pid).contains(&row.inode)
                    });
                if let Some(holder) = holder {
                    if row.local.ip().is_unspecified() {
                        self.notes.push(format!(
                            "your server listens on {} (every address: other machines can reach it); bind 127.0.0.1 unless asked otherwise",
                            row.local
                        ));
                    }
                    return Ok(holder.pid);
                }
            }
            if let Some(status) = self.sup.status(spawned.pid) {
                let mut message = format!(
                    "your program {} before it {what} on port {port}",
                    describe_status(&status)
                );
                let stderr = spawned.stderr_tail(5);
                // Let the terminal hand over the last output before quoting it.
                let _ = terminal.wait_for_line(Duration::from_millis(100), |_| false);
                let lines = terminal.lines();
                let stdout = lines[lines.len().saturating_sub(6)..].join("\n");
                if !stderr.trim().is_empty() {
                    message.push_str(&format!("; its stderr ended with:\n{stderr}"));
                } else if !stdout.trim().is_empty() {
                    message.push_str(&format!("; its output ended with:\n{stdout}"));
                }
                message.push_str(&format!(
                    "\n(it was run as: {})",
                    shell_words::join(&spawned.argv)
                ));
                return Err(Failure::new(message).into());
            }
            if Instant::now() >= until {
                return Err(fail(self.not_ready_reason(proto, port, deadline)));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn not_ready_reason(&mut self, proto: Proto, port: u16, deadline: Duration) -> String {
        let mut inodes = std::collections::HashSet::new();
        for p in self.sup.processes() {
            inodes.extend(procfs::socket_inodes(p.pid));
        }
        let elsewhere: Vec<String> = procfs::ready_sockets_among(proto, &inodes)
            .iter()
            .map(|row| row.local.to_string())
            .collect();
        if !elsewhere.is_empty() {
            return format!(
                "your program did not listen on port {port}, the port it was given; it listens on {} instead (use the {{port}} argument)",
                elsewhere.join(", ")
            );
        }
        if procfs::ready_socket(proto, port).is_some() {
            return format!("port {port} is held by another program, not by yours");
        }
        format!(
            "your program did not listen on port {port} within {deadline:.1?} (it is still running)"
        )
    }

    /// Connects to the server under test; when it cannot, says whether the server died.
    pub fn connect(&mut self, server: &Server) -> Result<Conn, Problem> {
        Conn::connect(server.addr, self.secs(5.0))
            .map_err(|e| self.explain(server, Failure::new(e)))
    }

    /// When the server process is gone: how it ended, in words.
    pub fn server_gone(&mut self, server: &Server) -> Option<String> {
        let alive = procfs::stat(server.pid).is_some_and(|p| p.state != 'Z');
        if alive && server.pid != server.spawned.pid {
            return None;
        }
        if let Some(status) = self.sup.status(server.spawned.pid) {
            return Some(format!("your server {}", describe_status(&status)));
        }
        if !alive {
            return Some(format!("your server process (pid {}) is gone", server.pid));
        }
        None
    }

    /// Explains a failed exchange: when the server died, that is the news.
    ///
    /// A dying process closes its sockets (the checker sees the reset) a moment before
    /// it becomes a zombie whose status can be read, so this waits up to a second
    /// (scaled) for the death to show before concluding the server is alive.
    pub fn explain(&mut self, server: &Server, failure: Failure) -> Problem {
        let until = Instant::now() + self.secs(1.0);
        let mut gone = self.server_gone(server);
        while gone.is_none() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
            gone = self.server_gone(server);
        }
        match gone {
            Some(gone) => {
                let mut failure = failure;
                failure.message = format!("{}; {gone}", failure.message);
                failure.into()
            }
            None => failure.into(),
        }
    }

    /// Waits until the server prints a line showing `expected`, up to `deadline`.
    pub fn expect_server_line(
        &mut self,
        server: &Server,
        expected: &str,
        deadline: Duration,
    ) -> Outcome {
        if server
            .terminal
            .wait_for_line(deadline, |l| crate::pty::line_shows(l, expected))
            .is_some()
        {
            return Ok(());
        }
        Err(self.explain(
            server,
            Failure::new(format!(
                "your server did not print the expected line within {deadline:.1?}"
            ))
            .expected(format!("a line {expected:?}"))
            .got(&server.terminal.output()),
        ))
    }

    /// Runs the check's client role on a terminal, pointed at `server`.
    pub fn client(
        &mut self,
        server: SocketAddr,
        extra: &[(&'static str, String)],
    ) -> Result<TerminalProgram, Problem> {
        let template = self.template(self.check.role)?;
        let mut values: BTreeMap<&str, String> = BTreeMap::new();
        values.insert("{host}", server.ip().to_string());
        values.insert("{port}", server.port().to_string());
        values.extend(extra.iter().cloned());
        let argv = render_filled(template, &values);
        TerminalProgram::spawn(&mut self.sup, &argv).map_err(|e| fail(format!("{e:#}")))
    }

    /// Runs the check's tool role with `args` after its template's words, and waits
    /// for it to exit (up to 10 s, scaled).
    pub fn tool(&mut self, args: &[&str]) -> Result<ToolRun, Problem> {
        self.tool_with(&[], args)
    }

    /// Whether the check's role template uses `placeholder`.
    pub fn template_uses(&self, placeholder: &str) -> bool {
        self.templates
            .get(self.check.role)
            .is_some_and(|t| t.placeholders().iter().any(|p| p == placeholder))
    }

    /// Runs the check's tool role with `values` filled in and `args` appended. A word
    /// that holds a placeholder without a value is left out, so that one template can
    /// serve checks that need different placeholders (`./lookup {name} {addr}`).
    pub fn tool_with(
        &mut self,
        values: &[(&str, String)],
        args: &[&str],
    ) -> Result<ToolRun, Problem> {
        let template = self.template(self.check.role)?;
        let values: BTreeMap<&str, String> = values.iter().cloned().collect();
        let mut argv = render_filled(template, &values);
        argv.extend(args.iter().map(|a| a.to_string()));
        let spawned = self
            .sup
            .spawn(&argv, Streams::Logged)
            .map_err(|e| fail(format!("{e:#}")))?;
        let deadline = self.secs(10.0);
        let Some(status) = self.sup.wait_exit(spawned.pid, deadline) else {
            return Err(fail(format!(
                "`{}` was still running after {deadline:.1?}",
                shell_words::join(&argv)
            )));
        };
        Ok(ToolRun {
            command: shell_words::join(&argv),
            status,
            stdout: std::fs::read(&spawned.stdout_log).unwrap_or_default(),
            stderr: std::fs::read(&spawned.stderr_log).unwrap_or_default(),
        })
    }

    /// Starts the check's tool role on a terminal with `args` appended, without
    /// waiting: for demos observed while they run.
    pub fn start_tool(&mut self, args: &[&str]) -> Result<TerminalProgram, Problem> {
        let template = self.template(self.check.role)?;
        let mut argv = template.render(&BTreeMap::new());
        argv.extend(args.iter().map(|a| a.to_string()));
        TerminalProgram::spawn(&mut self.sup, &argv).map_err(|e| fail(format!("{e:#}")))
    }

    /// Waits up to 5 s (scaled) for the program `pid` to exit with status 0; `after`
    /// says what it had just been given ("after q").
    pub fn expect_exit_zero(&mut self, pid: i32, after: &str) -> Outcome {
        let deadline = self.secs(5.0);
        match self.sup.wait_exit(pid, deadline) {
            Some(nix::sys::wait::WaitStatus::Exited(_, 0)) => Ok(()),
            Some(status) => Err(fail(format!(
                "{after}, your program {}",
                describe_status(&status)
            ))),
            None => Err(fail(format!(
                "{after}, your program was still running {deadline:.1?} later"
            ))),
        }
    }

    /// Sends SIGTERM to the server and expects a clean stop within `deadline`: exit
    /// status 0 (when it is the program we started) and none of its processes left.
    pub fn expect_clean_stop(&mut self, server: &Server, deadline: Duration) -> Outcome {
        use nix::sys::signal::{Signal, kill};
        kill(nix::unistd::Pid::from_raw(server.pid), Signal::SIGTERM)
            .map_err(|e| fail(format!("kill(SIGTERM): {e}")))?;
        let until = Instant::now() + deadline;
        if server.pid == server.spawned.pid {
            match self.sup.wait_exit(server.pid, deadline) {
                Some(nix::sys::wait::WaitStatus::Exited(_, 0)) => {}
                Some(status) => {
                    return Err(Failure::new(format!(
                        "after SIGTERM your server {}",
                        describe_status(&status)
                    ))
                    .expected("exit status 0: catch SIGTERM, end and reap what you started, exit")
                    .into());
                }
                None => {
                    return Err(fail(format!(
                        "your server was still running {deadline:.1?} after SIGTERM"
                    )));
                }
            }
        }
        loop {
            let left: Vec<String> = self
                .sup
                .processes()
                .into_iter()
                .filter(|p| p.state != 'Z')
                .map(|p| format!("{} ({})", p.pid, p.comm))
                .collect();
            if left.is_empty() {
                return Ok(());
            }
            if Instant::now() >= until {
                return Err(Failure::new(format!(
                    "{deadline:.1?} after SIGTERM these processes of your server were still running: {}",
                    left.join(", ")
                ))
                .expected("the server and everything it started gone")
                .into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for a line of the client's output showing `expected` (see
    /// [`crate::pty::line_shows`]), up to `deadline`, or until the client has exited and
    /// its last output is in.
    pub fn expect_line(
        &mut self,
        client: &TerminalProgram,
        expected: &str,
        deadline: Duration,
    ) -> Outcome {
        let shows = |l: &str| crate::pty::line_shows(l, expected);
        let until = Instant::now() + deadline;
        let mut exited = None;
        while Instant::now() < until {
            let step = until
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(50));
            if client.wait_for_line(step, shows).is_some() {
                return Ok(());
            }
            if let Some(status) = self.sup.status(client.spawned.pid) {
                // It exited: give the terminal a moment to hand over its last output.
                if client
                    .wait_for_line(Duration::from_millis(200), shows)
                    .is_some()
                {
                    return Ok(());
                }
                exited = Some(status);
                break;
            }
        }
        let message = match exited {
            Some(status) => format!(
                "your client {} without printing the expected line",
                describe_status(&status)
            ),
            None => format!("your client did not print the expected line within {deadline:.1?}"),
        };
        Err(Failure::new(message)
            .expected(format!("a line {expected:?}"))
            .got(&client.output())
            .into())
    }
}
