//! Running one node: a shell command, or a built-in kind in a child process
//! (`cegraph exec-node`), with its log, then storing its outputs and run record.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{IoContext, Result};
use crate::hash::{Hash, KeyInputs};
use crate::kind::{Catalog, Input, Params, StageContext, StageOutcome};
use crate::spec::{Action, Node, Pipeline, escapes_via_symlink};
use crate::store::{MetricsFrom, OutputRecord, RECORD_FORMAT, RunRecord, Store, remove_path};

/// Everything a kind's child process needs; written as JSON next to the cache.
#[derive(Debug, Serialize, Deserialize)]
pub struct KindJob {
    pub kind: String,
    pub node: String,
    pub params: Params,
    pub matrix: Vec<(String, Value)>,
    pub inputs: Vec<Input>,
    pub deps: Vec<PathBuf>,
    pub out_dir: PathBuf,
    pub outs: Vec<PathBuf>,
    pub workspace: PathBuf,
    pub threads: usize,
    pub gpus: usize,
    /// Where the child writes its [`StageOutcome`] as JSON.
    pub result: PathBuf,
    /// The kind fingerprint the node's key was computed with: a child built from other code
    /// refuses the job rather than produce outputs its key does not describe.
    #[serde(default)]
    pub fingerprint: Option<Hash>,
}

/// A node that did not produce its outputs.
#[derive(Debug)]
pub struct JobFailure {
    pub message: String,
    pub log: PathBuf,
}

pub struct JobRequest<'a> {
    pub pipeline: &'a Pipeline,
    pub node: &'a Node,
    pub inputs: KeyInputs,
    pub key: Hash,
    /// Upstream nodes with their outputs' workspace paths.
    pub upstream: Vec<Input>,
    pub threads: usize,
    pub gpus: usize,
    pub exe: &'a Path,
    /// Sees the node's output as it is written to the log (`run -v`).
    pub observer: &'a dyn super::Observer,
}

/// Run a node and record it. On failure nothing is recorded; the log stays.
pub fn run_node(store: &Store, req: JobRequest<'_>) -> std::result::Result<RunRecord, JobFailure> {
    let log = store.log_path(&req.key);
    // A log left by an earlier attempt at this key would pass for this run's.
    let _ = fs::remove_file(&log);
    // Every failure is written into the log, so the log path reported with it exists.
    let fail = |message: String| JobFailure {
        log: note_in_log(&log, &message),
        message,
    };
    let started_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let clock = Instant::now();
    prepare_outputs(req.pipeline, req.node).map_err(&fail)?;
    let check = |when: &str| inputs_unchanged(store, req.pipeline, &req.inputs, when);
    check("before this node started").map_err(&fail)?;
    let metrics = match &req.node.action {
        Action::Cmd(cmd) => run_cmd(store, &req, cmd, &log).map_err(&fail)?,
        Action::Kind { name, worker, .. } => {
            run_kind(store, &req, name, *worker, &log).map_err(&fail)?
        }
    };
    check("while this node ran").map_err(&fail)?;
    let outputs = store_outputs(store, req.pipeline, req.node).map_err(&fail)?;
    let mut metrics = metrics;
    let mut metrics_from = None;
    if let Some(m) = &req.node.metrics {
        let path = req.pipeline.workspace.join(m);
        let read = super::metrics::read_as(&path, m, &req.node.metrics_columns);
        let read = read.map_err(&fail)?;
        metrics_from = Some(MetricsFrom {
            file: m.clone(),
            columns: req.node.metrics_columns.clone(),
            names: read.keys().cloned().collect(),
        });
        metrics.extend(read);
    }
    let rec = RunRecord {
        format: RECORD_FORMAT,
        key: req.key,
        node: req.node.name.clone(),
        inputs: req.inputs,
        outputs,
        metrics,
        metrics_from,
        started_at,
        duration_s: clock.elapsed().as_secs_f64(),
        host: hostname(),
        // The version alone is always 0.1.0; the build fingerprint names the code.
        tool_version: format!(
            "{} build {}",
            env!("CARGO_PKG_VERSION"),
            Hash(crate::kind::fingerprints::BUILD).short()
        ),
    };
    store.write_record(&rec).map_err(|e| fail(e.to_string()))?;
    Ok(rec)
}

