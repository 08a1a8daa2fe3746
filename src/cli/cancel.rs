use std::process::ExitCode;

use crate::error::Result;
use crate::exec::slurm::{self, cluster::Cluster};
use crate::kind::Catalog;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pipeline: super::PipelineArgs,
}

/// Cancel this pipeline's queued and running Slurm jobs (their dependents go with them).
pub fn run(args: Args, catalog: &Catalog) -> Result<ExitCode> {
    let l = super::load(&args.pipeline, catalog)?;
    let cancelled = slurm::cancel(&l.pipeline, &l.store, &Cluster::new())?;
    if cancelled.is_empty() {
        println!(
            "no queued or running Slurm jobs for {}",
            l.pipeline.path.display()
        );
    } else {
        println!(
            "cancelled {} Slurm job(s): {}",
            cancelled.len(),
            cancelled.join(" ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
