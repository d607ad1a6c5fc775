//! What a check is, and what it has at hand while it runs.
//!
//! A chapter has roles (the programs a student may hand in) and checks (each aimed at
//! one role, or reference-only). A check is a plain function of a [`Ctx`], which
//! starts the programs under test from their templates, supervises them, and explains
//! their deaths.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::launch::Limits;
use crate::peer::{self, Conn, HarnessServer, Recorder};
use crate::procfs::{self, Proto};
use crate::pty::TerminalProgram;
use crate::supervise::{Spawned, Streams, Supervisor, describe_status};
use crate::template::Template;
pub use crate::verdict::{Cause, Evidence, Hint, Outcome, Problem, Verdict, fail};
use crate::wording::{self, Label};

/// How long programs get between SIGTERM and SIGKILL when a check ends (scaled).
const GRACE_SECS: f64 = 0.5;

/// The hint of a program that did not start: the lesson of the check is not reached yet.
pub const STARTUP_HINT: Hint = Hint {
    text: "a server must listen on the {port} it is given (127.0.0.1 unless told otherwise) and keep running; start it by hand with the same arguments to see why it stopped",
    see: HOMEWORK,
};

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

/// A section of a README: where a hint sends the reader. `readme` is the file's path
/// from the repository root; the heading must exist in it (a tidy test reads them all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section {
    pub readme: &'static str,
    pub heading: &'static str,
}

impl std::fmt::Display for Section {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}, \"{}\"", self.readme, self.heading)
    }
}

/// A README, by its path from the repository root: `README.at("SIGPIPE")` is a section
/// of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readme(pub &'static str);

impl Readme {
    pub const fn at(self, heading: &'static str) -> Section {
        Section {
            readme: self.0,
            heading,
        }
    }
}

/// The section every program-start failure points to: how the checker runs a program.
pub const HOMEWORK: Section = Section {
    readme: "README.md",
    heading: "Check your homework",
};

/// The section that says how a client's output is matched.
pub const OUTPUT_MATCHING: Section = Section {
    readme: "README.md",
    heading: "How output is matched",
};

/// The hint of a reply printed in a form the checker cannot read: not the lesson.
pub const WORDING_HINT: Hint = Hint {
    text: "print the reply's text as it came, on a line of its own or after a label (Message from server: ...), not a representation of it (b'...', quotes, extra characters after it)",
    see: OUTPUT_MATCHING,
};

/// One check of a chapter's suite, declared by name. The chapter supplies its id's
/// prefix: `ch04` and `large-message` make `ch04/large-message`.
#[derive(Debug, Clone)]
pub struct Check {
    /// The check's name within its chapter, the part after `chNN/`.
    pub name: &'static str,
    /// The role it tests.
    pub role: &'static str,
    /// What it checks, in a line: the report and `list` show it.
    pub title: &'static str,
    /// What to do when it fails, in the book's terms.
    pub hint: &'static str,
    /// Where the lesson is explained.
    pub see: Section,
    pub run: fn(&mut Ctx) -> Outcome,
}

impl Check {
    pub fn hint(&self) -> Hint {
        Hint {
            text: self.hint,
            see: self.see,
        }
    }
}

/// A chapter: its roles and checks.
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

    /// `<chapter>/<name>`: the contract other tools and manifests use.
    pub fn id_of(&self, check: &Check) -> String {
        format!("{}/{}", self.id, check.name)
    }

    /// The check with id `id`.
    pub fn check(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|c| self.id_of(c) == id)
    }

    /// Every check id, in the suite's order.
    pub fn ids(&self) -> Vec<String> {
        self.checks.iter().map(|c| self.id_of(c)).collect()
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
    pub deadline_factor: f64,
    /// Under CI (`CI=true`) a missing tool fails a check instead of skipping it.
    pub ci: bool,
    /// Record every byte the checker sends and receives (`--verbose`).
    pub verbose: bool,
    /// How many checks run at once (`--jobs`). Each check starts its own programs on
    /// ports of its own, so checks are independent; most of a check's time is spent
    /// waiting for a program, so running several at once shortens a run.
    pub jobs: usize,
}

