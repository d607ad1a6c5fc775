//! `ch03-addresses`: parses the command line and hands it to the chapter's library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = ch03_addresses::Cli::parse();
    workbook::main(|| ch03_addresses::run(cli))
}
