//! Pipeline files: parse (with positions), validate, expand matrices and
//! interpolate `${...}` into a flat list of resolved [`Node`]s.

pub mod edit;
pub mod interp;
mod lookup;
mod matrix;
pub mod memo;
pub mod model;
pub mod overrides;
pub mod params_file;
mod paths;
pub mod plots;
pub mod remotes;
pub mod shell;
#[cfg(test)]
mod shell_fuzz;
pub mod yaml;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{IoContext, Result, SourceFile};
use crate::kind::{Catalog, OutputDecl, Params};
use interp::{matrix_label, parse_filter};
use matrix::default_out_dir;
pub use matrix::node_name;
use model::{At, PipelineFile, Resources, SlurmSettings, StageSpec};
pub use paths::{escapes_via_symlink, normalize_inside};
use paths::{normalize_dep, owner_of};

/// What a node does when it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Action {
    /// `sh -c` this command line in the workspace root.
    Cmd(String),
    /// A built-in kind, with the fingerprint of its code ([`crate::kind::StageKind::fingerprint`])
    /// and whether it runs in `cegraph-worker` (libtorch).
    Kind {
        name: String,
        fingerprint: crate::hash::Hash,
        worker: bool,
    },
}

/// One runnable unit: a stage, or one combination of a matrix stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Node {
    /// `prepare`, or `train[scale=s2,variant=rope,seed=1]`.
    pub name: String,
    pub stage: String,
    /// Matrix values in declaration order (empty for a plain stage).
    pub matrix: Vec<(String, Value)>,
    pub action: Action,
    pub params: Params,
    pub env: BTreeMap<String, String>,
    /// Plain file/directory deps, workspace-relative (they may point outside it).
    pub deps: Vec<String>,
    /// Indexes (into [`Pipeline::nodes`]) of the nodes whose outputs this one reads.
    pub upstream: Vec<usize>,
    pub outs: Vec<OutputDecl>,
    pub out_dir: String,
    pub metrics: Option<String>,
    /// `metrics: {file, columns}`: the metrics kept from the file (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics_columns: Vec<String>,
    /// Params read per key from files (`params_files:`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file_params: Vec<params_file::FileParams>,
    pub resources: Resources,
    /// Series for `cegraph plots` (`plots:`); not part of the key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plots: Vec<plots::PlotDecl>,
    /// Where the stage is defined, for error messages.
    pub line_col: (u64, u64),
    /// Where each of `outs` (then each plain dep) is written in the file, for error messages;
    /// may be shorter than `outs` (then the stage's position stands in).
    #[serde(default)]
    pub outs_at: Vec<(u64, u64)>,
    #[serde(default)]
    pub deps_at: Vec<(u64, u64)>,
    /// Where the `deps:` entry that makes each of `upstream` one is written.
    #[serde(default)]
    pub upstream_at: Vec<(u64, u64)>,
}

/// A loaded pipeline.
pub struct Pipeline {
    pub name: String,
    /// The pipeline file.
    pub path: PathBuf,
    /// Absolute workspace root; every relative path is resolved against it.
    pub workspace: PathBuf,
    pub source: SourceFile,
    pub nodes: Vec<Node>,
    /// Stage name → its nodes' indexes, in declaration order.
    pub stages: IndexMap<String, Vec<usize>>,
    /// The file's `slurm:` block (defaults when absent).
    pub slurm: SlurmSettings,
    /// Remote caches by name (`remotes:`).
    pub remotes: IndexMap<String, remotes::RemoteDecl>,
    by_name: HashMap<String, usize>,
}

impl Pipeline {
    /// `pipelines/demo.yaml` → `pipelines/demo.lock`.
    pub fn lock_path(&self) -> PathBuf {
        self.path.with_extension("lock")
    }

    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// Everything needed to rebuild this pipeline elsewhere (a Slurm job) without its file,
    /// which may be edited while jobs are queued.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            name: self.name.clone(),
            path: self.path.clone(),
            text: self.source.text.to_string(),
            workspace: self.workspace.clone(),
            nodes: self.nodes.clone(),
            stages: self.stages.clone(),
            slurm: self.slurm.clone(),
            remotes: self.remotes.clone(),
        }
    }

    pub fn from_snapshot(s: Snapshot) -> Pipeline {
        Pipeline {
            name: s.name,
            source: SourceFile::new(&s.path, s.text),
            path: s.path,
            workspace: s.workspace,
            by_name: index_by_name(&s.nodes),
            nodes: s.nodes,
            stages: s.stages,
            slurm: s.slurm,
            remotes: s.remotes,
        }
    }
}

