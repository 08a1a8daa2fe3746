//! The command line: one file per subcommand over the library. Renders errors with
//! miette and owns the exit codes (0 ok, 1 stale/failed/mismatch, 2 bad input, 130 interrupted).

/// `println!` that ignores a closed stdout (see [`say`]).
macro_rules! sayln {
    ($($t:tt)*) => {
        $crate::cli::say(format_args!($($t)*))
    };
}

mod cancel;
mod checkout;
mod compare;
mod completions;
mod dag;
mod doctor;
mod exec_node;
mod exp;
mod gc;
mod init;
mod list;
mod log;
mod metrics;
mod params;
mod plots;
mod pull;
mod push;
mod remote;
mod run;
mod run_dry;
mod run_exp;
mod run_progress;
mod run_slurm;
mod schema;
mod show;
mod status;
mod table;
mod verify;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::{Error, Result};
use crate::graph::Dag;
use crate::kind::Catalog;
use crate::spec::Pipeline;
use crate::store::Store;

#[derive(Parser)]
#[command(
    name = "cegraph",
    version,
    about = "A content-addressed build system for ML experiments",
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The exit codes, as `--help` shows them.
const EXIT_CODES: &str = "\
Exit codes:
  0    success; everything up to date
  1    a node is stale (status, verify) or failed (run)
  2    bad input or usage: pipeline file, flags, lock file
  130  interrupted (Ctrl-C, SIGTERM or SIGHUP during `run`)";

/// Options shared by the commands that read a pipeline.
#[derive(clap::Args, Clone)]
pub struct PipelineArgs {
    /// The pipeline file. Default: ./cegraph.yaml, else the only pipelines/*.yaml (looked for
    /// up to the workspace root). A first argument that names no file is the first target.
    pub pipeline: Option<PathBuf>,
    /// The cache directory. Default: <workspace>/cache.
    #[arg(long, env = "CEGRAPH_CACHE", global = true)]
    pub cache: Option<PathBuf>,
    /// The first argument, when it named no file and was taken as a target.
    #[arg(skip)]
    pub taken_as_target: Option<String>,
}

impl PipelineArgs {
    /// `cegraph run summarise`: a first argument that names no file (and does not look like a
    /// YAML path) is the first target, and the default pipeline is used.
    pub fn take_target(&mut self, targets: &mut Vec<String>) {
        let Some(first) = &self.pipeline else { return };
        let yaml = first.extension().is_some_and(|x| x == "yaml" || x == "yml");
        if first.exists() || yaml {
            return;
        }
        let name = first.to_string_lossy().into_owned();
        targets.insert(0, name.clone());
        self.taken_as_target = Some(name);
        self.pipeline = None;
    }
}

// Parsed once per process: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run what is stale (in parallel, or as Slurm jobs), restore what the cache has, update
    /// the lock file.
    Run(run::Args),
    /// Cancel this pipeline's queued and running Slurm jobs.
    Cancel(cancel::Args),
    /// Show each node as up-to-date, stale or never-run, and why. Exit 1 if anything is stale.
    Status(status::Args),
    /// Print the DAG (text, Graphviz dot, or Mermaid).
    Dag(dag::Args),
    /// Check the lock file against the pipeline, inputs, workspace and cache (for CI).
    Verify(verify::Args),
    /// Remove cache entries that no lock file using this cache, no recent run and no grace
    /// period keeps.
    Gc(gc::Args),
    /// Upload the results behind the lock file (or the named nodes) that the remote lacks.
    Push(push::Args),
    /// Download what the local cache lacks of the lock file's results, verifying every object.
    Pull(pull::Args),
    /// Put the lock file's outputs in the workspace from the cache; runs nothing.
    Checkout(checkout::Args),
    /// Provenance of one node: what went into its key, its outputs, metrics and log.
    Show(show::Args),
    /// Every stage and node with its kind, command and state.
    List(list::Args),
    /// Past runs of the nodes (from the cache's run records), newest first.
    Log(log::Args),
    /// Write a first cegraph.yaml (with an example stage) and ignore cache/ and out/ in git.
    Init,
    /// Print a shell completion script: `cegraph completions bash > ~/.local/share/bash-completion/completions/cegraph`.
    Completions(completions::Args),
    /// Experiments recorded by `run -S`: show (one table), list, apply, remove.
    Exp(exp::Args),
    /// Metrics of the lock file's nodes (show), or what changed between revisions (diff).
    Metrics(metrics::Args),
    /// Params that changed between revisions (diff).
    Params(params::Args),
    /// Overlay the loss curves (or any series) of nodes, experiments and revisions as PNG,
    /// SVG and one HTML page (show, diff).
    Plots(plots::Args),
    /// Print the JSON schema of pipeline files.
    Schema,
    /// Check the set-up: libtorch version, threads, CUDA, and what to fix.
    Doctor,
    /// Run one built-in-kind node (used by the scheduler; not for people).
    #[command(hide = true)]
    ExecNode(exec_node::Args),
}

