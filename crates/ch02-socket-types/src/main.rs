//! `ch02-socket-types`: parses the command line and hands it to the chapter's library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = ch02_socket_types::Cli::parse();
    workbook::main(|| ch02_socket_types::run(cli))
}
