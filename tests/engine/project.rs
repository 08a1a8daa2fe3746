//! A throwaway project directory and a way to run `cegraph` in it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Project {
    dir: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
    #[track_caller]
    pub fn code(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_cegraph")
}

impl Project {
    /// An empty workspace (marked as one by a `cegraph.toml`).
    pub fn new() -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cegraph.toml"), "").unwrap();
        Project { dir }
    }

    pub fn with_pipeline(yaml: &str) -> Project {
        let p = Project::new();
        p.write("cegraph.yaml", yaml);
        p
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args)
            .current_dir(self.path())
            .env("NO_COLOR", "1")
            .env_remove("CEGRAPH_CACHE")
            .env("CEGRAPH_SPEC_CACHE", self.dir.path().join(".spec-memo"))
            .env("COLUMNS", "100");
        c
    }

    pub fn cegraph(&self, args: &[&str]) -> Run {
        self.command(args).output().unwrap().into()
    }

    /// Which nodes' commands executed during `f` (cmds append their node name to runs.log).
    pub fn executed(&self, f: impl FnOnce()) -> Vec<String> {
        let _ = std::fs::remove_file(self.join("runs.log"));
        f();
        let mut v: Vec<String> = std::fs::read_to_string(self.join("runs.log"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect();
        v.sort();
        v
    }

    /// Run git in the project with a fixed identity; panics on failure.
    #[track_caller]
    pub fn git(&self, args: &[&str]) {
        let out = Command::new("git")
            .args(args)
            .current_dir(self.path())
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}");
    }

    pub fn edit(&self, rel: &str, from: &str, to: &str) {
        let text = self.read(rel);
        assert!(text.contains(from), "{rel} does not contain {from:?}");
        self.write(rel, &text.replacen(from, to, 1));
    }

    /// Every file in the cache's object store hashes to its own name.
    pub fn assert_cache_consistent(&self) {
        let objects = self.join("cache/objects");
        for entry in walkdir::WalkDir::new(&objects).into_iter().flatten() {
            if !entry.file_type().is_file() {
                continue;
            }
            let shard = entry
                .path()
                .parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let name = format!("{shard}{}", entry.file_name().to_string_lossy());
            let actual = blake3::hash(&std::fs::read(entry.path()).unwrap())
                .to_hex()
                .to_string();
            assert_eq!(
                actual,
                name,
                "corrupt cache object {}",
                entry.path().display()
            );
        }
    }
}

/// A matrix pipeline of cmd stages: prepare → train (variant × seed) → report (rope only).
pub const MATRIX_PIPELINE: &str = r#"
vars:
  seeds: [1, 2]
stages:
  prepare:
    cmd: echo ${node} >> runs.log && tr a-z A-Z < ${deps[0]} > ${outs[0]}
    deps: [data/corpus.txt]
    outs: [out/corpus.upper]
  train:
    matrix:
      variant: [baseline, rope]
      seed: ${vars.seeds}
    params:
      lr: 0.001
    deps: [prepare]
    cmd: >-
      echo ${node} >> runs.log &&
      { echo "${variant} seed=${seed} lr=${params.lr}"; cat ${deps}; } > ${outs[0]}
    outs: ["${out_dir}/model.txt"]
  report:
    deps: ["train[variant=rope]"]
    cmd: echo ${node} >> runs.log && cat ${stages.train.outs} > ${outs[0]}
    outs: [out/report.txt]
"#;

pub fn matrix_project() -> Project {
    let p = Project::with_pipeline(MATRIX_PIPELINE);
    p.write("data/corpus.txt", "to be or not to be\n");
    p
}
