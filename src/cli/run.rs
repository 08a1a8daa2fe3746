use std::process::ExitCode;
use std::sync::Mutex;

use indicatif::ProgressBar;

use crate::error::{Error, Result};
use crate::exec::{Observer, Outcome, RunOptions};
use crate::kind::Catalog;
use crate::store::lock::LockFile;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pipeline: super::PipelineArgs,
    /// Nodes or stages to bring up to date (with what they depend on). Default: all.
    targets: Vec<String>,
    /// CPU slots for running nodes. Default: the number of CPUs.
    #[arg(short, long)]
    jobs: Option<usize>,
    /// Show what would run or be restored; change nothing.
    #[arg(short = 'n', long)]
    dry_run: bool,
    /// Re-run the selected nodes even if they are up to date.
    #[arg(long)]
    force: bool,
    /// After a failure, still finish the branches that do not depend on it.
    #[arg(short = 'k', long)]
    keep_going: bool,
    /// Fail if the run would change the lock file (CI: results must reproduce).
    #[arg(long)]
    locked: bool,
    /// Print only failures and the summary.
    #[arg(short, long)]
    quiet: bool,
    /// Where stale nodes run: on this machine, or as Slurm jobs (`cegraph exec-node`).
    #[arg(long, value_enum, default_value_t = Executor::Local)]
    executor: Executor,
    #[command(flatten)]
    slurm: super::run_slurm::SlurmArgs,
    /// Before running a stale node, look its key up on this remote and download the result
    /// instead (a remote cache hit).
    #[arg(long, value_name = "NAME")]
    remote: Option<String>,
    /// Upload each node's result after it runs (to --remote, else the default remote).
    #[arg(long)]
    push: bool,
    #[command(flatten)]
    exp: super::run_exp::ExpArgs,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Executor {
    Local,
    Slurm,
}

/// Prints one line per node that did something, above a progress bar on terminals.
struct Progress {
    bar: ProgressBar,
    quiet: bool,
    running: Mutex<Vec<String>>,
}

impl Progress {
    fn new(total: usize, quiet: bool) -> Self {
        let bar = super::progress_bar(total);
        Progress {
            bar,
            quiet,
            running: Mutex::new(Vec::new()),
        }
    }

    fn say(&self, line: String) {
        if self.bar.is_hidden() {
            sayln!("{line}");
        } else {
            self.bar.println(line);
        }
    }

    fn show_running(&self, running: &[String]) {
        self.bar.set_message(running.join(", "));
    }
}

impl Observer for Progress {
    fn warning(&self, node: &str, message: &str) {
        self.bar.suspend(|| eprintln!("warning: {node}: {message}"));
    }

    fn started(&self, node: &str) {
        let mut r = self.running.lock().unwrap();
        r.push(node.to_string());
        self.show_running(&r);
    }

    fn finished(&self, node: &str, outcome: &Outcome) {
        {
            let mut r = self.running.lock().unwrap();
            r.retain(|n| n != node);
            self.show_running(&r);
        }
        self.bar.inc(1);
        let line = match outcome {
            Outcome::Ran { seconds } => format!("ran       {node} ({seconds:.2}s)"),
            Outcome::Restored => format!("restored  {node} (from cache)"),
            Outcome::Fetched => format!("fetched   {node} (from remote)"),
            Outcome::Failed { message, log } if log.as_os_str().is_empty() => {
                format!("FAILED    {node}: {message}")
            }
            Outcome::Failed { message, log } => {
                format!(
                    "FAILED    {node}: {message}\n          log: {}",
                    log.display()
                )
            }
            Outcome::Interrupted { .. } => format!("interrupted {node}"),
            Outcome::WouldRun { why } => format!("would run {node}: {}", why.join("; ")),
            Outcome::WouldRestore { why } => {
                format!("would restore {node} (from cache): {}", why.join("; "))
            }
            Outcome::UpToDate | Outcome::Skipped => return,
        };
        if !self.quiet
            || matches!(
                outcome,
                Outcome::Failed { .. } | Outcome::Interrupted { .. }
            )
        {
            self.say(line);
        }
    }
}

