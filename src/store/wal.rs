//! The store's WAL written out and copied into the database file in the
//! background, after a streamed first version.

/// Whether a [`sync_wal_in_background`] thread is running (in this
/// process, for any store).
static WAL_SYNCING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Starts writing the WAL of the store at `path` to disk on a thread of
/// lower priority (one at a time: when one runs already, it is left to
/// finish and this does nothing). The batches of `Store::stream_rows`
/// are not synced (they need not survive a crash), so without this the
/// sync of `Store::stream_commit` writes the whole zone's WAL out at
/// once while the version waits; here most of it is on disk by then,
/// written while the transfer went on. Syncing early never loses anything:
/// it is the sync SQLite would do at the commit, done sooner.
pub(super) fn sync_wal_in_background(path: &std::path::Path) {
    use std::sync::atomic::Ordering;
    if WAL_SYNCING.swap(true, Ordering::AcqRel) {
        return;
    }
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let spawned = std::thread::Builder::new()
        .name("wal-sync".into())
        .spawn(move || {
            crate::low_priority::lower_this_thread();
            // Best effort: the commit syncs whatever this did not.
            if let Ok(f) = std::fs::File::open(&wal) {
                let _ = f.sync_data();
            }
            WAL_SYNCING.store(false, Ordering::Release);
        });
    if spawned.is_err() {
        WAL_SYNCING.store(false, Ordering::Release);
    }
}

/// Copies what the WAL holds into the database file, on a thread of lower
/// priority with a connection of its own: a passive checkpoint, which
/// takes no lock that a reader or the writer waits for (it stops short of
/// frames a reader still needs; a later checkpoint copies those). A
/// failure is logged: the automatic checkpoints of later commits, or the
/// last connection's close, do the work instead.
pub(super) fn checkpoint_in_background(path: &std::path::Path) {
    let path = path.to_path_buf();
    let spawned = std::thread::Builder::new()
        .name("wal-checkpoint".into())
        .spawn(move || {
            crate::low_priority::lower_this_thread();
            let done = rusqlite::Connection::open(&path).and_then(|conn| {
                let pages = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                    Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
                })?;
                // The WAL holds the whole zone: truncated once copied, if
                // no reader or writer is using it right now (this
                // connection has no busy handler, so it waits for none;
                // the frames left are few, so a writer that comes
                // meanwhile waits briefly). Otherwise it stays the size
                // it grew to, and is reused from its start.
                let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
                Ok(pages)
            });
            match done {
                Ok((wal, copied)) => {
                    tracing::debug!(path = %path.display(), wal_pages = wal, copied_pages = copied, "WAL checkpointed after a streamed version");
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "WAL checkpoint after a streamed version failed; later commits checkpoint instead");
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the WAL checkpoint thread; later commits checkpoint instead");
    }
}
