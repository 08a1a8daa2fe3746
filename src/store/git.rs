//! What git says about the workspace: the commit and dirtiness recorded with an experiment,
//! and a lock file as committed at a revision (`metrics diff HEAD~1`).

use std::path::Path;
use std::process::Command;

use super::experiments::GitState;
use super::lock::LockFile;
use crate::error::{Error, Result};

fn git(dir: &Path, args: &[&str]) -> Option<std::process::Output> {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()
}

/// The commit checked out in `dir` and whether tracked files differ from it; `None` outside a
/// repository (or without git).
pub fn state(dir: &Path) -> Option<GitState> {
    let head = git(dir, &["rev-parse", "--verify", "HEAD"])?;
    if !head.status.success() {
        return None;
    }
    let status = git(dir, &["status", "--porcelain", "--untracked-files=no"])?;
    Some(GitState {
        commit: String::from_utf8_lossy(&head.stdout).trim().to_string(),
        dirty: !status.stdout.is_empty(),
    })
}

/// Whether `rev` names a commit in the repository holding `dir`.
pub fn is_revision(dir: &Path, rev: &str) -> bool {
    !rev.starts_with('-')
        && git(
            dir,
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("{rev}^{{commit}}"),
            ],
        )
        .is_some_and(|o| o.status.success())
}

/// The lock file at `lock_path` as committed at `rev`.
pub fn lock_at(rev: &str, lock_path: &Path) -> Result<LockFile> {
    let dir = lock_path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    let name = lock_path.file_name().unwrap_or_default().to_string_lossy();
    let shown = git(dir, &["show", &format!("{rev}:./{name}")]);
    match shown {
        Some(o) if o.status.success() => {
            LockFile::from_text(&String::from_utf8_lossy(&o.stdout), lock_path)
        }
        _ => Err(Error::usage(
            format!("revision `{rev}` has no {}", lock_path.display()),
            "pick a revision where the lock file was committed (`git log -- <lock file>`)",
        )),
    }
}
