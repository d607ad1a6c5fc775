//! `ch04-tcp-echo`: parses the command line and hands it to the chapter's library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = ch04_tcp_echo::Cli::parse();
    workbook::main(|| ch04_tcp_echo::run(cli))
}
