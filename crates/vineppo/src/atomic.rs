//! Crash-safe writes: every file and directory is built under a temporary name in the same
//! directory and renamed into place, so a crash leaves the old version or the new one, never a
//! half-written one.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Writes `bytes` to `path` atomically (temp file, fsync, rename).
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = parent(path);
    fs::create_dir_all(&dir).with_context(|| format!("creating directory `{}`", dir.display()))?;
    let tmp = sibling(path, "tmp");
    {
        let mut f =
            fs::File::create(&tmp).with_context(|| format!("creating `{}`", tmp.display()))?;
        f.write_all(bytes)
            .with_context(|| format!("writing `{}`", tmp.display()))?;
        f.sync_all()
            .with_context(|| format!("syncing `{}`", tmp.display()))?;
    }
    fs::rename(&tmp, path)
        .with_context(|| format!("renaming `{}` to `{}`", tmp.display(), path.display()))
}

/// A directory being built under a temporary name; [`StagedDir::commit`] moves it into place.
/// Dropping it uncommitted removes the partial directory.
pub struct StagedDir {
    tmp: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl StagedDir {
    /// Starts building `dest` (which may already exist; it is replaced on commit).
    pub fn new(dest: &Path) -> Result<Self> {
        let tmp = sibling(dest, "partial");
        if tmp.exists() {
            fs::remove_dir_all(&tmp)
                .with_context(|| format!("removing stale `{}`", tmp.display()))?;
        }
        fs::create_dir_all(&tmp).with_context(|| format!("creating `{}`", tmp.display()))?;
        Ok(Self {
            tmp,
            dest: dest.to_path_buf(),
            committed: false,
        })
    }

    /// Where to write the directory's contents.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Moves the finished directory to its destination, replacing an older one.
    pub fn commit(mut self) -> Result<()> {
        sync_tree(&self.tmp)?;
        let old = sibling(&self.dest, "old");
        if self.dest.exists() {
            if old.exists() {
                fs::remove_dir_all(&old)
                    .with_context(|| format!("removing `{}`", old.display()))?;
            }
            fs::rename(&self.dest, &old)
                .with_context(|| format!("moving aside `{}`", self.dest.display()))?;
        }
        fs::rename(&self.tmp, &self.dest).with_context(|| {
            format!(
                "renaming `{}` to `{}`",
                self.tmp.display(),
                self.dest.display()
            )
        })?;
        self.committed = true;
        if old.exists() {
            fs::remove_dir_all(&old).with_context(|| format!("removing `{}`", old.display()))?;
        }
        Ok(())
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.tmp);
        }
    }
}

fn sync_tree(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("listing `{}`", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            sync_tree(&path)?;
        } else {
            fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .with_context(|| format!("syncing `{}`", path.display()))?;
        }
    }
    Ok(())
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `dir/.name.suffix` next to `path`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parent(path).join(format!(".{name}.{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_dir_replaces_or_vanishes() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("ckpt");
        let s = StagedDir::new(&dest).unwrap();
        write_file(&s.path().join("a.txt"), b"one").unwrap();
        s.commit().unwrap();
        assert_eq!(fs::read(dest.join("a.txt")).unwrap(), b"one");
        // An abandoned second version leaves the first intact and no debris.
        {
            let s = StagedDir::new(&dest).unwrap();
            write_file(&s.path().join("a.txt"), b"two").unwrap();
        }
        assert_eq!(fs::read(dest.join("a.txt")).unwrap(), b"one");
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 1);
        let s = StagedDir::new(&dest).unwrap();
        write_file(&s.path().join("b.txt"), b"two").unwrap();
        s.commit().unwrap();
        assert!(!dest.join("a.txt").exists());
        assert_eq!(fs::read(dest.join("b.txt")).unwrap(), b"two");
    }
}
