use std::process::ExitCode;

use crate::error::{Error, Result};
use crate::kind::Catalog;
use crate::store::lock::LockFile;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pipeline: super::PipelineArgs,
    /// Nodes or stages whose outputs to check out. Default: every node in the lock file.
    targets: Vec<String>,
}

pub fn run(args: Args, catalog: &Catalog) -> Result<ExitCode> {
    let mut args = args;
    args.pipeline.take_target(&mut args.targets);
    let l = super::load(&args.pipeline, catalog)?;
    let p = &l.pipeline;
    let lock_path = p.lock_path();
    if !lock_path.exists() {
        return Err(Error::usage(
            format!("{} does not exist", lock_path.display()),
            "checkout materialises a lock file's outputs: run the pipeline, or get the lock file from version control",
        ));
    }
    let lock = LockFile::read(&lock_path)?;
    let nodes: Option<Vec<String>> = if args.targets.is_empty() {
        None
    } else {
        Some(
            super::targets(p, &args.targets)?
                .into_iter()
                .map(|i| p.nodes[i].name.clone())
                .collect(),
        )
    };
    // Writes the workspace: not while a run of this pipeline does.
    let _guard = super::pipeline_lock(&l.store, p)?;
    super::register_root(&l.store, &lock_path);
    let report = crate::store::checkout::checkout(&l.store, &p.workspace, &lock, nodes.as_deref())?;
    for problem in &report.problems {
        println!("MISSING {problem}");
    }
    for problem in &report.corrupt {
        println!("CORRUPT {problem}");
    }
    println!(
        "checked out {} output(s); {} already in place",
        report.restored, report.unchanged
    );
    if report.problems.is_empty() && report.corrupt.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "checkout incomplete: {} output(s) missing, {} corrupt in the cache",
            report.problems.len(),
            report.corrupt.len()
        );
        Ok(ExitCode::FAILURE)
    }
}
