//! `cegraph log [TARGET…]`: past runs of the pipeline's nodes from the cache's run records,
//! newest first: when, node, key, duration, outcome and host. A record is written only for a
//! run that succeeded, so every row is one that ran to the end.

use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use crate::error::Result;
use crate::kind::Catalog;
use crate::store::lock::LockFile;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pipeline: super::PipelineArgs,
    /// Nodes or stages whose runs to show. Default: every node of the pipeline.
    targets: Vec<String>,
    /// At most this many runs.
    #[arg(short = 'n', long, value_name = "N")]
    limit: Option<usize>,
}

pub fn run(args: Args, catalog: &Catalog) -> Result<ExitCode> {
    let mut args = args;
    args.pipeline.take_target(&mut args.targets);
    let l = super::load_read_only(&args.pipeline, catalog)?;
    let p = &l.pipeline;
    let wanted: Vec<bool> = if args.targets.is_empty() {
        vec![true; p.nodes.len()]
    } else {
        let mut w = vec![false; p.nodes.len()];
        for i in super::targets(p, &args.targets)? {
            w[i] = true;
        }
        w
    };
    let lock = LockFile::read(&p.lock_path())?;
    let mut records: Vec<_> = l
        .store
        .records()
        .into_iter()
        .filter(|r| p.node_index(&r.node).is_some_and(|i| wanted[i]))
        .collect();
    records.sort_by(|a, b| b.started_at.total_cmp(&a.started_at));
    records.truncate(args.limit.unwrap_or(usize::MAX));
    if records.is_empty() {
        sayln!(
            "no recorded runs (records are in {})",
            l.store.root().join("runs").display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = vec![[
        "WHEN".to_string(),
        "NODE".into(),
        "KEY".into(),
        "DURATION".into(),
        "OUTCOME".into(),
        "HOST".into(),
    ]];
    for r in &records {
        // The run the lock file holds now is marked: its outputs are the workspace's.
        let current = lock.nodes.get(&r.node).is_some_and(|e| e.key == r.key);
        rows.push([
            when(r.started_at),
            r.node.clone(),
            r.key.short().to_string(),
            format!("{:.2}s", r.duration_s),
            if current { "ok (locked)" } else { "ok" }.into(),
            r.host.clone(),
        ]);
    }
    for line in super::list::table(&rows) {
        sayln!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `2026-11-30T14:02:11Z`; `?` for a time no calendar here can show.
fn when(epoch_s: f64) -> String {
    // Up to the year 9999, the last RFC 3339 can write.
    if !(0.0..253_402_300_799.0).contains(&epoch_s) {
        return "?".into();
    }
    let t = UNIX_EPOCH + Duration::from_secs(epoch_s as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}
