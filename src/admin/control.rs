//! The control socket: a Unix socket (mode 0600) that takes one command line
//! per connection and answers with lines, the first `ok` or `error: ...`.
//!
//! Commands: `status [ZONE]`, `refresh ZONE`, `retransfer ZONE`, `reload ZONE`
//! (a primary zone's file), `reload` (the configuration), `mirror-sync ZONE`
//! (a Route 53 reconcile, scheduled), `mirror-sync-wait ZONE` (the same,
//! answered with its report once it ends: the reply waits for the
//! reconcile, whose every Route 53 call is bounded by `operation_timeout`),
//! `catalogs` (each catalog zone: serial, members, members serving) and
//! `catalog NAME` (its members, their group, state and serial).
//!
//! Limits: a command line of at most [`MAX_LINE`] bytes, sent within
//! [`READ_TIMEOUT`]; the reply written within [`WRITE_TIMEOUT`]; at most
//! [`MAX_CONNECTIONS`] connections served at once. Only a socket is ever
//! removed at the control path (a stale one at start, ours at shutdown).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tracing::{info, warn};

use crate::log_limit::LogEvent;
use crate::metrics::{AdminEndpoint, AdminLimit};

use crate::admin::status::{Route53Status, StatusLine};
use crate::registry::ZoneCommand;
use crate::registry::Zones;

/// Longest command line read, in bytes (newline excluded).
pub const MAX_LINE: usize = 4096;
/// Time for the command line to arrive.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Time for the reply to be written.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Control connections served at once; more are answered `error: busy`.
pub const MAX_CONNECTIONS: usize = 16;

