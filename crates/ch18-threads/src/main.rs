//! `ch18-threads`: parses the command line and hands it to the chapter's library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = ch18_threads::Cli::parse();
    workbook::main(|| ch18_threads::run(cli))
}
