//! Restoring outputs from the cache into the workspace. Every byte is checked on the way
//! out: the copy is hashed before it is renamed into place, and only then does the stat
//! cache learn its hash. An object that fails the check is moved to `cache/quarantine/`
//! and reported as [`Error::CorruptObject`], so the caller can re-run the node instead.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{OutputRecord, Store, remove_path, touch};
use crate::error::{CorruptObject, Error, IoContext, Result};
use crate::hash::Hash;
use crate::hash::files::{TreeEntry, hash_file, parse_tree_manifest};

impl Store {
    /// Materialise every cached output of a run in the workspace.
    pub fn restore_outputs(&self, workspace: &Path, outs: &[OutputRecord]) -> Result<()> {
        outs.iter()
            .filter(|o| o.cached)
            .try_for_each(|o| self.restore_output(workspace, o))
    }

    /// Materialise a recorded output in the workspace from the cache. A file is replaced
    /// atomically; a directory is assembled beside its final place and renamed in whole, so a
    /// corrupt entry leaves the workspace as it was.
    pub fn restore_output(&self, workspace: &Path, out: &OutputRecord) -> Result<()> {
        let dest = workspace.join(&out.path);
        if !out.dir {
            return self.restore_file(&out.hash, &dest, out.executable);
        }
        let entries = self.checked_tree(&out.hash, &dest)?;
        let parent = dest.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(parent).at(parent)?;
        let staging = super::tmp::dir_in(parent).at(parent)?;
        let mut restored = Vec::with_capacity(entries.len());
        for e in &entries {
            let file = staging.path().join(&e.rel);
            let shown = dest.join(&e.rel);
            let tmp = self.checked_copy(&e.hash, &file, &shown)?;
            // The manifest says whether the file is executable: one object may back both an
            // executable and a plain file with the same bytes.
            let mode = if e.executable { 0o755 } else { 0o644 };
            fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode)).at(tmp.path())?;
            let meta = fs::metadata(tmp.path()).at(tmp.path())?;
            tmp.persist(&file)
                .map_err(|err| Error::io(&file, err.error))?;
            restored.push((e.rel.clone(), meta, e.hash));
        }
        remove_path(&dest)?;
        let staged = staging.keep();
        fs::rename(&staged, &dest).map_err(|e| {
            let _ = fs::remove_dir_all(&staged);
            Error::io(&dest, e)
        })?;
        // A rename keeps inode and mtime: the stat of each staged copy is the final file's.
        for (rel, meta, hash) in restored {
            self.stat.remember(&dest.join(rel), &meta, hash);
        }
        Ok(())
    }

    /// Restore one file; `executable` is its recorded exec bit (`None`: the object's).
    fn restore_file(&self, hash: &Hash, dest: &Path, executable: Option<bool>) -> Result<()> {
        // Already right (say, after an interrupted run): nothing to copy, at most a mode to set.
        if let Ok((h, _)) = self.stat.file_hash(dest)
            && h == *hash
        {
            return match executable {
                Some(x) => set_exec_bits(dest, x),
                None => Ok(()),
            };
        }
        let parent = dest.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(parent).at(parent)?;
        if dest.is_dir() {
            remove_path(dest)?;
        }
        let tmp = self.checked_copy(hash, dest, dest)?;
        // One object may back an executable and a plain file with the same bytes, and its own
        // bits are those of whichever was stored (or downloaded) first: the record decides.
        let exec_bits = match executable {
            Some(x) => {
                if x {
                    0o111
                } else {
                    0
                }
            }
            None => {
                let obj = self.object_path(hash);
                fs::metadata(&obj).at(&obj)?.permissions().mode() & 0o111
            }
        };
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644 | exec_bits))
            .at(tmp.path())?;
        let meta = fs::metadata(tmp.path()).at(tmp.path())?;
        tmp.persist(dest).map_err(|e| Error::io(dest, e.error))?;
        self.stat.remember(dest, &meta, *hash);
        Ok(())
    }

    /// Copy object `hash` to a temporary file beside `dest` and check the copy's bytes.
    /// `shown` is the workspace path named in errors.
    fn checked_copy(
        &self,
        hash: &Hash,
        dest: &Path,
        shown: &Path,
    ) -> Result<tempfile::NamedTempFile> {
        let obj = self.object_path(hash);
        let parent = dest.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(parent).at(parent)?;
        // A reflink shares the object's blocks copy-on-write (btrfs, XFS, APFS): instant, and an
        // edit of the workspace file cannot reach the cache. Elsewhere it is a plain copy. Hard
        // links would be as fast but make the workspace file *be* the cache object, so one
        // in-place write (`>>`, a tool reopening it) would silently corrupt the cache.
        let tmp = super::tmp::make_in(parent, |path| {
            match reflink_copy::reflink_or_copy(&obj, path) {
                Ok(_) => fs::File::open(path),
                Err(e) => {
                    if e.kind() != io::ErrorKind::AlreadyExists {
                        let _ = fs::remove_file(path);
                    }
                    Err(e)
                }
            }
        })
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound if !obj.exists() => Error::io(&obj, e),
            _ => Error::io(dest, e),
        })?;
        let actual = hash_file(tmp.path()).at(tmp.path())?;
        if actual != *hash {
            drop(tmp);
            return Err(self.corrupt(hash, actual, shown));
        }
        touch(&obj);
        Ok(tmp)
    }

    /// A directory output's file list from its manifest object, after checking the
    /// manifest's own bytes.
    fn checked_tree(&self, hash: &Hash, dest: &Path) -> Result<Vec<TreeEntry>> {
        let obj = self.object_path(hash);
        let bytes = fs::read(&obj).at(&obj)?;
        let actual = Hash::of_bytes(&bytes);
        if actual != *hash {
            return Err(self.corrupt(hash, actual, dest));
        }
        touch(&obj);
        parse_tree_manifest(&bytes).ok_or_else(|| Error::Cache {
            path: obj,
            message: "directory manifest does not parse".into(),
        })
    }

    /// Move a damaged object aside and describe it.
    fn corrupt(&self, expected: &Hash, actual: Hash, dest: &Path) -> Error {
        let object = self.object_path(expected);
        Error::CorruptObject(Box::new(CorruptObject {
            quarantined: self.quarantine(expected),
            object,
            dest: dest.to_path_buf(),
            expected: *expected,
            actual,
        }))
    }

    /// Move object `hash` to `cache/quarantine/<hex>.<nanos>` (kept for inspection; a later
    /// run or pull stores a good copy under the name). `None` if it could not be moved.
    pub fn quarantine(&self, hash: &Hash) -> Option<PathBuf> {
        let dir = self.root().join("quarantine");
        fs::create_dir_all(&dir).ok()?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let to = dir.join(format!("{}.{nanos}", hash.to_hex()));
        fs::rename(self.object_path(hash), &to).ok()?;
        // gc keeps quarantined objects for `--keep-days` from now, not from when they were made.
        touch(&to);
        Some(to)
    }
}

