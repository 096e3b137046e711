//! The running server: the store, one task per zone, UDP/TCP listeners on
//! every `listen` address, and the control socket.
//!
//! [`Server::run`] takes a shutdown future, so a test or an embedding
//! program decides when it stops; the binary passes SIGTERM/SIGINT.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc};
use tracing::info;

use crate::tsig::TsigKey;

use crate::config::{Config, ZoneConfig};
use crate::events::{TaskContext, ZoneTask};
use crate::registry::{ZoneEntry, Zones};
use crate::registry::{ZoneShared, ZoneUpdated};
use crate::store::{DataDirLock, Store, StoreError};
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
    /// The DNS cookie secret could not be read or generated.
    #[error("cookie secret: {0}")]
    CookieSecret(#[from] crate::serve::cookie::SecretError),
    /// A TLS certificate, key or CA file could not be used.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
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
    pub fn zone_status(&self, zone: &str) -> Option<crate::registry::ZoneStatus> {
        let mut apex = zone.to_ascii_lowercase();
        if !apex.ends_with('.') {
            apex.push('.');
        }
        self.zones.get(&apex).map(|z| z.shared.status())
    }

    /// Every zone and its status, by apex.
    pub fn zones(&self) -> Vec<(String, crate::registry::ZoneStatus)> {
        self.zones
            .list()
            .into_iter()
            .map(|z| (z.shared.apex.clone(), z.shared.status()))
            .collect()
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

pub use crate::admin::reload::{ReloadRequest, Reloader};

/// A configured server, ready to run.
pub struct Server {
    config: Config,
    /// Held for the life of the server: one process per data directory.
    _lock: DataDirLock,
    config_path: Option<std::path::PathBuf>,
    zones: Arc<Zones>,
    /// What the listeners answer under (rate limiting, EDNS options).
    serve_settings: Arc<crate::serve::ServeSettings>,
    ctx: TaskContext,
    pending: Vec<PendingZone>,
    reload_tx: mpsc::Sender<ReloadRequest>,
    reload_rx: mpsc::Receiver<ReloadRequest>,
    /// The catalogs' content in force.
    consumer: crate::catalog::consumer::Consumer,
    /// The member zones of the catalogs, as they run.
    member_zones: Vec<Arc<ZoneConfig>>,
    /// The Route 53 request budget shared by every mirror of the process.
    budget: Arc<crate::mirror::budget::RequestBudget>,
    /// The cookie secret generated at this start, being stored off the
    /// start's path; a clean shutdown waits for it.
    cookie_secret_storing: Option<crate::serve::cookie::SecretStoring>,
}

/// A zone built but not yet running (tasks need the runtime).
struct PendingZone {
    apex: String,
    task: ZoneTask,
    mirror: Option<PendingMirror>,
}

/// A zone's mirror, started when the server runs (the Route 53 client
/// needs the runtime).
struct PendingMirror {
    cfg: crate::config::ZoneMirrorConfig,
    commands: mpsc::Receiver<crate::mirror::replay::MirrorCommand>,
    counters: Arc<crate::mirror::client::ApiCounters>,
}

/// The tasks of a running zone.
struct RunningZone {
    task: tokio::task::JoinHandle<()>,
    mirror: Option<tokio::task::JoinHandle<()>>,
}

fn signer_for(
    config: &Config,
    zone: &ZoneConfig,
    key: &Option<String>,
) -> Result<Option<TsigKey>, ServerError> {
    match key {
        Some(k) => {
            let key = config.key(k).ok_or_else(|| {
                ServerError::Key(format!("zone {}: key {k} is not defined", zone.name))
            })?;
            Ok(Some(
                key.tsig_key()
                    .map_err(|e| ServerError::Key(e.to_string()))?,
            ))
        }
        None => Ok(None),
    }
}

/// Builds a zone's entry (served at once, from the store) and its tasks.
fn build_zone(
    zc: &Arc<ZoneConfig>,
    config: &Config,
    ctx: &TaskContext,
    stored: Option<crate::store::StoredZone>,
) -> Result<(ZoneEntry, PendingZone), ServerError> {
    let signer = signer_for(config, zc, &zc.key)?;
    let notify_signer = signer_for(config, zc, &zc.notify_key)?;
    let mut primaries = Vec::with_capacity(zc.primaries.len());
    for (i, addr) in zc.primaries.iter().enumerate() {
        let mut p = Primary::new(*addr, signer.clone(), zc.timeouts, zc.limits);
        if let Some(Some(name)) = zc.primaries_tls.get(i) {
            let profile = config.tls_profile(name).ok_or_else(|| {
                ServerError::Key(format!("zone {}: [[tls]] {name} is not defined", zc.name))
            })?;
            p = p.with_tls(Arc::new(crate::tls::TlsClient::new(profile)?));
        }
        primaries.push(p);
    }
    let (tx, rx) = crate::registry::command_queue(crate::registry::command::COMMAND_QUEUE);
    let (mirror_handle, mirror) = match &zc.route53 {
        Some(mc) => {
            let (mtx, mrx) = mpsc::channel(4);
            let counters = Arc::new(crate::mirror::client::ApiCounters::default());
            (
                Some(crate::registry::MirrorHandle {
                    commands: mtx,
                    counters: counters.clone(),
                }),
                Some(PendingMirror {
                    cfg: mc.clone(),
                    commands: mrx,
                    counters,
                }),
            )
        }
        None => (None, None),
    };
    let (task, shared) = ZoneTask::load(Arc::clone(zc), primaries, rx, notify_signer, ctx, stored)?;
    let apex = shared.apex.clone();
    Ok((
        ZoneEntry {
            shared,
            commands: tx,
            settings: Arc::clone(zc.settings()),
            signer,
            mirror: mirror_handle,
            counts: Default::default(),
        },
        PendingZone { apex, task, mirror },
    ))
}

fn key_signers(
    config: &Config,
) -> Result<std::collections::HashMap<hickory_proto::rr::Name, TsigKey>, ServerError> {
    config
        .keys
        .iter()
        .map(|k| {
            Ok((
                k.name.clone(),
                k.tsig_key().map_err(|e| ServerError::Key(e.to_string()))?,
            ))
        })
        .collect()
}

/// Drops the journal consumers of `apex` (its mirror no longer exists) and
/// trims the journal they held to `limits`; logs what it did.
fn drop_consumers(ctx: &TaskContext, apex: &str, limits: &crate::store::JournalLimits) {
    let consumers = match ctx.store.read_blocking(|s| s.consumers()) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(zone = %apex, error = %e, "cannot list journal consumers");
            return;
        }
    };
    for (_, name) in consumers.into_iter().filter(|(z, _)| z == apex) {
        let dropped = ctx
            .store
            .write_blocking(|s| s.drop_consumer(apex, &name, limits, crate::clock::unix_now()));
        match dropped {
            Ok((_, trim)) => {
                info!(zone = %apex, consumer = %name, versions_trimmed = trim.versions,
                    "journal consumer dropped: its zone is no longer configured");
                crate::events::report_trim(&ctx.metrics, apex, &trim);
            }
            Err(e) => {
                tracing::warn!(zone = %apex, consumer = %name, error = %e, "cannot drop journal consumer")
            }
        }
    }
}

