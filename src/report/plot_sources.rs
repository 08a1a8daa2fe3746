//! What `cegraph plots` draws: each chosen node's series files (its stage's `plots:`, or the
//! curve its built-in kind declares), read from the workspace, from a recorded experiment
//! (its node keys → run records → cached outputs) or from a git revision's committed lock
//! file (outputs by hash from the cache), and gathered into one [`Overlay`] per
//! (x column, y column).

use std::collections::BTreeMap;
use std::path::Path;

use super::plot_data::{PlotError, SeriesTable};
use super::plots::{Line, Overlay};
use crate::hash::Hash;
use crate::kind::{Catalog, CurveDecl};
use crate::spec::plots::{PlotDecl, holding_output};
use crate::spec::{Action, Node};
use crate::store::experiments::Experiment;
use crate::store::lock::LockFile;
use crate::store::{OutputRecord, Store};

/// Where the series are read from.
pub enum Source {
    /// The current lock file's outputs (from the cache; what `metrics show` reads), else the
    /// files in the workspace (a node not run yet, or a cache without them).
    Workspace(LockFile),
    /// A recorded experiment's outputs, from the cache.
    Experiment(Experiment),
    /// A git revision's committed lock file: its outputs from the cache, drawn dashed in the
    /// colour of the same node's workspace line.
    Revision { rev: String, lock: LockFile },
}

impl Source {
    fn prefix(&self) -> Option<&str> {
        match self {
            Source::Workspace(_) => None,
            Source::Experiment(e) => Some(&e.name),
            Source::Revision { rev, .. } => Some(rev),
        }
    }
}

/// Choices from the command line, over the declarations.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The x column instead of each declaration's.
    pub x: Option<String>,
    /// The y columns instead of each declaration's.
    pub y: Vec<String>,
    pub log_x: bool,
    pub log_y: bool,
    /// Leave out, with a note, nodes that have not run (the targets named stages, not
    /// nodes): `plots show train_s2` while some of its seeds are still training. An error
    /// when no node at all can be drawn.
    pub skip_not_run: bool,
}

/// The overlays to draw and what the reader should know (points skipped, nodes missing).
#[derive(Debug, Default)]
pub struct Gathered {
    pub overlays: Vec<Overlay>,
    pub notes: Vec<String>,
}

/// The series files of `node`: its stage's `plots:`, else the curves its kind declares.
pub fn node_plots(node: &Node, catalog: &Catalog) -> Vec<PlotDecl> {
    if !node.plots.is_empty() {
        return node.plots.clone();
    }
    match &node.action {
        Action::Kind { name, .. } => catalog
            .get(name)
            .map(|k| plots_from_curves(node, k.curves()))
            .unwrap_or_default(),
        Action::Cmd(_) => Vec::new(),
    }
}

/// A kind's curve declarations matched to the node's outputs by file name.
pub fn plots_from_curves(node: &Node, curves: &[CurveDecl]) -> Vec<PlotDecl> {
    curves
        .iter()
        .filter_map(|c| {
            let out = node
                .outs
                .iter()
                .find(|o| o.path == c.file || o.path.ends_with(&format!("/{}", c.file)))?;
            Some(PlotDecl {
                file: out.path.clone(),
                x: c.x.first()?.to_string(),
                y: c.y.iter().map(|y| y.to_string()).collect(),
                log_x: false,
                log_y: false,
            })
        })
        .collect()
}

