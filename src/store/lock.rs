//! One process per data directory.
//!
//! Two servers writing one store would each believe their in-memory
//! snapshot, their journal consumers and their timers are the truth. The
//! server therefore takes an exclusive lock on `data_dir/secondary53.lock`
//! before it opens the store, and holds it for its whole life; a second
//! server on the same directory stops at once with
//! [`StoreError::Locked`] and touches nothing (the lock file is only opened,
//! never truncated, until the lock is ours).
//!
//! The lock is `flock(2)`: it belongs to the open file, so it goes away
//! with the process however that ends (`kill -9` included), and a stale
//! lock file never blocks a restart. Readers (the offline CLI commands)
//! open the store read-only and do not take it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::StoreError;

/// File name of the lock inside `data_dir`.
pub const LOCK_FILE: &str = "secondary53.lock";

/// The exclusive lock on a data directory; released when dropped.
#[derive(Debug)]
pub struct DataDirLock {
    // Held open for the lock; closing it releases the lock.
    _file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Creates `data_dir` if needed and takes its lock without waiting.
    ///
    /// Fails with [`StoreError::Locked`] (naming the holder's pid when it
    /// wrote one) when another process holds it.
    pub fn acquire(data_dir: &Path) -> Result<DataDirLock, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join(LOCK_FILE);
        let io = |source| StoreError::LockFile {
            path: path.clone(),
            source,
        };
        // No truncate: a losing process must leave the holder's pid in place.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        // flock through libc: std's File::try_lock needs Rust 1.89, above
        // this crate's declared minimum.
        // SAFETY: flock(2) on a descriptor we own; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(StoreError::Locked {
                    dir: data_dir.to_path_buf(),
                    pid: text.trim().parse().ok(),
                });
            }
            return Err(io(err));
        }
        // Ours: record who holds it, for the next one's error message.
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(DataDirLock { _file: file, path })
    }

    /// Path of the lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_directory_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        let pid = std::fs::read_to_string(first.path()).unwrap();
        assert_eq!(pid.trim(), std::process::id().to_string());
        match DataDirLock::acquire(dir.path()) {
            Err(StoreError::Locked { dir: d, pid }) => {
                assert_eq!(d, dir.path());
                assert_eq!(pid, Some(std::process::id()));
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        // The refused attempt left the holder's pid in place.
        assert_eq!(std::fs::read_to_string(first.path()).unwrap(), pid);
        drop(first);
        DataDirLock::acquire(dir.path()).expect("free again after drop");
    }

    #[test]
    fn the_error_names_the_directory_and_the_holder() {
        let e = StoreError::Locked {
            dir: PathBuf::from("/var/lib/secondary53"),
            pid: Some(42),
        };
        let text = e.to_string();
        assert!(text.contains("/var/lib/secondary53"), "{text}");
        assert!(text.contains("pid 42"), "{text}");
    }
}
