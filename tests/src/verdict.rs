//! What a check concludes, and the evidence it gathered: one type from the check to
//! every consumer (the text, JSON and JUnit reports, `grade`'s table, the gallery's
//! assertions).
//!
//! A check's body returns an [`Outcome`]: `Ok(())` is PASS, `Err(Problem)` says why not,
//! so that `?` carries a failure out of any helper. [`Verdict::from`] is the one
//! conversion, and it loses nothing. A [`Record`] is a graded check: its declaration's
//! words, its verdict, and what was said along the way (notes, the transcript).

use std::time::Duration;

use crate::check::Section;

/// Why a check did not pass, as a check's body returns it.
#[derive(Debug, Clone)]
pub enum Problem {
    Fail(Box<Evidence>),
    Skip(String),
}

/// A check's result as its body returns it: `Ok(())` is PASS.
pub type Outcome = Result<(), Problem>;

/// PASS, FAIL with its evidence, or SKIP with its reason.
#[derive(Debug, Clone)]
pub enum Verdict {
    Pass,
    Fail(Box<Evidence>),
    Skip(String),
}

impl From<Outcome> for Verdict {
    fn from(outcome: Outcome) -> Verdict {
        match outcome {
            Ok(()) => Verdict::Pass,
            Err(Problem::Fail(evidence)) => Verdict::Fail(evidence),
            Err(Problem::Skip(why)) => Verdict::Skip(why),
        }
    }
}

impl Verdict {
    /// `PASS`, `FAIL` or `SKIP`.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail(_) => "FAIL",
            Verdict::Skip(_) => "SKIP",
        }
    }

    pub fn is_fail(&self) -> bool {
        matches!(self, Verdict::Fail(_))
    }
}

/// What went wrong, with the evidence a student can act on: what was sent, what was
/// expected, what came back, what the program was doing, and its last words on stderr.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// One sentence (or a few lines) saying what happened.
    pub message: String,
    pub sent: Option<Vec<u8>>,
    pub expected: Option<String>,
    pub got: Option<Vec<u8>>,
    /// What the checker saw happen, when the message states the cause instead
    /// (`0 of 14 bytes came back: the connection was reset` under `your server died`).
    pub seen: Option<String>,
    /// What the program under test was doing when the check gave up, read from /proc:
    /// `your server is blocked in write(5) ...`.
    pub doing: Option<String>,
    /// The last lines the program under test wrote to stderr, read before the checker
    /// ended it.
    pub stderr: Option<String>,
    /// With `--wire`: the segments of the check's connections, headed by what they show
    /// went wrong (`your server sent RST ...`), one per line ([`crate::wire`]).
    pub wire: Option<String>,
    /// The root cause, when it is one that other checks meet too (the server died,
    /// exited before it listened): the report says it once and the later checks point
    /// back to the first.
    pub cause: Option<Cause>,
}

/// A root cause shared by checks: its key (equal keys are one cause) and, when the
/// check's own hint would mislead (a program that never listened has not reached the
/// lesson), the hint to give instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    pub key: String,
    pub hint: Option<Hint>,
}

impl Evidence {
    pub fn new(message: impl Into<String>) -> Evidence {
        Evidence {
            message: message.into(),
            ..Evidence::default()
        }
    }
    pub fn sent(mut self, bytes: &[u8]) -> Evidence {
        self.sent = Some(bytes.to_vec());
        self
    }
    pub fn expected(mut self, what: impl Into<String>) -> Evidence {
        self.expected = Some(what.into());
        self
    }
    pub fn got(mut self, bytes: &[u8]) -> Evidence {
        self.got = Some(bytes.to_vec());
        self
    }
    pub fn doing(mut self, what: impl Into<String>) -> Evidence {
        self.doing = Some(what.into());
        self
    }
    pub fn cause(mut self, key: impl Into<String>, hint: Option<Hint>) -> Evidence {
        self.cause = Some(Cause {
            key: key.into(),
            hint,
        });
        self
    }
}

impl From<Evidence> for Problem {
    fn from(evidence: Evidence) -> Problem {
        Problem::Fail(Box::new(evidence))
    }
}

/// A FAIL with just a message.
pub fn fail(message: impl Into<String>) -> Problem {
    Evidence::new(message).into()
}

/// What to do about a failure, and where the lesson is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hint {
    pub text: &'static str,
    pub see: Section,
}

/// A graded check: what it is, what it concluded, and what was said along the way.
#[derive(Debug, Clone)]
pub struct Record {
    /// `<chapter>/<name>`.
    pub id: String,
    pub title: &'static str,
    pub role: &'static str,
    pub hint: Hint,
    pub duration: Duration,
    /// From the start of the wait the title states a bound for (when the check marks it)
    /// to the end of the check, its programs ended and reaped.
    pub after_stated_deadline_began: Option<Duration>,
    pub verdict: Verdict,
    /// Things worth saying that are not failures (a wording the book does not use).
    pub notes: Vec<String>,
    /// With `--verbose`: every byte the checker sent and received, in order.
    pub transcript: Vec<String>,
    /// The id of an earlier check that failed of the same root cause: the report
    /// points there instead of repeating the cause and a hint.
    pub same_cause_as: Option<String>,
}

impl Record {
    /// The hint a failure of this record gives: its cause's, or the check's own.
    pub fn hint_for_failure(&self) -> Hint {
        match &self.verdict {
            Verdict::Fail(e) => e.cause.as_ref().and_then(|c| c.hint).unwrap_or(self.hint),
            _ => self.hint,
        }
    }
}

/// How many checks passed, failed and were skipped: counted once, here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl Tally {
    pub fn of(records: &[Record]) -> Tally {
        let mut t = Tally::default();
        for r in records {
            match r.verdict {
                Verdict::Pass => t.passed += 1,
                Verdict::Fail(_) => t.failed += 1,
                Verdict::Skip(_) => t.skipped += 1,
            }
        }
        t
    }

    pub fn all_passed(&self) -> bool {
        self.failed == 0
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped
        )
    }
}

/// The ids of the checks that failed, sorted.
pub fn failed_ids(records: &[Record]) -> Vec<String> {
    let mut ids: Vec<String> = records
        .iter()
        .filter(|r| r.verdict.is_fail())
        .map(|r| r.id.clone())
        .collect();
    ids.sort();
    ids
}
