//! `ch10-signals`: parses the command line and hands it to the chapter's library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = ch10_signals::Cli::parse();
    workbook::main(|| ch10_signals::run(cli))
}