/// Entry point of the `cegraph` binary.
pub fn main(catalog: Catalog) -> ExitCode {
    // First of all, before the arguments are read: a SIGINT/SIGTERM/SIGHUP that reaches `run`
    // in its first milliseconds is an interrupt (exit 130) like any later one.
    note_signals_early();
    let cli = Cli::parse();
    settle_signals(&cli.command);
    quiet_on_closed_stdout(&cli.command);
    // Off a terminal (logs, CI, tests) keep each message on one line so it can be grepped.
    let on_terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = miette::set_hook(Box::new(move |_| {
        let opts = miette::MietteHandlerOpts::new();
        let opts = if on_terminal {
            opts
        } else {
            opts.wrap_lines(false).color(false)
        };
        Box::new(opts.build())
    }));
    let result = match cli.command {
        Command::Run(a) => run::run(a, &catalog),
        Command::Cancel(a) => cancel::run(a, &catalog),
        Command::Status(a) => status::run(a, &catalog),
        Command::Dag(a) => dag::run(a, &catalog),
        Command::Verify(a) => verify::run(a, &catalog),
        Command::Gc(a) => gc::run(a, &catalog),
        Command::Show(a) => show::run(a, &catalog),
        Command::Push(a) => push::run(a, &catalog),
        Command::Pull(a) => pull::run(a, &catalog),
        Command::Checkout(a) => checkout::run(a, &catalog),
        Command::List(a) => list::run(a, &catalog),
        Command::Log(a) => log::run(a, &catalog),
        Command::Init => init::run(),
        Command::Completions(a) => completions::run(a),
        Command::Exp(a) => exp::run(a, &catalog),
        Command::Metrics(a) => metrics::run(a, &catalog),
        Command::Params(a) => params::run(a, &catalog),
        Command::Plots(a) => plots::run(a, &catalog),
        Command::Schema => schema::run(),
        Command::Doctor => doctor::run(),
        Command::ExecNode(a) => return exec_node::run(a, &catalog),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let code = match &e {
                Error::Spec(_) | Error::Usage { .. } | Error::Lock { .. } | Error::Slurm { .. } => {
                    2
                }
                Error::Interrupted { .. } => 130,
                _ => 1,
            };
            // One write: the report is rendered whole first (stderr is unbuffered).
            let text = format!("{:?}\n", miette::Report::new(e));
            let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), text.as_bytes());
            ExitCode::from(code)
        }
    }
}

/// The signals `run` handles as an interrupt.
const INTERRUPT_SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// A signal that arrived before the command was known (0: none).
static EARLY_SIGNAL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn note_early_signal(signal: libc::c_int) {
    EARLY_SIGNAL.store(signal, std::sync::atomic::Ordering::SeqCst);
}

/// From the first line of `main`, note SIGINT, SIGTERM and SIGHUP instead of dying of them,
/// and unblock them (a process started with them blocked gets pending ones now): what to do
/// with one is decided once the command is known ([`settle_signals`]).
fn note_signals_early() {
    // SAFETY: the handler only stores to an atomic (async-signal-safe); the mask calls use a
    // set built here.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in INTERRUPT_SIGNALS {
            libc::signal(s, note_early_signal as *const () as libc::sighandler_t);
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
}

/// `run` (and `exec-node`) stop their nodes' commands on SIGINT, SIGTERM and SIGHUP and exit
/// 130, counting a signal noted before this point. The other commands end at once, as
/// processes do by default (and die now of a signal noted earlier): nothing they write is
/// published before it is whole, and what they leave in cache/tmp names its (then dead)
/// owner, so the next run removes it.
fn settle_signals(command: &Command) {
    use std::sync::atomic::Ordering;
    if matches!(command, Command::Run(_) | Command::ExecNode(_)) {
        let _ = ctrlc::set_handler(crate::exec::procs::interrupt);
        if EARLY_SIGNAL.swap(0, Ordering::SeqCst) != 0 {
            crate::exec::procs::interrupt();
        }
        return;
    }
    // SAFETY: SIG_DFL is always a valid disposition; raise(3) with a signal we were sent.
    unsafe {
        for s in INTERRUPT_SIGNALS {
            libc::signal(s, libc::SIG_DFL);
        }
        let early = EARLY_SIGNAL.load(Ordering::SeqCst);
        if early != 0 {
            libc::raise(early);
        }
    }
}

