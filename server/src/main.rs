//! `duecall`: parse the command line and configuration, set up logging, run.

use std::process::ExitCode;

use clap::Parser;
use server::config::Config;
use server::{Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("duecall: configuration error: {err}");
            return ExitCode::from(2);
        }
    };
    server::telemetry::init(&config);
    match server::run(cli.command.unwrap_or(Command::Serve), config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            eprintln!("duecall: {err:#}");
            ExitCode::FAILURE
        }
    }
}