/// The files the key was computed from, read again: a node must neither run on nor be
/// recorded from bytes other than those its key names. Another process writing one of them
/// (a second pipeline with the same output path, an edit during the run) would otherwise have
/// its bytes cached under the old key. Unchanged files cost a stat (the stat cache).
fn inputs_unchanged(
    store: &Store,
    p: &Pipeline,
    inputs: &KeyInputs,
    when: &str,
) -> std::result::Result<(), String> {
    let upstream = inputs.upstream.values().flat_map(|outs| outs.iter());
    for (path, want) in inputs.deps.iter().chain(upstream) {
        let now = store
            .stat
            .hash_path(&p.workspace.join(path))
            .map_err(|e| format!("input `{path}` cannot be read {when}: {e}"))?;
        if now.hash != *want {
            return Err(format!(
                "input `{path}` changed {when} (blake3 {} in the key, {} now): another process \
                 wrote it (a second pipeline with the same output path, or an edit during the \
                 run); nothing was cached: rerun once it has finished",
                want.short(),
                now.hash.short()
            ));
        }
    }
    Ok(())
}

/// Clear stale outputs (so a failed command cannot leave old ones looking fresh) and
/// create the directories the node writes into.
fn prepare_outputs(p: &Pipeline, node: &Node) -> std::result::Result<(), String> {
    for o in &node.outs {
        // Checked now rather than at load: a symlink may appear between runs.
        if escapes_via_symlink(&p.workspace, &o.path) {
            return Err(format!(
                "output `{}` leads outside the workspace through a symlink; outputs must resolve inside the workspace",
                o.path
            ));
        }
    }
    prepare_dirs(p, node).map_err(|e| e.to_string())
}

fn prepare_dirs(p: &Pipeline, node: &Node) -> Result<()> {
    for o in node.outs.iter().filter(|o| o.cached) {
        let abs = p.workspace.join(&o.path);
        remove_path(&abs)?;
        if let Some(parent) = abs.parent() {
            fs::create_dir_all(parent).at(parent)?;
        }
    }
    if matches!(node.action, Action::Kind { .. }) {
        let dir = p.workspace.join(&node.out_dir);
        remove_path(&dir)?;
        fs::create_dir_all(&dir).at(&dir)?;
    }
    Ok(())
}

/// Append `cegraph: <message>` to a node's log (creating it); returns the log's path, or an
/// empty path when even that failed (then no path is shown that does not exist).
fn note_in_log(log: &Path, message: &str) -> PathBuf {
    let parent = log.parent().unwrap_or(Path::new("."));
    let written = fs::create_dir_all(parent).and_then(|()| {
        let mut f = fs::OpenOptions::new().create(true).append(true).open(log)?;
        writeln!(f, "cegraph: {message}")
    });
    match written {
        Ok(()) => log.to_path_buf(),
        Err(_) => PathBuf::new(),
    }
}