/// A resolved pipeline as data (see [`Pipeline::snapshot`]).
#[derive(Serialize, Deserialize)]
pub struct Snapshot {
    name: String,
    path: PathBuf,
    text: String,
    workspace: PathBuf,
    nodes: Vec<Node>,
    stages: IndexMap<String, Vec<usize>>,
    slurm: SlurmSettings,
    remotes: IndexMap<String, remotes::RemoteDecl>,
}

fn index_by_name(nodes: &[Node]) -> HashMap<String, usize> {
    nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.clone(), i))
        .collect()
}

/// A pipeline resolved from its file: everything [`Pipeline`] holds but the file itself.
#[derive(Serialize, Deserialize)]
struct Resolved {
    name: String,
    workspace: PathBuf,
    /// `workspace:` was given in the file (else it was found from marker files).
    explicit_workspace: bool,
    nodes: Vec<Node>,
    stages: IndexMap<String, Vec<usize>>,
    slurm: SlurmSettings,
    remotes: IndexMap<String, remotes::RemoteDecl>,
    /// The params files read, with the hash of their bytes: a memoised resolution is used only
    /// while they are unchanged.
    #[serde(default)]
    params_files: Vec<(PathBuf, crate::hash::Hash)>,
}

/// Read and resolve a pipeline file. Resolution is a pure function of the file's text,
/// its location and the kinds' fingerprints, so it is memoised (see [`memo`]): a large
/// pipeline is parsed once, not at every `run` and `status`.
pub fn load(path: &Path, catalog: &Catalog) -> Result<Pipeline> {
    load_overridden(path, catalog, &[])
}

/// [`load`] with `-S` overrides set on the parsed file (see [`overrides`]).
pub fn load_overridden(
    path: &Path,
    catalog: &Catalog,
    overrides: &[overrides::Override],
) -> Result<Pipeline> {
    let src = yaml::read(path)?;
    let abs = std::path::absolute(path).at(path)?;
    let memo_key = if overrides.is_empty() {
        memo::key(&abs, &src.text, catalog)
    } else {
        // The overrides are part of what resolution reads.
        let o = serde_json::to_string(overrides).expect("overrides serialise");
        memo::key(&abs, &format!("{}\0-S {o}", src.text), catalog)
    };
    let resolved = match memo::get::<Resolved>(&memo_key)
        .filter(|r| r.explicit_workspace || r.workspace == find_workspace(&abs))
        .filter(|r| params_file::unchanged(&r.params_files))
    {
        Some(hit) => hit,
        None => {
            let r = resolve_file(path, &abs, &src, catalog, overrides)?;
            memo::put(&memo_key, &r);
            r
        }
    };
    Ok(Pipeline {
        name: resolved.name,
        path: path.to_path_buf(),
        workspace: resolved.workspace,
        source: src,
        by_name: index_by_name(&resolved.nodes),
        nodes: resolved.nodes,
        stages: resolved.stages,
        slurm: resolved.slurm,
        remotes: resolved.remotes,
    })
}

fn resolve_file(
    path: &Path,
    abs: &Path,
    src: &SourceFile,
    catalog: &Catalog,
    overrides: &[overrides::Override],
) -> Result<Resolved> {
    let mut file = yaml::parse(src)?;
    let file_overrides = overrides::apply(&mut file, overrides)?;
    let workspace = match &file.workspace {
        Some(w) => {
            let dir = abs.parent().unwrap_or(Path::new("/")).join(w.value());
            std::fs::canonicalize(&dir).map_err(|e| {
                src.error(
                    w.line_col(),
                    format!("workspace `{}` cannot be opened: {e}", w.value()),
                    Some("give a directory relative to this file".into()),
                )
            })?
        }
        None => find_workspace(abs),
    };
    let name = file.name.clone().unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "pipeline".into())
    });
    let explicit_workspace = file.workspace.is_some();
    let slurm = file
        .slurm
        .as_ref()
        .map(|s| s.value().clone())
        .unwrap_or_default();
    let remotes = remotes::resolve(src, &file.remotes)?;
    let resolver = Resolver {
        src,
        catalog,
        files: params_file::Reader::new(&workspace, &file_overrides),
    };
    let (nodes, stages) = resolver.resolve(file)?;
    let params_files = resolver.files.finish()?;
    Ok(Resolved {
        params_files,
        name,
        workspace,
        explicit_workspace,
        nodes,
        stages,
        slurm,
        remotes,
    })
}

