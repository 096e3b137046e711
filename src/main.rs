//! The `secondary53` command: a thin CLI over the library.
//!
//! Offline commands (`check`, `zone list`, `zone dump`, `journal`) read the
//! configuration and the store directly, so they work whether or not the
//! server runs. `zone status|refresh|retransfer` talk to the running server
//! over its control socket.
//!
//! Exit codes: 0 success, 1 a runtime error (store, server, control), 2 a
//! usage or configuration error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use secondary53::admin::status::StatusLine;
use secondary53::clock::unix_now;
use secondary53::config::{Config, LogFormat};
use secondary53::server::Server;
use secondary53::store::Store;

#[derive(Parser)]
#[command(
    name = "secondary53",
    version,
    about = "Authoritative secondary DNS server with a journaled SQLite store"
)]
struct Cli {
    /// Configuration file.
    #[arg(
        short = 'c',
        long = "config",
        global = true,
        default_value = "/etc/secondary53/secondary53.toml"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Run {
        /// Log as JSON lines instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Validate the configuration and exit.
    Check,
    /// Make the running server re-read its configuration (zones added,
    /// removed or changed take effect without a restart) and zone files.
    Reload,
    /// Zone commands.
    Zone {
        #[command(subcommand)]
        command: ZoneCommand,
    },
    /// Catalog zone commands (RFC 9432).
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// Route 53 mirror commands.
    Mirror {
        #[command(subcommand)]
        command: MirrorCommand,
    },
    /// Show the journal of a zone: versions and their deltas.
    Journal {
        /// Zone name.
        zone: String,
        /// Only versions after this serial.
        #[arg(long)]
        since: Option<u32>,
    },
}

#[derive(Subcommand)]
enum CatalogCommand {
    /// Each catalog of the running server: serial in force, members, members served.
    List,
    /// A catalog's members: group, state, serial.
    Status {
        /// Catalog zone name.
        name: String,
    },
}

#[derive(Subcommand)]
enum MirrorCommand {
    /// Print the changes a sync would send (lists the hosted zone; writes nothing).
    Plan {
        /// Zone name.
        zone: String,
    },
    /// Reconcile the hosted zone with the store now (through the running
    /// server when there is one).
    Sync {
        /// Zone name.
        zone: String,
    },
    /// Per mirrored zone: cursor serial, zone serial, lag, last error, last success.
    Status,
}

#[derive(Subcommand)]
enum ZoneCommand {
    /// List zones: name, serial, last refresh, state (from the store).
    List,
    /// Print the current version in master-file format.
    Dump {
        /// Zone name.
        zone: String,
    },
    /// Status of the running server's zones.
    Status {
        /// Zone name (all when omitted).
        zone: Option<String>,
    },
    /// Check the zone's SOA at the primaries now.
    Refresh {
        /// Zone name.
        zone: String,
    },
    /// Transfer the whole zone now (AXFR), even if the serial is not newer;
    /// waits for it, showing progress, unless --no-wait.
    Retransfer {
        /// Zone name.
        zone: String,
        /// Only schedule the transfer.
        #[arg(long)]
        no_wait: bool,
    },
    /// Reload a primary zone from its file.
    Reload {
        /// Zone name.
        zone: String,
    },
}

/// Caps glibc's malloc arenas at one per core, unless `MALLOC_ARENA_MAX`
/// sets the number. glibc's default (eight per core) gives nearly every
/// thread (runtime workers, the blocking pool, UDP workers) an arena of its
/// own, each holding freed memory apart from the others: with thousands of
/// zones that is about a tenth of the resident size, for no gain in speed
/// on the allocations this server makes. Called first, before any thread
/// starts.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let arenas = libc::c_int::try_from(cores.max(2)).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only changes a setting of the allocator; no
        // other thread runs yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}

/// How long an idle thread of the runtime's blocking pool waits for more
/// work before it ends (tokio's default is 10 s). Store calls run on that
/// pool, and at a first start thousands of zones commit at once: each
/// call waiting for the writer holds a thread, so the pool grows to tens
/// of threads for a few seconds. Each keeps its stack and per-thread
/// allocator caches while it lives; ending them soon after the burst
/// gives that back, and a thread is cheap to start again for the next.
const BLOCKING_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(2);

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    if let Command::Run { json } = cli.command {
        let json = match Config::load(&cli.config) {
            Ok(c) => json || c.server.log_format == LogFormat::Json,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        // The configuration read above is dropped: the server reads the
        // file itself and keeps what it needs, and a copy held here for the
        // whole run would be every zone's settings twice.
        return match run(&cli.config, json) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        };
    }
    let config = match Config::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Check => {
            println!(
                "{}: ok ({} zones, {} keys)",
                cli.config.display(),
                config.zones.len(),
                config.keys.len()
            );
            Ok(())
        }
        Command::Run { .. } => unreachable!("handled above"),
        Command::Reload => secondary53::control::request(&config.server.control, "reload")
            .map(|out| print!("{out}")),
        Command::Zone { command } => zone_command(&config, command),
        Command::Journal { zone, since } => journal(&config, &zone, since),
        Command::Mirror { command } => mirror_command(&config, command),
        Command::Catalog { command } => {
            let cmd = match command {
                CatalogCommand::List => "catalogs".to_string(),
                CatalogCommand::Status { name } => format!("catalog {name}"),
            };
            secondary53::control::request(&config.server.control, &cmd).map(|out| print!("{out}"))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// Logs to stderr, filtered by `RUST_LOG` as comma-separated `level` and
/// `target=level` directives (`info,secondary53::events::stages=debug`);
/// unset or empty: `info`; unreadable: `info`, and a warning that says so.
fn init_logging(json: bool) {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;
    let asked = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let parsed = asked.as_deref().map(str::parse::<Targets>);
    let unreadable = match &parsed {
        Some(Err(e)) => Some(e.to_string()),
        _ => None,
    };
    let filter = parsed
        .and_then(Result::ok)
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry().with(filter);
    if json {
        registry.with(layer.json()).init();
    } else {
        registry.with(layer.with_ansi(false)).init();
    }
    if let (Some(value), Some(error)) = (asked, unreadable) {
        tracing::warn!(
            rust_log = %value,
            %error,
            "RUST_LOG not understood (comma-separated `level` and `target=level`); logging at info"
        );
    }
}

fn run(path: &std::path::Path, json: bool) -> Result<(), String> {
    init_logging(json);
    // As BIND does: the soft descriptor limit up to the hard one, so the
    // inbound TCP cap and the reserve for transfers both fit.
    match secondary53::fd_budget::raise_nofile_limit() {
        Some((before, after)) if after > before => {
            tracing::info!(
                from = before,
                to = after,
                "raised the open-files limit (RLIMIT_NOFILE)"
            )
        }
        Some(_) => {}
        None => tracing::warn!("cannot read the open-files limit (RLIMIT_NOFILE)"),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_keep_alive(BLOCKING_KEEP_ALIVE)
        .build()
        .map_err(|e| format!("cannot start runtime: {e}"))?;
    runtime.block_on(async {
        let server = Server::from_file(path).map_err(|e| e.to_string())?;
        let reloader = server.reloader();
        server
            .run(shutdown_signal(reloader))
            .await
            .map_err(|e| e.to_string())
    })
}

async fn shutdown_signal(reloader: secondary53::server::Reloader) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    // SIGHUP re-reads the configuration, then reloads the primary zones
    // from their files (as `rndc reload` does).
    let mut hup = signal(SignalKind::hangup()).ok();
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = tokio::signal::ctrl_c() => return,
            Some(_) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {
                match reloader.reload_config().await {
                    Ok(report) => tracing::info!(report = %report, "SIGHUP: configuration reloaded"),
                    Err(e) => tracing::error!(error = %e, "SIGHUP: configuration not reloaded"),
                }
                let n = reloader.reload_files();
                tracing::info!(zones = n, "SIGHUP: reloading primary zones from their files");
            }
        }
    }
}

