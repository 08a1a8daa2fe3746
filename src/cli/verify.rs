use std::process::ExitCode;

use crate::error::Result;
use crate::kind::Catalog;
use crate::store::lock::LockFile;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pipeline: super::PipelineArgs,
    /// Also check that every object and run record the lock file names is on this remote
    /// (sizes; manifests and records by content). What CI runs after a push.
    #[arg(long, value_name = "NAME")]
    remote: Option<String>,
    /// With --remote: download every object and check its hash too (`push --repair` replaces
    /// the corrupt ones).
    #[arg(long, requires = "remote")]
    deep: bool,
    /// Trust the stat cache for deps and workspace files (size, mtime and inode unchanged
    /// means unchanged). Cache objects are still hashed. Default: re-read every byte.
    #[arg(long)]
    fast: bool,
}

pub fn run(args: Args, catalog: &Catalog) -> Result<ExitCode> {
    let l = super::load_read_only(&args.pipeline, catalog)?;
    let lock_path = l.pipeline.lock_path();
    if !lock_path.exists() {
        eprintln!(
            "verify: {} does not exist (run `cegraph run` first)",
            lock_path.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    let lock = LockFile::read(&lock_path)?;
    if let Some(name) = &args.remote {
        return super::remote::verify_remote(&l, &lock, name, args.deep);
    }
    let report = crate::exec::verify::verify(&l.pipeline, &l.dag, &l.store, &lock, args.fast)?;
    for p in &report.problems {
        println!("MISMATCH {p}");
    }
    if report.problems.is_empty() {
        println!(
            "verified: {} node(s), {} artefact(s) match {} ({} cache object(s), {:.1} MB, hashed)",
            report.nodes,
            report.artefacts,
            lock_path.display(),
            report.objects,
            report.object_bytes as f64 / 1e6
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!("verify failed: {} problem(s)", report.problems.len());
        Ok(ExitCode::FAILURE)
    }
}
