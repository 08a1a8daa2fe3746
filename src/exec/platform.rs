//! Facts of this machine that change what a `cegraph-worker` (libtorch) kind produces: the
//! libtorch version the worker loads, the device `auto` resolves to and the thread count.
//! They are resolved when the plan is made — once per process, not per node — and go into
//! those nodes' keys ([`crate::hash::KeyInputs::runtime`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use crate::hash::{Hash, KeyHasher};
use crate::ml::train_config::Precision;
use crate::spec::{Node, memo};

/// What the worker reports about itself (`cegraph-worker identity`, which loads libtorch but
/// does not initialise CUDA).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorchPlatform {
    /// e.g. `2.11.0+cpu`; `unavailable` when there is no worker or it cannot start.
    pub libtorch: String,
    /// The loaded libtorch has CUDA kernels (`libtorch_cuda.so`).
    pub cuda_lib: bool,
}

static WORKER: OnceLock<PathBuf> = OnceLock::new();
static PLATFORM: OnceLock<TorchPlatform> = OnceLock::new();
static GPUS: OnceLock<usize> = OnceLock::new();

/// Use this binary as the worker (tests that run the engine in-process). Call before any
/// key of a worker kind is computed.
pub fn use_worker(path: &Path) {
    let _ = WORKER.set(path.to_path_buf());
}

/// The `cegraph-worker` binary: the one set with [`use_worker`], else the one beside this
/// executable.
pub fn worker_exe() -> Option<PathBuf> {
    if let Some(w) = WORKER.get() {
        return Some(w.clone());
    }
    let me = std::env::current_exe().ok()?;
    let worker = me.with_file_name("cegraph-worker");
    worker.exists().then_some(worker)
}

/// The worker's libtorch, asked once per process. The answer is memoised beside the spec
/// memo (a worker start loads libtorch: ~0.8 s, which `status` should not pay every time),
/// keyed by the worker binary and `LD_LIBRARY_PATH`, and trusted only while the libtorch
/// files it names are unchanged and still the first found on `LD_LIBRARY_PATH`.
pub fn torch_platform() -> &'static TorchPlatform {
    PLATFORM.get_or_init(|| match worker_exe() {
        Some(worker) => cached_probe(
            &worker,
            &ld_library_path(),
            &memo::get::<CachedIdentity>,
            &|k, v| memo::put(k, v),
        ),
        None => unavailable(),
    })
}

fn unavailable() -> TorchPlatform {
    TorchPlatform {
        libtorch: "unavailable".into(),
        cuda_lib: false,
    }
}

/// A memoised `cegraph-worker identity`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CachedIdentity {
    libtorch: String,
    cuda_lib: bool,
    libtorch_dir: String,
    /// Size and mtime of the files that identify that libtorch.
    stamp: Vec<String>,
}

type Get<'a> = &'a dyn Fn(&Hash) -> Option<CachedIdentity>;
type Put<'a> = &'a dyn Fn(&Hash, &CachedIdentity);

/// `LD_LIBRARY_PATH` as the loader sees it (an argument below, so tests do not depend on it).
fn ld_library_path() -> String {
    std::env::var("LD_LIBRARY_PATH").unwrap_or_default()
}

fn cached_probe(worker: &Path, ld: &str, get: Get<'_>, put: Put<'_>) -> TorchPlatform {
    let key = identity_key(worker, ld);
    if let Some(hit) = key
        .as_ref()
        .and_then(get)
        .filter(|hit| still_valid(hit, ld))
    {
        return TorchPlatform {
            libtorch: hit.libtorch,
            cuda_lib: hit.cuda_lib,
        };
    }
    let out = std::process::Command::new(worker).arg("identity").output();
    let Some(info) = out
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
    else {
        return unavailable();
    };
    let dir = info["libtorch_dir"].as_str();
    // A libtorch without a version file is still named, by where it was loaded from.
    let libtorch = match (info["libtorch"].as_str(), dir) {
        (Some(v), _) => v.to_string(),
        (None, Some(dir)) => format!("unknown version at {dir}"),
        (None, None) => "unavailable".to_string(),
    };
    let cuda_lib = info["cuda_lib"].as_bool().unwrap_or(false);
    if let (Some(key), Some(dir)) = (key, dir) {
        put(
            &key,
            &CachedIdentity {
                libtorch: libtorch.clone(),
                cuda_lib,
                libtorch_dir: dir.to_string(),
                stamp: stamp(Path::new(dir)),
            },
        );
    }
    TorchPlatform { libtorch, cuda_lib }
}

fn identity_key(worker: &Path, ld: &str) -> Option<Hash> {
    let meta = std::fs::metadata(worker).ok()?;
    let mtime = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    let mut h = KeyHasher::new("cegraph worker identity v1");
    h.item(worker.to_string_lossy().as_ref())
        .u64(meta.len())
        .u64(mtime.as_nanos() as u64)
        .item(ld);
    Some(h.finish())
}