fn apex(zone: &str) -> String {
    let mut z = zone.to_ascii_lowercase();
    if !z.ends_with('.') {
        z.push('.');
    }
    z
}

/// The store for the offline commands, opened read-only.
fn open_store(config: &Config) -> Result<Option<Store>, String> {
    Store::open_read_only(&config.server.data_dir).map_err(|e| e.to_string())
}

fn require_store(config: &Config) -> Result<Store, String> {
    open_store(config)?.ok_or_else(|| {
        format!(
            "no store in {} yet (the server creates it on first start)",
            config.server.data_dir.display()
        )
    })
}

fn zone_command(config: &Config, command: ZoneCommand) -> Result<(), String> {
    match command {
        ZoneCommand::List => {
            let (stored, members) = match open_store(config)? {
                Some(store) => (
                    store.zones().map_err(|e| e.to_string())?,
                    store.catalog_members().map_err(|e| e.to_string())?,
                ),
                None => Default::default(),
            };
            let now = unix_now();
            println!(
                "{:<32} {:>10} {:<20} {:<8} CATALOG",
                "ZONE", "SERIAL", "LAST_REFRESH", "STATE"
            );
            // Zones configured here, then the catalogs' members (stored).
            let names = config
                .zones
                .iter()
                .map(|zc| secondary53::zone::owner_key(&zc.name))
                .chain(members.keys().cloned());
            for name in names {
                let catalog = match members.get(&name) {
                    Some(m) => match &m.group {
                        Some(g) => format!("{} (group {g})", m.catalog),
                        None => m.catalog.clone(),
                    },
                    None => "-".into(),
                };
                let st = stored.iter().find(|s| s.name == name);
                let (serial, refreshed, state) = match st {
                    None | Some(secondary53::store::ZoneState { serial: None, .. }) => {
                        ("-".to_string(), "-".to_string(), "loading")
                    }
                    Some(s) => {
                        let state = if s.is_expired(now) {
                            "expired"
                        } else if s.last_failure.is_some() {
                            "retrying"
                        } else {
                            "ok"
                        };
                        (
                            s.serial.map(|v| v.to_string()).unwrap_or_default(),
                            s.last_refresh.map(fmt_time).unwrap_or_else(|| "-".into()),
                            state,
                        )
                    }
                };
                println!("{name:<32} {serial:>10} {refreshed:<20} {state:<8} {catalog}");
            }
            Ok(())
        }
        ZoneCommand::Dump { zone } => {
            let store = require_store(config)?;
            let z = apex(&zone);
            if store.current_soa(&z).map_err(|e| e.to_string())?.is_none() {
                return Err(format!("zone {z} has no stored version"));
            }
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            use std::io::Write;
            let _ = writeln!(out, "$ORIGIN {z}");
            let mut failed = None;
            store
                .for_each_record(&z, |r| {
                    if failed.is_none()
                        && let Err(e) = writeln!(out, "{}", r.to_master_line())
                    {
                        failed = Some(e);
                    }
                })
                .map_err(|e| e.to_string())?;
            if let Some(e) = failed {
                return Err(format!("write: {e}"));
            }
            out.flush().map_err(|e| format!("write: {e}"))
        }
        ZoneCommand::Status { zone } => {
            let cmd = match zone {
                Some(z) => format!("status {z}"),
                None => "status".into(),
            };
            let out = secondary53::control::request(&config.server.control, &cmd)?;
            print!("{out}");
            Ok(())
        }
        ZoneCommand::Refresh { zone } => {
            let out =
                secondary53::control::request(&config.server.control, &format!("refresh {zone}"))?;
            print!("{out}");
            Ok(())
        }
        ZoneCommand::Reload { zone } => {
            let out =
                secondary53::control::request(&config.server.control, &format!("reload {zone}"))?;
            print!("{out}");
            Ok(())
        }
        ZoneCommand::Retransfer { zone, no_wait } => {
            let control = &config.server.control;
            let one = |zone: &str| -> Result<StatusLine, String> {
                secondary53::control::status(control, Some(zone))?
                    .into_iter()
                    .next()
                    .ok_or_else(|| format!("{zone}: no status"))
            };
            let before = one(&zone)?;
            let out = secondary53::control::request(control, &format!("retransfer {zone}"))?;
            print!("{out}");
            if no_wait {
                return Ok(());
            }
            let limit = config
                .zone(&zone)
                .map(|z| z.timeouts.transfer)
                .unwrap_or(std::time::Duration::from_secs(1800))
                + std::time::Duration::from_secs(30);
            let deadline = std::time::Instant::now() + limit;
            while std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(250));
                let now = one(&zone)?;
                if let Some(n) = now.transfer_records {
                    eprint!("\rreceiving: {n} records");
                }
                if now.versions_committed != before.versions_committed {
                    eprintln!();
                    println!(
                        "retransfer done: serial {} ({})",
                        now.serial.map(|s| s.to_string()).unwrap_or_default(),
                        now.last_kind.unwrap_or_default()
                    );
                    return Ok(());
                }
                if now.error != before.error
                    && now.error.is_some()
                    && now.transfer_records.is_none()
                {
                    eprintln!();
                    return Err(format!("retransfer failed: {now}"));
                }
                // The command was queued before the request was answered,
                // so the zone is not settled until the check that acted on
                // it has ended: settled now, with no version committed, the
                // check found the zone as it is, or failed as before.
                if now.settled {
                    eprintln!();
                    if now.error.is_some() {
                        return Err(format!("retransfer failed: {now}"));
                    }
                    println!(
                        "retransfer done: serial {} (zone unchanged, nothing committed)",
                        now.serial.map(|s| s.to_string()).unwrap_or_default()
                    );
                    return Ok(());
                }
            }
            Err("retransfer did not finish in time".into())
        }
    }
}

