//! `ch13-io-options`: parses the command line and hands it to the chapter's library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = ch13_io_options::Cli::parse();
    workbook::main(|| ch13_io_options::run(cli))
}
