//! `ch17-epoll`: parses the command line and hands it to the chapter's library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = ch17_epoll::Cli::parse();
    workbook::main(|| ch17_epoll::run(cli))
}
