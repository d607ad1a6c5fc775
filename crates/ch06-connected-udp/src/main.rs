//! `ch06-connected-udp`: parses the command line and hands it to the chapter's library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = ch06_connected_udp::Cli::parse();
    workbook::main(|| ch06_connected_udp::run(cli))
}
