//! `echotest`: an echo server and client over any PORT stack; `echotest demo` shows one
//! exchange with no setup.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use port_echo::cli::{Cli, normalize_args, one_line, run};

fn main() -> ExitCode {
    let args = normalize_args(std::env::args_os());
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => match e.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                eprintln!(
                    "echotest: missing command: keygen, server, client, demo or chaos \
                     (try `echotest --help`; new here? run `echotest demo`)"
                );
                return ExitCode::from(2);
            }
            _ => {
                eprintln!("echotest: {}", one_line(&e));
                return ExitCode::from(2);
            }
        },
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echotest: {e}");
            ExitCode::FAILURE
        }
    }
}
