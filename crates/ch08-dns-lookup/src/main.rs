//! `ch08-dns-lookup`: parses the command line and hands it to the chapter's library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = ch08_dns_lookup::Cli::parse();
    workbook::main(|| ch08_dns_lookup::run(cli))
}
