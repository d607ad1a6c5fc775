//! `cargo xtask list`: what can be checked, and how to name it.

use std::process::ExitCode;

use harness::check::RoleKind;

pub fn run() -> anyhow::Result<ExitCode> {
    for chapter in harness::suites::chapters() {
        let run: Vec<String> = chapter
            .packages()
            .iter()
            .map(|p| format!("cargo run -p {p}"))
            .collect();
        println!("{}  {}  ({})", chapter.id, chapter.title, run.join("; "));
        println!("  roles:");
        for role in &chapter.roles {
            let kind = match role.kind {
                _ if role.reference_only => "reference-only: our own program",
                RoleKind::Server(_) => "server",
                RoleKind::Client => "client, run on a terminal",
                RoleKind::Tool => "one-shot command",
            };
            println!(
                "    {:<18} {}   placeholders: {}   ({kind})",
                role.name,
                role.example,
                role.allowed.join(" ")
            );
        }
        println!("  checks:");
        for check in &chapter.checks {
            println!(
                "    {:<34} [{}] {}",
                chapter.id_of(check),
                check.role,
                check.title
            );
        }
        println!();
    }
    println!("Placeholders: {{host}} is 127.0.0.1, {{port}} a free port the checker chooses.");
    println!(
        "ch14 runs each check on a private network of its own (no root): {{group}} is 224.1.1.2,"
    );
    println!(
        "{{broadcast}} 10.14.0.255, {{port}} 9190, {{file}} the news file (also news.txt in the working directory)."
    );
    println!(
        "A template is split like a shell splits words, but no shell runs it; it runs in a fresh"
    );
    println!(
        "temporary directory, so paths to your files are made absolute from where you run the check."
    );
    Ok(ExitCode::SUCCESS)
}
