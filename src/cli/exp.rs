//! `cegraph exp show | list | apply | remove`: the experiments `run -S` recorded.

use std::collections::BTreeMap;
use std::ops::Range;
use std::process::ExitCode;

use serde_json::Value;

use super::compare::{self, Values};
use super::table::{Format, Table};
use crate::error::Result;
use crate::kind::Catalog;
use crate::store::experiments::{Experiment, no_such};
use crate::store::packed::{Packed, PackedNode, PackedValue, Sym};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// One table: each node of the current lock file (`workspace`) and of every experiment,
    /// with the params that differ between them and the metrics.
    Show {
        #[command(flatten)]
        pipeline: super::PipelineArgs,
        #[command(flatten)]
        format: Format,
        /// Sort the rows by this column (a param or metric), smallest first.
        #[arg(long, value_name = "COLUMN")]
        sort_by: Option<String>,
        /// With --sort-by: largest first.
        #[arg(long, requires = "sort_by")]
        desc: bool,
        /// Keep only rows whose COLUMN reads VALUE: `--filter node=train`,
        /// `--filter experiment=fast` (repeatable: all must hold).
        #[arg(long, value_name = "COLUMN=VALUE")]
        filter: Vec<String>,
        /// Only the param and metric columns whose value differs between the rows shown.
        #[arg(long)]
        only_changed: bool,
    },
    /// The recorded experiments: name, when, git commit (`*`: uncommitted changes), overrides.
    List {
        #[command(flatten)]
        pipeline: super::PipelineArgs,
    },
    /// Write an experiment's overrides into the pipeline file (only those values change;
    /// comments and layout stay). `cegraph run` then restores its results from the cache.
    Apply {
        name: String,
        #[command(flatten)]
        pipeline: super::PipelineArgs,
    },
    /// Forget an experiment (its results stay in the cache until `cegraph gc`).
    Remove {
        #[arg(required = true)]
        names: Vec<String>,
        /// The cache directory. Default: <workspace>/cache.
        #[arg(long, env = "CEGRAPH_CACHE")]
        cache: Option<std::path::PathBuf>,
        /// The pipeline file (default as for `run`).
        #[arg(long, short = 'p')]
        pipeline: Option<std::path::PathBuf>,
    },
}

