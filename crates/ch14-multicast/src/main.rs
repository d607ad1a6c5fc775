//! `ch14-multicast`: parses the command line and hands it to the chapter's library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = ch14_multicast::Cli::parse();
    workbook::main(|| ch14_multicast::run(cli))
}
