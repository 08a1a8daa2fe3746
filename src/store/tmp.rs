//! Temporary files that name their owner. A killed process cannot clean up after itself, so
//! every temporary file or directory cegraph creates is named
//! `.tmp-<pid>-<start>-<host>-<random>`: any later cegraph can tell whether its owner is still
//! running (the same pid with the same start time on this host) and remove it at once if not.
//!
//! The owner is a [`ProcessId`]: a pid alone is not an identity (pids are reused), a pid with
//! the start time the kernel records for it (`/proc/<pid>/stat`, field 22) is.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Every owned temporary name starts with this.
pub const PREFIX: &str = ".tmp-";

/// A running (or once running) process: its pid and the kernel's start time for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProcessId {
    pub pid: i32,
    /// Clock ticks after boot (`/proc/<pid>/stat` field 22); 0 where `/proc` is absent.
    pub start: u64,
}

/// The fields of `/proc/<pid>/stat` this module reads.
#[derive(Debug, Clone, Copy)]
pub struct ProcStat {
    /// `R`, `S`, `Z` (zombie: exited, not yet reaped), …
    pub state: char,
    pub pgrp: i32,
    pub start: u64,
}

/// Read `/proc/<pid>/stat`; `None` when there is no such process (or no `/proc`).
pub fn proc_stat(pid: i32) -> Option<ProcStat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces or parentheses itself.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `fields[0]` is field 3 (state): field n is `fields[n - 3]`.
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        pgrp: fields.get(2)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

impl ProcessId {
    /// This process.
    pub fn current() -> ProcessId {
        static ME: OnceLock<ProcessId> = OnceLock::new();
        *ME.get_or_init(|| {
            let pid = std::process::id() as i32;
            ProcessId {
                pid,
                start: proc_stat(pid).map(|s| s.start).unwrap_or(0),
            }
        })
    }

    /// Whether this very process still runs (a zombie has exited: it writes nothing more).
    /// Without `/proc` nothing can be told apart, so everything counts as alive.
    pub fn is_alive(&self) -> bool {
        if !Path::new("/proc/self/stat").exists() {
            return true;
        }
        match proc_stat(self.pid) {
            Some(s) => s.start == self.start && s.state != 'Z',
            None => false,
        }
    }
}

/// This machine's name as it appears in temporary names: letters, digits and dots only (no
/// `-`, which separates the fields), at most 32 characters.
pub fn host_tag() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        let raw = fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let tag: String = raw
            .trim()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .take(32)
            .collect();
        if tag.is_empty() { "host".into() } else { tag }
    })
}

/// The start of this process's temporary names: `.tmp-<pid>-<start>-<host>-`.
fn owned_prefix() -> String {
    let me = ProcessId::current();
    format!("{PREFIX}{}-{}-{}-", me.pid, me.start, host_tag())
}

/// Who owns a temporary name: the host tag and the process, or `None` for a name not made here.
pub fn owner_of(name: &str) -> Option<(&str, ProcessId)> {
    let mut parts = name.strip_prefix(PREFIX)?.split('-');
    let pid = parts.next()?.parse().ok()?;
    let start = parts.next()?.parse().ok()?;
    let host = parts.next()?;
    let _random = parts.next()?;
    parts
        .next()
        .is_none()
        .then_some((host, ProcessId { pid, start }))
}

/// Whether `name` is an owned temporary name whose owner ran on this host and is gone.
pub fn is_orphaned(name: &str) -> bool {
    owner_of(name).is_some_and(|(host, owner)| host == host_tag() && !owner.is_alive())
}

fn builder() -> tempfile::Builder<'static, 'static> {
    static PREFIX_OF_ME: OnceLock<String> = OnceLock::new();
    let mut b = tempfile::Builder::new();
    b.prefix(PREFIX_OF_ME.get_or_init(owned_prefix).as_str());
    b
}

/// A temporary file in `dir` named after this process.
pub fn file_in(dir: &Path) -> io::Result<tempfile::NamedTempFile> {
    builder().tempfile_in(dir)
}

/// A temporary directory in `dir` named after this process.
pub fn dir_in(dir: &Path) -> io::Result<tempfile::TempDir> {
    builder().tempdir_in(dir)
}

