//! `ch01-hello`: parses the command line and hands it to the chapter's library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = ch01_hello::Cli::parse();
    workbook::main(|| ch01_hello::run(cli))
}