/// What identifies the libtorch in `dir` (its `lib/`): its main libraries and version files.
fn stamp(dir: &Path) -> Vec<String> {
    let root = dir.parent().unwrap_or(dir);
    [
        dir.join("libtorch_cpu.so"),
        dir.join("libtorch_cuda.so"),
        root.join("build-version"),
        root.join("version.py"),
    ]
    .iter()
    .map(|f| match std::fs::metadata(f) {
        Ok(m) => {
            let t = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            format!("{} {} {t}", f.display(), m.len())
        }
        Err(_) => format!("{} absent", f.display()),
    })
    .collect()
}

/// The memoised libtorch is unchanged and still the one the loader would find first on
/// `LD_LIBRARY_PATH` (the worker's own RUNPATH is covered by its size and mtime).
fn still_valid(hit: &CachedIdentity, ld: &str) -> bool {
    let dir = Path::new(&hit.libtorch_dir);
    if stamp(dir) != hit.stamp {
        return false;
    }
    let first = ld
        .split(':')
        .filter(|d| !d.is_empty())
        .map(Path::new)
        .find(|d| d.join("libtorch_cpu.so").exists());
    match first {
        None => true,
        Some(d) => d.canonicalize().ok() == dir.canonicalize().ok(),
    }
}

/// The device a node's `device` param means on this machine: `auto` → `cuda:0` when a GPU is
/// visible and the worker's libtorch has CUDA, else `cpu`; `cuda` → `cuda:0`.
pub fn resolve_device(requested: &str) -> String {
    match requested {
        "auto" => {
            let gpus = *GPUS.get_or_init(super::count_gpus);
            if gpus > 0 && torch_platform().cuda_lib {
                "cuda:0".into()
            } else {
                "cpu".into()
            }
        }
        "cuda" => "cuda:0".into(),
        other => other.to_string(),
    }
}

/// Threads a node runs with: its `resources.cpus`, whatever `-j` is (threads change CPU
/// numerics, so they are part of a worker kind's key).
pub fn node_threads(node: &Node) -> usize {
    (node.resources.cpus as usize).max(1)
}

/// Kinds with a `precision` param (its `auto` depends on the device, so it is resolved here).
const PRECISION_KINDS: &[&str] = &["train"];

/// A GPU as `nvidia-smi` names it: `NVIDIA H200 (sm_90)`, and its compute capability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuInfo {
    pub name: String,
    pub capability: Option<(u32, u32)>,
}

impl GpuInfo {
    /// The key's `gpu` entry.
    pub fn label(&self) -> String {
        match self.capability {
            Some((a, b)) => format!("{} (sm_{a}{b})", self.name),
            None => self.name.clone(),
        }
    }
}

/// One line of `nvidia-smi --query-gpu=name,compute_cap --format=csv,noheader`.
fn parse_gpu_line(line: &str) -> Option<GpuInfo> {
    let (name, cap) = line.rsplit_once(',')?;
    let capability = cap
        .trim()
        .split_once('.')
        .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)));
    Some(GpuInfo {
        name: name.trim().to_string(),
        capability,
    })
}

/// The GPU `cuda:N` means for this process (`CUDA_VISIBLE_DEVICES` renumbers them), asked of
/// `nvidia-smi` once per process; `None` without one.
pub fn gpu_info(device: &str) -> Option<GpuInfo> {
    static GPUS_INFO: OnceLock<Vec<GpuInfo>> = OnceLock::new();
    let n: usize = device.strip_prefix("cuda:")?.parse().ok()?;
    let all = GPUS_INFO.get_or_init(|| {
        std::process::Command::new("nvidia-smi")
            .args([
                "--query-gpu=index,name,compute_cap",
                "--format=csv,noheader",
            ])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .filter_map(|l| parse_gpu_line(l.split_once(',')?.1))
                    .collect()
            })
            .unwrap_or_default()
    });
    let physical = match std::env::var("CUDA_VISIBLE_DEVICES") {
        Ok(v) => v.split(',').nth(n)?.trim().parse().ok()?,
        Err(_) => n,
    };
    all.get(physical).cloned()
}

/// The runtime part of a worker kind's key: `libtorch`, `device`, `threads`; on CUDA the
/// `gpu` (name and compute capability); for a kind with a `precision` param, that resolved;
/// on the CPU the `cpu` kernels and, when set, the numerics `env` ([`super::cpu_numerics`]).
pub fn worker_runtime(node: &Node) -> BTreeMap<String, String> {
    let mut runtime = torch_runtime(node);
    let flags = super::cpu_numerics::host_flags();
    runtime.extend(super::cpu_numerics::runtime_entries(
        &runtime["device"],
        &flags,
        &|n| super::cpu_numerics::node_env(&node.env, n),
    ));
    runtime
}

