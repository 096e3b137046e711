//! The cookie secret kept in `data_dir` ([`SECRET_FILE`]) when none is
//! configured: read at start, or generated on the first one and stored
//! off the start's critical path.
//!
//! Storing a generated secret durably costs two syncs (the file's, then
//! the directory's once it is renamed into place), a few milliseconds
//! that would delay the first transfers. A secret lost to a crash before
//! those syncs costs nothing but a new secret at the next start: a client
//! holding a server cookie made with the lost one gets a new server
//! cookie in the answer and uses it from then on (RFC 7873 section 5.4,
//! RFC 9018 section 4.3). So a thread of its own writes the secret to a
//! temporary file, syncs it, renames it into place and syncs the
//! directory; a failure is logged. The file is complete whenever it
//! exists (it appears by the rename, after its content is synced), so a
//! crash at any moment leaves either no secret or the whole one.

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use super::{SECRET_FILE, SecretError};
use crate::config::cookie_secret::parse_secret;

/// The secret of a data directory, as [`load_or_generate`] found it.
pub struct DataDirSecret {
    /// The secret (read, or generated now).
    pub secret: [u8; 16],
    /// A secret generated now is stored by a thread of its own; waiting
    /// for it is needed only to be sure it is on disk (at shutdown).
    pub storing: Option<SecretStoring>,
}

impl std::fmt::Debug for DataDirSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a secret.
        f.debug_struct("DataDirSecret")
            .field("storing", &self.storing.is_some())
            .finish_non_exhaustive()
    }
}

/// A generated secret being written and synced to [`SECRET_FILE`] on a
/// thread of its own.
#[derive(Debug)]
pub struct SecretStoring {
    thread: JoinHandle<Result<(), SecretError>>,
}

impl SecretStoring {
    /// Waits until the secret is stored and synced (file and directory),
    /// or its storing failed (already logged by the thread).
    pub fn wait(self) -> Result<(), SecretError> {
        self.thread.join().unwrap_or_else(|_| {
            Err(SecretError::Io {
                path: PathBuf::from(SECRET_FILE),
                source: std::io::Error::other("the thread storing the cookie secret panicked"),
            })
        })
    }
}

/// The secret stored in `data_dir` ([`SECRET_FILE`]), generated (random)
/// on first use and then stored with mode 0600 by a thread of its own
/// (see the module's doc), so a restart keeps the cookies clients hold
/// valid.
pub fn load_or_generate(data_dir: &Path) -> Result<DataDirSecret, SecretError> {
    let path = data_dir.join(SECRET_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            return Ok(DataDirSecret {
                secret: parse_secret(&text)?,
                storing: None,
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(SecretError::Io { path, source }),
    }
    let secret: [u8; 16] = rand::random();
    let dir = data_dir.to_path_buf();
    let spawned = std::thread::Builder::new()
        .name("cookie-secret-store".into())
        .spawn(move || {
            let stored = store(&dir, &secret);
            if let Err(e) = &stored {
                tracing::warn!(
                    error = %e,
                    "the generated cookie secret was not stored; the next start generates another (clients then take a new server cookie)"
                );
            }
            stored
        });
    let storing = match spawned {
        Ok(thread) => Some(SecretStoring { thread }),
        // No thread to spare: store it here.
        Err(_) => {
            store(data_dir, &secret)?;
            None
        }
    };
    Ok(DataDirSecret { secret, storing })
}

/// Writes `secret` to a temporary file (mode 0600), syncs it, renames it
/// to [`SECRET_FILE`] and syncs `data_dir`.
fn store(data_dir: &Path, secret: &[u8; 16]) -> Result<(), SecretError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = data_dir.join(format!("{SECRET_FILE}.tmp"));
    let path = data_dir.join(SECRET_FILE);
    let at = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SecretError::Io { path, source }
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(at(&tmp))?;
    f.write_all(format!("{}\n", to_hex(secret)).as_bytes())
        .map_err(at(&tmp))?;
    f.sync_all().map_err(at(&tmp))?;
    drop(f);
    std::fs::rename(&tmp, &path).map_err(at(&path))?;
    std::fs::File::open(data_dir)
        .and_then(|d| d.sync_all())
        .map_err(at(data_dir))
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
