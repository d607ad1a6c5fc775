//! `ch16-sep-streams`: parses the command line and hands it to the chapter's library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = ch16_sep_streams::Cli::parse();
    workbook::main(|| ch16_sep_streams::run(cli))
}
