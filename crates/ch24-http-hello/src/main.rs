//! `ch24-http-hello`: parses the command line and hands it to the chapter's library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = ch24_http_hello::Cli::parse();
    workbook::main(|| ch24_http_hello::run(cli))
}
