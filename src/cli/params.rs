//! `cegraph params diff [REV_A] [REV_B]`: the params that differ, per node.

use std::process::ExitCode;

use crate::error::Result;
use crate::kind::Catalog;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Params that differ between two revisions (git revision, `workspace` or experiment).
    /// Default: HEAD against workspace.
    Diff(super::metrics::DiffArgs),
}

pub fn run(args: Args, catalog: &Catalog) -> Result<ExitCode> {
    match args.command {
        Sub::Diff(d) => super::metrics::diff(d, catalog, |v| &v.params, "param"),
    }
}
