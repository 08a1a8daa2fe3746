//! What libtorch this process loaded, for `cegraph doctor`.

/// The libtorch this process loaded (its directory and version), the thread count and whether
/// CUDA is usable, for `cegraph doctor`.
pub fn torch_info() -> TorchInfo {
    let lib = loaded_libtorch();
    let version = lib.as_deref().and_then(libtorch_version);
    let cuda_available = tch::Cuda::is_available();
    let has_cuda_lib = lib
        .as_deref()
        .is_some_and(|d| d.join("libtorch_cuda.so").exists());
    let hint = if version.as_deref().is_some_and(|v| !v.starts_with("2.11.")) {
        Some(format!(
            "this build needs libtorch 2.11 (tch 0.24) but loaded {}; rebuild after `source scripts/env.sh`",
            version.as_deref().unwrap_or("?")
        ))
    } else if !cuda_available && has_cuda_lib && std::path::Path::new("/dev/nvidiactl").exists() {
        Some(
            "a GPU device exists but libtorch sees no CUDA: check the NVIDIA driver (nvidia-smi) \
             and that `readelf -d` on the binary lists libtorch_cuda.so as NEEDED"
                .to_string(),
        )
    } else {
        None
    };
    TorchInfo {
        libtorch_dir: lib.map(|d| d.display().to_string()),
        version,
        threads: tch::get_num_threads() as usize,
        cuda_available,
        cuda_devices: if cuda_available {
            tch::Cuda::device_count() as usize
        } else {
            0
        },
        cudnn_available: cuda_available && tch::Cuda::cudnn_is_available(),
        hint,
    }
}

/// What the libtorch kinds' keys need (`cegraph-worker identity`): the loaded libtorch's
/// version and whether it has CUDA kernels. Cheap: CUDA is not initialised.
pub fn torch_identity() -> serde_json::Value {
    let lib = loaded_libtorch();
    serde_json::json!({
        "libtorch": lib.as_deref().and_then(libtorch_version),
        "libtorch_dir": lib.as_ref().map(|d| d.display().to_string()),
        "cuda_lib": lib.as_deref().is_some_and(|d| d.join("libtorch_cuda.so").exists()),
    })
}

/// What [`torch_info`] reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TorchInfo {
    /// The `lib/` directory libtorch was loaded from.
    pub libtorch_dir: Option<String>,
    /// e.g. `2.11.0+cu130` (from the PyTorch package's `version.py` or libtorch's `build-version`).
    pub version: Option<String>,
    pub threads: usize,
    pub cuda_available: bool,
    pub cuda_devices: usize,
    pub cudnn_available: bool,
    /// What to do, when something looks wrong.
    pub hint: Option<String>,
}

/// The directory of the `libtorch_cpu.so` mapped into this process (Linux).
fn loaded_libtorch() -> Option<std::path::PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.ends_with("/libtorch_cpu.so"))
        .and_then(|p| std::path::Path::new(p).parent().map(|d| d.to_path_buf()))
}

/// `torch/version.py` (PyPI) or `build-version` (the libtorch zip) next to `lib/`.
fn libtorch_version(lib: &std::path::Path) -> Option<String> {
    let root = lib.parent()?;
    if let Ok(v) = std::fs::read_to_string(root.join("build-version")) {
        return Some(v.trim().to_string());
    }
    let py = std::fs::read_to_string(root.join("version.py")).ok()?;
    py.lines()
        .find_map(|l| l.strip_prefix("__version__ = "))
        .map(|v| v.trim().trim_matches(|c| c == '\'' || c == '"').to_string())
}