/// At start: drops the journal consumers of zones that are in the store
/// but no longer configured (the consumers of configured zones without a
/// mirror are dropped as those zones load).
fn drop_unconfigured_consumers(
    config: &Config,
    members: &[Arc<ZoneConfig>],
    ctx: &TaskContext,
) -> Result<(), ServerError> {
    let configured: std::collections::HashSet<String> = config
        .zones
        .iter()
        .chain(members)
        .map(|z| crate::zone::owner_key(&z.name))
        .collect();
    let consumers = ctx.store.read_blocking(|s| s.consumers())?;
    let mut zones: Vec<String> = consumers
        .into_iter()
        .map(|(z, _)| z)
        .filter(|z| !configured.contains(z))
        .collect();
    zones.dedup();
    for apex in zones {
        drop_consumers(ctx, &apex, &crate::store::JournalLimits::default());
    }
    Ok(())
}

/// Starts a built zone's tasks.
async fn spawn_zone(
    p: PendingZone,
    config: &Config,
    ctx: &TaskContext,
    budget: &Arc<crate::mirror::budget::RequestBudget>,
) -> RunningZone {
    let mirror = match p.mirror {
        Some(m) => {
            let r53 =
                crate::mirror::client::Route53::new(&config.route53, m.counters, budget.clone())
                    .await;
            match crate::mirror::replay::ZoneMirror::new(
                &p.apex,
                m.cfg,
                config.route53.clone(),
                r53,
                ctx.store.clone(),
            ) {
                Ok(mirror) => {
                    info!(zone = %p.apex, "Route 53 mirror started");
                    Some(tokio::spawn(
                        mirror.run(ctx.updates.subscribe(), m.commands),
                    ))
                }
                Err(e) => {
                    tracing::error!(zone = %p.apex, error = %e, "Route 53 mirror not started");
                    None
                }
            }
        }
        None => None,
    };
    RunningZone {
        task: tokio::spawn(Box::new(p.task).run()),
        mirror,
    }
}

