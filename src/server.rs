//! The running server: the store, one task per zone, UDP/TCP listeners on
//! every `listen` address, and the control socket.
//!
//! [`Server::run`] takes a shutdown future, so a test or an embedding
//! program decides when it stops; the binary passes SIGTERM/SIGINT.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc};
use tracing::info;

use crate::config::Config;
use crate::schedule::{ZoneShared, ZoneTask, ZoneUpdated};
use crate::serve::{ZoneEntry, Zones};
use crate::store::{Store, StoreError};
use crate::xfr::Primary;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The store could not be opened or read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A listener could not be bound.
    #[error("cannot listen on {addr} ({proto}): {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// "UDP" or "TCP".
        proto: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// The control socket could not be bound.
    #[error("cannot bind control socket {path}: {source}")]
    Control {
        /// Its path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A TSIG key could not be used.
    #[error("{0}")]
    Key(String),
    /// The configuration text is not valid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The server task ended abnormally.
    #[error("server stopped: {0}")]
    Stopped(String),
}

/// A running server (see [`Server::start`]).
pub struct ServerHandle {
    stop: tokio::sync::oneshot::Sender<()>,
    join: tokio::task::JoinHandle<Result<(), ServerError>>,
    zones: Arc<Zones>,
    updates: broadcast::Sender<ZoneUpdated>,
}

impl ServerHandle {
    /// The status of one zone (apex in any case, trailing dot optional).
    pub fn zone_status(&self, zone: &str) -> Option<crate::schedule::ZoneStatus> {
        let mut apex = zone.to_ascii_lowercase();
        if !apex.ends_with('.') {
            apex.push('.');
        }
        self.zones.get(&apex).map(|z| z.shared.status())
    }

