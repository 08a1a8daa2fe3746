//! `cegraph init`: a first `cegraph.yaml` with an example stage, and `cache/` and `out/` in
//! `.gitignore`. Never overwrites a pipeline.

use std::path::Path;
use std::process::ExitCode;

use crate::error::{Error, IoContext, Result};

const PIPELINE: &str = r#"# A cegraph pipeline. `cegraph run` runs what is stale, `cegraph status` says why,
# `cegraph schema` lists every field. Values in ${...} are quoted for the shell.
stages:
  hello:
    # ${outs[0]} is this stage's first output.
    cmd: echo "hello from cegraph" > ${outs[0]}
    outs: [out/hello.txt]

  # A matrix stage runs once per combination; ${seed} is each node's value, and
  # ${out_dir} a directory of its own. Uncomment and adapt:
  # train:
  #   matrix:
  #     seed: [1, 2]
  #   params:
  #     lr: 0.001
  #   deps: [hello, train.py]
  #   cmd: python train.py --seed ${seed} --lr ${params.lr} --out ${outs[0]}
  #   outs: ["${out_dir}/model.pt"]
"#;

/// What `.gitignore` must hold: the cache and the outputs are rebuilt, not committed.
const IGNORED: [&str; 2] = ["cache/", "out/"];

pub fn run() -> Result<ExitCode> {
    let path = Path::new("cegraph.yaml");
    if path.exists() {
        return Err(Error::usage(
            "cegraph.yaml already exists; left as it is",
            "edit it, or remove it first to start again",
        ));
    }
    // create_new: a file that appeared meanwhile is not overwritten either.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .at(path)?;
    std::io::Write::write_all(&mut f, PIPELINE.as_bytes()).at(path)?;
    sayln!("wrote cegraph.yaml");
    let added = ignore(Path::new(".gitignore"))?;
    if !added.is_empty() {
        sayln!("added {} to .gitignore", added.join(", "));
    }
    sayln!("next: `cegraph run`, then `cegraph status`");
    Ok(ExitCode::SUCCESS)
}

/// Append the missing [`IGNORED`] lines to `.gitignore`; returns those added.
fn ignore(path: &Path) -> Result<Vec<&'static str>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::io(path, e)),
    };
    let present = |want: &str| {
        text.lines()
            .map(str::trim)
            .any(|l| l == want || l == want.trim_end_matches('/') || l == format!("/{want}"))
    };
    let missing: Vec<&str> = IGNORED.into_iter().filter(|w| !present(w)).collect();
    if missing.is_empty() {
        return Ok(missing);
    }
    let mut add = String::new();
    if !text.is_empty() && !text.ends_with('\n') {
        add.push('\n');
    }
    for m in &missing {
        add.push_str(m);
        add.push('\n');
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .at(path)?;
    std::io::Write::write_all(&mut f, add.as_bytes()).at(path)?;
    Ok(missing)
}
