//! `cegraph plots show [PIPELINE] [TARGETS…]` and `cegraph plots diff [REV] [TARGETS…]`:
//! overlays of the nodes' series (their stage's `plots:`, or their kind's curve) as PNG + SVG
//! and one self-contained HTML page.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::error::{Error, Result};
use crate::kind::Catalog;
use crate::report::plot_data::PlotError;
use crate::report::plot_sources::{self, Options, Source};
use crate::report::plots;
use crate::spec::plots::PlotDecl;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Overlay the series of the chosen nodes (default: every node with plots) and of
    /// recorded experiments.
    Show(ShowArgs),
    /// Overlay a git revision's curves (dashed; outputs from the cache by the hashes in its
    /// committed lock file) over the workspace's (solid).
    Diff(DiffArgs),
}

#[derive(clap::Args)]
struct ShowArgs {
    #[command(flatten)]
    pipeline: super::PipelineArgs,
    /// Stages or nodes to draw, as for `run` (`train`, `train[lr=0.1]`). Default: every node
    /// with plots.
    targets: Vec<String>,
    /// Also draw this recorded experiment's series (repeatable; see `cegraph exp list`).
    #[arg(long = "exp", value_name = "NAME")]
    experiments: Vec<String>,
    #[command(flatten)]
    chart: ChartArgs,
}

#[derive(clap::Args)]
struct DiffArgs {
    /// REV [TARGETS…]: a git revision (default HEAD), then stages or nodes as for `run`.
    #[arg(value_name = "REV")]
    args: Vec<String>,
    /// The pipeline file (default as for `run`).
    #[arg(long, short = 'p')]
    pipeline: Option<PathBuf>,
    /// The cache directory. Default: <workspace>/cache.
    #[arg(long, env = "CEGRAPH_CACHE")]
    cache: Option<PathBuf>,
    #[command(flatten)]
    chart: ChartArgs,
}