fn torch_runtime(node: &Node) -> BTreeMap<String, String> {
    let requested = node
        .params
        .get("device")
        .and_then(|d| d.as_str())
        .unwrap_or("auto");
    let device = resolve_device(requested);
    let gpu = gpu_info(&device);
    let mut runtime = BTreeMap::from([
        ("libtorch".to_string(), torch_platform().libtorch.clone()),
        ("threads".to_string(), node_threads(node).to_string()),
    ]);
    if let Some(g) = &gpu {
        runtime.insert("gpu".to_string(), g.label());
    }
    let kind = match &node.action {
        crate::spec::Action::Kind { name, .. } => name.as_str(),
        _ => "",
    };
    if PRECISION_KINDS.contains(&kind) {
        let asked = node.params.get("precision").and_then(|p| p.as_str());
        // A bad value is reported by the kind's own param check; the key just keeps it.
        let resolved = match asked.map(Precision::parse) {
            None => Precision::Auto.resolve(&device, gpu.and_then(|g| g.capability)),
            Some(Ok(p)) => p.resolve(&device, gpu.and_then(|g| g.capability)),
            Some(Err(_)) => return with_device(runtime, device),
        };
        runtime.insert("precision".to_string(), resolved.as_str().to_string());
    }
    with_device(runtime, device)
}

fn with_device(mut runtime: BTreeMap<String, String>, device: String) -> BTreeMap<String, String> {
    runtime.insert("device".to_string(), device);
    runtime
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_auto_follows_the_resolved_device_and_gpu() {
        let auto = Precision::Auto;
        assert_eq!(auto.resolve("cpu", None), Precision::Fp32);
        assert_eq!(auto.resolve("cuda:0", Some((9, 0))), Precision::Bf16);
        assert_eq!(auto.resolve("cuda:0", Some((8, 0))), Precision::Bf16);
        assert_eq!(auto.resolve("cuda:0", Some((7, 5))), Precision::Fp16);
        assert_eq!(auto.resolve("cuda:0", None), Precision::Bf16);
        assert_eq!(Precision::Fp16.resolve("cpu", None), Precision::Fp16);
        let gpu = parse_gpu_line(" NVIDIA H200, 9.0").unwrap();
        assert_eq!(gpu.label(), "NVIDIA H200 (sm_90)");
        assert_eq!(gpu.capability, Some((9, 0)));
        assert_eq!(gpu_info("cpu"), None);
    }

    #[test]
    fn explicit_devices_are_canonical_and_auto_is_resolved() {
        assert_eq!(resolve_device("cpu"), "cpu");
        assert_eq!(resolve_device("cuda"), "cuda:0");
        assert_eq!(resolve_device("cuda:1"), "cuda:1");
        assert!(matches!(resolve_device("auto").as_str(), "cpu" | "cuda:0"));
    }

    /// `status` must not start the worker (and load libtorch) every time, and must notice a
    /// new libtorch when there is one.
    #[test]
    fn worker_identity_is_memoised_until_libtorch_changes() {
        use std::cell::RefCell;
        use std::collections::HashMap;
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let lib = tmp.path().join("torch/lib");
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::write(lib.join("libtorch_cpu.so"), "v1").unwrap();
        let calls = tmp.path().join("calls");
        let worker = tmp.path().join("cegraph-worker");
        std::fs::write(
            &worker,
            format!(
                "#!/bin/sh\necho x >> {}\necho '{{\"libtorch\": \"9.9.9\", \"libtorch_dir\": \"{}\", \"cuda_lib\": false}}'\n",
                calls.display(),
                lib.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&worker, std::fs::Permissions::from_mode(0o755)).unwrap();
        let memo: RefCell<HashMap<Hash, CachedIdentity>> = RefCell::default();
        let get = |k: &Hash| memo.borrow().get(k).cloned();
        let put = |k: &Hash, v: &CachedIdentity| {
            memo.borrow_mut().insert(*k, v.clone());
        };
        let probes = || {
            std::fs::read_to_string(&calls)
                .unwrap_or_default()
                .lines()
                .count()
        };
        let first = cached_probe(&worker, "", &get, &put);
        assert_eq!(first.libtorch, "9.9.9");
        assert_eq!(probes(), 1);
        assert_eq!(cached_probe(&worker, "", &get, &put), first);
        assert_eq!(probes(), 1, "the second look-up must come from the memo");
        std::fs::write(lib.join("libtorch_cpu.so"), "v2, another build").unwrap();
        assert_eq!(cached_probe(&worker, "", &get, &put), first);
        assert_eq!(probes(), 2, "a changed libtorch must be asked again");
    }
}
