//! `port-tunnel`: forward TCP ports over PORT (see the `tunnel` crate docs).

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use port_tunnel::cli::{Cli, one_line, run};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => match e.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                eprintln!("port-tunnel: missing command: server, client or keygen (try --help)");
                return ExitCode::from(2);
            }
            _ => {
                eprintln!("port-tunnel: {}", one_line(&e));
                return ExitCode::from(2);
            }
        },
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("port-tunnel: {e}");
            ExitCode::FAILURE
        }
    }
}
