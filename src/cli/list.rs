//! `cegraph list`: every stage and node with its kind, the head of its command and its state.

use std::collections::HashMap;
use std::process::ExitCode;

use crate::error::Result;
use crate::exec::Outcome;
use crate::kind::Catalog;
use crate::spec::Action;
use crate::store::lock::LockFile;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pipeline: super::PipelineArgs,
    /// Stages or nodes to list (with what they depend on). Default: all.
    targets: Vec<String>,
}

/// How much of a command the table shows.
const CMD_WIDTH: usize = 48;

pub fn run(args: Args, catalog: &Catalog) -> Result<ExitCode> {
    let mut args = args;
    args.pipeline.take_target(&mut args.targets);
    let l = super::load_read_only(&args.pipeline, catalog)?;
    let p = &l.pipeline;
    let targets = super::targets(p, &args.targets)?;
    let lock = LockFile::read(&p.lock_path())?;
    let opts = super::status::planning_options(targets.clone());
    let summary = crate::exec::run(p, &l.dag, &l.store, &lock, &opts, &crate::exec::Silent)?;
    let state: HashMap<&str, &str> = summary
        .outcomes
        .iter()
        .map(|(node, o)| (node.as_str(), state_word(o)))
        .collect();
    let selected = l.dag.closure(&targets);
    let mut rows = vec![[
        "STAGE".to_string(),
        "NODE".into(),
        "KIND".into(),
        "COMMAND".into(),
        "STATE".into(),
    ]];
    for (stage, members) in &p.stages {
        for &i in members.iter().filter(|&&i| selected[i]) {
            let n = &p.nodes[i];
            let (kind, cmd) = match &n.action {
                Action::Cmd(c) => ("cmd".to_string(), head(c)),
                Action::Kind { name, .. } => (name.clone(), String::new()),
            };
            let st = state.get(n.name.as_str()).copied().unwrap_or("-");
            rows.push([stage.clone(), n.name.clone(), kind, cmd, st.to_string()]);
        }
    }
    for line in table(&rows) {
        sayln!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

fn state_word(o: &Outcome) -> &'static str {
    match o {
        Outcome::UpToDate => "up-to-date",
        Outcome::WouldRestore { .. } => "cached",
        Outcome::WouldRun { why } if why == &["never run"] => "never-run",
        _ => "stale",
    }
}

/// The first line of a command, cut to [`CMD_WIDTH`] characters.
fn head(cmd: &str) -> String {
    let first = cmd.lines().next().unwrap_or("").trim();
    let mut out: String = first.chars().take(CMD_WIDTH).collect();
    if first.chars().count() > CMD_WIDTH || cmd.trim().lines().count() > 1 {
        out.push('…');
    }
    out
}

/// Rows as left-aligned columns, two spaces apart, the last column unpadded.
pub(super) fn table<const N: usize>(rows: &[[String; N]]) -> Vec<String> {
    let mut width = [0usize; N];
    for r in rows {
        for (w, cell) in width.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    rows.iter()
        .map(|r| {
            let mut line = String::new();
            for (k, cell) in r.iter().enumerate() {
                if k + 1 == N {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<w$}  ", w = width[k]));
                }
            }
            line.trim_end().to_string()
        })
        .collect()
}
