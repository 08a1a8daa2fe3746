//! Link settings for libtorch (only with the `torch` feature).
//!
//! * rpath to libtorch's `lib/` so the binary runs without `LD_LIBRARY_PATH`.
//! * `--no-as-needed` trap: the linker's default `--as-needed` drops `libtorch_cuda.so`
//!   (nothing references its symbols directly; it registers CUDA kernels from static
//!   initialisers), so `tch::Cuda::is_available()` reads false even on a GPU machine.
//!   rustc places `cargo:rustc-link-arg` flags *after* the libraries it passes, so emitting
//!   `-Wl,--no-as-needed` alone changes nothing: we emit it and then name the torch
//!   libraries again after it, which makes them `NEEDED` unconditionally.
//!   Check with `readelf -d target/*/cegraph | grep -E 'NEEDED|RUNPATH'`.

use std::path::{Path, PathBuf};

// The C++ source of the AMP / fused-AdamW shim (a `.rs` file, so the kinds' fingerprint sees it).
include!("src/amp_shim.rs");

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=LIBTORCH_LIB");
    println!("cargo:rerun-if-env-changed=CARGO_FEATURE_TORCH");
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_TORCH").is_none() {
        return;
    }
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let Some(lib_dir) = libtorch_lib_dir() else {
        // torch-sys itself fails with its own message when libtorch cannot be found.
        println!(
            "cargo:warning=cegraph: LIBTORCH is not set; run `source scripts/env.sh` first \
             (the binary will need LD_LIBRARY_PATH to find libtorch)"
        );
        return;
    };
    compile_shim(&lib_dir);
    let lib = lib_dir.display().to_string();
    // Only the worker and the test/bench binaries load libtorch: the `cegraph` binary never
    // references it, so it starts in milliseconds instead of loading ~0.5 GB of libraries.
    let emit = |arg: &str| {
        // (`-benches` would be an error: cargo rejects link args for a target kind the package lacks.)
        for target in ["-bin=cegraph-worker", "-tests"] {
            println!("cargo:rustc-link-arg{target}={arg}");
        }
    };
    if target_os == "linux" || target_os == "macos" {
        // The rpath goes on every binary: harmless where libtorch is not needed, and it keeps
        // any binary that does end up NEEDing it (e.g. via torch-sys's own link flags) runnable
        // without LD_LIBRARY_PATH.
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
    if target_os == "linux" {
        println!("cargo:rustc-link-search=native={lib}");
        emit("-Wl,--no-as-needed");
        for name in ["torch_cuda", "torch_cpu", "torch", "c10"] {
            if lib_dir.join(format!("lib{name}.so")).exists() {
                emit(&format!("-l{name}"));
            }
        }
        // Back to the default for anything linked after us.
        emit("-Wl,--as-needed");
    }
}

/// Compile [`SOURCE`] against the headers beside libtorch's `lib/` (`include/`, present in
/// both the PyTorch wheel and the libtorch zip) into a static library linked into this crate.
fn compile_shim(lib_dir: &Path) {
    println!("cargo:rerun-if-changed=src/amp_shim.rs");
    let include = lib_dir.parent().map(|p| p.join("include"));
    let Some(include) = include.filter(|i| i.join("ATen/autocast_mode.h").exists()) else {
        panic!(
            "cegraph-torch: no libtorch headers next to {} (expected include/ATen/autocast_mode.h)",
            lib_dir.display()
        );
    };
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let src = out.join("amp_shim.cpp");
    std::fs::write(&src, SOURCE).expect("write amp_shim.cpp");
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .file(&src)
        .include(&include)
        .warnings(false)
        .compile("cegraph_amp_shim");
}

/// `$LIBTORCH_LIB/lib` or `$LIBTORCH/lib`, as torch-sys reads them; with
/// `LIBTORCH_USE_PYTORCH`, the `torch/lib` of the python that torch-sys would ask.
fn libtorch_lib_dir() -> Option<PathBuf> {
    println!("cargo:rerun-if-env-changed=LIBTORCH_USE_PYTORCH");
    println!("cargo:rerun-if-env-changed=PYTHON_SYS_EXECUTABLE");
    let base = match std::env::var_os("LIBTORCH_LIB").or_else(|| std::env::var_os("LIBTORCH")) {
        Some(b) => PathBuf::from(b),
        None if std::env::var_os("LIBTORCH_USE_PYTORCH").is_some() => {
            let py = std::env::var_os("PYTHON_SYS_EXECUTABLE").unwrap_or_else(|| "python3".into());
            let out = std::process::Command::new(py)
                .args([
                    "-c",
                    "import torch, pathlib; print(pathlib.Path(torch.__file__).parent)",
                ])
                .output()
                .ok()?;
            PathBuf::from(String::from_utf8(out.stdout).ok()?.trim())
        }
        None => return None,
    };
    let dir = base.join("lib");
    dir.is_dir().then_some(dir)
}
