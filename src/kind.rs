//! The one interface every built-in stage kind implements.
//!
//! A leaf module: the spec layer asks a kind what it will produce (so the graph
//! and keys are known before anything runs) and the executor asks it to run.
//! Kinds are registered in a [`Catalog`]; `cmd` stages need no kind at all.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Each kind's fingerprint (`src/hash/source_fingerprint.rs`, run by build.rs), one
/// `[u8; 32]` per kind module (`TRAIN`, `REPORT`, …), and `BUILD`, the fingerprint of the whole
/// build (all of `src/`, `Cargo.toml`, `Cargo.lock`).
pub mod fingerprints {
    include!(concat!(env!("OUT_DIR"), "/fingerprints.rs"));
}

/// A line a node prints to its output that starts with this sets the node's status in the
/// progress display (`::progress step 250/2000 val 1.93`): the `train` kind prints one at every
/// evaluation, and a `cmd` stage may print its own. Here, in the kinds' interface, so a kind
/// that prints it reaches no engine code (and its fingerprint covers none).
pub const PROGRESS_PREFIX: &str = "::progress ";

/// A stage's resolved `params` (after `${...}` interpolation), keys sorted.
pub type Params = BTreeMap<String, Value>;

/// One file or directory a node produces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputDecl {
    /// Workspace-relative path.
    pub path: String,
    /// `false` for inputs that a node only points at (a `source` over a user's corpus):
    /// the engine neither deletes them before running nor copies them into the cache.
    pub cached: bool,
}

/// A series a kind's nodes write, so `cegraph plots show NODE` needs no `plots:` entry: a
/// CSV among the node's outputs (by file name), the columns that may serve as x (the first
/// is the default) and the y columns drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurveDecl {
    pub file: &'static str,
    pub x: &'static [&'static str],
    pub y: &'static [&'static str],
}

/// One upstream node whose outputs a stage consumes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Input {
    /// Upstream stage name, e.g. `train`.
    pub stage: String,
    /// Upstream node name, e.g. `train[scale=s2,variant=rope,seed=1]`.
    pub node: String,
    /// The upstream node's matrix values, in declaration order.
    pub matrix: Vec<(String, Value)>,
    /// Absolute paths of the upstream node's outputs, in declaration order.
    pub outs: Vec<PathBuf>,
}

/// Everything a kind may read while running. Paths are absolute.
pub struct StageContext<'a> {
    pub node: &'a str,
    pub params: &'a Params,
    pub matrix: &'a [(String, Value)],
    pub inputs: &'a [Input],
    /// Plain file/directory deps (not stage outputs).
    pub deps: &'a [PathBuf],
    /// The node's own output directory; exists and is empty when `run` starts.
    pub out_dir: &'a Path,
    /// Absolute paths of [`StageKind::outputs`], in the same order.
    pub outs: &'a [PathBuf],
    pub workspace: &'a Path,
    /// CPU threads the scheduler granted this node (`resources.cpus`).
    pub threads: usize,
    /// GPUs the scheduler granted this node (`resources.gpus`).
    pub gpus: usize,
    /// The node's log file.
    pub log: &'a mut dyn Write,
}

/// What a successful run reports besides its output files.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StageOutcome {
    /// Free-form numbers (final loss, tokens/s, …), stored in the run record.
    pub metrics: BTreeMap<String, Value>,
}

/// A run that failed. The message is shown to the user with the node's log path.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StageFailure(pub String);

impl StageFailure {
    pub fn new(msg: impl Into<String>) -> Self {
        StageFailure(msg.into())
    }
}

/// A built-in stage kind (`source`, `tokenize`, `train`, …).
pub trait StageKind: Send + Sync {
    /// The name used as `kind:` in a pipeline.
    fn name(&self) -> &'static str;
    /// The blake3 of the code that implements the kind (its module, every module it reaches,
    /// the crate versions it uses; computed by build.rs): part of every key, so a new build
    /// whose kind code changed never serves the old build's results.
    fn fingerprint(&self) -> [u8; 32];
    /// Runs in `cegraph-worker` (links libtorch): its key also covers the libtorch version,
    /// the resolved device and the thread count.
    fn runs_in_worker(&self) -> bool {
        false
    }
    /// Validate `params` when the pipeline is loaded. `Err` is `(param name or "", message
    /// saying what is wrong and how to fix it)`.
    fn check_params(&self, params: &Params) -> Result<(), (String, String)>;
    /// The outputs this kind will write for these params, under `out_dir` (workspace-relative).
    fn outputs(&self, params: &Params, out_dir: &str) -> Vec<OutputDecl>;
    /// The curves its nodes write (for `cegraph plots`); none by default.
    fn curves(&self) -> &'static [CurveDecl] {
        &[]
    }
    /// Produce the outputs. Called in a child process of the scheduler, so a crash or an
    /// out-of-memory fails this node only.
    fn run(&self, ctx: &mut StageContext<'_>) -> Result<StageOutcome, StageFailure>;
}

/// The registered kinds, by name.
#[derive(Default)]
pub struct Catalog {
    kinds: BTreeMap<&'static str, Box<dyn StageKind>>,
}

impl Catalog {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register(&mut self, kind: Box<dyn StageKind>) {
        self.kinds.insert(kind.name(), kind);
    }

    pub fn get(&self, name: &str) -> Option<&dyn StageKind> {
        self.kinds.get(name).map(|k| k.as_ref())
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.kinds.keys().copied()
    }
}

/// Outputs named `names` inside `out_dir`, all cached: what most kinds' `outputs` return.
pub fn files_in(out_dir: &str, names: &[&str]) -> Vec<OutputDecl> {
    names
        .iter()
        .map(|f| OutputDecl {
            path: format!("{out_dir}/{f}"),
            cached: true,
        })
        .collect()
}

/// Read a typed param with a default, for kinds' `check_params`/`run`.
pub fn param_f64(params: &Params, name: &str, default: f64) -> Result<f64, (String, String)> {
    match params.get(name) {
        None => Ok(default),
        Some(v) => v.as_f64().ok_or_else(|| {
            (
                name.to_string(),
                format!("`{name}` must be a number, got {v}"),
            )
        }),
    }
}

/// Read a non-negative integer param with a default.
pub fn param_usize(params: &Params, name: &str, default: usize) -> Result<usize, (String, String)> {
    match params.get(name) {
        None => Ok(default),
        Some(v) => v.as_u64().map(|x| x as usize).ok_or_else(|| {
            (
                name.to_string(),
                format!("`{name}` must be a non-negative integer, got {v}"),
            )
        }),
    }
}

/// Read a string param with a default.
pub fn param_str<'p>(
    params: &'p Params,
    name: &str,
    default: &'p str,
) -> Result<&'p str, (String, String)> {
    match params.get(name) {
        None => Ok(default),
        Some(v) => v.as_str().ok_or_else(|| {
            (
                name.to_string(),
                format!("`{name}` must be a string, got {v}"),
            )
        }),
    }
}