/// Gather the series of `nodes` (each with its declarations) from every source.
pub fn gather(
    store: &Store,
    workspace: &Path,
    nodes: &[(&Node, Vec<PlotDecl>)],
    sources: &[Source],
    opts: &Options,
) -> Result<Gathered, PlotError> {
    let mut g = Gatherer {
        opts,
        out: Gathered::default(),
        by_axes: BTreeMap::new(),
        colour_of_node: BTreeMap::new(),
        next_colour: 0,
    };
    let mut not_run = None;
    for source in sources {
        for (node, decls) in nodes {
            let mut tables = Vec::new();
            let mut skipped = false;
            for decl in decls {
                let bytes = match series_bytes(store, workspace, node, &decl.file, source) {
                    Ok(Some(bytes)) => bytes,
                    Ok(None) => break,
                    Err(e @ PlotError::NotRun { .. }) if opts.skip_not_run => {
                        g.out.notes.push(format!("{e}: not drawn"));
                        not_run.get_or_insert(e);
                        skipped = true;
                        break;
                    }
                    Err(e) => return Err(e),
                };
                let shown = match source.prefix() {
                    Some(p) => format!("{p}:{}", decl.file),
                    None => decl.file.clone(),
                };
                tables.push((decl, SeriesTable::parse(&shown, &bytes)?));
            }
            if skipped {
                continue;
            }
            if tables.is_empty() {
                g.out.notes.push(format!(
                    "{} has no node `{}`: not drawn",
                    source.prefix().unwrap_or("the workspace"),
                    node.name
                ));
                continue;
            }
            // A requested y must be in one of the node's files.
            for y in &opts.y {
                if !tables.iter().any(|(_, t)| t.columns.contains(y)) {
                    tables[0].1.check_columns([y.as_str()])?;
                }
            }
            let colour = g.colour(node, source);
            for (decl, table) in &tables {
                g.add(node, source, colour, decl, table)?;
            }
        }
    }
    if let Some(e) = not_run
        && g.out.overlays.is_empty()
    {
        return Err(e);
    }
    name_overlays(&mut g.out.overlays);
    Ok(g.out)
}

struct Gatherer<'a> {
    opts: &'a Options,
    out: Gathered,
    /// (x, y) → overlay index.
    by_axes: BTreeMap<(String, String), usize>,
    colour_of_node: BTreeMap<String, usize>,
    next_colour: usize,
}

impl Gatherer<'_> {
    /// A new colour per line, except that a revision's line takes its node's colour.
    fn colour(&mut self, node: &Node, source: &Source) -> usize {
        let fresh = self.next_colour;
        let known = self
            .colour_of_node
            .entry(node.name.clone())
            .or_insert(fresh);
        let colour = match source {
            Source::Revision { .. } => *known,
            _ => fresh,
        };
        if colour == fresh {
            self.next_colour += 1;
        }
        colour
    }

    /// The lines of one series file of `node` at `source`.
    fn add(
        &mut self,
        node: &Node,
        source: &Source,
        colour: usize,
        decl: &PlotDecl,
        table: &SeriesTable,
    ) -> Result<(), PlotError> {
        let label = match source.prefix() {
            Some(p) => format!("{p}: {}", node.name),
            None => node.name.clone(),
        };
        let x = self.opts.x.clone().unwrap_or_else(|| decl.x.clone());
        table.check_columns([x.as_str()])?;
        let ys: Vec<String> = if self.opts.y.is_empty() {
            table.check_columns(decl.y.iter().map(String::as_str))?;
            decl.y.clone()
        } else {
            let has = |y: &&String| table.columns.contains(y);
            self.opts.y.iter().filter(has).cloned().collect()
        };
        for y in ys {
            let points = table.points(&x, &y)?;
            if points.skipped > 0 {
                self.out.notes.push(format!(
                    "{label}: {} point(s) of `{y}` with NaN or infinite values skipped",
                    points.skipped
                ));
            }
            let overlays = &mut self.out.overlays;
            let index = *self
                .by_axes
                .entry((x.clone(), y.clone()))
                .or_insert_with(|| {
                    overlays.push(Overlay {
                        name: String::new(),
                        x: x.clone(),
                        y: y.clone(),
                        log_x: self.opts.log_x || decl.log_x,
                        log_y: self.opts.log_y || decl.log_y,
                        lines: Vec::new(),
                    });
                    overlays.len() - 1
                });
            overlays[index].lines.push(Line {
                label: label.clone(),
                points: points.points,
                dashed: matches!(source, Source::Revision { .. }),
                colour,
            });
        }
        Ok(())
    }
}