/// Reads every configured catalog's stored content and plans its members
/// against the membership stored.
fn catalog_plan(
    consumer: &mut crate::catalog::consumer::Consumer,
    config: &Config,
    ctx: &TaskContext,
) -> Result<crate::catalog::consumer::Plan, StoreError> {
    consumer.retain(config);
    ctx.store.read_blocking(|store| {
        for c in &config.catalogs {
            let apex = crate::zone::owner_key(&c.name);
            match consumer.read(store, &apex) {
                Ok(_) => {}
                Err(crate::catalog::consumer::ReadError::Refused(e)) => {
                    tracing::warn!(catalog = %apex, error = %e,
                        "catalog version refused; the membership in force stays");
                    ctx.metrics.catalog_refused(&apex);
                }
                Err(crate::catalog::consumer::ReadError::Store(e)) => return Err(e),
            }
        }
        let stored = store.catalog_members()?;
        Ok(consumer.plan(config, &stored))
    })
}

/// The control socket's and metrics' view of a plan.
fn catalog_view(plan: &crate::catalog::consumer::Plan) -> crate::catalog::CatalogView {
    crate::catalog::CatalogView {
        catalogs: plan.serials.clone(),
        members: plan
            .zones
            .iter()
            .map(|z| {
                (
                    crate::zone::owner_key(&z.name),
                    (z.catalog.clone().unwrap_or_default(), z.group.clone()),
                )
            })
            .collect(),
    }
}

impl Server {
    /// Parses TOML configuration text and builds a server from it.
    pub fn from_toml(text: &str) -> Result<Server, ServerError> {
        let config = Config::parse(text, std::path::Path::new("<config>"))?;
        Server::new(config)
    }

    /// Reads a configuration file and builds a server from it; a
    /// configuration reload re-reads this file.
    pub fn from_file(path: &std::path::Path) -> Result<Server, ServerError> {
        let mut server = Server::new(Config::load(path)?)?;
        server.config_path = Some(path.to_path_buf());
        Ok(server)
    }

