//! Facts of this machine that change what a `cegraph-worker` (libtorch) kind produces: the
//! libtorch version the worker loads, the device `auto` resolves to and the thread count.
//! They are resolved when the plan is made — once per process, not per node — and go into
//! those nodes' keys ([`crate::hash::KeyInputs::runtime`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::spec::Node;

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

/// The worker's libtorch, asked once per process.
pub fn torch_platform() -> &'static TorchPlatform {
    PLATFORM.get_or_init(|| {
        let unavailable = TorchPlatform {
            libtorch: "unavailable".into(),
            cuda_lib: false,
        };
        let Some(worker) = worker_exe() else {
            return unavailable;
        };
        let out = std::process::Command::new(&worker).arg("identity").output();
        let Some(info) = out
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
        else {
            return unavailable;
        };
        // A libtorch without a version file is still named, by where it was loaded from.
        let libtorch = match (info["libtorch"].as_str(), info["libtorch_dir"].as_str()) {
            (Some(v), _) => v.to_string(),
            (None, Some(dir)) => format!("unknown version at {dir}"),
            (None, None) => "unavailable".to_string(),
        };
        TorchPlatform {
            libtorch,
            cuda_lib: info["cuda_lib"].as_bool().unwrap_or(false),
        }
    })
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

/// The runtime part of a worker kind's key: `libtorch`, `device`, `threads`.
pub fn worker_runtime(node: &Node) -> BTreeMap<String, String> {
    let requested = node
        .params
        .get("device")
        .and_then(|d| d.as_str())
        .unwrap_or("auto");
    BTreeMap::from([
        ("libtorch".to_string(), torch_platform().libtorch.clone()),
        ("device".to_string(), resolve_device(requested)),
        ("threads".to_string(), node_threads(node).to_string()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_devices_are_canonical_and_auto_is_resolved() {
        assert_eq!(resolve_device("cpu"), "cpu");
        assert_eq!(resolve_device("cuda"), "cuda:0");
        assert_eq!(resolve_device("cuda:1"), "cuda:1");
        assert!(matches!(resolve_device("auto").as_str(), "cpu" | "cuda:0"));
    }
}
