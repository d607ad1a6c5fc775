//! ch03: addresses and byte order, a table of conversions with known answers.

use crate::check::{Chapter, Check, Ctx, Evidence, Outcome, Readme};

use super::reference_tool_role;

/// Where this chapter's hints send the reader.
pub const README: Readme = Readme("crates/ch03-addresses/README.md");

pub fn chapter() -> Chapter {
    Chapter {
        id: "ch03",
        title: "addresses and byte order",
        roles: vec![reference_tool_role("converter", "ch03-addresses")],
        checks: vec![Check {
            name: "conversions",
            role: "converter",
            title: "htons/htonl, inet_addr, inet_aton, inet_ntoa and sockaddr_in against known answers, invalid input included",
            hint: "network byte order is big-endian: the most significant byte goes first in memory",
            see: README.at("Byte order"),
            run: conversions,
        }],
    }
}

/// What one conversion must print, or that it must fail.
enum Answer {
    /// Exit 0 and these lines in stdout.
    Prints(Vec<String>),
    /// Exit 1 with one `error: ...` line on stderr.
    Fails,
}

fn table() -> Vec<(Vec<&'static str>, Answer)> {
    let little = cfg!(target_endian = "little");
    // On a little-endian machine htons/htonl swap; on a big-endian one they do not.
    let (net_port, net_addr) = if little {
        ("0x3412", "0x78563412")
    } else {
        ("0x1234", "0x12345678")
    };
    let lines = |v: &[&str]| Answer::Prints(v.iter().map(|s| s.to_string()).collect());
    vec![
        (
            vec!["endian"],
            Answer::Prints(vec![
                format!("Network ordered port: {net_port}   (bytes in memory: 12 34)"),
                format!("Network ordered address: {net_addr}   (bytes in memory: 12 34 56 78)"),
            ]),
        ),
        (
            vec!["inet-addr", "1.2.3.4"],
            lines(&["Network ordered integer addr: 0x4030201   (bytes in memory: 01 02 03 04)"]),
        ),
        (vec!["inet-addr", "1.2.3.256"], Answer::Fails),
        (vec!["inet-addr", "1.2.3"], Answer::Fails),
        (
            vec!["inet-aton", "127.232.124.79"],
            lines(&["Network ordered integer addr: 0x4f7ce87f   (bytes in memory: 7f e8 7c 4f)"]),
        ),
        (vec!["inet-aton", "127.1"], lines(&["127.1 is 127.0.0.1"])),
        (
            vec!["inet-aton", "0x7f.0.0.010"],
            lines(&["0x7f.0.0.010 is 127.0.0.8"]),
        ),
        (vec!["inet-aton", "not.an.address"], Answer::Fails),
        (
            vec!["inet-ntoa", "0x1020304"],
            lines(&["Dotted-Decimal notation: 1.2.3.4"]),
        ),
        (
            vec!["inet-ntoa", "16909060"],
            lines(&["Dotted-Decimal notation: 1.2.3.4"]),
        ),
        (
            vec!["sockaddr", "127.0.0.1", "9190"],
            lines(&[
                "  sin_port    23 e6   htons(9190) = 0xe623: 9190 in network byte order",
                "  sin_addr    7f 00 00 01   127.0.0.1 in network byte order",
            ]),
        ),
        (vec!["sockaddr", "127.0.0.300", "9190"], Answer::Fails),
    ]
}

fn conversions(ctx: &mut Ctx) -> Outcome {
    for (args, answer) in table() {
        let run = ctx.tool(&args)?;
        let shown = args.join(" ");
        match answer {
            Answer::Prints(lines) => {
                if run.code() != Some(0) {
                    return Err(Evidence::new(format!(
                        "`{shown}` failed: {}",
                        run.stderr_text().trim()
                    ))
                    .expected("exit status 0")
                    .got(&run.stderr)
                    .into());
                }
                let out = run.stdout_text();
                if let Some(missing) = lines
                    .iter()
                    .find(|l| !out.lines().any(|o| o.trim_end() == l.trim_end()))
                {
                    return Err(Evidence::new(format!("`{shown}` printed something else"))
                        .expected(format!("a line {}", crate::report::quote(missing)))
                        .got(&run.stdout)
                        .into());
                }
            }
            Answer::Fails => {
                let err = run.stderr_text();
                let one_line = err.lines().count() == 1 && err.starts_with("error: ");
                if run.code() != Some(1) || !one_line {
                    return Err(
                        Evidence::new(format!("`{shown}` is invalid input and must fail"))
                            .expected("exit status 1 and one line `error: ...` on stderr")
                            .got(
                                format!(
                                    "{}; stderr: {err}; stdout: {}",
                                    crate::supervise::describe_status(&run.status),
                                    run.stdout_text()
                                )
                                .as_bytes(),
                            )
                            .into(),
                    );
                }
            }
        }
    }
    Ok(())
}
