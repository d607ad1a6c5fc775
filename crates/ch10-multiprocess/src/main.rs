//! `ch10-multiprocess`: parses the command line and hands it to the chapter's library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = ch10_multiprocess::Cli::parse();
    workbook::main(|| ch10_multiprocess::run(cli))
}