/// `val_loss`, or `val_loss-vs-flops` when the same y is drawn against several x; only
/// characters safe in a file name.
fn name_overlays(overlays: &mut [Overlay]) {
    let ys: Vec<String> = overlays.iter().map(|o| o.y.clone()).collect();
    for o in overlays.iter_mut() {
        let shared = ys.iter().filter(|y| **y == o.y).count() > 1;
        let raw = if shared {
            format!("{}-vs-{}", o.y, o.x)
        } else {
            o.y.clone()
        };
        o.name = raw
            .chars()
            .map(|c| match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' => c,
                _ => '_',
            })
            .collect::<String>()
            .trim_start_matches('.')
            .to_string();
        if o.name.is_empty() || o.name == "index" {
            o.name = format!("plot-{}", o.name);
        }
    }
}

/// The bytes of `file` (a node's series file) at `source`; `None` when the source has no
/// such node (an experiment over other stages, a revision before the stage existed).
fn series_bytes(
    store: &Store,
    workspace: &Path,
    node: &Node,
    file: &str,
    source: &Source,
) -> Result<Option<Vec<u8>>, PlotError> {
    let outputs: Vec<OutputRecord> = match source {
        Source::Workspace(lock) => {
            // An experiment run leaves its outputs in the workspace; the lock file's are
            // today's results.
            if let Some(entry) = lock.nodes.get(&node.name)
                && let Ok(bytes) = cached_bytes(store, node, file, &entry.outs, "workspace")
            {
                return Ok(Some(bytes));
            }
            return match std::fs::read(workspace.join(file)) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) => Err(PlotError::NotRun {
                    message: format!("`{file}` (a series of `{}`) cannot be read: {e}", node.name),
                    help: format!(
                        "run `cegraph run {}` (or `cegraph checkout`) to produce it",
                        node.name
                    ),
                }),
            };
        }
        Source::Experiment(exp) => {
            let Some(entry) = exp.nodes.get(&node.name) else {
                return Ok(None);
            };
            match store.read_record(&entry.key) {
                Some(record) => record.outputs,
                None => {
                    return Err(PlotError::Missing {
                        message: format!(
                            "experiment `{}`: this cache has no run record of `{}`",
                            exp.name, node.name
                        ),
                        help: "`cegraph pull` fetches it from a remote, or re-run the experiment"
                            .into(),
                    });
                }
            }
        }
        Source::Revision { lock, .. } => match lock.nodes.get(&node.name) {
            Some(entry) => entry.outs.clone(),
            None => return Ok(None),
        },
    };
    cached_bytes(
        store,
        node,
        file,
        &outputs,
        source.prefix().unwrap_or("workspace"),
    )
    .map(Some)
}

/// The bytes of `file` among `outputs` (a run record's or a lock entry's), from the cache,
/// checked against their hash.
fn cached_bytes(
    store: &Store,
    node: &Node,
    file: &str,
    outputs: &[OutputRecord],
    at: &str,
) -> Result<Vec<u8>, PlotError> {
    let decls: Vec<crate::kind::OutputDecl> = outputs
        .iter()
        .map(|o| crate::kind::OutputDecl {
            path: o.path.clone(),
            cached: o.cached,
        })
        .collect();
    let Some(holder) = holding_output(&decls, file) else {
        return Err(missing_output(
            at,
            file,
            node,
            "does not list it among its outputs",
        ));
    };
    let record = outputs
        .iter()
        .find(|o| o.path == holder.path)
        .expect("found above");
    let hash = if record.dir {
        let rel = file[record.path.len()..].trim_start_matches('/');
        let entries = store.tree(&record.hash).ok_or_else(|| {
            missing_output(
                at,
                file,
                node,
                "is not in this cache (its directory listing is missing)",
            )
        })?;
        match entries.into_iter().find(|e| e.rel == rel) {
            Some(e) => e.hash,
            None => {
                return Err(missing_output(
                    at,
                    file,
                    node,
                    "is not in its output directory",
                ));
            }
        }
    } else {
        record.hash
    };
    let bytes = std::fs::read(store.object_path(&hash))
        .map_err(|_| missing_output(at, file, node, "is not in this cache"))?;
    if Hash::of_bytes(&bytes) != hash {
        return Err(missing_output(
            at,
            file,
            node,
            "is damaged in this cache (its bytes do not match their hash)",
        ));
    }
    Ok(bytes)
}