/// Run a child, in a process group of its own (see [`super::procs`]), with stdout and stderr
/// going to the node's log. The log file is created only when the child prints something (or
/// the node fails): most trivial nodes print nothing, and a file create is a large part of a
/// small node's cost.
fn run_logged(
    mut cmd: Command,
    node: &str,
    log: &Path,
    observer: &dyn super::Observer,
) -> std::result::Result<(), String> {
    let (mut reader, writer) = std::io::pipe().map_err(|e| e.to_string())?;
    let writer2 = writer.try_clone().map_err(|e| e.to_string())?;
    cmd.stdin(Stdio::null()).stdout(writer).stderr(writer2);
    let child = super::procs::spawn(&mut cmd, node).map_err(|e| {
        format!(
            "could not start `{}`: {e}",
            cmd.get_program().to_string_lossy()
        )
    })?;
    // Our copies of the pipe's write end must close, or the read below never ends.
    drop(cmd);
    let mut file: Option<fs::File> = None;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match std::io::Read::read(&mut reader, &mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if file.is_none() {
                    file = Some(create_log(log)?);
                }
                if let Some(f) = file.as_mut() {
                    std::io::Write::write_all(f, &buf[..n]).map_err(|e| e.to_string())?;
                }
                observer.output(node, &buf[..n]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    drop(file);
    let status = child.wait().map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(describe_exit(status))
    }
}

fn create_log(path: &Path) -> std::result::Result<fs::File, String> {
    let parent = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// `CEGRAPH_PARAMS_FILE`: the node's first params file, or its overridden copy written to a
/// temp dir (returned, to be dropped after the command).
fn params_file_env(
    store: &Store,
    req: &JobRequest<'_>,
    command: &mut Command,
) -> std::result::Result<Option<tempfile::TempDir>, String> {
    let Some(first) = req.node.file_params.first() else {
        return Ok(None);
    };
    let Some(text) = &first.overridden else {
        command.env(
            "CEGRAPH_PARAMS_FILE",
            req.pipeline.workspace.join(&first.file),
        );
        return Ok(None);
    };
    let dir = crate::store::tmp::dir_in(&store.tmp_dir()).map_err(|e| e.to_string())?;
    let path = dir.path().join(first.copy_name());
    fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    command.env("CEGRAPH_PARAMS_FILE", &path);
    Ok(Some(dir))
}

fn run_cmd(
    store: &Store,
    req: &JobRequest<'_>,
    cmd: &str,
    log: &Path,
) -> std::result::Result<BTreeMap<String, Value>, String> {
    // An absolute path: no PATH search per node.
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(cmd)
        .current_dir(&req.pipeline.workspace)
        .envs(&req.node.env)
        .env("CEGRAPH_NODE", &req.node.name)
        .env("CEGRAPH_OUT_DIR", &req.node.out_dir)
        .env("CEGRAPH_THREADS", req.threads.to_string())
        .env("OMP_NUM_THREADS", req.threads.to_string());
    // Held until the command ends: the overridden params copy lives in it.
    let _params_dir = params_file_env(store, req, &mut command)?;
    run_logged(command, &req.node.name, log, req.observer)?;
    Ok(BTreeMap::new())
}

fn run_kind(
    store: &Store,
    req: &JobRequest<'_>,
    kind: &str,
    worker: bool,
    log: &Path,
) -> std::result::Result<BTreeMap<String, Value>, String> {
    let ws = &req.pipeline.workspace;
    let staging = crate::store::tmp::dir_in(&store.tmp_dir()).map_err(|e| e.to_string())?;
    // The device the key was computed with (`auto` resolved when the plan was made), so the
    // worker never resolves it differently.
    let mut params = req.node.params.clone();
    // Likewise `precision` (whose `auto` depends on the device), for the kinds that have it.
    for resolved in ["device", "precision"] {
        if let Some(v) = req.inputs.runtime.get(resolved) {
            params.insert(resolved.into(), Value::String(v.clone()));
        }
    }
    let job = KindJob {
        kind: kind.to_string(),
        node: req.node.name.clone(),
        params,
        matrix: req.node.matrix.clone(),
        inputs: req.upstream.clone(),
        deps: req.node.deps.iter().map(|d| ws.join(d)).collect(),
        out_dir: ws.join(&req.node.out_dir),
        outs: req.node.outs.iter().map(|o| ws.join(&o.path)).collect(),
        workspace: ws.clone(),
        threads: req.threads,
        gpus: req.gpus,
        result: staging.path().join("result.json"),
        fingerprint: req.inputs.kind_fingerprint,
    };
    let job_path = staging.path().join("job.json");
    fs::write(&job_path, serde_json::to_vec(&job).expect("jobs serialise"))
        .map_err(|e| e.to_string())?;
    // Libtorch kinds run in `cegraph-worker`; the others in this binary, which computed the key.
    let exe = match worker.then(super::platform::worker_exe).flatten() {
        Some(w) => w,
        None => req.exe.to_path_buf(),
    };
    let mut command = Command::new(exe);
    command
        .arg("exec-node")
        .arg("--job")
        .arg(&job_path)
        .current_dir(ws)
        .envs(&req.node.env)
        .env("OMP_NUM_THREADS", req.threads.to_string());
    // The worker computes with the CPU kernels its key names, or not at all.
    let keyed_cpu = req.inputs.runtime.get("cpu").map(String::as_str);
    let flags = super::cpu_numerics::host_flags();
    let env = |n: &str| super::cpu_numerics::node_env(&req.node.env, n);
    if let Some(level) = super::cpu_numerics::worker_capability(keyed_cpu, &flags, &env)? {
        command.env("ATEN_CPU_CAPABILITY", level);
    }
    run_logged(command, &req.node.name, log, req.observer)?;
    let outcome: StageOutcome = fs::read(&job.result)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("the stage exited successfully but wrote no result")?;
    Ok(outcome.metrics)
}

/// How a command killed by SIGTERM is described: stopped from outside (an interrupt, a
/// cancelled or timed-out Slurm job), not failing on its own.
pub const TERMINATED: &str = "killed by signal 15";

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(9)) => "killed (signal 9; out of memory?)".into(),
        (None, Some(15)) => TERMINATED.into(),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => "failed".into(),
    }
}

