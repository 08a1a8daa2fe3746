//! Jobs read and write the cache and workspace from other machines, so both must be on a
//! filesystem every node sees. Checked at submission, not discovered as missing files later.

use std::path::Path;
use std::process::Command;

use crate::error::{Error, Result};

/// Filesystem types that are shared by design (as `stat -f -c %T` names them).
const SHARED: &[&str] = &[
    "nfs",
    "nfs4",
    "lustre",
    "gpfs",
    "beegfs",
    "ceph",
    "cifs",
    "smb2",
    "smb3",
    "panfs",
    "wekafs",
    "glusterfs",
    "fuse.glusterfs",
    "fuse.sshfs",
    "fuse.juicefs",
    "fuse.s3fs",
    "afs",
    "ocfs2",
    "gfs2",
    "9p",
    "virtiofs",
];

/// `paths` (what jobs touch) against the nodes that may run them. A cluster whose only node
/// is this machine shares everything with it.
pub fn check(paths: &[(&str, &Path)], nodes: &[String], this_host: &str) -> Result<()> {
    let short = |h: &str| h.split('.').next().unwrap_or(h).to_string();
    let others: Vec<&String> = nodes
        .iter()
        .filter(|n| short(n) != short(this_host))
        .collect();
    if others.is_empty() {
        return Ok(());
    }
    for (what, path) in paths {
        let fs = filesystem_type(path);
        if let Some(fs) = fs.filter(|t| !is_shared(t)) {
            let listed: Vec<&str> = others.iter().take(3).map(|s| s.as_str()).collect();
            return Err(Error::slurm(
                format!(
                    "the {what} {} is on {fs}, a filesystem local to this machine, but Slurm may run jobs on {}{}",
                    path.display(),
                    listed.join(", "),
                    if others.len() > 3 {
                        format!(" and {} more", others.len() - 3)
                    } else {
                        String::new()
                    }
                ),
                "put the workspace and the cache on a shared filesystem (the cache with --cache or CEGRAPH_CACHE), or set `slurm: {shared_fs: true}` if it is shared in a way cegraph cannot see",
            ));
        }
    }
    Ok(())
}

pub fn is_shared(fs_type: &str) -> bool {
    SHARED.contains(&fs_type) || fs_type.starts_with("nfs")
}

fn filesystem_type(path: &Path) -> Option<String> {
    let out = Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(path)
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_one_node_cluster_on_this_host_needs_nothing_shared() {
        let nodes = vec!["vm".to_string()];
        assert!(check(&[("cache", Path::new("/"))], &nodes, "vm.example.org").is_ok());
    }

    #[test]
    fn a_local_cache_with_other_nodes_is_refused_with_the_fix() {
        let nodes = vec!["gpu01".to_string(), "gpu02".to_string()];
        // /proc is never a shared filesystem.
        let err = check(&[("cache", Path::new("/proc"))], &nodes, "login1").unwrap_err();
        let text = format!("{err}");
        assert!(text.contains("/proc is on proc"), "{text}");
        assert!(text.contains("gpu01, gpu02"), "{text}");
    }

    #[test]
    fn network_filesystems_count_as_shared() {
        assert!(is_shared("nfs") && is_shared("lustre") && is_shared("gpfs"));
        assert!(!is_shared("ext2/ext3") && !is_shared("tmpfs") && !is_shared("xfs"));
    }
}
