//! `ch15-stdio`: parses the command line and hands it to the chapter's library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = ch15_stdio::Cli::parse();
    workbook::main(|| ch15_stdio::run(cli))
}