/// Checks that run at once unless told otherwise.
pub const DEFAULT_JOBS: usize = 4;

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            deadline_factor: 1.0,
            ci: std::env::var("CI").is_ok_and(|v| v == "true"),
            verbose: false,
            jobs: DEFAULT_JOBS,
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

/// Whether a program's last words say its bind() failed: `Address already in use`
/// (perror, Python, Go, Node: EADDRINUSE), or the book's `bind() error`.
fn says_its_bind_failed(stderr: &str, output: &[u8]) -> bool {
    let output = String::from_utf8_lossy(output);
    [stderr, output.as_ref()].iter().any(|text| {
        let text = text.to_ascii_lowercase();
        text.contains("address already in use")
            || text.contains("eaddrinuse")
            || text.contains("bind() error")
    })
}

/// Whether some socket of `proto` holds `port` now (any state: listening, bound,
/// connected, TIME_WAIT), when the program that was to listen on it has ended.
fn port_taken_by_another(proto: Proto, port: u16) -> bool {
    procfs::sockets_on(proto, port)
        .iter()
        .any(|row| row.local.port() == port)
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

/// What a check has at hand: the templates, the deadlines, its own processes, and
/// what it has to say besides its verdict. Everything a check gathers is gathered
/// here, in the check's own context (never in a global: libtest runs checks on
/// parallel threads).
#[derive(Debug)]
pub struct Ctx<'a> {
    pub chapter: &'a Chapter,
    pub check: &'a Check,
    /// `<chapter>/<name>`.
    pub id: String,
    templates: &'a BTreeMap<String, Template>,
    pub settings: &'a Settings,
    pub sup: Supervisor,
    /// Things worth saying that are not failures (a server on every address).
    pub notes: Vec<String>,
    /// With `--verbose`, the bytes the checker's peers send and receive.
    pub recorder: Recorder,
    /// Limits this check sets for its programs over the shell's (see [`crate::launch`]).
    limits: Limits,
    /// With `--wire`: the ports of this check's connections, and when it began
    /// (CLOCK_MONOTONIC), for the segments a failure's evidence shows.
    wire_ends: std::sync::Mutex<Vec<crate::wire::End>>,
    began: u64,
    /// The local addresses of the clients this check connected ([`Ctx::connect`]), in
    /// order: a report calls the connection of the third `client 3`.
    clients: Vec<SocketAddr>,
    /// When the wait that the check's title promises a bound for ("within 2 s") began:
    /// set by [`Ctx::stated_deadline_starts`].
    pub deadline_mark: Option<Instant>,
}

