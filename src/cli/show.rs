use std::process::ExitCode;

use crate::error::{Error, Result};
use crate::kind::Catalog;
use crate::store::lock::LockFile;

#[derive(clap::Args)]
pub struct Args {
    /// The node, e.g. `train[variant=rope,seed=1]`.
    node: String,
    #[command(flatten)]
    pipeline: super::PipelineArgs,
    /// Lines of the log to show.
    #[arg(long, default_value_t = 20)]
    log_lines: usize,
}

pub fn run(args: Args, catalog: &Catalog) -> Result<ExitCode> {
    let l = super::load_read_only(&args.pipeline, catalog)?;
    let p = &l.pipeline;
    let Some(i) = p.node_index(&args.node) else {
        return Err(Error::usage(
            format!("no node named `{}`", args.node),
            "see `cegraph dag` for the node names",
        ));
    };
    let node = &p.nodes[i];
    let lock = LockFile::read(&p.lock_path())?;
    println!("node      {}", node.name);
    println!("stage     {}", node.stage);
    if let crate::spec::Action::Kind {
        name, fingerprint, ..
    } = &node.action
    {
        println!("kind      {name}, code fingerprint {fingerprint}");
    }
    let Some(entry) = lock.nodes.get(&node.name) else {
        println!("state     never run (not in {})", p.lock_path().display());
        return Ok(ExitCode::SUCCESS);
    };
    println!("key       {}", entry.key);
    let Some(rec) = l.store.read_record(&entry.key) else {
        println!("record    not in the cache (pull it, or run the node)");
        return Ok(ExitCode::SUCCESS);
    };
    println!(
        "ran on    {} in {:.2}s (cegraph {})",
        rec.host, rec.duration_s, rec.tool_version
    );
    if let crate::spec::Action::Kind {
        name, fingerprint, ..
    } = &node.action
        && rec.inputs.kind_fingerprint != Some(*fingerprint)
    {
        println!(
            "stale     recorded with other `{name}` code ({}): this build would run it again",
            rec.inputs
                .kind_fingerprint
                .map_or("no fingerprint".to_string(), |h| h.to_string())
        );
    }
    if !rec.inputs.runtime.is_empty() {
        let facts: Vec<String> = rec
            .inputs
            .runtime
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        println!("runtime   {}", facts.join(", "));
    }
    println!("inputs    (what the key is computed from)");
    let inputs = serde_json::to_string_pretty(&rec.inputs).expect("inputs serialise");
    for line in inputs.lines() {
        println!("  {line}");
    }
    println!("outputs");
    for o in &rec.outputs {
        println!(
            "  {}  {}  {} bytes{}",
            o.hash.short(),
            o.path,
            o.size,
            if o.dir { " (dir)" } else { "" }
        );
    }
    if !rec.metrics.is_empty() {
        println!("metrics");
        for (k, v) in &rec.metrics {
            println!("  {k}: {v}");
        }
    }
    let log = l.store.log_path(&entry.key);
    println!("log       {}", log.display());
    if let Ok(text) = std::fs::read_to_string(&log) {
        let lines: Vec<&str> = text.lines().collect();
        for line in &lines[lines.len().saturating_sub(args.log_lines)..] {
            println!("  | {line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