    /// Takes the data directory's lock, opens the store and loads every
    /// zone from it (ready to serve at once, before any transfer).
    ///
    /// Fails with [`StoreError::Locked`] when another process runs on the
    /// same `data_dir`; nothing is opened or written then.
    pub fn new(config: Config) -> Result<Server, ServerError> {
        let lock = DataDirLock::acquire(&config.server.data_dir)?;
        crate::low_priority::set_bulk_priority(config.server.bulk_priority);
        // A new store is made durable while the server starts (see
        // Store::open_deferred); the writes below, derived from the
        // configuration, do not wait for it.
        let store = Store::open_deferred(&config.server.data_dir)?;
        tracing::debug!(path = %store.path().display(), "store opened; loading zones");
        let store = crate::store::StoreHandle::new(store);
        let (updates, _) = broadcast::channel(1024);
        let generation = Arc::new(AtomicU64::new(0));
        let mut metrics = crate::metrics::Metrics::default();
        metrics.image_rows = store.image_rows_counters();
        let metrics = Arc::new(metrics);
        let mut zones = Zones::new(generation, metrics.clone());
        zones.store = Some(store.clone());
        let mut serve_settings = crate::serve::ServeSettings::default();
        if let Some(rrl) = &config.server.rrl {
            serve_settings.rrl = Some(Arc::new(crate::serve::rrl::Rrl::new(rrl)));
            metrics.enable_rrl();
        }
        zones.log_limit = crate::log_limit::LogLimiter::new(config.server.limits.log_rate_limit);
        let (edns, cookie_secret_storing) = edns_settings(&config.server)?;
        serve_settings.edns = edns;
        let pacer = Arc::new(crate::pacing::Pacer::new(
            config.server.pacing,
            metrics.pacing.clone(),
        ));
        let ctx = TaskContext {
            changes: zones.changes.clone(),
            commits: crate::store::CommitQueue::with_counters(
                store.clone(),
                metrics.group_commit.clone(),
            ),
            store,
            updates,
            metrics,
            store_health: Arc::new(crate::store::StoreHealth::default()),
            pacer,
        };
        // Every configured zone's row in one transaction: a first start of
        // thousands of zones pays one fsync here, not one per zone.
        let apexes: Vec<String> = config
            .zones
            .iter()
            .map(|z| crate::zone::owner_key(&z.name))
            .collect();
        ctx.store
            .write_at_start(|s| s.ensure_zones(apexes.iter().map(String::as_str)))?;
        // Every zone's state and records in one read, not a few per zone.
        let mut stored = ctx.store.read_blocking(|s| s.load_zones())?;
        let mut pending = Vec::new();
        for (zc, apex) in config.zones.iter().zip(&apexes) {
            let (entry, p) = build_zone(zc, &config, &ctx, stored.remove(apex))?;
            zones.insert(entry);
            pending.push(p);
        }
        // Catalog members, from the catalogs and the membership stored: a
        // restart serves them at once, without a transfer.
        let mut consumer = crate::catalog::consumer::Consumer::default();
        let plan = catalog_plan(&mut consumer, &config, &ctx)?;
        ctx.store.write_at_start(|s| {
            s.save_catalog_members(&plan.resolution.members, &plan.serials, &plan.dropped())
        })?;
        let apexes: Vec<String> = plan
            .zones
            .iter()
            .map(|z| crate::zone::owner_key(&z.name))
            .collect();
        ctx.store
            .write_at_start(|s| s.ensure_zones(apexes.iter().map(String::as_str)))?;
        *zones.catalogs.write().unwrap_or_else(|p| p.into_inner()) = catalog_view(&plan);
        let member_zones: Vec<Arc<ZoneConfig>> = plan.zones.into_iter().map(Arc::new).collect();
        for (zc, apex) in member_zones.iter().zip(&apexes) {
            let (entry, p) = build_zone(zc, &config, &ctx, stored.remove(apex))?;
            zones.insert(entry);
            pending.push(p);
        }
        drop_unconfigured_consumers(&config, &member_zones, &ctx)?;
        zones.set_keys(key_signers(&config)?);
        let (reload_tx, reload_rx) = mpsc::channel(4);
        let budget = Arc::new(crate::mirror::budget::RequestBudget::new(
            config.route53.max_requests_per_second,
        ));
        Ok(Server {
            config,
            _lock: lock,
            config_path: None,
            zones: Arc::new(zones),
            serve_settings: Arc::new(serve_settings),
            ctx,
            pending,
            reload_tx,
            reload_rx,
            consumer,
            member_zones,
            budget,
            cookie_secret_storing,
        })
    }

    /// The shared view of a zone (status, snapshot).
    pub fn zone(&self, apex: &str) -> Option<Arc<ZoneShared>> {
        self.zones.get(apex).map(|z| z.shared.clone())
    }

