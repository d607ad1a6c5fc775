//! `ch11-pipes`: parses the command line and hands it to the chapter's library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = ch11_pipes::Cli::parse();
    workbook::main(|| ch11_pipes::run(cli))
}
