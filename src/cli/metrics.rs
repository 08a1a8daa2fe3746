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
    /// Every node's metrics in the current lock file (from the run records).
    Show {
        #[command(flatten)]
        pipeline: super::PipelineArgs,
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
    /// Also list what did not change.
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    format: Format,
}

pub fn run(args: Args, catalog: &Catalog) -> Result<ExitCode> {
    match args.command {
        Sub::Show { pipeline, format } => show(&pipeline, format, catalog),
        Sub::Diff(d) => diff(d, catalog, |v| &v.metrics, "metric"),
    }
}

fn show(args: &super::PipelineArgs, format: Format, catalog: &Catalog) -> Result<ExitCode> {
    let l = super::load_read_only(args, catalog)?;
    let lock = crate::store::lock::LockFile::read(&l.pipeline.lock_path())?;
    let values = compare::from_lock(&l.store, &lock, "workspace");
    let mut t = Table::new(vec!["node".into(), "metric".into(), "value".into()]);
    for (node, v) in &values {
        for (name, value) in &v.metrics {
            t.rows.push(vec![
                Value::String(node.clone()),
                Value::String(name.clone()),
                value.clone(),
            ]);
        }
    }
    if t.rows.is_empty() && !(format.json || format.csv) {
        sayln!("no metrics yet: give a stage `metrics: <file>` and `cegraph run`");
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", t.render(format));
    Ok(ExitCode::SUCCESS)
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
    let va = compare::at_revision(&l, &a)?;
    let vb = compare::at_revision(&l, &b)?;
    let changes = compare::changes(&va, &vb, pick, d.all);
    if changes.is_empty() && !(d.format.json || d.format.csv) {
        sayln!("no {what} changed between {a} and {b}");
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", compare::diff_table(&changes, &a, &b).render(d.format));
    Ok(ExitCode::SUCCESS)
}
