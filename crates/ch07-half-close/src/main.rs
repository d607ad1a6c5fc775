//! `ch07-half-close`: parses the command line and hands it to the chapter's library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = ch07_half_close::Cli::parse();
    workbook::main(|| ch07_half_close::run(cli))
}
