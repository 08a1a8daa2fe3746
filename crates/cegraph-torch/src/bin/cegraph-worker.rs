//! `cegraph-worker`: runs the nodes of libtorch-backed kinds (train, eval, …) in a process of
//! their own, so a libtorch crash or out-of-memory fails one node, and so the `cegraph`
//! binary itself never loads libtorch (~0.5 s and ~0.5 GB per start).
//!
//! The scheduler starts it as `cegraph-worker exec-node --job FILE`; `cegraph doctor` asks it
//! `cegraph-worker doctor`; the libtorch version in the libtorch kinds' keys comes from
//! `cegraph-worker identity`; `cegraph-worker bench-train` is the training-speed benchmark
//! (scripts/bench-train.sh, scripts/gpu-check.sh).

use std::path::PathBuf;

#[path = "worker/bench.rs"]
mod bench;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["exec-node", "--job", job] => {
            cegraph_torch::install();
            let code =
                cegraph::exec::job::exec_kind_job(&cegraph::stages::catalog(), &PathBuf::from(job));
            ExitCode::from(code as u8)
        }
        ["identity"] => {
            println!("{}", cegraph_torch::info::torch_identity());
            ExitCode::SUCCESS
        }
        ["bench-train"] => {
            bench::run();
            ExitCode::SUCCESS
        }
        ["doctor"] => {
            let info = cegraph_torch::info::torch_info();
            println!(
                "{}",
                serde_json::to_string_pretty(&info).expect("torch info serialises")
            );
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!(
                "usage: cegraph-worker exec-node --job FILE | cegraph-worker doctor | cegraph-worker identity | cegraph-worker bench-train (started by cegraph and the bench scripts)"
            );
            ExitCode::from(2)
        }
    }
}