/// `cegraph status | head -1`: a reader that stops early ends a command that only prints,
/// quietly, as it does `cat` (default SIGPIPE) instead of a panic. `run` ignores a closed
/// stdout instead (see [`say`]): it must finish recording what it ran.
fn quiet_on_closed_stdout(command: &Command) {
    if matches!(command, Command::Run(_) | Command::ExecNode(_)) {
        return;
    }
    #[cfg(unix)]
    // SAFETY: signal(2) with SIG_DFL, always a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Print a line on stdout, ignoring a reader that went away.
pub fn say(line: impl std::fmt::Display) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// A loaded pipeline with its DAG and cache.
pub struct Loaded {
    pub pipeline: Pipeline,
    pub dag: Dag,
    pub store: Store,
}

/// Load the pipeline and open (creating if needed) its cache.
pub fn load(args: &PipelineArgs, catalog: &Catalog) -> Result<Loaded> {
    load_with(args, catalog, Store::open, &[])
}

/// [`load`] with `-S` overrides applied before resolution.
pub fn load_overridden(
    args: &PipelineArgs,
    catalog: &Catalog,
    overrides: &[crate::spec::overrides::Override],
) -> Result<Loaded> {
    load_with(args, catalog, Store::open, overrides)
}

/// Load the pipeline for a command that only reads: the cache is not created.
pub fn load_read_only(args: &PipelineArgs, catalog: &Catalog) -> Result<Loaded> {
    load_with(args, catalog, |dir| Ok(Store::open_read_only(dir)), &[])
}

fn load_with(
    args: &PipelineArgs,
    catalog: &Catalog,
    open: impl FnOnce(&Path) -> Result<Store>,
    overrides: &[crate::spec::overrides::Override],
) -> Result<Loaded> {
    let path = match &args.pipeline {
        Some(p) => p.clone(),
        None => default_pipeline().map_err(|e| match &args.taken_as_target {
            Some(t) => Error::usage(
                format!("`{t}` is neither a file nor, with no default pipeline found, a target"),
                "pass the pipeline file first, or run where ./cegraph.yaml or one pipelines/*.yaml is",
            ),
            None => e,
        })?,
    };
    if !path.exists() {
        return Err(Error::usage(
            format!("pipeline file {} does not exist", path.display()),
            "give the path of a pipeline YAML file",
        ));
    }
    let pipeline = crate::spec::load_overridden(&path, catalog, overrides)?;
    let dag = Dag::build(&pipeline)?;
    let cache = args
        .cache
        .clone()
        .unwrap_or_else(|| pipeline.workspace.join("cache"));
    // Checked at every load, not memoised: the cache's place comes from flags and env.
    pipeline.check_outside_cache(&cache)?;
    let store = open(&cache)?;
    Ok(Loaded {
        pipeline,
        dag,
        store,
    })
}

/// `./cegraph.yaml`, else the only `pipelines/*.yaml`; from a subdirectory of a workspace
/// (marked by `cegraph.toml` or `.git`) the same is looked for up to its root.
fn default_pipeline() -> Result<PathBuf> {
    let cwd = std::env::current_dir().map_err(|e| Error::io(".", e))?;
    let root = cwd
        .ancestors()
        .find(|d| d.join("cegraph.toml").exists() || d.join(".git").exists());
    let dirs: Vec<&Path> = match root {
        Some(root) => cwd
            .ancestors()
            .take_while(|d| d.starts_with(root))
            .collect(),
        None => vec![cwd.as_path()],
    };
    for dir in dirs {
        // Found in the working directory: a relative path, as the user would write it.
        let shown = |p: PathBuf| p.strip_prefix(&cwd).map(Path::to_path_buf).unwrap_or(p);
        if dir.join("cegraph.yaml").exists() {
            return Ok(shown(dir.join("cegraph.yaml")));
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir.join("pipelines"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                    .map(shown)
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        match found.len() {
            0 => continue,
            1 => return Ok(found.remove(0)),
            _ => {
                return Err(Error::usage(
                    "no pipeline given and several found",
                    format!(
                        "pass one of: {}",
                        found
                            .iter()
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
    }
    Err(Error::usage(
        "no pipeline given and none found",
        "pass a pipeline file, or create ./cegraph.yaml (`cegraph init`) or pipelines/<name>.yaml",
    ))
}

/// Resolve target names, as a usage error on a bad name.
fn targets(p: &Pipeline, names: &[String]) -> Result<Vec<usize>> {
    crate::graph::resolve_targets(p, names)
        .map_err(|e| Error::usage(e, "see `cegraph dag` for the node names"))
}

/// Take an exclusive lock for runs of this pipeline, waiting if another holds it.
fn pipeline_lock(store: &Store, p: &Pipeline) -> Result<std::fs::File> {
    use crate::error::IoContext;
    let dir = store.root().join("locks");
    std::fs::create_dir_all(&dir).at(&dir)?;
    let path = dir.join(run_name(p));
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .at(&path)?;
    if f.try_lock().is_err() {
        eprintln!(
            "waiting for another cegraph run of {} to finish…",
            p.path.display()
        );
        // Polled rather than blocking: an interrupt while waiting ends this run at once.
        loop {
            std::thread::sleep(std::time::Duration::from_millis(50));
            if crate::exec::INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(Error::Interrupted { done: 0 });
            }
            match f.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
            }
        }
    }
    Ok(f)
}

/// The name of a pipeline's run lock and run-state file in the cache: pipelines that share a
/// cache but not a lock file are run independently.
fn run_name(p: &Pipeline) -> String {
    let id = crate::hash::Hash::of_bytes(p.lock_path().to_string_lossy().as_bytes());
    format!("{}-{}", p.name, id.short())
}

/// Before a run (holding the pipeline's run lock): kill what a killed earlier run left running,
/// remove temporary files whose owner is dead, then record this run's commands until the
/// returned guard drops.
fn clean_up_after_dead_runs(l: &Loaded) -> crate::exec::procs::RunRecording {
    use crate::exec::procs;
    let state = procs::state_path(l.store.root(), &run_name(&l.pipeline));
    let left = procs::end_leftovers(&state, true);
    if left.killed > 0 {
        eprintln!(
            "note: killed {} process(es) left running by an earlier cegraph run that was killed",
            left.killed
        );
    }
    crate::store::tmp::sweep(&l.store.tmp_dir(), false);
    if left.dead_run {
        // A killed restore leaves its temporary file beside the output it was replacing.
        for parent in output_dirs(&l.pipeline) {
            crate::store::tmp::sweep(&parent, false);
        }
    }
    procs::record_run(state)
}

/// The workspace directories that hold the pipeline's cached outputs.
fn output_dirs(p: &Pipeline) -> std::collections::BTreeSet<PathBuf> {
    p.nodes
        .iter()
        .flat_map(|n| n.outs.iter().filter(|o| o.cached))
        .filter_map(|o| p.workspace.join(&o.path).parent().map(Path::to_path_buf))
        .collect()
}

/// `status`: kill what a killed run of this pipeline left running (without touching the cache:
/// the next `run` removes its record).
fn end_leftovers_of_dead_run(l: &Loaded) {
    let state = crate::exec::procs::state_path(l.store.root(), &run_name(&l.pipeline));
    let left = crate::exec::procs::end_leftovers(&state, false);
    if left.killed > 0 {
        eprintln!(
            "note: killed {} process(es) left running by a cegraph run that was killed",
            left.killed
        );
    }
}

/// A progress bar on stderr (hidden off a terminal) with the running nodes as its message.
fn progress_bar(total: usize) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total as u64),
        indicatif::ProgressDrawTarget::stderr(),
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {wide_msg}",
        )
        .expect("valid template"),
    );
    bar
}

/// The binary that runs built-in-kind nodes: this one, the build that computed their keys.
/// The libtorch kinds go to `cegraph-worker` beside it ([`crate::exec::platform::worker_exe`]).
pub fn kind_runner() -> Result<std::path::PathBuf> {
    std::env::current_exe().map_err(|e| Error::io("current executable", e))
}

/// Write a run's lock file and register it with the cache, so `gc` from any pipeline sharing
/// the cache keeps what it names.
fn write_lock(store: &Store, lock: &crate::store::lock::LockFile, lock_path: &Path) -> Result<()> {
    lock.write(lock_path)?;
    register_root(store, lock_path);
    Ok(())
}

/// Register `lock_path` as a gc root of the cache; a failure only costs gc's protection,
/// so it is a warning.
fn register_root(store: &Store, lock_path: &Path) {
    if let Err(e) = store.register_root(lock_path) {
        eprintln!(
            "warning: could not register {} with the cache (gc from another pipeline sharing it may drop its results): {e}",
            lock_path.display()
        );
    }
}

/// `--locked`: refuse a run that would change the lock file, naming what changed.
fn check_locked(
    locked: bool,
    lock: &crate::store::lock::LockFile,
    new: &crate::store::lock::LockFile,
    lock_path: &std::path::Path,
) -> Result<()> {
    if !locked || new == lock {
        return Ok(());
    }
    let changed: Vec<&String> = new
        .nodes
        .iter()
        .filter(|(k, v)| lock.nodes.get(*k) != Some(v))
        .map(|(k, _)| k)
        .chain(lock.nodes.keys().filter(|k| !new.nodes.contains_key(*k)))
        .collect();
    Err(Error::usage(
        format!(
            "--locked: the run changed {} lock entr{} ({}); {} left as it was",
            changed.len(),
            if changed.len() == 1 { "y" } else { "ies" },
            changed
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            lock_path.display()
        ),
        "results did not reproduce the committed lock file; run without --locked to accept them",
    ))
}
