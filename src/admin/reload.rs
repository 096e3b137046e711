//! Reloads asked of a running server (SIGHUP, `secondary53 reload`): the
//! primary zones' files and the configuration.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::registry::ZoneCommand;
use crate::registry::Zones;

/// Asks a running server to reload: its primary zones' files (SIGHUP) and,
/// when it was started from a file, its configuration.
#[derive(Clone)]
pub struct Reloader {
    zones: Arc<Zones>,
    requests: mpsc::Sender<ReloadRequest>,
}

/// A configuration reload asked of the server, with where to send the report.
pub struct ReloadRequest {
    /// The report (or the error) of the reload.
    pub reply: tokio::sync::oneshot::Sender<Result<String, String>>,
}

impl Reloader {
    /// A reloader of `zones` whose configuration reloads go to `requests`
    /// (the server's reload loop).
    pub fn new(zones: Arc<Zones>, requests: mpsc::Sender<ReloadRequest>) -> Self {
        Reloader { zones, requests }
    }

    /// Asks every primary zone to reload its file; returns how many.
    pub fn reload_files(&self) -> usize {
        let mut n = 0;
        for z in self.zones.list() {
            if z.is_primary() && z.commands.try_send(Box::new(ZoneCommand::Reload)).is_ok() {
                n += 1;
            }
        }
        n
    }

    /// Re-reads the configuration file and applies it: zones added, removed
    /// or changed take effect without a restart; queries for the zones that
    /// stay are answered throughout. Returns a report.
    pub async fn reload_config(&self) -> Result<String, String> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.requests
            .send(ReloadRequest { reply })
            .await
            .map_err(|_| "the server is not running".to_string())?;
        rx.await
            .map_err(|_| "the server stopped during the reload".to_string())?
    }
}
