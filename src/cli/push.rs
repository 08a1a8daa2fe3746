use std::process::ExitCode;
use std::time::Instant;

use super::remote::{Bar, RemoteArgs, rate, size};
use crate::error::Result;
use crate::kind::Catalog;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pipeline: super::PipelineArgs,
    /// Nodes or stages whose results to push. Default: every node in the lock file.
    targets: Vec<String>,
    #[command(flatten)]
    remote: RemoteArgs,
    /// Also download and hash every object and run record the remote already has, and
    /// re-send those whose remote copy is corrupt (what `verify --remote --deep` asks for).
    #[arg(long)]
    repair: bool,
}

pub fn run(args: Args, catalog: &Catalog) -> Result<ExitCode> {
    let mut args = args;
    args.pipeline.take_target(&mut args.targets);
    let l = super::load(&args.pipeline, catalog)?;
    let lock = super::remote::read_lock(&l)?;
    let entries = super::remote::entries(&l, &lock, &args.targets)?;
    let remote = super::remote::open(&l, &args.remote, true)?;
    let clock = Instant::now();
    let bar = Bar::new();
    let report = remote.push(&l.store, &entries, args.repair, &bar);
    bar.finish();
    let report = report?;
    let secs = clock.elapsed().as_secs_f64();
    for p in &report.problems {
        println!("FAILED  {p}");
    }
    println!(
        "pushed {} object(s) ({}) and {} run record(s) to `{}` in {secs:.2}s ({}); {} object(s) were already there",
        report.uploaded,
        size(report.uploaded_bytes),
        report.records,
        remote.name(),
        rate(report.uploaded_bytes, secs),
        report.present,
    );
    if report.repaired > 0 {
        println!(
            "repaired {} corrupt object(s) or run record(s) on `{}`",
            report.repaired,
            remote.name()
        );
    }
    let conflicted = super::remote::report_conflicts(&report.conflicts);
    if report.problems.is_empty() && !conflicted {
        Ok(ExitCode::SUCCESS)
    } else {
        if !report.problems.is_empty() {
            println!("push incomplete: {} problem(s)", report.problems.len());
        }
        Ok(ExitCode::FAILURE)
    }
}