    /// A handle that reloads zone files and the configuration (what the
    /// binary does on SIGHUP).
    pub fn reloader(&self) -> Reloader {
        Reloader::new(self.zones.clone(), self.reload_tx.clone())
    }

    /// Subscribes to committed versions.
    pub fn subscribe(&self) -> broadcast::Receiver<ZoneUpdated> {
        self.ctx.updates.subscribe()
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
        let updates = self.ctx.updates.clone();
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
        mut self,
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
        let tcp = crate::serve::TcpService::new(
            self.tcp_clients_cap(),
            self.config.server.limits,
            self.ctx.metrics.clone(),
            self.serve_settings.clone(),
        );
        for addr in &self.config.server.listen {
            let listener = crate::serve::tcp::bind(*addr).map_err(|source| ServerError::Bind {
                addr: *addr,
                proto: "TCP",
                source,
            })?;
            threads.extend(
                crate::serve::udp::spawn_workers(
                    *addr,
                    workers,
                    self.zones.clone(),
                    self.serve_settings.clone(),
                    stop.clone(),
                )
                .map_err(|source| ServerError::Bind {
                    addr: *addr,
                    proto: "UDP",
                    source,
                })?,
            );
            info!(%addr, udp_workers = workers, "listening (UDP and TCP)");
            if let Some(r) = &self.config.server.rrl {
                info!(
                    %addr,
                    responses_per_second = r.responses_per_second,
                    slip = r.slip,
                    window = r.window,
                    log_only = r.log_only,
                    accounts = self.serve_settings.rrl.as_ref().map_or(0, |t| t.capacity()),
                    "response rate limiting on UDP"
                );
            }
            handles.push(tokio::spawn(crate::serve::serve_tcp(
                listener,
                self.zones.clone(),
                tcp.clone(),
            )));
        }
        if let (false, Some(cert), Some(key)) = (
            self.config.server.listen_tls.is_empty(),
            &self.config.server.tls_cert_file,
            &self.config.server.tls_key_file,
        ) {
            let tls_config = crate::tls::server_config(cert, key)?;
            for addr in &self.config.server.listen_tls {
                let listener =
                    crate::serve::tcp::bind(*addr).map_err(|source| ServerError::Bind {
                        addr: *addr,
                        proto: "TLS",
                        source,
                    })?;
                info!(%addr, "listening (TLS: queries and XFR over TLS)");
                handles.push(tokio::spawn(crate::serve::tcp::serve_tls(
                    listener,
                    self.zones.clone(),
                    tcp.clone(),
                    tls_config.clone(),
                )));
            }
        }
        // Summaries of rate-limited log lines, once their window has passed.
        let zones = self.zones.clone();
        handles.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                tick.tick().await;
                zones.log_limit.flush();
            }
        }));
        if let Some(addr) = self.config.server.metrics {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| ServerError::Bind {
                    addr,
                    proto: "TCP (metrics)",
                    source,
                })?;
            info!(%addr, "metrics on http://{addr}/metrics");
            handles.push(tokio::spawn(crate::admin::http::serve(
                listener,
                self.zones.clone(),
            )));
        }
        let control_path = self.config.server.control.clone();
        let (control, control_file) =
            crate::admin::control::bind(&control_path).map_err(|source| ServerError::Control {
                path: control_path.display().to_string(),
                source,
            })?;
        handles.push(tokio::spawn(crate::admin::control::serve(
            control,
            self.zones.clone(),
            Some(self.reloader()),
        )));
        let mut running: std::collections::HashMap<String, RunningZone> =
            std::collections::HashMap::new();
        for p in std::mem::take(&mut self.pending) {
            let apex = p.apex.clone();
            running.insert(
                apex,
                spawn_zone(p, &self.config, &self.ctx, &self.budget).await,
            );
        }
        // Reading the configuration and every zone's stored records at
        // start freed far more than the zones keep (with 10,000 zones, tens
        // of MiB, in pieces among the zones' own): hand back the pages
        // left free once every zone's task is placed.
        crate::zone::snapshot::release_free_memory_soon();
        info!(zones = self.config.zones.len(), "secondary53 running");
        if let Some(r) = ready {
            let _ = r.send(());
        }
        tokio::pin!(shutdown);
        let mut committed = self.ctx.updates.subscribe();
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                update = committed.recv() => {
                    let catalog_changed = match &update {
                        Ok(u) => self.config.catalogs.iter().any(|c| crate::zone::owner_key(&c.name) == u.zone),
                        // Missed updates: read every catalog again.
                        Err(broadcast::error::RecvError::Lagged(_)) => !self.config.catalogs.is_empty(),
                        Err(broadcast::error::RecvError::Closed) => false,
                    };
                    if catalog_changed {
                        let config = self.config.clone();
                        match self.apply(config, &mut running).await {
                            Ok(report) => info!(report = %report, "catalog members applied"),
                            Err(e) => tracing::error!(error = %e, "catalog members not applied"),
                        }
                    }
                }
                Some(req) = self.reload_rx.recv() => {
                    let result = self.reload(&mut running).await;
                    match &result {
                        Ok(report) => info!(report = %report, "configuration reloaded"),
                        Err(e) => tracing::error!(error = %e, "configuration not reloaded; keeping the running one"),
                    }
                    let _ = req.reply.send(result);
                }
            }
        }
        info!("shutting down");
        for h in &handles {
            h.abort();
        }
        for z in running.values() {
            z.task.abort();
            if let Some(m) = &z.mirror {
                m.abort();
            }
        }
        for h in handles {
            let _ = h.await;
        }
        for (_, z) in running {
            let _ = z.task.await;
            if let Some(m) = z.mirror {
                let _ = m.await;
            }
        }
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        if let Some(storing) = self.cookie_secret_storing.take() {
            // A failure is logged by the storing thread.
            let _ = tokio::task::spawn_blocking(move || storing.wait()).await;
        }
        control_file.remove();
        Ok(())
    }

    /// The inbound TCP cap: `tcp_clients`, lowered when it does not fit in
    /// the descriptor limit beside the reserve for outbound work (logged).
    fn tcp_clients_cap(&self) -> usize {
        let limits = &self.config.server.limits;
        let Some((nofile, _)) = crate::fd_budget::nofile_limit() else {
            return limits.tcp_clients;
        };
        let reserve = crate::fd_budget::reserve(&self.config);
        let cap = crate::fd_budget::tcp_cap(limits.tcp_clients, nofile, reserve);
        if cap.lowered {
            tracing::warn!(
                tcp_clients = limits.tcp_clients,
                lowered_to = cap.cap,
                nofile,
                reserve,
                "tcp_clients does not fit in the descriptor limit beside the descriptors kept for transfers, probes and NOTIFY; lowered (raise the limit, e.g. LimitNOFILE= in the systemd unit)"
            );
        }
        info!(
            tcp_clients = cap.cap,
            tcp_clients_per_address = limits.tcp_clients_per_address,
            transfers_out = limits.transfers_out,
            nofile,
            reserve,
            "TCP limits"
        );
        cap.cap
    }

    /// Applies the configuration file again. Zones are compared by apex:
    /// new ones start, removed ones stop, changed ones restart from the
    /// store (served without a gap: the new entry replaces the old one in
    /// one step). Server-level settings need a restart and are reported.
    async fn reload(
        &mut self,
        running: &mut std::collections::HashMap<String, RunningZone>,
    ) -> Result<String, String> {
        let Some(path) = self.config_path.clone() else {
            return Err("the server was not started from a configuration file".into());
        };
        let new = Config::load(&path).map_err(|e| e.to_string())?;
        let mut notes = Vec::new();
        let s_old = &self.config.server;
        let s_new = &new.server;
        // Taken by the bulk threads started from now on.
        crate::low_priority::set_bulk_priority(s_new.bulk_priority);
        if s_old.listen != s_new.listen
            || s_old.data_dir != s_new.data_dir
            || s_old.control != s_new.control
            || s_old.metrics != s_new.metrics
            || s_old.udp_workers != s_new.udp_workers
            || s_old.rrl != s_new.rrl
            || s_old.limits != s_new.limits
            || s_old.nsid != s_new.nsid
            || s_old.cookies != s_new.cookies
            || s_old.pacing != s_new.pacing
        {
            notes.push("[server] changes need a restart".to_string());
        }
        let report = self.apply(new, running).await?;
        notes.insert(0, report);
        Ok(notes.join("; "))
    }

    /// Runs the zones of `new` and the members of its catalogs, against
    /// those running: new ones start, removed ones stop, changed ones
    /// restart from the store. Catalog members removed or reset lose their
    /// data (after their task stopped). Returns a report.
    async fn apply(
        &mut self,
        new: Config,
        running: &mut std::collections::HashMap<String, RunningZone>,
    ) -> Result<String, String> {
        let plan = catalog_plan(&mut self.consumer, &new, &self.ctx).map_err(|e| e.to_string())?;
        let dropped = plan.dropped();
        // Stop the dropped members before their data goes.
        for apex in &dropped {
            if let Some(old) = running.remove(apex) {
                old.task.abort();
                if let Some(m) = old.mirror {
                    m.abort();
                    let _ = m.await;
                }
                let _ = old.task.await;
            }
        }
        self.ctx
            .store
            .write_blocking(|s| {
                s.save_catalog_members(&plan.resolution.members, &plan.serials, &dropped)
            })
            .map_err(|e| e.to_string())?;
        for (member, catalog) in &plan.resolution.removed {
            info!(zone = %member, %catalog, "catalog member removed with its data (Route 53 hosted zone left as is)");
        }
        for member in &plan.resolution.reset {
            info!(zone = %member, "catalog member reset: its data removed, transferred anew");
        }
        for member in &plan.resolution.added {
            info!(zone = %member, "catalog member added");
        }
        let view = catalog_view(&plan);
        let mut members: Vec<Arc<ZoneConfig>> = plan.zones.into_iter().map(Arc::new).collect();
        let keys = key_signers(&new).map_err(|e| e.to_string())?;
        let keys_changed = self.config.keys != new.keys;
        let r53_changed = self.config.route53 != new.route53;
        self.budget.set_rate(new.route53.max_requests_per_second);
        let old_zones: std::collections::HashMap<String, &Arc<ZoneConfig>> = self
            .config
            .zones
            .iter()
            .chain(&self.member_zones)
            .map(|z| (crate::zone::owner_key(&z.name), z))
            .collect();
        // Zones not running (new ones, catalog members added by a catalog
        // update) are registered in one transaction and read in one, not
        // one write transaction (and fsync) each as they load: a catalog
        // update adding thousands of members costs one of each.
        let starting: Vec<String> = new
            .zones
            .iter()
            .chain(&members)
            .map(|z| crate::zone::owner_key(&z.name))
            .filter(|apex| !running.contains_key(apex))
            .collect();
        let mut stored = if starting.is_empty() {
            std::collections::HashMap::new()
        } else {
            self.ctx
                .store
                .write_blocking(|s| s.ensure_zones(starting.iter().map(String::as_str)))
                .map_err(|e| e.to_string())?;
            self.ctx
                .store
                .read_blocking(|s| s.load_zones_named(starting.iter().map(String::as_str)))
                .map_err(|e| e.to_string())?
        };
        // Build every new or changed zone first: an error leaves all as it was.
        let mut built = Vec::new();
        let mut unchanged = std::collections::HashSet::new();
        for zc in new.zones.iter().chain(&members) {
            let apex = crate::zone::owner_key(&zc.name);
            let changed = match old_zones.get(&apex) {
                None => true,
                Some(_) if !running.contains_key(&apex) => true,
                Some(old) => {
                    **old != *zc
                        || (keys_changed && (zc.key.is_some() || zc.notify_key.is_some()))
                        || (r53_changed && zc.route53.is_some())
                }
            };
            if changed {
                if let Some(r) = running.get(&apex) {
                    // Stop the old task before the new one loads the store.
                    r.task.abort();
                    if let Some(m) = &r.mirror {
                        m.abort();
                    }
                }
                // A running zone changed is read after its task stopped.
                let read = if running.contains_key(&apex) {
                    None
                } else {
                    stored.remove(&apex)
                };
                built.push((
                    apex,
                    build_zone(zc, &new, &self.ctx, read).map_err(|e| e.to_string())?,
                ));
            } else {
                unchanged.insert(apex);
            }
        }
        // A zone left running keeps the settings its task shares: the new
        // configuration takes them, equal as they are, rather than hold a
        // second copy of every unchanged zone.
        let mut new = new;
        for zc in new.zones.iter_mut().chain(members.iter_mut()) {
            let apex = crate::zone::owner_key(&zc.name);
            if unchanged.contains(&apex)
                && let Some(old) = old_zones.get(&apex)
            {
                *zc = Arc::clone(old);
            }
        }
        self.zones.set_keys(keys);
        let (mut added, mut changed, mut removed) = (0, 0, 0);
        for (apex, (entry, pending)) in built {
            let was = self.zones.insert(entry).is_some();
            if let Some(old) = running.remove(&apex) {
                let _ = old.task.await;
                if let Some(m) = old.mirror {
                    let _ = m.await;
                }
            }
            running.insert(
                apex.clone(),
                spawn_zone(pending, &new, &self.ctx, &self.budget).await,
            );
            if was {
                changed += 1;
                info!(zone = %apex, "zone reconfigured");
            } else {
                added += 1;
                info!(zone = %apex, "zone added");
            }
        }
        let new_apexes: std::collections::HashSet<String> = new
            .zones
            .iter()
            .chain(&members)
            .map(|z| crate::zone::owner_key(&z.name))
            .collect();
        for apex in &dropped {
            if !new_apexes.contains(apex) {
                self.zones.remove(apex);
                removed += 1;
            }
        }
        let gone: Vec<String> = running
            .keys()
            .filter(|a| !new_apexes.contains(*a))
            .cloned()
            .collect();
        for apex in gone {
            self.zones.remove(&apex);
            if let Some(old) = running.remove(&apex) {
                old.task.abort();
                if let Some(m) = old.mirror {
                    m.abort();
                    let _ = m.await;
                }
                let _ = old.task.await;
            }
            removed += 1;
            info!(zone = %apex, "zone removed (its data stays in the store)");
            // Its mirror is gone too: the journal is no longer held for it.
            let limits = old_zones
                .get(&apex)
                .map(|z| z.journal_limits())
                .unwrap_or_default();
            drop_consumers(&self.ctx, &apex, &limits);
        }
        self.config = new;
        self.member_zones = members;
        *self
            .zones
            .catalogs
            .write()
            .unwrap_or_else(|p| p.into_inner()) = view;
        Ok(format!(
            "{added} added, {changed} changed, {removed} removed"
        ))
    }
}

/// The NSID and cookie settings of the answer path: the NSID payload
/// (`"hostname"` read now), the cookie secrets (the configured one, else
/// the one kept in `data_dir`, generated on first start); and for a
/// secret generated now, the thread storing it.
fn edns_settings(
    server: &crate::config::ServerConfig,
) -> Result<
    (
        crate::serve::options::EdnsSettings,
        Option<crate::serve::cookie::SecretStoring>,
    ),
    ServerError,
> {
    use crate::config::Nsid;
    let nsid = server.nsid.as_ref().map(|n| match n {
        Nsid::Hostname => crate::serve::options::hostname()
            .into_bytes()
            .into_boxed_slice(),
        Nsid::Text(t) => t.clone().into_bytes().into_boxed_slice(),
    });
    let (current, storing) = match server.cookies.secret {
        Some(s) => (s, None),
        None => {
            let kept = crate::serve::cookie::load_or_generate(&server.data_dir)?;
            (kept.secret, kept.storing)
        }
    };
    let settings = crate::serve::options::EdnsSettings {
        nsid,
        cookies: Some(crate::serve::cookie::CookieSecrets {
            current,
            previous: server.cookies.previous,
        }),
        cookie_required: server.cookies.required,
    };
    Ok((settings, storing))
}