/// The file of a bound control socket, removed on shutdown only while it
/// is still that socket.
pub struct ControlPath {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl ControlPath {
    /// Removes the socket file, unless something else replaced it (another
    /// server's socket, or a file that is not a socket).
    pub fn remove(&self) {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        if let Ok(m) = std::fs::symlink_metadata(&self.path)
            && m.file_type().is_socket()
            && m.dev() == self.dev
            && m.ino() == self.ino
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Binds the control socket, replacing a stale one. Only a socket is ever
/// replaced: a regular file, directory or symbolic link at `path` is an
/// error, and stays as it is.
pub fn bind(path: &Path) -> std::io::Result<(UnixListener, ControlPath)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            // Another live server would answer; a dead one left a stale file.
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!("{} is in use by a running server", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        Ok(m) => {
            let what = if m.file_type().is_symlink() {
                "a symbolic link"
            } else if m.is_dir() {
                "a directory"
            } else {
                "not a socket"
            };
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists and is {what}; not replacing it (remove it or choose another `control` path)",
                    path.display()
                ),
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let m = std::fs::symlink_metadata(path)?;
    Ok((
        listener,
        ControlPath {
            path: path.to_path_buf(),
            dev: m.dev(),
            ino: m.ino(),
        },
    ))
}

/// Serves control connections until dropped: at most [`MAX_CONNECTIONS`]
/// at once, each bounded by [`MAX_LINE`], [`READ_TIMEOUT`] and
/// [`WRITE_TIMEOUT`].
pub async fn serve(
    listener: UnixListener,
    zones: Arc<Zones>,
    reloader: Option<crate::admin::reload::Reloader>,
) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    refused(&zones, AdminLimit::Busy);
                    // One non-blocking write: a busy server spends no task on it.
                    if let Ok(mut s) = stream.into_std() {
                        use std::io::Write as _;
                        let _ = s.write(b"error: busy: too many control connections\n");
                    }
                    continue;
                };
                let zones = zones.clone();
                let reloader = reloader.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    handle(stream, zones, reloader).await;
                });
            }
            Err(e) => {
                if zones.log_limit.allow(LogEvent::AcceptFailed) {
                    warn!(error = %e, "control socket accept error");
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

fn refused(zones: &Zones, limit: AdminLimit) {
    zones.metrics.limits.admin(AdminEndpoint::Control, limit);
    if zones.log_limit.allow(LogEvent::AdminLimit) {
        warn!(limit = ?limit, "control socket: connection refused by a limit");
    }
}

/// Reads one line of at most [`MAX_LINE`] bytes within `limit`.
/// On failure: the limit that triggered (None for an I/O error) and why.
async fn read_command(
    reader: &mut (impl tokio::io::AsyncBufRead + Unpin),
    limit: Duration,
) -> Result<String, (Option<AdminLimit>, String)> {
    let mut buf = Vec::new();
    let mut limited = reader.take(MAX_LINE as u64 + 1);
    match tokio::time::timeout(limit, limited.read_until(b'\n', &mut buf)).await {
        Err(_) => Err((
            Some(AdminLimit::Timeout),
            format!("no command line within {} ms", limit.as_millis()),
        )),
        Ok(Err(e)) => Err((None, format!("read error: {e}"))),
        Ok(Ok(_)) => {
            if buf.last() == Some(&b'\n') {
                buf.pop();
            }
            if buf.len() > MAX_LINE {
                return Err((
                    Some(AdminLimit::TooLarge),
                    format!("command line longer than {MAX_LINE} bytes"),
                ));
            }
            String::from_utf8(buf).map_err(|_| (None, "command line is not UTF-8".to_string()))
        }
    }
}

async fn handle(
    stream: UnixStream,
    zones: Arc<Zones>,
    reloader: Option<crate::admin::reload::Reloader>,
) {
    let (r, mut w) = stream.into_split();
    let mut reader = BufReader::new(r);
    let line = match read_command(&mut reader, READ_TIMEOUT).await {
        Ok(line) => line,
        Err((limit, why)) => {
            if let Some(limit) = limit {
                refused(&zones, limit);
            }
            let _ = tokio::time::timeout(
                WRITE_TIMEOUT,
                w.write_all(format!("error: {why}\n").as_bytes()),
            )
            .await;
            return;
        }
    };
    let line = line.trim();
    // `reload` alone re-reads the configuration (and then zone files).
    let reply = if line == "reload" {
        match &reloader {
            None => "error: this server cannot reload its configuration\n".to_string(),
            Some(r) => match r.reload_config().await {
                Ok(report) => {
                    let files = r.reload_files();
                    format!("ok\nconfiguration reloaded: {report}; {files} zone files reloading\n")
                }
                Err(e) => format!("error: {e}\n"),
            },
        }
    } else if let Some(arg) = line.strip_prefix("mirror-sync-wait ") {
        mirror_sync_wait(&zones, arg.trim()).await
    } else {
        let lags = if line.starts_with("status") {
            crate::admin::http::mirror_lag(&zones).await
        } else {
            Default::default()
        };
        execute(line, &zones, &lags)
    };
    if tokio::time::timeout(WRITE_TIMEOUT, w.write_all(reply.as_bytes()))
        .await
        .is_err()
    {
        refused(&zones, AdminLimit::Timeout);
    }
}

/// `mirror-sync-wait ZONE`: a reconcile now, answered with its report.
async fn mirror_sync_wait(zones: &Zones, arg: &str) -> String {
    let z = match zone_arg(zones, Some(arg)) {
        Ok(z) => z,
        Err(e) => return format!("error: {e}\n"),
    };
    let Some(m) = &z.mirror else {
        return format!("error: {} is not mirrored to Route 53\n", z.shared.apex);
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    if let Err(e) = m
        .commands
        .send(crate::mirror::replay::MirrorCommand::Sync(Some(tx)))
        .await
    {
        return format!("error: mirror stopped: {e}\n");
    }
    info!(zone = %z.shared.apex, command = "mirror-sync", "control command");
    match rx.await {
        Ok(Ok(report)) => format!(
            "ok\n{}: serial {} mirrored; {report}\n",
            z.shared.apex,
            report
                .serial
                .map_or_else(|| "- (behind)".to_string(), |s| s.to_string()),
        ),
        Ok(Err(e)) => format!("error: {e}\n"),
        Err(_) => "error: the mirror stopped before the sync ended\n".to_string(),
    }
}

fn zone_arg(
    zones: &Zones,
    arg: Option<&str>,
) -> Result<std::sync::Arc<crate::registry::ZoneEntry>, String> {
    let arg = arg.ok_or("missing zone name")?;
    let mut apex = arg.to_ascii_lowercase();
    if !apex.ends_with('.') {
        apex.push('.');
    }
    zones
        .get(&apex)
        .ok_or_else(|| format!("no such zone: {arg}"))
}

/// `catalogs`: one line per catalog: serial in force, members, serving.
fn catalog_list(zones: &Zones) -> String {
    let view = zones
        .catalogs
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let mut out = String::from("ok\n");
    for (catalog, serial) in &view.catalogs {
        let (mut members, mut serving) = (0, 0);
        for m in view.members_of(catalog) {
            members += 1;
            if zones
                .get(m)
                .is_some_and(|z| z.shared.status().state == crate::registry::ZoneLifecycle::Serving)
            {
                serving += 1;
            }
        }
        out.push_str(&format!(
            "catalog={catalog} serial={} members={members} serving={serving}\n",
            serial.map(|s| s.to_string()).unwrap_or_else(|| "-".into())
        ));
    }
    out
}

/// `catalog NAME`: the catalog's line, then one line per member.
fn catalog_status(zones: &Zones, arg: Option<&str>) -> Result<String, String> {
    let arg = arg.ok_or("usage: catalog NAME")?;
    let mut apex = arg.to_ascii_lowercase();
    if !apex.ends_with('.') {
        apex.push('.');
    }
    let view = zones
        .catalogs
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let Some((_, serial)) = view.catalogs.iter().find(|(c, _)| *c == apex) else {
        return Err(format!("no such catalog: {arg}"));
    };
    let mut out = format!(
        "ok\ncatalog={apex} serial={}\n",
        serial.map(|s| s.to_string()).unwrap_or_else(|| "-".into())
    );
    for m in view.members_of(&apex) {
        let group = view
            .members
            .get(m)
            .and_then(|(_, g)| g.as_deref())
            .unwrap_or("-")
            .replace(char::is_whitespace, "_");
        let (state, zserial) = match zones.get(m) {
            Some(z) => {
                let s = z.shared.status();
                (
                    s.state.as_str(),
                    s.serial
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "-".into()),
                )
            }
            None => ("stopped", "-".into()),
        };
        out.push_str(&format!(
            "zone={m} group={group} state={state} serial={zserial}\n"
        ));
    }
    Ok(out)
}

fn execute(line: &str, zones: &Zones, lags: &std::collections::BTreeMap<String, i64>) -> String {
    let mut words = line.split_whitespace();
    let cmd = words.next().unwrap_or("");
    let arg = words.next();
    let result = match cmd {
        "status" => {
            let mut out = String::from("ok\n");
            let list = zones.list();
            for z in list {
                if let Some(a) = arg
                    && zone_arg(zones, Some(a))
                        .map(|e| e.shared.apex != z.shared.apex)
                        .unwrap_or(true)
                {
                    continue;
                }
                // The count sent first, then the status: a command sent in
                // between shows as taken beyond it, and one taken but not
                // yet counted as fewer taken than sent; neither is settled.
                let sent = z.commands.sent();
                let s = z.shared.status();
                let catalog = zones
                    .catalogs
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .members
                    .get(&z.shared.apex)
                    .cloned();
                let receiving = z
                    .shared
                    .transfer_progress
                    .load(std::sync::atomic::Ordering::Relaxed);
                let route53 = z.mirror.as_ref().map(|m| {
                    use std::sync::atomic::Ordering::Relaxed;
                    Route53Status {
                        lag: lags.get(&z.shared.apex).copied(),
                        changes: m.counters.changes.load(Relaxed),
                        lists: m.counters.lists.load(Relaxed),
                        retries: m.counters.retries.load(Relaxed),
                        errors: m.counters.errors.load(Relaxed),
                    }
                });
                let line = StatusLine {
                    zone: z.shared.apex.clone(),
                    serial: s.serial,
                    state: s.state,
                    primary: s.primary,
                    last_refresh: s.last_refresh.get(),
                    last_transfer: s.last_transfer.get(),
                    last_kind: s.last_transfer_kind.map(str::to_string),
                    versions_committed: s.versions_committed,
                    next_refresh: s.next_refresh.get(),
                    expire_at: s.expire_at.get(),
                    // No check running or asked for (commands still in the
                    // zone's queue count as asked for).
                    settled: s.settled(sent),
                    catalog,
                    error: s.last_error.as_deref().map(str::to_string),
                    transfer_records: (receiving > 0).then_some(receiving),
                    route53,
                };
                out.push_str(&format!("{line}\n"));
            }
            Ok(out)
        }
        "refresh" | "retransfer" | "reload" => zone_arg(zones, arg).and_then(|z| {
            let c = match cmd {
                "refresh" => ZoneCommand::Refresh,
                "retransfer" => ZoneCommand::Retransfer,
                _ if !z.is_primary() => {
                    return Err(format!(
                        "{} is not a primary zone (no `file`)",
                        z.shared.apex
                    ));
                }
                _ => ZoneCommand::Reload,
            };
            info!(zone = %z.shared.apex, command = cmd, "control command");
            z.commands
                .try_send(Box::new(c))
                .map(|_| format!("ok\n{cmd} of {} scheduled\n", z.shared.apex))
                .map_err(|e| format!("zone task busy: {e}"))
        }),
        "mirror-sync" => zone_arg(zones, arg).and_then(|z| match &z.mirror {
            None => Err(format!("{} is not mirrored to Route 53", z.shared.apex)),
            Some(m) => m
                .commands
                .try_send(crate::mirror::replay::MirrorCommand::Sync(None))
                .map(|_| format!("ok\nRoute 53 sync of {} scheduled\n", z.shared.apex))
                .map_err(|e| format!("mirror busy: {e}")),
        }),
        "catalogs" => Ok(catalog_list(zones)),
        "catalog" => catalog_status(zones, arg),
        "" => Err("empty command".into()),
        other => Err(format!("unknown command: {other}")),
    };
    result.unwrap_or_else(|e| format!("error: {e}\n"))
}

/// Asks a running server for the status of one zone (or of every zone).
pub fn status(path: &PathBuf, zone: Option<&str>) -> Result<Vec<StatusLine>, String> {
    let cmd = match zone {
        Some(z) => format!("status {z}"),
        None => "status".to_string(),
    };
    crate::admin::status::parse_reply(&request(path, &cmd)?).map_err(|e| e.to_string())
}

/// Sends one command to a running server; returns its reply lines (after
/// the `ok` line), or the error it gave.
pub fn request(path: &PathBuf, command: &str) -> Result<String, String> {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(path).map_err(|e| {
        format!(
            "cannot reach the server at {}: {e} (is it running?)",
            path.display()
        )
    })?;
    s.write_all(format!("{command}\n").as_bytes())
        .map_err(|e| format!("control socket write: {e}"))?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)
        .map_err(|e| format!("control socket read: {e}"))?;
    match reply.split_once('\n') {
        Some(("ok", rest)) => Ok(rest.to_string()),
        _ => Err(reply.trim().trim_start_matches("error: ").to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_that_is_not_a_socket_is_never_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("control.sock");
        std::fs::write(&path, "precious").expect("write");
        let e = bind(&path).err().expect("bind must refuse");
        assert!(e.to_string().contains("not a socket"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "precious");
        // A symbolic link (to a file or to nothing) stays too.
        let link = dir.path().join("link.sock");
        std::os::unix::fs::symlink(&path, &link).expect("symlink");
        let e = bind(&link).err().expect("bind must refuse");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(std::fs::symlink_metadata(&link).is_ok());
        // A directory too.
        let sub = dir.path().join("dir.sock");
        std::fs::create_dir(&sub).expect("mkdir");
        assert!(bind(&sub).is_err());
        assert!(sub.is_dir());
    }

    #[tokio::test]
    async fn a_stale_socket_is_replaced_and_only_ours_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("control.sock");
        // A socket nobody listens on any more.
        drop(std::os::unix::net::UnixListener::bind(&path).expect("bind stale"));
        assert!(path.exists());
        let (listener, ours) = bind(&path).expect("stale socket replaced");
        // A live server's socket is not taken over.
        let e = bind(&path).err().expect("in use");
        assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
        drop(listener);
        // Something else took the path: shutdown leaves it alone.
        std::fs::remove_file(&path).expect("remove");
        std::fs::write(&path, "not ours").expect("write");
        ours.remove();
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "not ours");
        std::fs::remove_file(&path).expect("remove");
        let (_l2, second) = bind(&path).expect("bind again");
        second.remove();
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn command_lines_are_bounded() {
        let long = vec![b'x'; MAX_LINE + 10];
        let mut r = BufReader::new(&long[..]);
        let e = read_command(&mut r, READ_TIMEOUT)
            .await
            .expect_err("too long");
        assert_eq!(e.0, Some(AdminLimit::TooLarge));
        let mut ok = vec![b'y'; MAX_LINE];
        ok.push(b'\n');
        let mut r = BufReader::new(&ok[..]);
        assert_eq!(
            read_command(&mut r, READ_TIMEOUT)
                .await
                .expect("fits")
                .len(),
            MAX_LINE
        );
        let mut r = BufReader::new(&b"status\n"[..]);
        assert_eq!(
            read_command(&mut r, READ_TIMEOUT).await.expect("line"),
            "status"
        );
    }

    #[tokio::test]
    async fn a_silent_client_times_out() {
        let (a, _b) = tokio::io::duplex(64);
        let mut r = BufReader::new(a);
        let e = read_command(&mut r, Duration::from_millis(50))
            .await
            .expect_err("timeout");
        assert_eq!(e.0, Some(AdminLimit::Timeout));
    }
}