pub fn run(args: Args, catalog: &Catalog) -> Result<ExitCode> {
    let overrides = args.exp.overrides()?;
    let l = super::load_overridden(&args.pipeline, catalog, &overrides)?;
    let exp_name = args
        .exp
        .check(&l.store, args.dry_run, args.executor == Executor::Slurm)?;
    let p = &l.pipeline;
    let targets = super::targets(p, &args.targets)?;
    if args.executor == Executor::Slurm && (args.remote.is_some() || args.push) {
        return Err(Error::usage(
            "--remote and --push do not work with --executor slurm yet",
            "run through Slurm, then `cegraph push`; on another machine `cegraph pull` and `cegraph checkout`",
        ));
    }
    if args.executor == Executor::Slurm && !args.dry_run {
        let how = super::run_slurm::How {
            force: args.force,
            locked: args.locked,
            quiet: args.quiet,
        };
        return super::run_slurm::run(&l, targets, how, &args.slurm);
    }
    let _guard = if args.dry_run {
        None
    } else {
        Some(super::pipeline_lock(&l.store, p)?)
    };
    let _recording = if args.dry_run {
        None
    } else {
        Some(super::clean_up_after_dead_runs(&l))
    };
    let lock_path = p.lock_path();
    let lock = LockFile::read(&lock_path)?;
    let remote = super::remote::for_run(&l, args.remote.as_deref(), args.push, args.dry_run)?;
    let opts = RunOptions {
        jobs: args.jobs.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        }),
        targets,
        dry_run: args.dry_run,
        force: args.force,
        keep_going: args.keep_going,
        collect_only: false,
        exe: super::kind_runner()?,
        remote: remote
            .clone()
            .map(|r| r as std::sync::Arc<dyn crate::remote::RemoteCache>),
        push: args.push,
        locked: args.locked,
    };
    let selected = l.dag.closure(&opts.targets).iter().filter(|&&s| s).count();
    let progress = Progress::new(selected, args.quiet);
    let summary = crate::exec::run(p, &l.dag, &l.store, &lock, &opts, &progress)?;
    progress.bar.finish_and_clear();
    let count = |f: fn(&Outcome) -> bool| summary.count(f);
    if args.dry_run {
        sayln!(
            "dry run: {} would run, {} would be restored, {} up to date",
            count(|o| matches!(o, Outcome::WouldRun { .. })),
            count(|o| matches!(o, Outcome::WouldRestore { .. })),
            count(|o| matches!(o, Outcome::UpToDate)),
        );
        return Ok(ExitCode::SUCCESS);
    }
    super::check_locked(args.locked, &lock, &summary.lock, &lock_path)?;
    if exp_name.is_none() || args.exp.lock {
        super::write_lock(&l.store, &summary.lock, &lock_path)?;
    }
    let interrupted = match count(|o| matches!(o, Outcome::Interrupted { .. })) {
        0 => String::new(),
        n => format!(", {n} interrupted"),
    };
    sayln!(
        "{} ran, {} restored, {} up to date, {} failed, {} skipped{interrupted} in {:.2}s",
        count(|o| matches!(o, Outcome::Ran { .. })),
        count(|o| matches!(o, Outcome::Restored)),
        count(|o| matches!(o, Outcome::UpToDate)),
        count(|o| matches!(o, Outcome::Failed { .. })),
        count(|o| matches!(o, Outcome::Skipped)),
        summary.elapsed.as_secs_f64()
    );
    if let Some(name) = &exp_name
        && summary.error.is_none()
    {
        let generated = args.exp.name.is_none();
        super::run_exp::record(&l, name, generated, overrides, &summary.lock, args.exp.lock)?;
    }
    let fetched = count(|o| matches!(o, Outcome::Fetched));
    let pushed_all = match &remote {
        Some(r) => super::remote::after_run(r, fetched, args.push)?,
        None => true,
    };
    match summary.error {
        Some(e) => Err(e),
        None if !pushed_all => Ok(ExitCode::FAILURE),
        None => Ok(ExitCode::SUCCESS),
    }
}
