//! `ch05-echo-client-fix`: parses the command line and hands it to the chapter's library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = ch05_echo_client_fix::Cli::parse();
    workbook::main(|| ch05_echo_client_fix::run(cli))
}