fn missing_output(at: &str, file: &str, node: &Node, why: &str) -> PlotError {
    PlotError::Missing {
        message: format!("{at}: `{file}` of `{}` {why}", node.name),
        help: "`cegraph pull` fetches a revision's outputs from a remote; or check out that \
               revision and `cegraph run` it"
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::OutputDecl;

    fn node(action: Action, outs: &[&str]) -> Node {
        let outs: Vec<OutputDecl> = outs
            .iter()
            .map(|p| OutputDecl {
                path: p.to_string(),
                cached: true,
            })
            .collect();
        let mut n: Node = serde_json::from_value(serde_json::json!({
            "name": "train_s2", "stage": "train_s2", "matrix": [], "action": {"Cmd": ""},
            "params": {}, "env": {}, "deps": [], "upstream": [], "outs": outs,
            "out_dir": "out/train_s2", "metrics": null,
            "resources": {"cpus": 1, "gpus": 0}, "line_col": [1, 1],
        }))
        .unwrap();
        n.action = action;
        n
    }

    #[test]
    fn train_curve_decl_resolves_to_the_nodes_curve_csv() {
        const CURVES: [CurveDecl; 1] = [CurveDecl {
            file: "curve.csv",
            x: &["step", "tokens", "flops"],
            y: &["val_loss", "train_loss"],
        }];
        let kind = Action::Kind {
            name: "train".into(),
            fingerprint: Hash::of_bytes(b""),
            worker: true,
        };
        let n = node(
            kind,
            &["out/train_s2/model.safetensors", "out/train_s2/curve.csv"],
        );
        let decls = plots_from_curves(&n, &CURVES);
        assert_eq!(
            decls,
            [PlotDecl {
                file: "out/train_s2/curve.csv".into(),
                x: "step".into(),
                y: vec!["val_loss".into(), "train_loss".into()],
                log_x: false,
                log_y: false,
            }]
        );
        // The real train kind declares the same curve.
        let catalog = crate::stages::catalog();
        assert_eq!(node_plots(&n, &catalog), decls);
        // A node without the file declares nothing.
        assert!(plots_from_curves(&node(n.action.clone(), &["out/a.csv"]), &CURVES).is_empty());
    }

    #[test]
    fn a_cmd_stage_without_plots_has_none_and_plots_entry_wins() {
        let mut n = node(Action::Cmd("true".into()), &["out/loss.csv"]);
        assert!(node_plots(&n, &Catalog::new()).is_empty());
        n.plots = vec![PlotDecl {
            file: "out/loss.csv".into(),
            x: "epoch".into(),
            y: vec!["loss".into()],
            log_x: false,
            log_y: true,
        }];
        assert_eq!(node_plots(&n, &Catalog::new()), n.plots);
    }

    #[test]
    fn overlays_are_named_by_y_and_by_x_when_shared() {
        let o = |x: &str, y: &str| Overlay {
            name: String::new(),
            x: x.into(),
            y: y.into(),
            log_x: false,
            log_y: false,
            lines: vec![],
        };
        let mut v = vec![
            o("step", "val loss"),
            o("flops", "val loss"),
            o("step", "acc"),
        ];
        name_overlays(&mut v);
        let names: Vec<&str> = v.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["val_loss-vs-step", "val_loss-vs-flops", "acc"]);
    }
}