/// A temporary file in `dir` named after this process, made by `make` (which creates the file
/// at the path it is given).
pub fn make_in<F>(dir: &Path, make: F) -> io::Result<tempfile::NamedTempFile<fs::File>>
where
    F: FnMut(&Path) -> io::Result<fs::File>,
{
    builder().make_in(dir, make)
}

/// One temporary file or directory removed because its owner is gone.
#[derive(Debug, Clone)]
pub struct Removed {
    pub path: PathBuf,
    pub bytes: u64,
}

/// Remove every temporary file or directory in `dir` whose owner (on this host) is gone.
/// A missing `dir` holds nothing; names not made by cegraph are left alone.
pub fn sweep(dir: &Path, dry_run: bool) -> Vec<Removed> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for e in entries.flatten() {
        if !is_orphaned(&e.file_name().to_string_lossy()) {
            continue;
        }
        let path = e.path();
        let bytes = size_of(&path);
        if dry_run || super::remove_path(&path).is_ok() {
            removed.push(Removed { path, bytes });
        }
    }
    removed
}

/// Bytes in a file or below a directory.
fn size_of(path: &Path) -> u64 {
    walkdir::WalkDir::new(path)
        .into_iter()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process that has exited and been reaped: its pid names nobody (for now).
    fn dead_process() -> ProcessId {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        let start = proc_stat(pid).map(|s| s.start).unwrap_or(1);
        child.wait().unwrap();
        ProcessId { pid, start }
    }

    #[test]
    fn temp_names_name_this_process() {
        let dir = tempfile::tempdir().unwrap();
        let f = file_in(dir.path()).unwrap();
        let name = f.path().file_name().unwrap().to_string_lossy().into_owned();
        let (host, owner) = owner_of(&name).expect("an owned name");
        assert_eq!(host, host_tag());
        assert_eq!(owner, ProcessId::current());
        assert!(owner.is_alive());
        assert!(!is_orphaned(&name));
        let d = dir_in(dir.path()).unwrap();
        assert!(owner_of(&d.path().file_name().unwrap().to_string_lossy()).is_some());
    }

    #[test]
    fn sweep_removes_only_what_dead_owners_left() {
        let dir = tempfile::tempdir().unwrap();
        let dead = dead_process();
        let orphan = dir.path().join(format!(
            "{PREFIX}{}-{}-{}-abc123",
            dead.pid,
            dead.start,
            host_tag()
        ));
        fs::write(&orphan, b"half a copy").unwrap();
        let orphan_dir = dir.path().join(format!(
            "{PREFIX}{}-{}-{}-job9",
            dead.pid,
            dead.start,
            host_tag()
        ));
        fs::create_dir(&orphan_dir).unwrap();
        fs::write(orphan_dir.join("job.json"), b"{}").unwrap();
        let mine = file_in(dir.path()).unwrap();
        let other_host = dir
            .path()
            .join(format!("{PREFIX}{}-{}-elsewhere-abc", dead.pid, dead.start));
        fs::write(&other_host, b"x").unwrap();
        let foreign = dir.path().join(".tmpXYZ");
        fs::write(&foreign, b"x").unwrap();

        let removed = sweep(dir.path(), false);
        let mut paths: Vec<_> = removed.iter().map(|r| r.path.clone()).collect();
        paths.sort();
        let mut expected = vec![orphan.clone(), orphan_dir.clone()];
        expected.sort();
        assert_eq!(paths, expected);
        assert_eq!(removed.iter().map(|r| r.bytes).sum::<u64>(), 13);
        assert!(!orphan.exists() && !orphan_dir.exists());
        assert!(mine.path().exists() && other_host.exists() && foreign.exists());
    }

    #[test]
    fn a_reused_pid_is_not_the_same_process() {
        let me = ProcessId::current();
        let impostor = ProcessId {
            pid: me.pid,
            start: me.start + 1,
        };
        assert!(!impostor.is_alive());
        assert!(owner_of(".tmp-12-34-host").is_none());
        assert!(owner_of(".tmp-x-34-host-r").is_none());
    }
}