    /// Every zone and its status, by apex.
    pub fn zones(&self) -> Vec<(String, crate::schedule::ZoneStatus)> {
        let mut v: Vec<_> = self
            .zones
            .iter()
            .map(|z| (z.shared.apex.clone(), z.shared.status()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Events: every committed version.
    pub fn subscribe(&self) -> broadcast::Receiver<ZoneUpdated> {
        self.updates.subscribe()
    }

    /// Stops the server and waits until it has stopped.
    pub async fn stop(self) -> Result<(), ServerError> {
        let _ = self.stop.send(());
        match self.join.await {
            Ok(r) => r,
            Err(e) => Err(ServerError::Stopped(e.to_string())),
        }
    }
}

/// Reloads primary zones from their files.
#[derive(Clone)]
pub struct Reloader {
    zones: Arc<Zones>,
}

impl Reloader {
    /// Asks every primary zone to reload its file; returns how many.
    pub fn reload_files(&self) -> usize {
        let mut n = 0;
        for z in self.zones.iter() {
            if z.is_primary
                && z.commands
                    .try_send(crate::schedule::ZoneCommand::Reload)
                    .is_ok()
            {
                n += 1;
            }
        }
        n
    }
}

/// A configured server, ready to run.
pub struct Server {
    config: Config,
    zones: Arc<Zones>,
    tasks: Vec<ZoneTask>,
    updates: broadcast::Sender<ZoneUpdated>,
    store: crate::schedule::SharedStore,
    mirrors: Vec<PendingMirror>,
}

/// A zone's mirror, started when the server runs (the Route 53 client
/// needs the runtime).
struct PendingMirror {
    apex: String,
    cfg: crate::config::ZoneMirrorConfig,
    commands: mpsc::Receiver<crate::mirror::replay::MirrorCommand>,
    counters: Arc<crate::mirror::client::ApiCounters>,
}

impl Server {
    /// Parses TOML configuration text and builds a server from it.
    pub fn from_toml(text: &str) -> Result<Server, ServerError> {
        let config = Config::parse(text, std::path::Path::new("<config>"))?;
        Server::new(config)
    }

    /// Opens the store and loads every zone from it (ready to serve at once,
    /// before any transfer).
    pub fn new(config: Config) -> Result<Server, ServerError> {
        let store = Arc::new(Mutex::new(Store::open(&config.server.data_dir)?));
        let (updates, _) = broadcast::channel(1024);
        let generation = Arc::new(AtomicU64::new(0));
        let metrics = Arc::new(crate::metrics::Metrics::default());
        let mut zones = Zones::new(generation.clone(), metrics.clone());
        let ctx = crate::schedule::TaskContext {
            store: store.clone(),
            updates: updates.clone(),
            generation: generation.clone(),
            metrics,
        };
        let mut tasks = Vec::new();
        let mut mirrors = Vec::new();
        for zc in &config.zones {
            let signer = match &zc.key {
                Some(k) => {
                    let key = config.key(k).ok_or_else(|| {
                        ServerError::Key(format!("zone {}: key {k} is not defined", zc.name))
                    })?;
                    Some(crate::tsig::signer(key).map_err(ServerError::Key)?)
                }
                None => None,
            };
            let primaries = zc
                .primaries
                .iter()
                .map(|addr| Primary {
                    addr: *addr,
                    signer: signer.clone(),
                    timeouts: zc.timeouts,
                })
                .collect();
            let notify_signer = match &zc.notify_key {
                Some(k) => {
                    let key = config.key(k).ok_or_else(|| {
                        ServerError::Key(format!("zone {}: key {k} is not defined", zc.name))
                    })?;
                    Some(crate::tsig::signer(key).map_err(ServerError::Key)?)
                }
                None => None,
            };
            let (tx, rx) = mpsc::channel(16);
            let mirror = match &zc.route53 {
                Some(mc) => {
                    let (mtx, mrx) = mpsc::channel(4);
                    let counters = Arc::new(crate::mirror::client::ApiCounters::default());
                    mirrors.push(PendingMirror {
                        apex: crate::zone::owner_key(&zc.name),
                        cfg: mc.clone(),
                        commands: mrx,
                        counters: counters.clone(),
                    });
                    Some(crate::serve::MirrorHandle {
                        commands: mtx,
                        counters,
                    })
                }
                None => None,
            };
            let (task, shared) = ZoneTask::load(zc.clone(), primaries, rx, notify_signer, &ctx)?;
            zones.insert(ZoneEntry {
                shared,
                commands: tx,
                allow_notify: zc.allow_notify.clone(),
                signer,
                allow_transfer: zc.allow_transfer.clone(),
                is_primary: zc.file.is_some(),
                mirror,
            });
            tasks.push(task);
        }
        for k in &config.keys {
            zones.keys.insert(
                k.name.clone(),
                crate::tsig::signer(k).map_err(ServerError::Key)?,
            );
        }
        zones.store = Some(store.clone());
        Ok(Server {
            config,
            zones: Arc::new(zones),
            tasks,
            updates,
            store,
            mirrors,
        })
    }

    /// The shared view of a zone (status, snapshot).
    pub fn zone(&self, apex: &str) -> Option<Arc<ZoneShared>> {
        self.zones.get(apex).map(|z| z.shared.clone())
    }

    /// A handle that reloads the primary zones from their files (what the
    /// binary does on SIGHUP).
    pub fn reloader(&self) -> Reloader {
        Reloader {
            zones: self.zones.clone(),
        }
    }

    /// Subscribes to committed versions.
    pub fn subscribe(&self) -> broadcast::Receiver<ZoneUpdated> {
        self.updates.subscribe()
    }

    /// Binds the listeners and runs until `shutdown` completes.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
        self.run_inner(shutdown, None).await
    }

    /// Starts the server on the current tokio runtime and returns once every
    /// listener is bound (or with the error that stopped it).
    pub async fn start(self) -> Result<ServerHandle, ServerError> {
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
        let zones = self.zones.clone();
        let updates = self.updates.clone();
        let join = tokio::spawn(self.run_inner(
            async move {
                let _ = stop_rx.await;
            },
            Some(ready_tx),
        ));
        match ready_rx.await {
            Ok(()) => Ok(ServerHandle {
                stop: stop_tx,
                join,
                zones,
                updates,
            }),
            Err(_) => match join.await {
                Ok(Err(e)) => Err(e),
                Ok(Ok(())) => Err(ServerError::Stopped("while starting".into())),
                Err(e) => Err(ServerError::Stopped(e.to_string())),
            },
        }
    }

    async fn run_inner(
        self,
        shutdown: impl Future<Output = ()>,
        ready: Option<tokio::sync::oneshot::Sender<()>>,
    ) -> Result<(), ServerError> {
        let stop = Arc::new(AtomicBool::new(false));
        // UDP workers are threads: make sure they stop if binding fails.
        struct StopOnDrop(Arc<AtomicBool>);
        impl Drop for StopOnDrop {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stop_guard = StopOnDrop(stop.clone());
        let mut handles = Vec::new();
        let mut threads = Vec::new();
        let workers = self.config.server.udp_workers;
        for addr in &self.config.server.listen {
            let tcp = TcpListener::bind(addr)
                .await
                .map_err(|source| ServerError::Bind {
                    addr: *addr,
                    proto: "TCP",
                    source,
                })?;
            threads.extend(
                crate::serve::udp::spawn_workers(*addr, workers, self.zones.clone(), stop.clone())
                    .map_err(|source| ServerError::Bind {
                        addr: *addr,
                        proto: "UDP",
                        source,
                    })?,
            );
            info!(%addr, udp_workers = workers, "listening (UDP and TCP)");
            handles.push(tokio::spawn(crate::serve::serve_tcp(
                tcp,
                self.zones.clone(),
            )));
        }
        if let Some(addr) = self.config.server.metrics {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| ServerError::Bind {
                    addr,
                    proto: "TCP (metrics)",
                    source,
                })?;
            info!(%addr, "metrics on http://{addr}/metrics");
            handles.push(tokio::spawn(crate::metrics::serve(
                listener,
                self.zones.clone(),
            )));
        }
        let control_path = self.config.server.control.clone();
        let control =
            crate::control::bind(&control_path).map_err(|source| ServerError::Control {
                path: control_path.display().to_string(),
                source,
            })?;
        handles.push(tokio::spawn(crate::control::serve(
            control,
            self.zones.clone(),
        )));
        for m in self.mirrors {
            let r53 = crate::mirror::client::Route53::new(&self.config.route53, m.counters).await;
            match crate::mirror::replay::ZoneMirror::new(
                &m.apex,
                m.cfg,
                self.config.route53.clone(),
                r53,
                self.store.clone(),
            ) {
                Ok(mirror) => {
                    info!(zone = %m.apex, "Route 53 mirror started");
                    handles.push(tokio::spawn(
                        mirror.run(self.updates.subscribe(), m.commands),
                    ));
                }
                Err(e) => {
                    tracing::error!(zone = %m.apex, error = %e, "Route 53 mirror not started")
                }
            }
        }
        for task in self.tasks {
            handles.push(tokio::spawn(task.run()));
        }
        info!(zones = self.config.zones.len(), "secondary53 running");
        if let Some(r) = ready {
            let _ = r.send(());
        }
        shutdown.await;
        info!("shutting down");
        for h in &handles {
            h.abort();
        }
        for h in handles {
            let _ = h.await;
        }
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        let _ = std::fs::remove_file(&control_path);
        Ok(())
    }
}