fn journal(config: &Config, zone: &str, since: Option<u32>) -> Result<(), String> {
    let store = require_store(config)?;
    // One read transaction: a trim by the running server cannot remove a
    // version between its listing and its delta.
    store
        .read(|s| Ok(print_journal(s, zone, since)))
        .map_err(|e| e.to_string())?
}

fn print_journal(store: &Store, zone: &str, since: Option<u32>) -> Result<(), String> {
    let z = apex(zone);
    let versions = store.versions(&z, since).map_err(|e| e.to_string())?;
    for v in versions {
        let from = v
            .serial_from
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".into());
        println!(
            "version {} serial {} -> {} kind={} peer={} time={} removed={} added={}",
            v.seq,
            from,
            v.serial_to,
            v.kind,
            v.peer.as_deref().unwrap_or("-"),
            fmt_time(v.created),
            v.removed,
            v.added
        );
        if v.serial_from.is_none() {
            println!("  (first version, stored whole)");
            continue;
        }
        let Some(change) = store.delta(&z, v.seq).map_err(|e| e.to_string())? else {
            println!("  (no change journaled)");
            continue;
        };
        for r in change.removed_with_soa() {
            println!("- {}", r.to_master_line());
        }
        for r in change.added_with_soa() {
            println!("+ {}", r.to_master_line());
        }
    }
    Ok(())
}