impl<'a> Ctx<'a> {
    pub fn new(
        chapter: &'a Chapter,
        check: &'a Check,
        templates: &'a BTreeMap<String, Template>,
        settings: &'a Settings,
    ) -> anyhow::Result<Ctx<'a>> {
        let grace = Duration::from_secs_f64(GRACE_SECS * settings.deadline_factor);
        Ok(Ctx {
            chapter,
            check,
            id: chapter.id_of(check),
            templates,
            settings,
            sup: Supervisor::new(grace)?,
            notes: Vec::new(),
            recorder: Recorder::new(settings.verbose),
            limits: Limits::default(),
            wire_ends: std::sync::Mutex::new(Vec::new()),
            began: syscalls::trace::now(),
            clients: Vec::new(),
            deadline_mark: None,
        })
    }

    /// Marks the start of the wait whose bound the check's title states (`... within 2
    /// s`): after end of input is typed, after the server closed, after SIGTERM. A check
    /// that waits again (one more line typed) marks again. The gallery's tests assert that
    /// from the last mark to the end of the check, its programs ended and reaped included,
    /// no more than the stated time and a small constant go by.
    pub fn stated_deadline_starts(&mut self) {
        self.deadline_mark = Some(Instant::now());
    }

    /// Runs the programs this check starts from now on with at most `n` open files
    /// (for checks of what a server does at EMFILE; the check's title says so).
    pub fn limit_open_files(&mut self, n: u64) {
        self.limits.open_files = Some(n);
    }

    /// Runs the programs this check starts from now on on `host` of a private network
    /// (ch14), or back where the checker is with None.
    pub fn run_on(&mut self, host: Option<&workbook::netns::Host>) {
        self.limits.netns = host.map(|h| h.fds());
    }

    /// Starts `role` with the placeholders `values` on a terminal, without waiting for
    /// anything: for programs the check watches in its own way (ch14's receivers, ready
    /// when their host shows them bound and joined).
    pub fn start_role(
        &mut self,
        role: &str,
        values: &[(&'static str, String)],
    ) -> Result<TerminalProgram, Problem> {
        let template = self.template(role)?;
        let values: BTreeMap<&str, String> = values.iter().cloned().collect();
        let argv = render_filled(template, &values);
        TerminalProgram::spawn(&mut self.sup, &argv, &self.limits)
            .map_err(|e| fail(format!("{e:#}")))
    }

    /// Adds a note once (a note repeated by a helper stays one line).
    pub fn note(&mut self, note: impl Into<String>) {
        let note = note.into();
        if !self.notes.contains(&note) {
            self.notes.push(note);
        }
    }

    /// Turns the check's outcome into its verdict, with the evidence only this context
    /// has: the last lines of the program's stderr, read now, before the checker ends
    /// the program (closing its terminal would add `Input/output error` lines of its own).
    pub fn conclude(&mut self, outcome: Outcome) -> Verdict {
        let mut verdict = Verdict::from(outcome);
        if let Verdict::Fail(evidence) = &mut verdict
            && evidence.stderr.is_none()
        {
            let stderr = self.sup.spawned_stderr_tail(5);
            if !stderr.trim().is_empty() {
                evidence.stderr = Some(stderr);
            }
        }
        // What the program under test is doing as the check gives up, read now, before
        // the checker ends it: the most useful fact for a beginner, whatever the check.
        if let Verdict::Fail(evidence) = &mut verdict
            && evidence.doing.is_none()
            && let Some(pid) = self.sup.first_spawned().map(|s| s.pid)
            && procfs::stat(pid).is_some_and(|p| p.state != 'Z')
        {
            evidence.doing = Some(self.doing_tree(pid));
        }
        if let Verdict::Fail(evidence) = &mut verdict
            && evidence.wire.is_none()
            && crate::wire::active()
        {
            let ends = self.wire_ends.lock().map(|e| e.clone()).unwrap_or_default();
            evidence.wire = crate::wire::evidence(&ends, self.began);
        }
        verdict
    }

    /// `base` scaled by `--timeout`.
    pub fn deadline(&self, base: Duration) -> Duration {
        base.mul_f64(self.settings.deadline_factor)
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
        let mut attempt = 1;
        loop {
            let port = peer::free_port().map_err(fail)?;
            self.on_the_wire(crate::wire::End::Program(port));
            let mut values: BTreeMap<&str, String> = BTreeMap::new();
            values.insert("{host}", "127.0.0.1".into());
            values.insert("{port}", port.to_string());
            values.extend(extra.iter().cloned());
            let argv = render_filled(template, &values);
            let terminal = TerminalProgram::spawn(&mut self.sup, &argv, &self.limits)
                .map_err(|e| fail(format!("{e:#}")))?;
            let spawned = terminal.spawned.clone();
            match self.wait_ready(&spawned, &terminal, proto, port) {
                Ok(pid) => {
                    return Ok(Server {
                        addr: SocketAddr::from(([127, 0, 0, 1], port)),
                        pid,
                        spawned,
                        terminal: std::sync::Arc::new(terminal),
                    });
                }
                // The port was free when it was chosen, but something outside this
                // checker took it before the program's bind() (another program on the
                // machine may pick any port, and may hold it only a moment): the
                // program's failure is not its own. It starts again, on another port, as
                // a person would. Seen by the port still being held, or by the program's
                // own last words about its bind(); a program that fails to bind for its
                // own reasons fails the same way on every port, so its verdict stands.
                Err(_)
                    if attempt < 3
                        && self.sup.status(spawned.pid).is_some()
                        && (port_taken_by_another(proto, port)
                            || says_its_bind_failed(
                                &spawned.stderr_tail(5),
                                &terminal.output_now(),
                            )) =>
                {
                    self.sup.forget(spawned.pid);
                    attempt += 1;
                }
                Err(problem) => return Err(problem),
            }
        }
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
                        self.note(format!(
                            "your server listens on {} (every address: other machines can reach it); bind 127.0.0.1 unless asked otherwise",
                            row.local.ip()
                        ));
                    }
                    return Ok(holder.pid);
                }
            }
            if let Some(status) = self.sup.status(spawned.pid) {
                let message = format!(
                    "your program {} before it {what} on port {port} (it was run as: {})",
                    describe_status(&status),
                    shell_words::join(&spawned.argv)
                );
                let mut evidence = Evidence::new(message).cause(
                    format!("startup: {}", describe_status(&status)),
                    Some(STARTUP_HINT),
                );
                let stderr = spawned.stderr_tail(5);
                if !stderr.trim().is_empty() {
                    evidence.stderr = Some(stderr);
                } else {
                    let output = terminal.output_now();
                    if !output.is_empty() {
                        evidence = evidence.got(&output[output.len().saturating_sub(400)..]);
                    }
                }
                return Err(evidence.into());
            }
            if Instant::now() >= until {
                let reason = self.not_ready_reason(proto, port, deadline);
                return Err(Evidence::new(reason)
                    .cause("startup: not ready", Some(STARTUP_HINT))
                    .into());
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
        let conn = Conn::connect(server.addr, self.secs(5.0), &self.recorder)
            .map(|conn| conn.watching(server.spawned.pid))
            .map_err(|e| self.explain(server, Evidence::new(e)))?;
        if let Ok(local) = conn.stream.local_addr() {
            self.clients.push(local);
        }
        Ok(conn)
    }

    /// A server of the checker's for a client under test, on 127.0.0.1 and a port the
    /// kernel chose.
    pub fn harness_server(&self) -> Result<HarnessServer, Problem> {
        let server = HarnessServer::start(&self.recorder).map_err(fail)?;
        self.on_the_wire(crate::wire::End::Checker(server.addr.port()));
        Ok(server)
    }

    /// Notes a port of this check's connections, for the wire's evidence.
    fn on_the_wire(&self, end: crate::wire::End) {
        if let Ok(mut ends) = self.wire_ends.lock() {
            ends.push(end);
        }
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
            // Ended, but its status cannot be read yet: a program with threads shows as
            // a zombie while its other threads are still being torn down (the kernel
            // lets its parent reap it only after), and a wrapper (`sh -c`) ends a moment
            // after its child. How it ended is the news, so wait for it, briefly.
            let pid = server.spawned.pid;
            if let Some(status) = self.sup.wait_exit(pid, self.secs(1.0)) {
                return Some(format!("your server {}", describe_status(&status)));
            }
            return Some(format!("your server process (pid {}) is gone", server.pid));
        }
        None
    }

    /// Explains a failed exchange: when the server died, that is the news.
    ///
    /// A dying process closes its sockets (the checker sees the reset) a moment before
    /// it becomes a zombie whose status can be read, so while it may be on its way out
    /// (it no longer listens, it has begun to exit, or a signal waits for it) this waits
    /// up to a second (scaled) for the death to show before concluding it is alive.
    pub fn explain(&mut self, server: &Server, evidence: Evidence) -> Problem {
        let until = Instant::now() + self.secs(1.0);
        let mut gone = self.server_gone(server);
        // Wait only while it may be on its way out: its listening (or bound) socket is
        // gone (a program closes its sockets, or the interpreter does, before it exits),
        // it has begun to exit, or a signal waits to be delivered to it. A server that
        // still listens, with none of that, is alive, and says so at once.
        let port = server.addr.port();
        let dying = |pid: i32| {
            let listens = procfs::ready_socket(procfs::Proto::Tcp, port).is_some()
                || procfs::ready_socket(procfs::Proto::Udp, port).is_some();
            procfs::stat(pid).is_some_and(|p| {
                p.state != 'Z' && (!listens || p.exiting() || procfs::signal_pending(pid))
            })
        };
        while gone.is_none() && Instant::now() < until && dying(server.pid) {
            std::thread::sleep(Duration::from_millis(10));
            gone = self.server_gone(server);
        }
        // It may have become a zombie since the last look.
        if gone.is_none() {
            gone = self.server_gone(server);
        }
        match gone {
            Some(gone) => {
                // The death is the news; what the checker saw of it goes below.
                let mut evidence = evidence;
                let mut seen = std::mem::replace(&mut evidence.message, gone.clone());
                // Its last words on its terminal often say why (`epoll_wait() error`).
                let lines: Vec<String> = server
                    .lines()
                    .into_iter()
                    .filter(|l| !l.trim().is_empty())
                    .collect();
                if let Some(last) = lines.last() {
                    seen.push_str(&format!(
                        "; the last line it printed: {}",
                        crate::report::quote(last)
                    ));
                }
                evidence.seen = Some(seen);
                // What a living server should have sent is moot.
                evidence.expected = None;
                // One death, one cause: later checks that meet it point back here.
                if evidence.cause.is_none() {
                    evidence.cause = Some(Cause {
                        key: format!("died: {gone}"),
                        hint: None,
                    });
                }
                evidence.into()
            }
            // Alive: what it is doing now, at the failure, before the check lets go of
            // what holds it (a dribbling client, a FIFO's reader); read at the end of the
            // check it would show a program that has moved on.
            None => {
                let mut evidence = evidence;
                if evidence.doing.is_none() {
                    evidence.doing = Some(self.doing_tree(server.pid));
                }
                evidence.into()
            }
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
            Evidence::new(format!(
                "your server did not print the expected line within {deadline:.1?}"
            ))
            .expected(format!("a line {}", crate::report::quote(expected)))
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
        TerminalProgram::spawn(&mut self.sup, &argv, &self.limits)
            .map_err(|e| fail(format!("{e:#}")))
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
            .spawn(&argv, Streams::Logged, &self.limits)
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
        TerminalProgram::spawn(&mut self.sup, &argv, &self.limits)
            .map_err(|e| fail(format!("{e:#}")))
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
        self.stated_deadline_starts();
        let until = Instant::now() + deadline;
        if server.pid == server.spawned.pid {
            match self.sup.wait_exit(server.pid, deadline) {
                Some(nix::sys::wait::WaitStatus::Exited(_, 0)) => {}
                Some(status) => {
                    return Err(Evidence::new(format!(
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
                return Err(Evidence::new(format!(
                    "{deadline:.1?} after SIGTERM these processes of your server were still running: {}",
                    left.join(", ")
                ))
                .expected("the server and everything it started gone")
                .into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until a line of the client's output shows `text` on its own, after a
    /// prompt or after any label ([`crate::wording`]), up to `deadline` or until the
    /// client has exited and its last output is in.
    pub fn expect_line(
        &mut self,
        client: &TerminalProgram,
        text: &str,
        deadline: Duration,
    ) -> Outcome {
        self.expect_shown(client, None, text, deadline)
    }

    /// Waits until the client prints `text` as a reply after `label`, whatever its
    /// wording: the lesson is the reply. A label other than the book's passes with a
    /// note that quotes both.
    pub fn expect_reply(
        &mut self,
        client: &TerminalProgram,
        label: Label,
        text: &str,
        deadline: Duration,
    ) -> Outcome {
        self.expect_shown(client, Some(label), text, deadline)
    }

    fn expect_shown(
        &mut self,
        client: &TerminalProgram,
        label: Option<Label>,
        text: &str,
        deadline: Duration,
    ) -> Outcome {
        let shows = |l: &str| wording::find_shown(&[l.to_string()], text).is_some();
        let until = Instant::now() + deadline;
        let mut exited = None;
        let mut found = None;
        while Instant::now() < until {
            let step = until
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(50));
            if let Some(line) = client.wait_for_line(step, shows) {
                found = Some(line);
                break;
            }
            if let Some(status) = self.sup.status(client.spawned.pid) {
                // It exited: everything it printed is on the terminal now, a last line
                // without its newline included, and it counts.
                found = wording::find_shown(&wording::lines_of(&client.output_now()), text)
                    .map(|s| s.line);
                exited = Some(status);
                break;
            }
        }
        if let Some(line) = found {
            if let Some(label) = label
                && let Some(shown) = wording::find_shown(&[line], text)
                && let Some(note) = shown.note(label)
            {
                self.note(note);
            }
            return Ok(());
        }
        let wanted = match label {
            Some(label) => format!(
                "a line {} (the book's label) or {} alone",
                crate::report::quote(&format!("{}{text}", label.book)),
                crate::report::quote(text)
            ),
            None => format!("a line {}", crate::report::quote(text)),
        };
        let held = wording::held_not_shown(&client.lines(), text);
        if let Some(line) = held.first() {
            // The bytes are there, in another form: a wording failure, not the lesson's.
            return Err(Evidence::new(format!(
                "your client printed the reply in another form: {}",
                crate::report::quote(line)
            ))
            .expected(wanted)
            .got(&client.output())
            .cause("wording", Some(WORDING_HINT))
            .into());
        }
        let message = match exited {
            Some(status) => format!(
                "your client {} without printing {}",
                describe_status(&status),
                crate::report::quote(text)
            ),
            None => format!(
                "your client did not print {} within {deadline:.1?}",
                crate::report::quote(text)
            ),
        };
        let mut evidence = Evidence::new(message)
            .expected(wanted)
            .got(&client.output());
        if exited.is_none() {
            evidence = evidence.doing(self.doing(client.spawned.pid));
        }
        Err(evidence.into())
    }

    /// What process `pid` of this check is doing now, in a report's words.
    pub fn doing(&mut self, pid: i32) -> String {
        let what = crate::observe::doing(pid, &|addr| self.client_named(addr));
        let who = match self.chapter.role(self.check.role).map(|r| r.kind) {
            Some(RoleKind::Server(_)) => "your server",
            Some(RoleKind::Client) => "your client",
            _ => "your program",
        };
        format!("{who} (pid {pid}) is {what}")
    }

    /// `client 3's connection` for the third client this check connected.
    fn client_named(&self, addr: SocketAddr) -> Option<String> {
        self.clients
            .iter()
            .position(|c| *c == addr)
            .map(|i| format!("client {}'s connection", i + 1))
    }

    /// What process `pid` and the processes it started are doing now: the process, then
    /// each live child (a fork server's, a split client's), at most four of them.
    pub fn doing_tree(&mut self, pid: i32) -> String {
        let mut parts = vec![self.doing(pid)];
        let children: Vec<i32> = procfs::subtree(pid)
            .into_iter()
            .filter(|p| p.pid != pid && p.state != 'Z')
            .map(|p| p.pid)
            .collect();
        for child in children.iter().take(4) {
            parts.push(format!(
                "its child (pid {child}) is {}",
                crate::observe::doing(*child, &|addr| self.client_named(addr))
            ));
        }
        if children.len() > 4 {
            parts.push(format!("and {} more processes", children.len() - 4));
        }
        parts.join("; ")
    }
}