pub fn run(args: Args, catalog: &Catalog) -> Result<ExitCode> {
    match args.command {
        Sub::Show {
            pipeline,
            format,
            sort_by,
            desc,
            filter,
            only_changed,
        } => {
            let rows = Rows {
                sort_by,
                desc,
                filter,
                only_changed,
            };
            show(&pipeline, format, &rows, catalog)
        }
        Sub::List { pipeline } => list(&pipeline, catalog),
        Sub::Apply { name, pipeline } => apply(&name, &pipeline, catalog),
        Sub::Remove {
            names,
            cache,
            pipeline,
        } => {
            let l = super::load_read_only(
                &super::PipelineArgs {
                    pipeline,
                    cache,
                    taken_as_target: None,
                },
                catalog,
            )?;
            // All names are checked before any is removed.
            for n in &names {
                if l.store.read_experiment(n)?.is_none() {
                    return Err(no_such(&l.store, n));
                }
            }
            for n in &names {
                l.store.remove_experiment(n)?;
                sayln!("removed experiment {n}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// This pipeline's experiments, oldest first.
fn experiments(l: &super::Loaded) -> Vec<Experiment> {
    let id = super::run_exp::pipeline_id(&l.pipeline);
    l.store
        .experiments()
        .into_iter()
        .filter(|e| e.pipeline == id)
        .collect()
}

fn list(args: &super::PipelineArgs, catalog: &Catalog) -> Result<ExitCode> {
    let l = super::load_read_only(args, catalog)?;
    let mut t = Table::new(
        ["experiment", "created", "commit", "overrides"]
            .map(String::from)
            .to_vec(),
    );
    for e in experiments(&l) {
        let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(e.created_at);
        let commit = match &e.git {
            Some(g) => format!(
                "{}{}",
                &g.commit[..g.commit.len().min(8)],
                if g.dirty { "*" } else { "" }
            ),
            None => String::new(),
        };
        let overrides: Vec<String> = e
            .overrides
            .iter()
            .map(|o| format!("{}={}", o.target, o.text))
            .collect();
        t.rows.push(vec![
            Value::String(e.name),
            Value::String(humantime::format_rfc3339_seconds(when).to_string()),
            Value::String(commit),
            Value::String(overrides.join(" ")),
        ]);
    }
    if t.rows.is_empty() {
        sayln!("no experiments yet: `cegraph run -S stage.param=value` records one");
    } else {
        print!("{}", t.text(super::table::WIDTH));
    }
    Ok(ExitCode::SUCCESS)
}

fn apply(name: &str, args: &super::PipelineArgs, catalog: &Catalog) -> Result<ExitCode> {
    use crate::spec::edit;
    let l = super::load_read_only(args, catalog)?;
    let Some(exp) = l.store.read_experiment(name)? else {
        return Err(no_such(&l.store, name));
    };
    let src = crate::spec::yaml::read(&l.pipeline.path)?;
    let file_ones = edit::file_key_overrides(&src, &exp.overrides)?;
    let own: Vec<_> = exp
        .overrides
        .iter()
        .filter(|o| !file_ones.contains(o))
        .cloned()
        .collect();
    // Every edit is made in memory first: a value that cannot be written changes no file.
    let mut edits: BTreeMap<std::path::PathBuf, String> = BTreeMap::new();
    if !own.is_empty() {
        edits.insert(l.pipeline.path.clone(), edit::apply_to_text(&src, &own)?);
    }
    for o in &file_ones {
        let (file, key) = params_file_of(&l.pipeline, &o.target);
        let path = l.pipeline.workspace.join(&file);
        let text = match edits.get(&path) {
            Some(t) => t.clone(),
            None => {
                std::fs::read_to_string(&path).map_err(|e| crate::error::Error::io(&path, e))?
            }
        };
        edits.insert(path, edit::apply_to_params_text(&file, &text, &key, o)?);
    }
    for (path, text) in &edits {
        edit::write_atomic(path, text)?;
    }
    let files: Vec<String> = edits.keys().map(|p| p.display().to_string()).collect();
    sayln!(
        "wrote {} value(s) of {name} into {}; `cegraph run` now restores its results from the cache",
        exp.overrides.len(),
        files.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

/// `params.yaml:train.lr` → (params.yaml, train.lr); a bare key → the first params file a
/// node reads it from.
fn params_file_of(p: &crate::spec::Pipeline, target: &str) -> (String, String) {
    if let Some((f, k)) = target.rsplit_once(':') {
        return (f.to_string(), k.to_string());
    }
    let file = p
        .nodes
        .iter()
        .flat_map(|n| n.file_params.iter())
        .find(|f| f.values.contains_key(target))
        .map(|f| f.file.clone())
        .unwrap_or_default();
    (file, target.to_string())
}

/// Which rows `exp show` prints, in which order.
struct Rows {
    sort_by: Option<String>,
    desc: bool,
    filter: Vec<String>,
    only_changed: bool,
}

impl Rows {
    /// `keys`: how many leading columns name the row.
    fn apply(&self, t: &mut Table, keys: usize) -> Result<()> {
        for f in &self.filter {
            let Some((col, value)) = f.split_once('=') else {
                return Err(crate::error::Error::usage(
                    format!("--filter `{f}` is not COLUMN=VALUE"),
                    "e.g. --filter node=train",
                ));
            };
            t.filter(col.trim(), value.trim())?;
        }
        if let Some(col) = &self.sort_by {
            t.sort_by(col, self.desc)?;
        }
        if self.only_changed {
            // `experiment`, `node` and the matrix axes name the row: always kept.
            t.drop_constant_columns(keys);
        }
        Ok(())
    }
}

fn show(
    args: &super::PipelineArgs,
    format: Format,
    rows: &Rows,
    catalog: &Catalog,
) -> Result<ExitCode> {
    let l = super::load_read_only(args, catalog)?;
    let lock = crate::store::lock::LockFile::read(&l.pipeline.lock_path())?;
    let remote = std::env::var("CEGRAPH_REMOTE").ok();
    let workspace = compare::from_lock(
        &l,
        &lock,
        "workspace",
        compare::RemoteChoice::from_env(&remote),
    );
    let index = l.store.experiment_index();
    let id = super::run_exp::pipeline_id(&l.pipeline);
    let mut sets = Sets {
        packed: index.packed,
        sets: Vec::new(),
    };
    sets.push_values("workspace", &workspace);
    for e in &index.experiments {
        if sets.packed.str(e.pipeline) == id {
            let label = sets.packed.str(e.name).to_string();
            sets.sets.push((label, e.nodes.clone()));
        }
    }
    let (mut t, keys) = exp_table(&sets);
    rows.apply(&mut t, keys)?;
    if t.rows.is_empty() && !(format.json || format.csv) {
        sayln!("nothing to show: run the pipeline first");
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", t.render(format));
    // The process ends here: freeing the table's cells one by one costs time for nothing
    // (measured), and the OS reclaims them at once.
    std::mem::forget(t);
    std::mem::forget(sets);
    Ok(ExitCode::SUCCESS)
}

/// The runs `exp show` tabulates: labelled ranges of packed nodes (each run's nodes in
/// name order).
pub struct Sets {
    pub packed: Packed,
    pub sets: Vec<(String, Range<u32>)>,
}

impl Sets {
    /// Add a run whose values were read into maps (the workspace's, from its run records).
    pub fn push_values(&mut self, label: &str, values: &Values) {
        let start = self.packed.nodes.len() as u32;
        for (node, v) in values {
            self.packed.push_node(node, None, &v.params, &v.metrics);
        }
        let end = self.packed.nodes.len() as u32;
        self.sets.push((label.to_string(), start..end));
    }

    fn nodes(&self) -> impl Iterator<Item = (&str, &PackedNode)> {
        self.sets.iter().flat_map(|(label, range)| {
            let nodes = &self.packed.nodes[range.start as usize..range.end as usize];
            nodes.iter().map(move |n| (label.as_str(), n))
        })
    }
}

/// The entry named `name` of a node's params or metrics.
fn lookup(entries: &[(Sym, PackedValue)], name: Sym) -> Option<PackedValue> {
    entries.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
}

/// Rows: (experiment, node); columns: the node's matrix values, the params whose value differs
/// between the rows of one node, then every numeric metric. Rows with no param or metric are
/// left out. Also returns how many leading columns name the row.
pub fn exp_table(sets: &Sets) -> (Table, usize) {
    let p = &sets.packed;
    let by_text = |syms: &mut Vec<Sym>| syms.sort_by(|a, b| p.str(*a).cmp(p.str(*b)));
    let mut is_param = vec![false; p.strings.len()];
    let mut is_metric = vec![false; p.strings.len()];
    for (_, n) in sets.nodes() {
        for (k, _) in p.params(n) {
            is_param[*k as usize] = true;
        }
        for (k, v) in p.metrics(n) {
            is_metric[*k as usize] |= p.as_f64(*v).is_some();
        }
    }
    let syms_where = |flags: &[bool]| -> Vec<Sym> {
        (0..)
            .zip(flags)
            .filter(|(_, f)| **f)
            .map(|(s, _)| s)
            .collect()
    };
    let mut param_names = syms_where(&is_param);
    by_text(&mut param_names);
    let mut metrics = syms_where(&is_metric);
    by_text(&mut metrics);
    // Each distinct node name, numbered in order of first appearance.
    let mut node_id = vec![u32::MAX; p.strings.len()];
    let mut node_names: Vec<Sym> = Vec::new();
    for (_, n) in sets.nodes() {
        if node_id[n.name as usize] == u32::MAX {
            node_id[n.name as usize] = node_names.len() as u32;
            node_names.push(n.name);
        }
    }
    // Per (node, param): the first value seen and whether another differed.
    let width = param_names.len();
    let mut seen: Vec<Option<(Option<PackedValue>, bool)>> = vec![None; node_names.len() * width];
    for (_, n) in sets.nodes() {
        let row = node_id[n.name as usize] as usize * width;
        for (j, name) in param_names.iter().enumerate() {
            let value = lookup(p.params(n), *name);
            match &mut seen[row + j] {
                None => seen[row + j] = Some((value, false)),
                Some((first, differs)) => {
                    *differs |= match (*first, value) {
                        (Some(a), Some(b)) => !p.same(a, b),
                        (a, b) => a.is_some() != b.is_some(),
                    }
                }
            }
        }
    }
    let params: Vec<Sym> = (0..width)
        .filter(|&j| (0..node_names.len()).any(|i| matches!(seen[i * width + j], Some((_, true)))))
        .map(|j| param_names[j])
        .collect();
    // Matrix values as columns (`--filter variant=rope`), named after their axes.
    let matrices: Vec<Vec<(&str, &str)>> =
        node_names.iter().map(|n| matrix_of(p.str(*n))).collect();
    let mut axes: Vec<&str> = Vec::new();
    for (axis, _) in matrices.iter().flatten() {
        if !axes.contains(axis) {
            axes.push(axis);
        }
    }
    let metric_names: Vec<&str> = metrics.iter().map(|m| p.str(*m)).collect();
    let mut headers = vec!["experiment".to_string(), "node".to_string()];
    headers.extend(axes.iter().map(|a| a.to_string()));
    // A param named like a metric or an axis is told apart, so --sort-by is not ambiguous.
    headers.extend(params.iter().map(|s| {
        let name = p.str(*s);
        if metric_names.contains(&name) || axes.contains(&name) {
            format!("param:{name}")
        } else {
            name.to_string()
        }
    }));
    headers.extend(metric_names.iter().map(|m| m.to_string()));
    let mut t = Table::new(headers);
    let keys = 2 + axes.len();
    for (label, n) in sets.nodes() {
        let mut row = Vec::with_capacity(keys + params.len() + metrics.len());
        row.push(Value::Null);
        row.push(Value::Null);
        let matrix = &matrices[node_id[n.name as usize] as usize];
        row.extend(axes.iter().map(|a| {
            matrix
                .iter()
                .find(|(k, _)| k == a)
                .map_or(Value::Null, |(_, v)| Value::String(v.to_string()))
        }));
        row.extend(
            params
                .iter()
                .map(|s| lookup(p.params(n), *s).map_or(Value::Null, |v| p.unpack(v))),
        );
        row.extend(metrics.iter().map(|m| {
            lookup(p.metrics(n), *m)
                .filter(|v| p.as_f64(*v).is_some())
                .map_or(Value::Null, |v| p.unpack(v))
        }));
        if row[keys..].iter().any(|c| !c.is_null()) {
            row[0] = Value::String(label.to_string());
            row[1] = Value::String(p.str(n.name).to_string());
            t.rows.push(row);
        }
    }
    (t, keys)
}

/// `train[variant=rope,seed=1]` → [(variant, rope), (seed, 1)]; nothing for a plain node
/// (or a name that does not read as one).
fn matrix_of(node: &str) -> Vec<(&str, &str)> {
    let Some(inner) = node
        .strip_suffix(']')
        .and_then(|n| n.split_once('['))
        .map(|(_, m)| m)
    else {
        return Vec::new();
    };
    inner
        .split(',')
        .map(|kv| kv.split_once('='))
        .collect::<Option<Vec<_>>>()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use compare::NodeValues;
    use serde_json::json;

    fn set(label: &str, lr: f64, loss: Value) -> (String, Values) {
        let mut v = Values::new();
        v.insert(
            "train".into(),
            NodeValues {
                params: [("lr".into(), json!(lr)), ("epochs".into(), json!(3))].into(),
                metrics: [("loss".into(), loss), ("hash".into(), json!("abc"))].into(),
            },
        );
        v.insert("prepare".into(), NodeValues::default());
        (label.into(), v)
    }

    #[test]
    fn exp_show_lists_differing_params_and_metrics() {
        let mut sets = Sets {
            packed: Packed::default(),
            sets: Vec::new(),
        };
        for (label, values) in [
            set("workspace", 0.001, json!(1.25)),
            set("exp-1", 0.003, json!(0.75)),
            set("exp-2", 0.01, json!("NaN")),
        ] {
            sets.push_values(&label, &values);
        }
        let (t, _) = exp_table(&sets);
        insta::assert_snapshot!(t.text(100), @r"
        experiment  node   lr     loss
        workspace   train  0.001  1.25
        exp-1       train  0.003  0.75
        exp-2       train   0.01   NaN
        ");
        insta::assert_snapshot!(t.markdown(), @r"
        | experiment | node | lr | loss |
        |---|---|---|---|
        | workspace | train | 0.001 | 1.25 |
        | exp-1 | train | 0.003 | 0.75 |
        | exp-2 | train | 0.01 | NaN |
        ");
        insta::assert_snapshot!(t.csv(), @r"
        experiment,node,lr,loss
        workspace,train,0.001,1.25
        exp-1,train,0.003,0.75
        exp-2,train,0.01,NaN
        ");
    }
}
