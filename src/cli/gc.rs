use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::kind::Catalog;
use crate::store::Store;
use crate::store::gc::{Keep, Root};
use crate::store::lock::LockFile;
use crate::store::roots::absolute;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pipeline: super::PipelineArgs,
    /// List what would be removed, and what each lock file keeps; remove nothing.
    #[arg(short = 'n', long)]
    dry_run: bool,
    /// Also keep runs recorded within this many days.
    #[arg(long, default_value_t = 7.0)]
    keep_days: f64,
    /// Never remove anything younger than this (`90s`, `30m`, `1h`, `2d`): a run in progress
    /// may have stored objects no lock file names yet.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    grace: Duration,
}

fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    if s.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(s).map_err(|e| format!("{e} (write e.g. `90s`, `30m`, `1h`, `2d`)"))
}

pub fn run(args: Args, catalog: &Catalog) -> Result<ExitCode> {
    let l = super::load(&args.pipeline, catalog)?;
    let roots = gather_roots(&l.store, &l.pipeline.lock_path(), args.dry_run)?;
    let keep = Keep {
        recent_runs: Duration::from_secs_f64(args.keep_days.max(0.0) * 86400.0),
        grace: args.grace,
    };
    let mut report = crate::store::gc::collect(&l.store, &roots, keep, args.dry_run)?;
    if args.dry_run {
        for (path, objects, bytes) in &report.roots {
            println!(
                "root {} keeps {objects} object(s) ({:.1} MB)",
                path.display(),
                *bytes as f64 / 1e6
            );
        }
        if report.young_objects > 0 {
            println!(
                "grace period keeps {} object(s) younger than {}",
                report.young_objects,
                humantime::format_duration(args.grace)
            );
        }
    }
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

/// The lock files whose entries survive: this pipeline's, the others beside it, and every
/// lock file registered with the cache that still exists (registrations of lock files that
/// are gone are dropped, or only listed with `dry_run`).
fn gather_roots(store: &Store, own: &Path, dry_run: bool) -> Result<Vec<Root>> {
    let dir = match own.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // (path, must parse): a `.lock` beside the pipeline may belong to another tool
    // (Cargo.lock); a registered one was written by cegraph.
    let mut paths = vec![(absolute(own), true)];
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "lock") {
            paths.push((absolute(&path), false));
        }
    }
    for (registration, entry) in store.roots()? {
        match entry {
            Some(e) if e.lock.exists() => paths.push((e.lock, true)),
            gone => {
                let what = gone.map(|e| e.lock.display().to_string());
                let what = what.as_deref().unwrap_or("an unreadable registration");
                if dry_run {
                    println!("would drop root {what} (the lock file is gone)");
                } else {
                    println!("dropped root {what} (the lock file is gone)");
                    crate::store::remove_path(&registration)?;
                }
            }
        }
    }
    // Strict entries first, so deduplication keeps the strict flag.
    paths.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    paths.dedup_by(|a, b| a.0 == b.0);
    let mut roots = Vec::new();
    for (path, strict) in paths {
        match LockFile::read(&path) {
            Ok(lock) => roots.push(Root { path, lock }),
            Err(e) if strict => {
                return Err(Error::usage(
                    format!("{e}"),
                    "gc keeps what every lock file using this cache needs, and cannot read this one: fix or delete it first",
                ));
            }
            Err(_) => {}
        }
    }
    Ok(roots)
}
