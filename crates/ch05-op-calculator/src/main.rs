//! `ch05-op-calculator`: parses the command line and hands it to the chapter's library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = ch05_op_calculator::Cli::parse();
    workbook::main(|| ch05_op_calculator::run(cli))
}
