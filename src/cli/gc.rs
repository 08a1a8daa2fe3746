use std::process::ExitCode;
use std::time::Duration;

use crate::error::Result;
use crate::kind::Catalog;
use crate::store::lock::LockFile;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pipeline: super::PipelineArgs,
    /// List what would be removed; remove nothing.
    #[arg(short = 'n', long)]
    dry_run: bool,
    /// Also keep runs recorded within this many days.
    #[arg(long, default_value_t = 7.0)]
    keep_days: f64,
}

pub fn run(args: Args, catalog: &Catalog) -> Result<ExitCode> {
    let l = super::load(&args.pipeline, catalog)?;
    // Every lock file beside this pipeline shares the cache: keep what any of them needs.
    let own = l.pipeline.lock_path();
    let dir = match own.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let mut locks = vec![LockFile::read(&own)?];
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "lock") && path.file_name() != own.file_name() {
            // Other pipelines' lock files: keep what they need too; skip what is not ours.
            if let Ok(lock) = LockFile::read(&path) {
                locks.push(lock);
            }
        }
    }
    let keep = Duration::from_secs_f64(args.keep_days.max(0.0) * 86400.0);
    let mut report = crate::store::gc::collect(&l.store, &locks, keep, args.dry_run)?;
    // A killed restore or checkout leaves its temporary file beside the output it replaced.
    for dir in super::output_dirs(&l.pipeline) {
        for t in crate::store::tmp::sweep(&dir, args.dry_run) {
            report.temp_files += 1;
            report.temp_bytes += t.bytes;
            report.freed_bytes += t.bytes;
            report.removed.push(t.path);
        }
    }
    for p in &report.removed {
        if args.dry_run {
            println!("would remove {}", p.display());
        }
    }
    if report.temp_files > 0 {
        println!(
            "{} {} temporary file(s) left by killed processes ({:.1} MB)",
            if args.dry_run {
                "would remove"
            } else {
                "removed"
            },
            report.temp_files,
            report.temp_bytes as f64 / 1e6
        );
    }
    println!(
        "{} {} entr{} ({:.1} MB); kept {} object(s)",
        if args.dry_run {
            "would remove"
        } else {
            "removed"
        },
        report.removed.len(),
        if report.removed.len() == 1 {
            "y"
        } else {
            "ies"
        },
        report.freed_bytes as f64 / 1e6,
        report.kept_objects
    );
    Ok(ExitCode::SUCCESS)
}
