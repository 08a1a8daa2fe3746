//! `cegraph run -n`: what would run (with its command, fully interpolated and quoted as the
//! shell will get it) or be restored, and why; `--json` for scripts.

use serde::Serialize;

use crate::exec::{Outcome, RunSummary};
use crate::spec::{Action, Pipeline};

#[derive(Serialize)]
struct Planned<'a> {
    node: &'a str,
    /// `run` or `restore`.
    action: &'static str,
    why: &'a [String],
    /// The command line `sh -c` would get (cmd stages).
    #[serde(skip_serializing_if = "Option::is_none")]
    cmd: Option<&'a str>,
    /// The built-in kind that would run (kind stages).
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
}

/// Print the plan; `summary` comes from a dry run.
pub fn report(p: &Pipeline, summary: &RunSummary, json: bool) {
    let planned: Vec<Planned> = summary
        .outcomes
        .iter()
        .filter_map(|(name, o)| {
            let (action, why) = match o {
                Outcome::WouldRun { why } => ("run", why),
                Outcome::WouldRestore { why } => ("restore", why),
                _ => return None,
            };
            let node = p.node_index(name).map(|i| &p.nodes[i]);
            let (cmd, kind) = match node.map(|n| &n.action) {
                Some(Action::Cmd(c)) if action == "run" => (Some(c.as_str()), None),
                Some(Action::Kind { name, .. }) if action == "run" => (None, Some(name.as_str())),
                _ => (None, None),
            };
            Some(Planned {
                node: name,
                action,
                why,
                cmd,
                kind,
            })
        })
        .collect();
    if json {
        sayln!(
            "{}",
            serde_json::to_string_pretty(&planned).expect("plan serialises")
        );
        return;
    }
    for x in &planned {
        match x.action {
            "run" => sayln!("would run {}: {}", x.node, x.why.join("; ")),
            _ => sayln!(
                "would restore {} (from cache): {}",
                x.node,
                x.why.join("; ")
            ),
        }
        if let Some(cmd) = x.cmd {
            sayln!("    $ {cmd}");
        }
        if let Some(kind) = x.kind {
            sayln!("    (built-in kind `{kind}`)");
        }
    }
    let count = |f: fn(&Outcome) -> bool| summary.count(f);
    sayln!(
        "dry run: {} would run, {} would be restored, {} up to date",
        count(|o| matches!(o, Outcome::WouldRun { .. })),
        count(|o| matches!(o, Outcome::WouldRestore { .. })),
        count(|o| matches!(o, Outcome::UpToDate)),
    );
}
