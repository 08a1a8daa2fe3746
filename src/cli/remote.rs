//! What `push`, `pull`, `verify --remote` and `run --remote` share: choosing the remote,
//! the nodes, and a progress bar of bytes and objects.

use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Loaded;
use crate::error::Result;
use crate::remote::{Entry, Remote, TransferObserver};
use crate::store::lock::LockFile;

#[derive(clap::Args, Clone)]
pub struct RemoteArgs {
    /// The remote (a name from the pipeline's `remotes:`). Default: the only one, or the one
    /// marked `default: true`.
    #[arg(long, short = 'r', value_name = "NAME", env = "CEGRAPH_REMOTE")]
    pub remote: Option<String>,
    /// Transfers in flight at once.
    #[arg(long, short = 'j', default_value_t = 32)]
    pub jobs: usize,
}

/// Open the chosen remote.
pub fn open(l: &Loaded, args: &RemoteArgs, writing: bool) -> Result<Remote> {
    Ok(Remote::open(&l.pipeline, args.remote.as_deref(), writing)?.with_jobs(args.jobs))
}

/// The pipeline's lock file; a missing one is an error (there is nothing to transfer).
pub fn read_lock(l: &Loaded) -> Result<LockFile> {
    let path = l.pipeline.lock_path();
    if !path.exists() {
        return Err(crate::error::Error::usage(
            format!("{} does not exist", path.display()),
            "push and pull move what a lock file names: run the pipeline first, or get its lock file from version control",
        ));
    }
    LockFile::read(&path)
}

/// The lock file's entries for `targets` (node or stage names; all when empty).
pub fn entries(l: &Loaded, lock: &LockFile, targets: &[String]) -> Result<Vec<Entry>> {
    if targets.is_empty() {
        return Entry::from_lock(lock, None);
    }
    let names: Vec<String> = super::targets(&l.pipeline, targets)?
        .into_iter()
        .map(|i| l.pipeline.nodes[i].name.clone())
        .collect();
    Entry::from_lock(lock, Some(&names))
}

/// A progress bar of bytes (or, for phases of small things, objects) on terminals.
pub struct Bar {
    bar: ProgressBar,
    /// The phase's name, its object count, and whether the bar counts bytes (else objects).
    phase: Mutex<(String, u64, bool)>,
}

impl Bar {
    pub fn new() -> Bar {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("valid template"));
        bar.set_message("connecting…");
        Bar {
            bar,
            phase: Mutex::new((String::new(), 0, false)),
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl TransferObserver for Bar {
    fn begin(&self, what: &str, objects: u64, bytes: u64) {
        *self.phase.lock().unwrap() = (what.to_string(), objects, bytes > 0);
        let template = if bytes > 0 {
            self.bar.set_length(bytes);
            "{spinner} {bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} {msg}"
        } else {
            self.bar.set_length(objects);
            "{spinner} {bar:30} {pos}/{len} {msg}"
        };
        self.bar
            .set_style(ProgressStyle::with_template(template).expect("valid template"));
        self.bar.set_position(0);
        self.bar.set_message(what.to_string());
    }

    fn progress(&self, objects: u64, bytes: u64) {
        let (what, total, by_bytes) = self.phase.lock().unwrap().clone();
        self.bar
            .set_position(if by_bytes { bytes } else { objects });
        self.bar.set_message(format!("{what}: {objects}/{total}"));
    }
}

/// `1.00 GiB`, `12.3 MiB`, `512 B`.
pub fn size(bytes: u64) -> String {
    indicatif::BinaryBytes(bytes).to_string()
}

/// Megabytes (10^6 bytes) per second, as the README quotes transfer rates.
pub fn rate(bytes: u64, seconds: f64) -> String {
    format!("{:.1} MB/s", bytes as f64 / 1e6 / seconds.max(1e-9))
}

/// The remote hook of `run --remote` / `--push`: opened unless this is a dry run.
pub fn for_run(
    l: &Loaded,
    name: Option<&str>,
    push: bool,
    dry_run: bool,
) -> Result<Option<Arc<Remote>>> {
    if dry_run || (name.is_none() && !push) {
        return Ok(None);
    }
    Ok(Some(Arc::new(Remote::open(&l.pipeline, name, push)?)))
}

/// After `run --remote`/`--push`: wait for the uploads and say what the remote did.
pub fn after_run(remote: &Remote, fetched: usize, push: bool) -> Result<bool> {
    if fetched > 0 {
        println!("{fetched} fetched from remote `{}`", remote.name());
    }
    if !push {
        return Ok(true);
    }
    let report = remote.wait_background()?;
    for p in &report.problems {
        println!("FAILED  push: {p}");
    }
    println!(
        "pushed {} object(s) ({}) and {} run record(s) to `{}`",
        report.uploaded,
        size(report.uploaded_bytes),
        report.records,
        remote.name()
    );
    let conflicted = report_conflicts(&report.conflicts);
    Ok(report.problems.is_empty() && !conflicted)
}

/// Print a push's conflicts (nodes that gave other outputs than the remote's for the same
/// key) and what they mean; `true` when there were any.
pub fn report_conflicts(conflicts: &[String]) -> bool {
    for c in conflicts {
        println!("CONFLICT {c}");
    }
    if !conflicts.is_empty() {
        println!(
            "push failed: {} node(s) gave different outputs from the same inputs here and on the machine \
             that pushed first (nondeterministic). The remote keeps the first result, so this lock file \
             names bytes the remote does not have (a clone's `cegraph run --remote` fetches the remote's \
             and warns). Make the node deterministic: seed its randomness, or declare what varies in \
             `params:` or `env:`.",
            conflicts.len()
        );
    }
    !conflicts.is_empty()
}

/// `verify --remote NAME`: is everything the lock file names on the remote?
pub fn verify_remote(
    l: &Loaded,
    lock: &LockFile,
    name: &str,
    deep: bool,
) -> Result<std::process::ExitCode> {
    let remote = Remote::open(&l.pipeline, Some(name), false)?;
    let entries = Entry::from_lock(lock, None)?;
    let bar = Bar::new();
    let report = remote.check(&entries, deep, &bar);
    bar.finish();
    let report = report?;
    for p in &report.problems {
        println!("MISSING {p}");
    }
    for c in &report.corrupt {
        println!("CORRUPT {c}");
    }
    if !report.corrupt.is_empty() {
        println!(
            "{} corrupt object(s) or run record(s) on remote `{}`: {}",
            report.corrupt.len(),
            remote.name(),
            crate::remote::REPAIR_HINT
        );
    }
    if report.problems.is_empty() && report.corrupt.is_empty() {
        println!(
            "verified: {} object(s) ({}) and {} run record(s) of {} are on remote `{}`{}",
            report.objects,
            size(report.bytes),
            report.records,
            l.pipeline.lock_path().display(),
            remote.name(),
            if deep { ", every byte hashed" } else { "" }
        );
        Ok(std::process::ExitCode::SUCCESS)
    } else {
        println!(
            "verify failed: {} problem(s) on remote `{}`",
            report.problems.len() + report.corrupt.len(),
            remote.name()
        );
        Ok(std::process::ExitCode::FAILURE)
    }
}