/// The nearest ancestor holding `cegraph.toml` or `.git`; else the file's own directory.
fn find_workspace(pipeline: &Path) -> PathBuf {
    let dir = pipeline.parent().unwrap_or(Path::new("/"));
    let found = dir
        .ancestors()
        .find(|d| d.join("cegraph.toml").exists() || d.join(".git").exists());
    let root = found.unwrap_or(dir);
    std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf())
}

/// Stage name → its nodes' indexes, in declaration order.
type StageIndex = IndexMap<String, Vec<usize>>;

/// A string with the 1-based line and column it came from.
type Located = (String, (u64, u64));

/// Matrix values of one node plus what interpolation may read for it.
struct Scope<'a> {
    vars: &'a IndexMap<String, Value>,
    matrix: &'a [(String, Value)],
    params: Option<&'a Params>,
    /// Params-file values as a tree (`${params.train.lr}`).
    file_params: Option<&'a Value>,
    node: Option<NodeScope<'a>>,
}

/// The parts of a node that only cmd interpolation sees.
struct NodeScope<'a> {
    node: &'a Node,
    nodes: &'a [Node],
    stages: &'a IndexMap<String, Vec<usize>>,
    /// All dep paths: plain deps and upstream outputs, in `deps:` order.
    dep_paths: &'a [String],
}

/// What a `${...}` expression stands for.
enum Looked {
    Value(Value),
    /// Paths: shell-quoted when spliced into a command.
    Paths(Vec<String>),
    /// Upstream outputs: like paths, and the reference makes those nodes upstream.
    StageOuts(Vec<usize>, Vec<String>),
}

struct Resolver<'a> {
    src: &'a SourceFile,
    catalog: &'a Catalog,
    files: params_file::Reader<'a>,
}