#[derive(clap::Args)]
struct ChartArgs {
    /// The x column (e.g. `flops`), instead of each plot's.
    #[arg(long, value_name = "COLUMN")]
    x: Option<String>,
    /// The y column(s) to draw (repeatable), instead of each plot's.
    #[arg(long, value_name = "COLUMN")]
    y: Vec<String>,
    /// Draw x on a log scale.
    #[arg(long)]
    logx: bool,
    /// Draw y on a log scale.
    #[arg(long)]
    logy: bool,
    /// Where the images and index.html go. Default: <workspace>/plots.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

impl ChartArgs {
    /// `targets` as given: nodes that have not run are left out (with a note) unless a
    /// target names one node exactly.
    fn options(&self, p: &crate::spec::Pipeline, targets: &[String]) -> Options {
        Options {
            x: self.x.clone(),
            y: self.y.clone(),
            log_x: self.logx,
            log_y: self.logy,
            skip_not_run: !targets.iter().any(|t| p.node_index(t).is_some()),
        }
    }
}

pub fn run(args: Args, catalog: &Catalog) -> Result<ExitCode> {
    match args.command {
        Sub::Show(a) => show(a, catalog),
        Sub::Diff(a) => diff(a, catalog),
    }
}

fn show(mut a: ShowArgs, catalog: &Catalog) -> Result<ExitCode> {
    a.pipeline.take_target(&mut a.targets);
    let l = super::load_read_only(&a.pipeline, catalog)?;
    let nodes = chosen_nodes(&l, &a.targets, catalog)?;
    let lock = crate::store::lock::LockFile::read(&l.pipeline.lock_path())?;
    let mut sources = vec![Source::Workspace(lock)];
    for name in &a.experiments {
        crate::store::experiments::check_name(name)?;
        match l.store.read_experiment(name)? {
            Some(e) => sources.push(Source::Experiment(e)),
            None => return Err(crate::store::experiments::no_such(&l.store, name)),
        }
    }
    let title = format!("Plots of {}", l.pipeline.name);
    let options = a.chart.options(&l.pipeline, &a.targets);
    draw(&l, &nodes, &sources, &a.chart, options, &title)
}

fn diff(a: DiffArgs, catalog: &Catalog) -> Result<ExitCode> {
    let args = super::PipelineArgs {
        pipeline: a.pipeline.clone(),
        cache: a.cache.clone(),
        taken_as_target: None,
    };
    let l = super::load_read_only(&args, catalog)?;
    let lock_path = l.pipeline.lock_path();
    let dir = lock_path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // The first argument is the revision unless it names a stage or node.
    let (rev, targets) = match a.args.split_first() {
        Some((first, rest))
            if crate::graph::resolve_targets(&l.pipeline, std::slice::from_ref(first)).is_err() =>
        {
            if !crate::store::git::is_revision(dir, first) {
                return Err(Error::usage(
                    format!("`{first}` is not a git revision, a stage or a node"),
                    "give a commit (HEAD~1, a tag, a hash) first, then stages or nodes",
                ));
            }
            (first.clone(), rest.to_vec())
        }
        _ => ("HEAD".to_string(), a.args.clone()),
    };
    if !crate::store::git::is_revision(dir, &rev) {
        return Err(Error::usage(
            format!("`{rev}` is not a git revision here"),
            "run inside a git repository with a commit, or give one (HEAD~1, a tag, a hash)",
        ));
    }
    let old = crate::store::git::lock_at(&rev, &lock_path)?;
    let nodes = chosen_nodes(&l, &targets, catalog)?;
    let today = crate::store::lock::LockFile::read(&lock_path)?;
    let sources = [
        Source::Workspace(today),
        Source::Revision {
            rev: rev.clone(),
            lock: old,
        },
    ];
    let title = format!(
        "Plots of {}: {rev} (dashed) vs the workspace",
        l.pipeline.name
    );
    let options = a.chart.options(&l.pipeline, &targets);
    draw(&l, &nodes, &sources, &a.chart, options, &title)
}

/// The target nodes with their plots; default: every node that has some.
fn chosen_nodes<'a>(
    l: &'a super::Loaded,
    targets: &[String],
    catalog: &Catalog,
) -> Result<Vec<(&'a crate::spec::Node, Vec<PlotDecl>)>> {
    let p = &l.pipeline;
    let no_plots_help = "add `plots: [{file: <one of outs>, x: <column>, y: <column>}]` to the \
                         stage (built-in train stages declare theirs)";
    if targets.is_empty() {
        let all: Vec<_> = p
            .nodes
            .iter()
            .map(|n| (n, plot_sources::node_plots(n, catalog)))
            .filter(|(_, d)| !d.is_empty())
            .collect();
        if all.is_empty() {
            return Err(Error::usage(
                format!("no stage of {} has plots", p.path.display()),
                no_plots_help,
            ));
        }
        return Ok(all);
    }
    let mut indexes = super::targets(p, targets)?;
    let mut seen = std::collections::HashSet::new();
    indexes.retain(|i| seen.insert(*i));
    indexes
        .into_iter()
        .map(|i| {
            let n = &p.nodes[i];
            let decls = plot_sources::node_plots(n, catalog);
            if decls.is_empty() {
                return Err(Error::usage(
                    format!("`{}` has no plots", n.name),
                    no_plots_help,
                ));
            }
            Ok((n, decls))
        })
        .collect()
}

fn plot_error(e: PlotError) -> Error {
    Error::usage(e.to_string(), e.help())
}

/// Read every series, draw every chart, then write them all: bad input writes nothing.
fn draw(
    l: &super::Loaded,
    nodes: &[(&crate::spec::Node, Vec<PlotDecl>)],
    sources: &[Source],
    chart: &ChartArgs,
    options: Options,
    title: &str,
) -> Result<ExitCode> {
    let workspace = &l.pipeline.workspace;
    let gathered =
        plot_sources::gather(&l.store, workspace, nodes, sources, &options).map_err(plot_error)?;
    let images = plots::render(&gathered.overlays).map_err(plot_error)?;
    let html = plots::html_page(title, &images, &gathered.notes);
    let dir = chart.out.clone().unwrap_or_else(|| workspace.join("plots"));
    let written = plots::write(&dir, &images, &html).map_err(|e| Error::io(&dir, e))?;
    for note in &gathered.notes {
        eprintln!("note: {note}");
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    for path in written {
        let shown = path.strip_prefix(&cwd).unwrap_or(&path);
        sayln!("wrote {}", shown.display());
    }
    Ok(ExitCode::SUCCESS)
}
