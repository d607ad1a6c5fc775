//! `ch06-udp-echo`: parses the command line and hands it to the chapter's library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = ch06_udp_echo::Cli::parse();
    workbook::main(|| ch06_udp_echo::run(cli))
}