fn mirror_command(config: &Config, command: MirrorCommand) -> Result<(), String> {
    use secondary53::mirror::{client::Route53, replay::ZoneMirror};
    let zone_cfg = |zone: &str| -> Result<(String, secondary53::config::ZoneMirrorConfig), String> {
        let zc = config
            .zone(zone)
            .ok_or_else(|| format!("zone {zone} is not configured"))?;
        let mc = zc
            .route53
            .clone()
            .ok_or_else(|| format!("zone {zone} has no [zone.route53] table"))?;
        Ok((secondary53::zone::owner_key(&zc.name), mc))
    };
    let budget = || {
        std::sync::Arc::new(secondary53::mirror::budget::RequestBudget::new(
            config.route53.max_requests_per_second,
        ))
    };
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start runtime: {e}"))
    };
    match command {
        MirrorCommand::Status => {
            let store = open_store(config)?;
            println!(
                "{:<32} {:>10} {:>10} {:>5} {:<7} {:<20} LAST_ERROR",
                "ZONE", "SERIAL", "CURSOR", "LAG", "STATE", "LAST_SUCCESS"
            );
            for zc in config.zones.iter().filter(|z| z.route53.is_some()) {
                let apex = secondary53::zone::owner_key(&zc.name);
                let (serial, cursor, lag, success, error) = match &store {
                    None => (None, None, None, None, None),
                    Some(s) => {
                        let st = s.zone_state(&apex).map_err(|e| e.to_string())?;
                        let ms = s.mirror_state(&apex).map_err(|e| e.to_string())?;
                        let lag = secondary53::mirror::replay::lag(s, &apex).unwrap_or(None);
                        let reset = s
                            .consumer_reset_at(&apex, secondary53::mirror::replay::CONSUMER)
                            .map_err(|e| e.to_string())?
                            .map(|t| {
                                format!(
                                    "fell behind the journal's cap at {}: a full reconcile follows",
                                    fmt_time(t)
                                )
                            });
                        (
                            st.and_then(|z| z.serial),
                            ms.as_ref().and_then(|m| m.0),
                            lag,
                            ms.as_ref().and_then(|m| m.1),
                            reset.or_else(|| ms.and_then(|m| m.2)),
                        )
                    }
                };
                let state = match (lag, &error) {
                    (None, _) => "-",
                    (Some(l), _) if l > 0 => "behind",
                    (Some(_), Some(_)) => "error",
                    (Some(_), None) => "in-sync",
                };
                let show = |v: Option<String>| v.unwrap_or_else(|| "-".into());
                println!(
                    "{:<32} {:>10} {:>10} {:>5} {:<7} {:<20} {}",
                    apex,
                    show(serial.map(|s| s.to_string())),
                    show(cursor.map(|s| s.to_string())),
                    show(lag.map(|s| s.to_string())),
                    state,
                    show(success.map(fmt_time)),
                    error.unwrap_or_else(|| "-".into())
                );
            }
            Ok(())
        }
        MirrorCommand::Plan { zone } => {
            let (apex, mc) = zone_cfg(&zone)?;
            let store = require_store(config)?;
            let serial = store
                .current_soa(&apex)
                .map_err(|e| e.to_string())?
                .and_then(|s| s.soa_serial());
            let mut records = Vec::new();
            store
                .for_each_record(&apex, |r| records.push(r))
                .map_err(|e| e.to_string())?;
            let store = secondary53::store::StoreHandle::new(store);
            runtime()?.block_on(async {
                let r53 = Route53::new(&config.route53, Default::default(), budget()).await;
                let mut m = ZoneMirror::new(&apex, mc, config.route53.clone(), r53, store)?;
                let plan = m
                    .reconcile_plan(&records, serial)
                    .await
                    .map_err(|e| e.to_string())?;
                for c in &plan.changes {
                    println!("{} {}", c.action.as_str(), c.set);
                }
                for (name, t) in &plan.skipped {
                    println!(
                        "; skipped (not supported by Route 53): {name} {}",
                        secondary53::mirror::rrset::type_label(*t)
                    );
                }
                for e in &plan.errors {
                    println!("; cannot be mirrored: {e}");
                }
                println!("; {} changes", plan.changes.len());
                if !plan.errors.is_empty() {
                    println!(
                        "; {} RRsets cannot be mirrored: the hosted zone would stay behind",
                        plan.errors.len()
                    );
                }
                Ok(())
            })
        }
        MirrorCommand::Sync { zone } => {
            let (apex, mc) = zone_cfg(&zone)?;
            let not_all = |report: &str| -> Result<(), String> {
                // "N rejected" with N > 0: the hosted zone is behind.
                let rejected = report
                    .split(", ")
                    .find_map(|p| {
                        p.split_whitespace()
                            .next()
                            .filter(|_| p.contains("rejected"))
                    })
                    .and_then(|n| n.parse::<usize>().ok())
                    .unwrap_or(0);
                if rejected > 0 {
                    Err(format!(
                        "{rejected} RRsets were not mirrored; the hosted zone is behind (see above and `mirror status`)"
                    ))
                } else {
                    Ok(())
                }
            };
            match secondary53::control::request(
                &config.server.control,
                &format!("mirror-sync-wait {apex}"),
            ) {
                Ok(out) => {
                    print!("{out}");
                    return not_all(&out);
                }
                Err(e) if !e.starts_with("cannot reach the server") => return Err(e),
                Err(_) => {}
            }
            // No server answered: write to the store ourselves, under the
            // data directory's lock (a server that runs but does not answer
            // its control socket holds it, and this stops here).
            let _lock = secondary53::store::DataDirLock::acquire(&config.server.data_dir)
                .map_err(|e| e.to_string())?;
            let store = Store::open(&config.server.data_dir).map_err(|e| e.to_string())?;
            // The reconcile first waits for a batch a killed server left in
            // flight; say so, as it may take up to a minute.
            if let Some(until) = store
                .mirror_in_flight_until(&apex)
                .map_err(|e| e.to_string())?
            {
                let now_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64);
                if until > now_ms {
                    eprintln!(
                        "{apex}: a Route 53 batch of an interrupted run may still be applied; waiting {:.1} s for it to settle",
                        (until - now_ms) as f64 / 1000.0
                    );
                }
            }
            let store = secondary53::store::StoreHandle::new(store);
            runtime()?.block_on(async {
                let r53 = Route53::new(&config.route53, Default::default(), budget()).await;
                let mut m = ZoneMirror::new(&apex, mc, config.route53.clone(), r53, store)?;
                let progress: secondary53::mirror::replay::Progress =
                    Box::new(|done, total| eprintln!("batch {done}/{total} accepted"));
                let report = m
                    .reconcile(Some(&progress))
                    .await
                    .map_err(|e| e.to_string())?;
                let out = format!(
                    "{apex}: serial {} mirrored; {report}",
                    report
                        .serial
                        .map_or_else(|| "- (behind)".to_string(), |s| s.to_string()),
                );
                println!("{out}");
                not_all(&out)
            })
        }
    }
}

/// Formats a Unix time as an RFC 3339 UTC timestamp.
fn fmt_time(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}
