//! `cegraph metrics show` and `cegraph metrics diff [REV_A] [REV_B]`.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::Value;

use super::compare::{self, NodeValues};
use super::table::{Format, Table};
use crate::error::{Error, Result};
use crate::kind::Catalog;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// The metrics of the current lock file's nodes (from their run records). Default: the
    /// nodes whose stage declares `metrics:` and those of the model kinds (`train`, `eval`).
    Show {
        #[command(flatten)]
        pipeline: super::PipelineArgs,
        /// Nodes or stages to show (instead of the default ones).
        targets: Vec<String>,
        /// Every node with a recorded metric (also `source`'s and `tokenize`'s figures).
        #[arg(long, conflicts_with = "targets")]
        all: bool,
        #[command(flatten)]
        format: Format,
    },
    /// What changed between two revisions, largest relative change first. A revision is a
    /// git revision (its committed lock file), `workspace` (the current lock file) or an
    /// experiment name. Default: HEAD against workspace; one revision: it against workspace.
    Diff(DiffArgs),
}

/// Arguments of `metrics diff` and `params diff`.
#[derive(clap::Args)]
pub struct DiffArgs {
    /// REV_A [REV_B].
    #[arg(num_args = 0..=2, value_name = "REV")]
    revs: Vec<String>,
    /// The pipeline file (default as for `run`).
    #[arg(long, short = 'p')]
    pipeline: Option<PathBuf>,
    /// The cache directory. Default: <workspace>/cache.
    #[arg(long, env = "CEGRAPH_CACHE")]
    cache: Option<PathBuf>,
    /// The remote to read run records from when this cache lacks them (default: the
    /// pipeline's only or default remote).
    #[arg(long, env = "CEGRAPH_REMOTE")]
    remote: Option<String>,
    /// Also list what did not change.
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    format: Format,
}

pub fn run(args: Args, catalog: &Catalog) -> Result<ExitCode> {
    match args.command {
        Sub::Show {
            mut pipeline,
            mut targets,
            all,
            format,
        } => {
            pipeline.take_target(&mut targets);
            show(&pipeline, &targets, all, format, catalog)
        }
        Sub::Diff(d) => diff(d, catalog, |v| &v.metrics, "metric"),
    }
}

fn show(
    args: &super::PipelineArgs,
    targets: &[String],
    all: bool,
    format: Format,
    catalog: &Catalog,
) -> Result<ExitCode> {
    let l = super::load_read_only(args, catalog)?;
    let lock = crate::store::lock::LockFile::read(&l.pipeline.lock_path())?;
    let shown = shown_nodes(&l.pipeline, targets, all)?;
    let mut lock = lock;
    lock.nodes.retain(|name, _| shown.contains(name.as_str()));
    let remote = std::env::var("CEGRAPH_REMOTE").ok();
    let values = compare::from_lock(
        &l,
        &lock,
        "workspace",
        compare::RemoteChoice::from_env(&remote),
    );
    let t = show_table(&values);
    if t.rows.is_empty() && !(format.json || format.csv) {
        let hint = if all || !targets.is_empty() {
            "give a stage `metrics: <file>` and `cegraph run`"
        } else {
            "give a stage `metrics: <file>` and `cegraph run` (`--all` also shows the built-in kinds' figures)"
        };
        sayln!("no metrics yet: {hint}");
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", t.render(format));
    Ok(ExitCode::SUCCESS)
}

/// The nodes `metrics show` lists: `targets`, else with `all` every node, else those that
/// declare a metrics file or run a model (libtorch kinds).
fn shown_nodes<'p>(
    p: &'p crate::spec::Pipeline,
    targets: &[String],
    all: bool,
) -> Result<std::collections::BTreeSet<&'p str>> {
    use crate::spec::Action;
    if !targets.is_empty() {
        let picked = crate::graph::resolve_targets(p, targets)
            .map_err(|e| Error::usage(e, "see `cegraph dag` for the node names"))?;
        return Ok(picked
            .into_iter()
            .map(|i| p.nodes[i].name.as_str())
            .collect());
    }
    Ok(p.nodes
        .iter()
        .filter(|n| {
            all || n.metrics.is_some() || matches!(n.action, Action::Kind { worker: true, .. })
        })
        .map(|n| n.name.as_str())
        .collect())
}

/// One row per (node, metric), in node then metric order.
pub fn show_table(values: &compare::Values) -> Table {
    let mut t = Table::new(vec!["node".into(), "metric".into(), "value".into()]);
    for (node, v) in values {
        for (name, value) in &v.metrics {
            t.rows.push(vec![
                Value::String(node.clone()),
                Value::String(name.clone()),
                value.clone(),
            ]);
        }
    }
    t
}

/// Shared by `metrics diff` and `params diff`.
pub fn diff(
    d: DiffArgs,
    catalog: &Catalog,
    pick: fn(&NodeValues) -> &std::collections::BTreeMap<String, Value>,
    what: &str,
) -> Result<ExitCode> {
    let pipeline = super::PipelineArgs {
        pipeline: d.pipeline,
        cache: d.cache,
        taken_as_target: None,
    };
    let l = super::load_read_only(&pipeline, catalog)?;
    let (a, b) = match d.revs.as_slice() {
        [] => ("HEAD".to_string(), "workspace".to_string()),
        [a] => (a.clone(), "workspace".to_string()),
        [a, b] => (a.clone(), b.clone()),
        _ => {
            return Err(Error::usage(
                "metrics diff takes at most two revisions",
                "e.g. `cegraph metrics diff HEAD~1 workspace`",
            ));
        }
    };
    let choice = compare::RemoteChoice {
        name: d.remote.as_deref(),
    };
    let va = compare::at_revision(&l, &a, choice)?;
    let vb = compare::at_revision(&l, &b, choice)?;
    let changes = compare::changes(&va, &vb, pick, d.all);
    if changes.is_empty() && !(d.format.json || d.format.csv) {
        sayln!("no {what} changed between {a} and {b}");
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", compare::diff_table(&changes, &a, &b).render(d.format));
    Ok(ExitCode::SUCCESS)
}