/// Give `path` the exec bits `executable` says (for all three classes), if it lacks them.
pub(super) fn set_exec_bits(path: &Path, executable: bool) -> Result<()> {
    let mode = fs::metadata(path).at(path)?.permissions().mode();
    let wanted = if executable {
        mode | 0o111
    } else {
        mode & !0o111
    };
    if wanted != mode {
        fs::set_permissions(path, fs::Permissions::from_mode(wanted)).at(path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with(bytes: &[u8]) -> (tempfile::TempDir, Store, OutputRecord) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("cache")).unwrap();
        fs::write(dir.path().join("f"), bytes).unwrap();
        let out = store.put_output(dir.path(), "f").unwrap();
        (dir, store, out)
    }

    #[test]
    fn restoring_a_damaged_object_quarantines_it_and_writes_nothing() {
        let (dir, store, out) = store_with(b"good bytes");
        let obj = store.object_path(&out.hash);
        fs::set_permissions(&obj, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&obj, b"bad bytes!").unwrap();
        fs::remove_file(dir.path().join("f")).unwrap();
        let err = store.restore_output(dir.path(), &out).unwrap_err();
        let Error::CorruptObject(c) = err else {
            panic!("{err:?}");
        };
        let CorruptObject {
            expected,
            actual,
            quarantined: Some(q),
            ..
        } = *c
        else {
            panic!("not quarantined: {c:?}");
        };
        assert_eq!(expected, out.hash);
        assert_eq!(actual, Hash::of_bytes(b"bad bytes!"));
        assert_eq!(fs::read(q).unwrap(), b"bad bytes!");
        assert!(!obj.exists());
        assert!(!dir.path().join("f").exists());
        // Nothing was left beside the destination either.
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn a_good_restore_is_byte_exact() {
        let (dir, store, out) = store_with(b"good bytes");
        fs::remove_file(dir.path().join("f")).unwrap();
        store.restore_output(dir.path(), &out).unwrap();
        assert_eq!(fs::read(dir.path().join("f")).unwrap(), b"good bytes");
    }
}
