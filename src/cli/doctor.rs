use std::process::ExitCode;

use crate::error::Result;

/// Ask the worker (the process that loads libtorch) what it sees.
pub fn run() -> Result<ExitCode> {
    println!("cegraph {}", env!("CARGO_PKG_VERSION"));
    // The CPU kernels and numerics variables as CPU nodes' keys name them (`cpu`, `env`).
    let cpu = crate::exec::cpu_numerics::runtime_entries(
        "cpu",
        &crate::exec::cpu_numerics::host_flags(),
        &|n| std::env::var(n).ok(),
    );
    for (k, v) in &cpu {
        println!("{k:<9} {v}");
    }
    let Some(runner) = crate::exec::platform::worker_exe() else {
        println!("libtorch  not built in: train/eval nodes cannot run");
        println!(
            "fix       build with the `torch` feature: ./scripts/main.sh (or `source scripts/env.sh && cargo build --release`)"
        );
        return Ok(ExitCode::FAILURE);
    };
    let out = std::process::Command::new(&runner).arg("doctor").output();
    let info: serde_json::Value = match out {
        Ok(o) if o.status.success() => serde_json::from_slice(&o.stdout).unwrap_or_default(),
        Ok(o) => {
            println!("libtorch  {} failed to start:", runner.display());
            println!("{}", String::from_utf8_lossy(&o.stderr).trim_end());
            println!(
                "fix       rebuild after `source scripts/env.sh` so the worker finds libtorch 2.11"
            );
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => {
            println!("libtorch  cannot start {}: {e}", runner.display());
            return Ok(ExitCode::FAILURE);
        }
    };
    let field = |k: &str| {
        info.get(k)
            .map(|v| v.to_string())
            .unwrap_or_else(|| "?".into())
    };
    println!(
        "libtorch  {} from {}",
        field("version").trim_matches('"'),
        field("libtorch_dir").trim_matches('"')
    );
    println!("threads   {}", field("threads"));
    println!(
        "cuda      {} ({} device(s), cudnn {})",
        if info["cuda_available"] == true {
            "usable"
        } else {
            "not usable"
        },
        field("cuda_devices"),
        field("cudnn_available")
    );
    // The GPUs as the keys name them (`gpu` in a node's runtime): name and compute capability.
    for i in 0..info["cuda_devices"].as_u64().unwrap_or(0) {
        if let Some(gpu) = crate::exec::platform::gpu_info(&format!("cuda:{i}")) {
            println!("gpu {i}     {}", gpu.label());
        }
    }
    if let Some(hint) = info.get("hint").and_then(|h| h.as_str()) {
        println!("fix       {hint}");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
