use super::run_progress::Progress;
use crate::error::{Error, Result};
use crate::exec::{Outcome, RunOptions};
use crate::kind::Catalog;
use crate::store::lock::LockFile;
use std::process::ExitCode;

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
    /// With -n: the plan as JSON (node, action, why, cmd or kind).
    #[arg(long, requires = "dry_run")]
    json: bool,
    /// Re-run exactly these nodes or stages even if up to date (they are run targets too);
    /// what depends on them re-runs only if their outputs change. Everything: --force-all.
    #[arg(long, value_name = "TARGET", num_args = 1..)]
    force: Vec<String>,
    /// Re-run these nodes or stages and everything downstream of them.
    #[arg(short = 'R', long, value_name = "TARGET", num_args = 1..)]
    force_downstream: Vec<String>,
    /// Re-run every selected node, upstream ones included.
    #[arg(long)]
    force_all: bool,
    /// After a failure, still finish the branches that do not depend on it.
    #[arg(short = 'k', long)]
    keep_going: bool,
    /// Fail if the run would change the lock file (CI: results must reproduce).
    #[arg(long)]
    locked: bool,
    /// Print only failures and the summary.
    #[arg(short, long)]
    quiet: bool,
    /// Stream each running node's output, each line prefixed by the node's name.
    #[arg(short, long)]
    verbose: bool,
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

pub fn run(args: Args, catalog: &Catalog) -> Result<ExitCode> {
    let mut args = args;
    args.pipeline.take_target(&mut args.targets);
    let overrides = args.exp.overrides()?;
    let l = super::load_overridden(&args.pipeline, catalog, &overrides)?;
    let exp_name = args
        .exp
        .check(&l.store, args.dry_run, args.executor == Executor::Slurm)?;
    let p = &l.pipeline;
    let (targets, force) = forced_nodes(&l, &args)?;
    if args.executor == Executor::Slurm && (args.remote.is_some() || args.push) {
        return Err(Error::usage(
            "--remote and --push do not work with --executor slurm yet",
            "run through Slurm, then `cegraph push`; on another machine `cegraph pull` and `cegraph checkout`",
        ));
    }
    if args.executor == Executor::Slurm && !args.dry_run {
        let how = super::run_slurm::How {
            force: force.clone(),
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
        force,
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
    let summary = if args.dry_run {
        crate::exec::run(p, &l.dag, &l.store, &lock, &opts, &crate::exec::Silent)?
    } else {
        let progress = Progress::new(selected, opts.jobs, args.quiet, args.verbose);
        let summary = crate::exec::run(p, &l.dag, &l.store, &lock, &opts, &progress);
        progress.bar.finish_and_clear();
        summary?
    };
    let count = |f: fn(&Outcome) -> bool| summary.count(f);
    if args.dry_run {
        super::run_dry::report(p, &summary, args.json);
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

/// The run's targets and the nodes it forces (by node index). Forced nodes are targets too;
/// without positional targets the run is limited to the forced nodes (and what they need).
fn forced_nodes(l: &super::Loaded, args: &Args) -> Result<(Vec<usize>, Vec<bool>)> {
    let p = &l.pipeline;
    let n = p.nodes.len();
    let mut targets = super::targets(p, &args.targets)?;
    let exact = super::targets(p, &args.force)?;
    let roots = super::targets(p, &args.force_downstream)?;
    let mut force = vec![false; n];
    for &i in &exact {
        force[i] = true;
    }
    if !roots.is_empty() {
        for (i, below) in l.dag.downstream_closure(&roots).into_iter().enumerate() {
            force[i] |= below;
        }
    }
    if args.force_all {
        force = l.dag.closure(&targets);
    } else if !exact.is_empty() || !roots.is_empty() {
        let forced = (0..n).filter(|&i| force[i]);
        if targets.is_empty() {
            targets = forced.collect();
        } else {
            // A forced node outside the selection joins it.
            targets.extend(forced);
        }
    }
    Ok((targets, force))
}
