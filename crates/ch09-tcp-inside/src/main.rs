//! `ch09-tcp-inside`: parses the command line and hands it to the chapter's library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = ch09_tcp_inside::Cli::parse();
    workbook::main(|| ch09_tcp_inside::run(cli))
}
