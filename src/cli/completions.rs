//! `cegraph completions SHELL`: a completion script for bash, zsh or fish on stdout.

use std::process::ExitCode;

use clap::CommandFactory;

use crate::error::Result;

#[derive(clap::Args)]
pub struct Args {
    /// The shell: bash, zsh or fish (also elvish, powershell).
    shell: clap_complete::Shell,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let mut cmd = super::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "cegraph", &mut out);
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), &out);
    Ok(ExitCode::SUCCESS)
}
