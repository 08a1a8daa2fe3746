use std::process::ExitCode;
use std::time::Instant;

use super::remote::{Bar, RemoteArgs, rate, size};
use crate::error::Result;
use crate::kind::Catalog;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pipeline: super::PipelineArgs,
    /// Nodes or stages whose results to pull. Default: every node in the lock file.
    targets: Vec<String>,
    #[command(flatten)]
    remote: RemoteArgs,
}

pub fn run(args: Args, catalog: &Catalog) -> Result<ExitCode> {
    let mut args = args;
    args.pipeline.take_target(&mut args.targets);
    let l = super::load(&args.pipeline, catalog)?;
    let lock = super::remote::read_lock(&l)?;
    let entries = super::remote::entries(&l, &lock, &args.targets)?;
    let remote = super::remote::open(&l, &args.remote, false)?;
    let clock = Instant::now();
    let bar = Bar::new();
    let report = remote.pull(&l.store, &entries, &bar);
    bar.finish();
    let report = report?;
    // What was pulled is what this lock file needs: gc must keep it.
    super::register_root(&l.store, &l.pipeline.lock_path());
    let secs = clock.elapsed().as_secs_f64();
    for q in &report.quarantined {
        eprintln!("warning: {q}");
    }
    for p in &report.problems {
        println!("FAILED  {p}");
    }
    println!(
        "pulled {} object(s) ({}) and {} run record(s) from `{}` in {secs:.2}s ({}); {} object(s) were already cached",
        report.downloaded,
        size(report.downloaded_bytes),
        report.records,
        remote.name(),
        rate(report.downloaded_bytes, secs),
        report.present,
    );
    if report.problems.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "pull incomplete: {} problem(s); nothing corrupt entered the cache",
            report.problems.len()
        );
        Ok(ExitCode::FAILURE)
    }
}
