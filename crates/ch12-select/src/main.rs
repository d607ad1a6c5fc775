//! `ch12-select`: parses the command line and hands it to the chapter's library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = ch12_select::Cli::parse();
    workbook::main(|| ch12_select::run(cli))
}