impl Resolver<'_> {
    fn err<T>(&self, at: (u64, u64), msg: impl Into<String>, help: Option<&str>) -> Result<T> {
        Err(self.src.error(at, msg, help.map(String::from)))
    }

    fn resolve(&self, file: PipelineFile) -> Result<(Vec<Node>, StageIndex)> {
        let vars = self.resolve_vars(&file.vars)?;
        if file.stages.is_empty() {
            return self.err(
                (1, 1),
                "the pipeline has no stages",
                Some("add a `stages:` mapping"),
            );
        }
        let mut nodes: Vec<Node> = Vec::new();
        let mut stages: IndexMap<String, Vec<usize>> = IndexMap::new();
        // Deps are classified once every stage's nodes exist (a dep may name a later stage).
        let mut raw_deps: Vec<Vec<(String, (u64, u64))>> = Vec::new();
        let mut cmd_templates: Vec<Option<&At<String>>> = Vec::new();
        for (stage_name, stage) in &file.stages {
            let at = stage.line_col();
            let stage = stage.value();
            if !valid_name(stage_name) {
                return self.err(
                    at,
                    format!("stage name `{stage_name}` may only use letters, digits, `_` and `-`"),
                    None,
                );
            }
            let combos = self.expand_matrix(stage_name, stage, &vars, at)?;
            let mut indexes = Vec::new();
            for matrix in combos {
                let (node, deps) = self.resolve_node(stage_name, stage, &vars, matrix, at)?;
                indexes.push(nodes.len());
                nodes.push(node);
                raw_deps.push(deps);
                cmd_templates.push(stage.cmd.as_ref());
            }
            stages.insert(stage_name.clone(), indexes);
        }
        self.check_outputs(&nodes)?;
        let out_owner: HashMap<String, usize> = nodes
            .iter()
            .enumerate()
            .flat_map(|(i, n)| n.outs.iter().map(move |o| (o.path.clone(), i)))
            .collect();
        // Resolve deps to paths and upstream nodes.
        let mut all_dep_paths = Vec::with_capacity(nodes.len());
        for (i, deps) in raw_deps.iter().enumerate() {
            let mut dep_paths = Vec::new();
            let mut upstream = Vec::new();
            let mut upstream_at = Vec::new();
            let mut plain = Vec::new();
            let mut plain_at = Vec::new();
            for (dep, at) in deps {
                match self.stage_ref(dep, &stages, &nodes, *at)? {
                    Some(selected) => {
                        for j in selected {
                            if j == i {
                                return self.err(*at, "a stage cannot depend on itself", None);
                            }
                            upstream.push(j);
                            upstream_at.push(*at);
                            dep_paths.extend(nodes[j].outs.iter().map(|o| o.path.clone()));
                        }
                    }
                    None => {
                        let path = normalize_dep(dep);
                        if let Some(j) = owner_of(&out_owner, &path) {
                            if j != i {
                                upstream.push(j);
                                upstream_at.push(*at);
                            }
                        } else {
                            plain.push(path.clone());
                            plain_at.push(*at);
                        }
                        dep_paths.push(path);
                    }
                }
            }
            nodes[i].deps = plain;
            nodes[i].deps_at = plain_at;
            nodes[i].upstream = upstream;
            nodes[i].upstream_at = upstream_at;
            all_dep_paths.push(dep_paths);
        }
        // Interpolate commands last: they may read every node's outputs.
        for i in 0..nodes.len() {
            if let Some(tpl) = cmd_templates[i] {
                let (cmd, extra) = {
                    let node = &nodes[i];
                    let tree = params_file::tree_of(&node.file_params);
                    let scope = Scope {
                        vars: &vars,
                        matrix: &node.matrix,
                        params: Some(&node.params),
                        file_params: Some(&tree),
                        node: Some(NodeScope {
                            node,
                            nodes: &nodes,
                            stages: &stages,
                            dep_paths: &all_dep_paths[i],
                        }),
                    };
                    self.interpolate_cmd(tpl, &scope)?
                };
                nodes[i].action = Action::Cmd(cmd);
                let at = tpl.line_col();
                for j in extra.into_iter().filter(|&j| j != i) {
                    nodes[i].upstream.push(j);
                    nodes[i].upstream_at.push(at);
                }
            }
            // One edge per upstream node, placed at the first entry that made it.
            let node = &mut nodes[i];
            let mut pairs: Vec<(usize, (u64, u64))> = node
                .upstream
                .iter()
                .copied()
                .zip(node.upstream_at.iter().copied())
                .collect();
            pairs.sort_by_key(|&(j, _)| j);
            pairs.dedup_by_key(|&mut (j, _)| j);
            (node.upstream, node.upstream_at) = pairs.into_iter().unzip();
        }
        Ok((nodes, stages))
    }

    fn resolve_vars(&self, raw: &IndexMap<String, At<Value>>) -> Result<IndexMap<String, Value>> {
        let mut vars = IndexMap::new();
        for (name, v) in raw {
            if !valid_name(name) {
                return self.err(
                    v.line_col(),
                    format!("var name `{name}` may only use letters, digits, `_` and `-`"),
                    None,
                );
            }
            let scope = Scope {
                vars: &vars,
                matrix: &[],
                params: None,
                file_params: None,
                node: None,
            };
            let value = self.interpolate_value(v.value(), &scope, v.line_col())?;
            vars.insert(name.clone(), value);
        }
        Ok(vars)
    }

    fn resolve_node(
        &self,
        stage_name: &str,
        stage: &StageSpec,
        vars: &IndexMap<String, Value>,
        matrix: Vec<(String, Value)>,
        at: (u64, u64),
    ) -> Result<(Node, Vec<Located>)> {
        let name = node_name(stage_name, &matrix);
        let file_params = self.read_params_files(&stage.params_files)?;
        let tree = params_file::tree_of(&file_params);
        let base = Scope {
            vars,
            matrix: &matrix,
            params: None,
            file_params: (!file_params.is_empty()).then_some(&tree),
            node: None,
        };
        let mut params = Params::new();
        for (k, v) in &stage.params {
            params.insert(
                k.clone(),
                self.interpolate_value(v.value(), &base, v.line_col())?,
            );
        }
        let scope = Scope {
            params: Some(&params),
            file_params: Some(&tree),
            ..base
        };
        let out_dir = match &stage.out_dir {
            Some(d) => self.checked_out_path(&self.interpolate_str(d, &scope)?, d.line_col())?,
            None => default_out_dir(stage_name, &matrix),
        };
        // A kind's outputs sit in its out_dir: point at that, else at the stage.
        let mut outs_at = stage
            .out_dir
            .iter()
            .map(|d| d.line_col())
            .collect::<Vec<_>>();
        let (action, outs) = match (&stage.kind, &stage.cmd) {
            (Some(_), Some(c)) => {
                return self.err(
                    c.line_col(),
                    format!("stage `{stage_name}` has both `kind` and `cmd`"),
                    Some("a stage is either a built-in kind or a shell command: keep one"),
                );
            }
            (Some(kind), None) => {
                let Some(k) = self.catalog.get(kind.value()) else {
                    let known: Vec<_> = self.catalog.names().collect();
                    return self.err(
                        kind.line_col(),
                        format!("unknown stage kind `{}`", kind.value()),
                        Some(&if known.is_empty() {
                            "this build has no built-in kinds; use `cmd`".to_string()
                        } else {
                            format!("known kinds: {}", known.join(", "))
                        }),
                    );
                };
                if let Err((param, msg)) = k.check_params(&params) {
                    let pos = stage
                        .params
                        .get(&param)
                        .map(|p| p.line_col())
                        .unwrap_or(kind.line_col());
                    return self.err(pos, format!("{name}: {msg}"), None);
                }
                if !stage.outs.is_empty() {
                    return self.err(
                        stage.outs[0].line_col(),
                        format!(
                            "kind `{}` declares its own outputs; remove `outs`",
                            kind.value()
                        ),
                        Some("set `out_dir` to choose where they go"),
                    );
                }
                let action = Action::Kind {
                    name: kind.value().clone(),
                    fingerprint: crate::hash::Hash(k.fingerprint()),
                    worker: k.runs_in_worker(),
                };
                (action, k.outputs(&params, &out_dir))
            }
            (None, Some(_)) => {
                let mut outs = Vec::new();
                outs_at = stage.outs.iter().map(|o| o.line_col()).collect();
                for o in &stage.outs {
                    let path = self.interpolate_out(o, &scope, &out_dir)?;
                    outs.push(OutputDecl { path, cached: true });
                }
                // The command is interpolated once every node's outputs are known.
                (Action::Cmd(String::new()), outs)
            }
            (None, None) => {
                return self.err(
                    at,
                    format!("stage `{stage_name}` has neither `kind` nor `cmd`"),
                    Some("add `cmd: <shell command>` or `kind: <built-in kind>`"),
                );
            }
        };
        let mut env = BTreeMap::new();
        for (k, v) in &stage.env {
            env.insert(k.clone(), self.interpolate_str(v, &scope)?);
        }
        let mut deps = Vec::new();
        for d in &stage.deps {
            deps.push((self.interpolate_str(d, &scope)?, d.line_col()));
        }
        let (metrics, metrics_columns) = match &stage.metrics {
            Some(m) => {
                let file = At(serde_saphyr::Spanned {
                    value: m.value().file().to_string(),
                    referenced: m.0.referenced,
                    defined: m.0.defined,
                });
                let p = self.interpolate_out(&file, &scope, &out_dir)?;
                if !outs.iter().any(|o| o.path == p) {
                    return self.err(
                        m.line_col(),
                        format!("metrics file `{p}` is not one of the stage's `outs`"),
                        Some("list it under `outs` too"),
                    );
                }
                match m.value().checked_columns() {
                    Ok(columns) => (Some(p), columns),
                    Err((msg, help)) => return self.err(m.line_col(), msg, Some(help)),
                }
            }
            None => (None, Vec::new()),
        };
        let plots = self.resolve_plots(&stage.plots, &scope, &out_dir, &outs)?;
        let node = Node {
            name,
            stage: stage_name.to_string(),
            matrix,
            action,
            params,
            env,
            deps: Vec::new(),
            upstream: Vec::new(),
            outs,
            out_dir,
            metrics,
            metrics_columns,
            file_params,
            resources: match &stage.resources {
                Some(r) => self.checked_resources(r.value(), r.line_col())?,
                None => Resources::default(),
            },
            plots,
            line_col: at,
            outs_at,
            deps_at: Vec::new(),
            upstream_at: Vec::new(),
        };
        Ok((node, deps))
    }

    fn checked_resources(&self, r: &Resources, at: (u64, u64)) -> Result<Resources> {
        if let Some(m) = &r.mem
            && !model::valid_mem(m)
        {
            return self.err(
                at,
                format!("resources.mem `{m}` is not a memory size"),
                Some("write megabytes or a number with one unit: 512M, 16G"),
            );
        }
        if let Some(t) = &r.time
            && !model::valid_time(t)
        {
            return self.err(
                at,
                format!("resources.time `{t}` is not a Slurm time limit"),
                Some("write minutes, HH:MM:SS or D-HH:MM:SS, e.g. 90, 02:00:00, 1-12:00:00"),
            );
        }
        Ok(r.clone())
    }

    fn interpolate_out(&self, o: &At<String>, scope: &Scope, out_dir: &str) -> Result<String> {
        // `${out_dir}` is available in outs before the node exists.
        let text = o.value().replace("${out_dir}", out_dir);
        let tmp = At(serde_saphyr::Spanned {
            value: text,
            referenced: o.0.referenced,
            defined: o.0.defined,
        });
        let path = self.interpolate_str(&tmp, scope)?;
        self.checked_out_path(&path, o.line_col())
    }

    /// An output path must stay inside the workspace.
    fn checked_out_path(&self, path: &str, at: (u64, u64)) -> Result<String> {
        // Symlinks are checked when the node runs: they may change after loading.
        match normalize_inside(path) {
            Some(p) => Ok(p),
            None => self.err(
                at,
                format!("output `{path}` is outside the workspace"),
                Some("write outputs to a relative path inside the workspace, without `..`"),
            ),
        }
    }

    fn check_outputs(&self, nodes: &[Node]) -> Result<()> {
        let mut owner: HashMap<&str, &Node> = HashMap::new();
        for n in nodes {
            for o in &n.outs {
                if let Some(prev) = owner.insert(o.path.as_str(), n) {
                    return self.err(
                        n.line_col,
                        format!("`{}` and `{}` both write `{}`", prev.name, n.name, o.path),
                        Some("give each node its own output path, e.g. with ${out_dir} or ${matrix.KEY}"),
                    );
                }
            }
        }
        Ok(())
    }

    /// `train` or `train[variant=rope]` → the selected nodes; `None` for a plain path.
    fn stage_ref(
        &self,
        dep: &str,
        stages: &IndexMap<String, Vec<usize>>,
        nodes: &[Node],
        at: (u64, u64),
    ) -> Result<Option<Vec<usize>>> {
        if dep.starts_with("./") || dep.starts_with('/') {
            return Ok(None);
        }
        let (name, filter) = match dep.split_once('[') {
            Some((n, rest)) if rest.ends_with(']') => (n, Some(&rest[..rest.len() - 1])),
            _ => (dep, None),
        };
        let Some(members) = stages.get(name) else {
            return Ok(None);
        };
        let Some(filter) = filter else {
            return Ok(Some(members.clone()));
        };
        let pairs =
            parse_filter(filter).or_else(|e| self.err(at, format!("in `{dep}`: {e}"), None))?;
        self.select(name, members, nodes, &pairs, at).map(Some)
    }

    fn select(
        &self,
        stage: &str,
        members: &[usize],
        nodes: &[Node],
        pairs: &[(String, String)],
        at: (u64, u64),
    ) -> Result<Vec<usize>> {
        let axes: Vec<&str> = nodes[members[0]]
            .matrix
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        for (k, _) in pairs {
            if !axes.contains(&k.as_str()) {
                return self.err(
                    at,
                    format!("`{stage}` has no matrix key `{k}`"),
                    Some(&if axes.is_empty() {
                        format!("`{stage}` has no matrix: name it without `[...]`")
                    } else {
                        format!("its keys are: {}", axes.join(", "))
                    }),
                );
            }
        }
        let chosen: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&i| {
                pairs.iter().all(|(k, v)| {
                    nodes[i]
                        .matrix
                        .iter()
                        .any(|(mk, mv)| mk == k && &matrix_label(mv) == v)
                })
            })
            .collect();
        if chosen.is_empty() {
            let f: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            return self.err(
                at,
                format!("no node of `{stage}` matches [{}]", f.join(",")),
                Some("check the values against the stage's matrix"),
            );
        }
        Ok(chosen)
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}
