use std::process::ExitCode;

use serde::Serialize;

use crate::error::Result;
use crate::exec::{Outcome, RunOptions};
use crate::kind::Catalog;
use crate::store::lock::LockFile;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pipeline: super::PipelineArgs,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct NodeStatus {
    node: String,
    state: &'static str,
    why: Vec<String>,
}

struct Silent;
impl crate::exec::Observer for Silent {}

pub fn run(args: Args, catalog: &Catalog) -> Result<ExitCode> {
    let l = super::load(&args.pipeline, catalog)?;
    let lock = LockFile::read(&l.pipeline.lock_path())?;
    let opts = RunOptions {
        jobs: 1,
        targets: Vec::new(),
        dry_run: true,
        force: false,
        keep_going: true,
        exe: std::path::PathBuf::new(),
        remote: None,
        push: false,
    };
    let summary = crate::exec::run(&l.pipeline, &l.dag, &l.store, &lock, &opts, &Silent)?;
    let rows: Vec<NodeStatus> = summary
        .outcomes
        .into_iter()
        .map(|(node, o)| {
            let (state, why) = match o {
                Outcome::UpToDate => ("up-to-date", vec![]),
                Outcome::WouldRestore { mut why } => {
                    why.push("(cached: `cegraph run` restores it without running anything)".into());
                    ("stale", why)
                }
                Outcome::WouldRun { why } if why == ["never run"] => ("never-run", vec![]),
                Outcome::WouldRun { why } => ("stale", why),
                _ => ("stale", vec![]),
            };
            NodeStatus { node, state, why }
        })
        .collect();
    let stale = rows.iter().filter(|r| r.state != "up-to-date").count();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).expect("status serialises")
        );
    } else {
        for r in &rows {
            println!("{:<11} {}", r.state, r.node);
            for w in &r.why {
                println!("              {w}");
            }
        }
        println!(
            "{} of {} node(s) up to date",
            rows.len() - stale,
            rows.len()
        );
    }
    Ok(if stale > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
