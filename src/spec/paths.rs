//! Paths in a pipeline: normalising them, and keeping stages out of places they must not
//! touch (outside the workspace, the cache).

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use super::Pipeline;
use crate::error::Result;

/// Lexically normalise a relative path; `None` if it is absolute or climbs out with `..`.
pub fn normalize_inside(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str()?),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    if parts.is_empty() {
        return None;
    }
    Some(parts.join("/"))
}

/// A dep as written, tidied (`./a//b` → `a/b`); paths outside the workspace stay as they are.
pub(super) fn normalize_dep(dep: &str) -> String {
    normalize_inside(dep).unwrap_or_else(|| dep.to_string())
}

/// Whether an existing prefix of `rel` is a symlink leading out of `workspace`.
pub fn escapes_via_symlink(workspace: &Path, rel: &str) -> bool {
    let mut cur = workspace.to_path_buf();
    for part in rel.split('/') {
        cur.push(part);
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                return match std::fs::canonicalize(&cur) {
                    Ok(target) => !target.starts_with(workspace),
                    Err(_) => true,
                };
            }
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

/// The node producing `path`, or an output directory containing it.
pub(super) fn owner_of(owners: &HashMap<String, usize>, path: &str) -> Option<usize> {
    if let Some(&i) = owners.get(path) {
        return Some(i);
    }
    let mut p = Path::new(path);
    while let Some(parent) = p.parent() {
        if let Some(&i) = parent.to_str().and_then(|s| owners.get(s)) {
            return Some(i);
        }
        p = parent;
    }
    None
}

impl Pipeline {
    /// Refuse outputs and plain deps inside `cache` (and outputs containing it): a stage that
    /// writes there could forge or wipe cache entries, and one that reads there depends on
    /// cegraph's bookkeeping rather than on the stage that made the file.
    pub fn check_outside_cache(&self, cache: &Path) -> Result<()> {
        let cache = resolved(cache);
        let shown = cache.display();
        for node in &self.nodes {
            for (i, out) in node.outs.iter().enumerate() {
                let path = resolved(&self.workspace.join(&out.path));
                let at = node.outs_at.get(i).or(node.outs_at.last());
                let at = *at.unwrap_or(&node.line_col);
                if path.starts_with(&cache) {
                    return Err(self.source.error(
                        at,
                        format!("{}: output `{}` is inside the cache directory {shown}", node.name, out.path),
                        Some("the cache belongs to cegraph: write outputs elsewhere (e.g. under out/), or move the cache with --cache or CEGRAPH_CACHE".into()),
                    ));
                }
                if cache.starts_with(&path) {
                    return Err(self.source.error(
                        at,
                        format!("{}: output `{}` contains the cache directory {shown}", node.name, out.path),
                        Some("restoring that output would overwrite the cache: move the cache with --cache or CEGRAPH_CACHE".into()),
                    ));
                }
            }
            for (i, dep) in node.deps.iter().enumerate() {
                if resolved(&self.workspace.join(dep)).starts_with(&cache) {
                    let at = *node.deps_at.get(i).unwrap_or(&node.line_col);
                    return Err(self.source.error(
                        at,
                        format!("{}: dep `{dep}` is inside the cache directory {shown}", node.name),
                        Some("depend on the stage (or the file) that produced it, not on cegraph's copy".into()),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// `path` made absolute without `.`/`..`, with symlinks in its existing part resolved.
fn resolved(path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut lexical = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                lexical.pop();
            }
            Component::CurDir => {}
            other => lexical.push(other),
        }
    }
    // Resolve the longest existing prefix (a symlink into the cache counts as the cache).
    let mut existing = lexical.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(existing) {
            let mut out = real;
            out.extend(rest.iter().rev());
            return out;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return lexical,
        }
    }
}