/// Check every declared output exists, then copy it into the cache.
fn store_outputs(
    store: &Store,
    p: &Pipeline,
    node: &Node,
) -> std::result::Result<Vec<OutputRecord>, String> {
    let mut records = Vec::new();
    for o in &node.outs {
        let abs = p.workspace.join(&o.path);
        if !abs.exists() {
            return Err(format!("finished without writing its output `{}`", o.path));
        }
        if o.cached {
            records.push(
                store
                    .put_output(&p.workspace, &o.path)
                    .map_err(|e| e.to_string())?,
            );
        } else {
            let h = store
                .stat
                .hash_path(&abs)
                .map_err(|e| format!("{}: {e}", o.path))?;
            records.push(OutputRecord {
                path: o.path.clone(),
                hash: h.hash,
                size: h.size,
                dir: h.tree.is_some(),
                cached: false,
                executable: None,
            });
        }
    }
    Ok(records)
}

pub(crate) fn hostname() -> String {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into())
    })
    .clone()
}

/// The child side of a kind job (`cegraph exec-node --job FILE`): run the kind, write its
/// outcome. Returns the process exit code.
pub fn exec_kind_job(catalog: &Catalog, job_path: &Path) -> i32 {
    let job: KindJob = match fs::read(job_path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(j) => j,
        Err(e) => {
            eprintln!(
                "cegraph exec-node: cannot read job {}: {e}",
                job_path.display()
            );
            return 2;
        }
    };
    let Some(kind) = catalog.get(&job.kind) else {
        eprintln!(
            "cegraph exec-node: this build has no stage kind `{}`",
            job.kind
        );
        return 2;
    };
    if let Some(want) = job.fingerprint
        && want.0 != kind.fingerprint()
    {
        eprintln!(
            "cegraph exec-node: this binary's `{}` was built from other code than the cegraph that planned the node (kind fingerprint {} here, {} in the key); rebuild both (`./scripts/main.sh`)",
            job.kind,
            Hash(kind.fingerprint()).short(),
            want.short()
        );
        return 2;
    }
    let mut stdout = std::io::stdout();
    let mut ctx = StageContext {
        node: &job.node,
        params: &job.params,
        matrix: &job.matrix,
        inputs: &job.inputs,
        deps: &job.deps,
        out_dir: &job.out_dir,
        outs: &job.outs,
        workspace: &job.workspace,
        threads: job.threads,
        gpus: job.gpus,
        log: &mut stdout,
    };
    match kind.run(&mut ctx) {
        Ok(outcome) => {
            let bytes = serde_json::to_vec(&outcome).expect("outcomes serialise");
            if let Err(e) = fs::write(&job.result, bytes) {
                eprintln!("cegraph exec-node: cannot write result: {e}");
                return 2;
            }
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}
