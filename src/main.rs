//! The `fctf` executable: parses the command line and hands over to the library.
//!
//! Everything of substance lives in the `fctf` library; this file only maps the outcome to an
//! exit code (64 for configuration errors, 1 for anything else).

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = fctf::cli::Cli::parse();
    match fctf::cli::execute(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            if let Some(config_error) = error.downcast_ref::<fctf::config::ConfigError>() {
                eprintln!("fctf: {config_error}");
                return ExitCode::from(64);
            }
            eprintln!("fctf: {error:#}");
            ExitCode::FAILURE
        }
    }
}
