//! ch08: the resolver. Every expectation comes from `getent` on the same machine, so
//! the checks need no network and hold wherever they run.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::process::Command;

use crate::check::{
    Chapter, Check, Ctx, Evidence, Outcome, Problem, Readme, Role, RoleKind, ToolRun, fail,
};
use crate::report::list;
use crate::supervise::describe_status;

/// A name in the reserved `.invalid` domain (RFC 2606): never resolves anywhere.
const UNKNOWN: &str = "no-such-host.invalid";

/// Where this chapter's hints send the reader.
pub const README: Readme = Readme("crates/ch08-dns-lookup/README.md");

pub fn chapter() -> Chapter {
    Chapter {
        id: "ch08",
        title: "domain names and addresses: getaddrinfo and getnameinfo",
        roles: vec![Role {
            name: "lookup",
            kind: RoleKind::Tool,
            package: "ch08-dns-lookup",
            reference_only: false,
            reference: &["lookup", "--name={name}", "--addr={addr}"],
            required: &[],
            allowed: &["{name}", "{addr}"],
            example: "./lookup {name} {addr}",
        }],
        checks: vec![
            Check {
                name: "localhost",
                role: "lookup",
                title: "`localhost` resolves to every address getent lists for it",
                hint: "getaddrinfo(name, NULL, &hints, &res) and print every entry's address",
                see: README.at("Forward"),
                run: localhost,
            },
            Check {
                name: "reverse-loopback",
                role: "lookup",
                title: "127.0.0.1 resolves back to the name getent gives it",
                hint: "getnameinfo() with NI_NAMEREQD, then print the host it fills in",
                see: README.at("Reverse"),
                run: reverse_loopback,
            },
            Check {
                name: "unknown-host",
                role: "lookup",
                title: "a name that does not exist: one line on stderr, exit 1, no address",
                hint: "getaddrinfo() returns EAI_NONAME: say `no such host: NAME` and exit 1",
                see: README.at("Errors"),
                run: unknown_host,
            },
            Check {
                name: "bad-address",
                role: "lookup",
                title: "a malformed address (1.2.3.256) is refused as malformed: one line on stderr, exit 1, not the answer of a valid address without a name",
                hint: "check inet_pton()'s result before the lookup; report the bad address in one line",
                see: README.at("Errors"),
                run: bad_address,
            },
            Check {
                name: "matches-getent",
                role: "lookup",
                title: "localhost, ::1 and 127.0.0.1 give exactly getent's addresses, IPv4 and IPv6",
                hint: "ask for AF_UNSPEC, not AF_INET: gethostbyname() and AF_INET hints see IPv4 only",
                see: README.at("IPv4 and IPv6"),
                run: matches_getent,
            },
        ],
    }
}

/// `getent <database> <key>` on this machine: its lines, or None when it finds nothing.
fn getent(ctx: &Ctx, database: &str, key: &str) -> Result<Option<Vec<String>>, Problem> {
    ctx.require_tool("getent", "libc-bin")?;
    let out = Command::new("getent")
        .args([database, key])
        .env("RES_OPTIONS", "timeout:1 attempts:1")
        .output()
        .map_err(|e| fail(format!("run getent: {e}")))?;
    if !out.status.success() {
        return Ok(None);
    }
    Ok(Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect(),
    ))
}

/// The addresses `getent ahosts NAME` lists (the first column), as a set.
fn getent_addresses(ctx: &Ctx, name: &str) -> Result<BTreeSet<IpAddr>, Problem> {
    let lines = getent(ctx, "ahosts", name)?.ok_or_else(|| {
        Problem::Skip(format!(
            "getent ahosts {name} finds nothing on this machine"
        ))
    })?;
    Ok(lines
        .iter()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect())
}

/// Every IP address the program printed, wherever it stands in a line.
fn printed_addresses(run: &ToolRun) -> BTreeSet<IpAddr> {
    run.stdout_text()
        .split(|c: char| c.is_whitespace() || "(),;[]'\"=".contains(c))
        .filter_map(|w| {
            w.trim_end_matches(['.', ':'])
                .parse()
                .ok()
                .or_else(|| w.parse().ok())
        })
        .collect()
}

/// Skips the check when the template has no place for `placeholder`.
fn needs(ctx: &Ctx, placeholder: &str) -> Outcome {
    if ctx.template_uses(placeholder) {
        Ok(())
    } else {
        Err(Problem::Skip(format!(
            "the lookup template has no {placeholder}"
        )))
    }
}

fn run_lookup(ctx: &mut Ctx, placeholder: &'static str, value: &str) -> Result<ToolRun, Problem> {
    // An offline resolver answers fast with these options instead of retrying for long.
    ctx.sup.set_env("RES_OPTIONS", "timeout:1 attempts:1");
    ctx.tool_with(&[(placeholder, value.to_string())], &[])
}

fn expect_success(run: &ToolRun, what: &str) -> Outcome {
    if run.code() == Some(0) {
        return Ok(());
    }
    Err(Evidence::new(format!("`{}` failed ({what})", run.command))
        .expected("exit status 0")
        .got(&run.stderr)
        .into())
}

