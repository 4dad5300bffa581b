//! Files that appear whole or not at all: written under a hidden temporary
//! name in their final directory, synced, then renamed into place (and the
//! directory synced, so the rename survives a power cut). A process killed
//! mid-write leaves only a temporary file, which readers never list (hive
//! readers skip names starting with `.` or `_`) and [`remove_leftovers`]
//! deletes at the next start.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Suffix of temporary files.
pub const TEMP_SUFFIX: &str = ".tmp";

/// A file being written; [`AtomicFile::commit`] makes it visible. Dropped
/// without a commit, it deletes its temporary file.
#[derive(Debug)]
pub struct AtomicFile {
    temp: PathBuf,
    target: PathBuf,
    file: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Starts writing `target`, creating its directory as needed.
    ///
    /// # Errors
    ///
    /// When the directory or the temporary file cannot be created (no
    /// space, no permission): nothing is left behind.
    pub fn create(target: &Path) -> io::Result<Self> {
        let dir = target.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir)?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = dir.join(format!(".{name}.{}{TEMP_SUFFIX}", std::process::id()));
        let file = File::options().write(true).create_new(true).open(&temp)?;
        Ok(Self {
            temp,
            target: target.to_owned(),
            file: Some(BufWriter::new(file)),
        })
    }

    /// Where the file will appear.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Flushes, syncs and renames the file into place, then syncs its
    /// directory.
    ///
    /// # Errors
    ///
    /// When any step fails; the temporary file is removed and the target
    /// does not appear.
    pub fn commit(mut self) -> io::Result<PathBuf> {
        let result = (|| {
            let file = self
                .file
                .take()
                .ok_or_else(|| io::Error::other("already committed"))?;
            let file = file.into_inner().map_err(io::IntoInnerError::into_error)?;
            file.sync_all()?;
            drop(file);
            fs::rename(&self.temp, &self.target)?;
            if let Some(dir) = self.target.parent() {
                File::open(dir)?.sync_all()?;
            }
            Ok(self.target.clone())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&self.temp);
        }
        result
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.file {
            Some(file) => file.write(buf),
            None => Err(io::Error::other("already committed")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// Deletes the temporary files a killed writer left under `dir`; returns
/// how many.
///
/// # Errors
///
/// When a directory cannot be read or a leftover removed.
pub fn remove_leftovers(dir: &Path) -> io::Result<usize> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            removed += remove_leftovers(&path)?;
        } else if is_temporary(&path) {
            fs::remove_file(&path)?;
            tracing::warn!(file = %path.display(), "removed a partial file left by an interrupted write");
            removed += 1;
        }
    }
    Ok(removed)
}

fn is_temporary(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.') && n.ends_with(TEMP_SUFFIX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_committed_file_appears_whole_and_an_abandoned_one_never() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("t/date=2026-12-04/part-0.parquet");
        let mut file = AtomicFile::create(&target).unwrap();
        file.write_all(b"PAR1 rows PAR1").unwrap();
        assert!(!target.exists(), "visible before the commit");
        assert_eq!(file.commit().unwrap(), target);
        assert_eq!(fs::read(&target).unwrap(), b"PAR1 rows PAR1");

        let other = dir.path().join("t/date=2026-12-04/part-1.parquet");
        let mut abandoned = AtomicFile::create(&other).unwrap();
        abandoned.write_all(b"half").unwrap();
        drop(abandoned);
        assert!(!other.exists());
        let names: Vec<_> = fs::read_dir(target.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["part-0.parquet"]);
    }

    #[test]
    fn leftovers_of_a_killed_writer_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let partition = dir.path().join("flows/institution=a/date=2026-12-04");
        fs::create_dir_all(&partition).unwrap();
        fs::write(partition.join(".part-3.parquet.4242.tmp"), b"half").unwrap();
        fs::write(partition.join("part-2.parquet"), b"whole").unwrap();
        fs::write(dir.path().join("keys.sqlite"), b"db").unwrap();
        assert_eq!(remove_leftovers(dir.path()).unwrap(), 1);
        assert!(partition.join("part-2.parquet").exists());
        assert!(dir.path().join("keys.sqlite").exists());
        assert_eq!(remove_leftovers(dir.path()).unwrap(), 0);
        assert_eq!(remove_leftovers(&dir.path().join("absent")).unwrap(), 0);
    }

    #[test]
    fn an_unwritable_directory_is_an_error_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("flows");
        fs::write(&blocker, b"a file where a directory should be").unwrap();
        let err = AtomicFile::create(&blocker.join("x/part-0.parquet")).unwrap_err();
        assert!(!err.to_string().is_empty());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
