//! The control socket: a Unix socket (mode 0600) that takes one command line
//! per connection and answers with lines, the first `ok` or `error: ...`.
//!
//! Commands: `status [ZONE]`, `refresh ZONE`, `retransfer ZONE`, `reload ZONE`
//! (a primary zone's file), `reload` (the configuration), `mirror-sync ZONE`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tracing::{info, warn};

use crate::schedule::ZoneCommand;
use crate::serve::Zones;

/// Binds the control socket, replacing a stale one.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    if path.exists() {
        // Another live server would answer; a dead one left a stale file.
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("{} is in use by a running server", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Serves control connections until dropped.
pub async fn serve(
    listener: UnixListener,
    zones: Arc<Zones>,
    reloader: Option<crate::server::Reloader>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(handle(stream, zones.clone(), reloader.clone()));
            }
            Err(e) => {
                warn!(error = %e, "control socket accept error");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn handle(stream: UnixStream, zones: Arc<Zones>, reloader: Option<crate::server::Reloader>) {
    let (r, mut w) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(r);
    if reader.read_line(&mut line).await.is_err() {
        return;
    }
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
            crate::metrics::mirror_lag(&zones).await
        } else {
            Default::default()
        };
        execute(line, &zones, &lags)
    };
    let _ = w.write_all(reply.as_bytes()).await;
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
) -> Result<std::sync::Arc<crate::serve::ZoneEntry>, String> {
    let arg = arg.ok_or("missing zone name")?;
    let mut apex = arg.to_ascii_lowercase();
    if !apex.ends_with('.') {
        apex.push('.');
    }
    zones
        .get(&apex)
        .ok_or_else(|| format!("no such zone: {arg}"))
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
                let s = z.shared.status();
                let opt = |v: Option<i64>| v.map(|t| t.to_string()).unwrap_or_else(|| "-".into());
                out.push_str(&format!(
                    "zone={} serial={} state={} primary={} last_refresh={} last_transfer={} last_kind={} versions_committed={} next_refresh={} expire_at={} error={}\n",
                    z.shared.apex,
                    s.serial.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
                    s.state.as_str(),
                    s.primary.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                    opt(s.last_refresh),
                    opt(s.last_transfer),
                    s.last_transfer_kind.as_deref().unwrap_or("-").replace(' ', "_"),
                    s.versions_committed,
                    opt(s.next_refresh),
                    opt(s.expire_at),
                    s.last_error.as_deref().unwrap_or("-").replace('\n', " "),
                ));
                let receiving = z
                    .shared
                    .transfer_progress
                    .load(std::sync::atomic::Ordering::Relaxed);
                if receiving > 0 {
                    out.pop();
                    out.push_str(&format!(" transfer_records={receiving}\n"));
                }
                if let Some(m) = &z.mirror {
                    use std::sync::atomic::Ordering::Relaxed;
                    // Appended to the zone's line, before its newline.
                    out.pop();
                    out.push_str(&format!(
                        " route53_lag={} route53_changes={} route53_lists={} route53_retries={} route53_errors={}\n",
                        lags.get(&z.shared.apex).map(|l| l.to_string()).unwrap_or_else(|| "-".into()),
                        m.counters.changes.load(Relaxed),
                        m.counters.lists.load(Relaxed),
                        m.counters.retries.load(Relaxed),
                        m.counters.errors.load(Relaxed),
                    ));
                }
            }
            Ok(out)
        }
        "refresh" | "retransfer" | "reload" => zone_arg(zones, arg).and_then(|z| {
            let c = match cmd {
                "refresh" => ZoneCommand::Refresh,
                "retransfer" => ZoneCommand::Retransfer,
                _ if !z.is_primary => {
                    return Err(format!(
                        "{} is not a primary zone (no `file`)",
                        z.shared.apex
                    ));
                }
                _ => ZoneCommand::Reload,
            };
            info!(zone = %z.shared.apex, command = cmd, "control command");
            z.commands
                .try_send(c)
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
        "" => Err("empty command".into()),
        other => Err(format!("unknown command: {other}")),
    };
    result.unwrap_or_else(|e| format!("error: {e}\n"))
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
