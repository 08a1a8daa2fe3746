use std::process::ExitCode;

use crate::error::Result;
use crate::graph::{DagFormat, render};
use crate::kind::Catalog;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pipeline: super::PipelineArgs,
    #[arg(long, value_enum, default_value = "text")]
    format: DagFormat,
}

pub fn run(args: Args, catalog: &Catalog) -> Result<ExitCode> {
    let l = super::load_read_only(&args.pipeline, catalog)?;
    print!("{}", render(&l.pipeline, &l.dag, args.format));
    Ok(ExitCode::SUCCESS)
}