fn localhost(ctx: &mut Ctx) -> Outcome {
    needs(ctx, "{name}")?;
    let expected = getent_addresses(ctx, "localhost")?;
    let run = run_lookup(ctx, "{name}", "localhost")?;
    expect_success(&run, "localhost always resolves")?;
    let printed = printed_addresses(&run);
    if let Some(missing) = expected.iter().find(|a| !printed.contains(a)) {
        return Err(
            Evidence::new(format!("`{}` did not print {missing}", run.command))
                .expected(format!(
                    "every address of `getent ahosts localhost`: {}",
                    list(&expected)
                ))
                .got(&run.stdout)
                .into(),
        );
    }
    Ok(())
}

fn reverse_loopback(ctx: &mut Ctx) -> Outcome {
    needs(ctx, "{addr}")?;
    let line = getent(ctx, "hosts", "127.0.0.1")?
        .and_then(|lines| lines.into_iter().next())
        .ok_or_else(|| {
            Problem::Skip("getent hosts 127.0.0.1 finds no name on this machine".into())
        })?;
    let names: Vec<String> = line
        .split_whitespace()
        .skip(1)
        .map(str::to_string)
        .collect();
    let run = run_lookup(ctx, "{addr}", "127.0.0.1")?;
    expect_success(&run, "127.0.0.1 has a name in /etc/hosts")?;
    let out = run.stdout_text();
    if !names.iter().any(|n| {
        out.split(|c: char| c.is_whitespace() || c == ',')
            .any(|w| w == n)
    }) {
        return Err(Evidence::new(format!(
            "`{}` did not print the name of 127.0.0.1",
            run.command
        ))
        .expected(format!(
            "one of {} (from `getent hosts 127.0.0.1`)",
            list(&names)
        ))
        .got(&run.stdout)
        .into());
    }
    Ok(())
}

/// Exit 1, a short message on stderr (one or two lines: not a traceback), no address.
fn expect_clear_failure(run: &ToolRun, what: &str) -> Outcome {
    let stderr = run.stderr_text();
    let lines = stderr.lines().filter(|l| !l.trim().is_empty()).count();
    let printed = printed_addresses(run);
    let problem = if run.code() != Some(1) {
        Some(format!("it {}", describe_status(&run.status)))
    } else if lines == 0 {
        Some("it said nothing on stderr".to_string())
    } else if lines > 2 {
        Some(format!(
            "its stderr has {lines} lines (a traceback?), not one clear line"
        ))
    } else if !printed.is_empty() {
        Some(format!("it printed addresses {}", list(&printed)))
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(
            Evidence::new(format!("`{}` ({what}): {problem}", run.command))
                .expected("exit status 1 and one line on stderr saying what is wrong")
                .got(format!("stdout: {}\nstderr: {stderr}", run.stdout_text()).as_bytes())
                .into(),
        ),
    }
}

fn unknown_host(ctx: &mut Ctx) -> Outcome {
    needs(ctx, "{name}")?;
    if getent(ctx, "ahosts", UNKNOWN)?.is_some() {
        return Err(Problem::Skip(format!("this machine resolves {UNKNOWN}")));
    }
    let run = run_lookup(ctx, "{name}", UNKNOWN)?;
    expect_clear_failure(&run, "a name that does not exist")
}

/// A malformed address must be refused as malformed, not looked up: `1.2.3.256` given
/// to an unchecked inet_addr() becomes 255.255.255.255, whose lookup fails too, so the
/// exit status alone cannot tell. The answer is compared with the one for a valid
/// address that has no name (192.0.2.1, a documentation address): a program that never
/// validated gives both the same answer.
fn bad_address(ctx: &mut Ctx) -> Outcome {
    needs(ctx, "{addr}")?;
    const MALFORMED: &str = "1.2.3.256";
    const NAMELESS: &str = "192.0.2.1";
    let run = run_lookup(ctx, "{addr}", MALFORMED)?;
    expect_clear_failure(&run, "an address with a part over 255")?;
    let nameless = run_lookup(ctx, "{addr}", NAMELESS)?;
    let said = |r: &ToolRun, addr: &str| r.stderr_text().trim().replace(addr, "ADDR");
    if said(&run, MALFORMED) == said(&nameless, NAMELESS) {
        return Err(Evidence::new(format!(
            "your program answers the malformed {MALFORMED} exactly as it answers {NAMELESS}, a valid address with no name: it looked the malformed one up instead of refusing it"
        ))
        .expected(format!(
            "for {MALFORMED}, an error that says the address is invalid, before any lookup"
        ))
        .got(
            format!(
                "{MALFORMED}: {}\n{NAMELESS}: {}",
                run.stderr_text().trim(),
                nameless.stderr_text().trim()
            )
            .as_bytes(),
        )
        .into());
    }
    Ok(())
}

fn matches_getent(ctx: &mut Ctx) -> Outcome {
    needs(ctx, "{name}")?;
    // Numeric names resolve without /etc/hosts or DNS, so ::1 is tested on every
    // machine, even one whose /etc/hosts lacks it.
    for name in ["localhost", "::1", "127.0.0.1"] {
        let expected = getent_addresses(ctx, name)?;
        let run = run_lookup(ctx, "{name}", name)?;
        let printed = printed_addresses(&run);
        if printed != expected {
            return Err(Evidence::new(format!(
                "`{}` printed other addresses than getent",
                run.command
            ))
            .expected(format!(
                "{} (from `getent ahosts {name}`), order aside",
                list(&expected)
            ))
            .got(
                format!(
                    "{}; stdout: {}; stderr: {}",
                    list(&printed),
                    run.stdout_text(),
                    run.stderr_text()
                )
                .as_bytes(),
            )
            .into());
        }
    }
    Ok(())
}
