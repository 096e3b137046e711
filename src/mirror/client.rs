//! The Route 53 API, as the mirror uses it: list a hosted zone, send one
//! change batch, find a hosted zone by name, read its name and RRset quota,
//! wait for INSYNC.
//!
//! Retries are ours, not the SDK's (its retry layer is set to one attempt),
//! so every attempt is counted and paced: Throttling (Route 53 rate-limits
//! each account with token buckets), PriorRequestNotComplete (an earlier
//! change to the same hosted zone is still processing), 5xx answers,
//! timeouts and connection failures are retried with exponential backoff
//! and full jitter, up to `max_attempts`. InvalidChangeBatch is not
//! retried: the caller reconciles instead. Route 53 sends that error in a
//! form of its own (`<InvalidChangeBatch><Messages><Message>`, not the
//! `<ErrorResponse><Error><Code>` of every other error), which the SDK does
//! not recognize; `classify` reads it from the body.
//!
//! Every attempt first takes a slot of the process-wide
//! [`RequestBudget`]. Each attempt has `call_timeout`, each operation (all
//! its attempts and pauses) `operation_timeout`. A listing is bounded in
//! pages, RRsets and value bytes, so a misbehaving endpoint cannot make it
//! run or grow for ever.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use aws_sdk_route53::Client;
use aws_sdk_route53::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_route53::types::{
    Change as SdkChange, ChangeAction as SdkAction, ChangeBatch, HostedZoneLimitType,
    ResourceRecord, ResourceRecordSet, RrType,
};
use tracing::{debug, warn};

use super::budget::{Priority, RequestBudget};
use super::plan::{Change, ChangeAction};
pub use super::rrset::ForeignSet;
use super::rrset::{RecordSet, canonical_r53_name, listed_rrset, r53_type_code};
use crate::config::Route53Config;
pub use crate::registry::mirror::ApiCounters;

/// RRsets a hosted zone holds by default (Developer Guide, "Quotas":
/// "Records per hosted zone: 10,000"); raised per hosted zone on request.
pub const DEFAULT_RRSET_LIMIT: usize = 10_000;

/// RRsets asked for per ListResourceRecordSets page (Route 53's maximum).
const LIST_PAGE_ITEMS: i32 = 300;

/// Value bytes a listing may bring in before it is refused.
pub const LIST_MAX_BYTES: usize = 256 * 1024 * 1024;

/// A failed Route 53 call.
#[derive(Debug, thiserror::Error)]
pub enum Route53Error {
    /// Route 53 rejected the batch (a DELETE that does not match, a CREATE
    /// of an existing RRset, a bad value...): not retried.
    #[error("Route 53 rejected the change batch (InvalidChangeBatch): {0}")]
    InvalidChangeBatch(String),
    /// Still failing after every retry (throttling, 5xx, connection).
    #[error("Route 53 {operation} failed after {attempts} attempts: {last}")]
    GaveUp {
        /// The API operation.
        operation: &'static str,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last: String,
    },
    /// The operation did not finish within `operation_timeout`.
    #[error("Route 53 {operation} did not finish within {seconds} s (operation_timeout)")]
    Deadline {
        /// The API operation.
        operation: &'static str,
        /// The limit.
        seconds: u64,
    },
    /// An error that retrying cannot fix (access denied, no such zone...).
    #[error("Route 53 {operation} failed: {message}")]
    Fatal {
        /// The API operation.
        operation: &'static str,
        /// What Route 53 said.
        message: String,
    },
    /// The hosted zone could not be found by name.
    #[error("no Route 53 hosted zone named {0}")]
    NoHostedZone(String),
    /// More than one hosted zone has the name, and nothing says which.
    #[error(
        "{name}: {found} — set `hosted_zone_id`, or `private = true|false` to choose between a private and a public hosted zone"
    )]
    AmbiguousHostedZone {
        /// The name looked up.
        name: String,
        /// The hosted zones found (id and kind).
        found: String,
    },
    /// A listing went over its bounds.
    #[error("ListResourceRecordSets of {hosted_zone_id} stopped: {what}")]
    ListTooLarge {
        /// The hosted zone.
        hosted_zone_id: String,
        /// Which bound.
        what: String,
    },
}

impl Route53Error {
    /// True for InvalidChangeBatch.
    pub fn is_invalid_change_batch(&self) -> bool {
        matches!(self, Route53Error::InvalidChangeBatch(_))
    }

    /// True when GetChange does not know the change id (NoSuchChange).
    pub fn is_no_such_change(&self) -> bool {
        matches!(self, Route53Error::Fatal { message, .. } if message.starts_with("NoSuchChange"))
    }
}

/// How an attempt failed.
#[derive(Debug, PartialEq, Eq)]
enum Failure {
    Retry(String),
    Invalid(String),
    Fatal(String),
}

/// The messages of Route 53's own InvalidChangeBatch body
/// (`<InvalidChangeBatch><Messages><Message>..</Message></Messages>`), or
/// `None` for any other body.
fn invalid_change_batch_messages(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let root = text
        .trim_start()
        .trim_start_matches(|c| c != '<')
        .trim_start_matches("<?xml")
        .split_once("?>")
        .map(|(_, rest)| rest)
        .unwrap_or(text)
        .trim_start();
    if !(root.starts_with("<InvalidChangeBatch>") || root.starts_with("<InvalidChangeBatch ")) {
        return None;
    }
    let mut messages = Vec::new();
    let mut rest = root;
    while let Some(at) = rest.find("<Message>") {
        let after = &rest[at + "<Message>".len()..];
        let Some(end) = after.find("</Message>") else {
            break;
        };
        messages.push(xml_text(&after[..end]));
        rest = &after[end..];
    }
    Some(messages.join("; "))
}

/// Decodes the five XML entities (enough for Route 53's messages).
fn xml_text(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn classify_service(
    status: u16,
    code: Option<&str>,
    message: Option<&str>,
    body: &[u8],
) -> Failure {
    let code = code.unwrap_or("");
    if code.is_empty()
        && let Some(m) = invalid_change_batch_messages(body)
    {
        return Failure::Invalid(format!("InvalidChangeBatch: {m}"));
    }
    let msg = format!("{code}: {}", message.unwrap_or(""));
    match code {
        "Throttling"
        | "ThrottlingException"
        | "PriorRequestNotComplete"
        | "RequestLimitExceeded" => Failure::Retry(msg),
        "InvalidChangeBatch" => Failure::Invalid(msg),
        _ if status >= 500 || status == 429 => Failure::Retry(format!("HTTP {status} {msg}")),
        // The start of the body, on one line (an endpoint without the call
        // may answer with an HTML page).
        _ if code.is_empty() => Failure::Fatal(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        )),
        _ => Failure::Fatal(msg),
    }
}

fn classify<E: ProvideErrorMetadata + std::fmt::Debug>(e: &SdkError<E>) -> Failure {
    match e {
        SdkError::ServiceError(se) => {
            let raw = se.raw();
            let body = raw.body().bytes().unwrap_or(&[]);
            classify_service(
                raw.status().as_u16(),
                se.err().code(),
                se.err().message(),
                body,
            )
        }
        // Connection trouble is worth retrying; a dispatch failure of
        // another kind (no credentials, a bad endpoint) is not.
        SdkError::DispatchFailure(d) if !(d.is_io() || d.is_timeout()) => {
            Failure::Fatal(format!("{e:?}"))
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Failure::Retry(format!("{e:?}"))
        }
        other => Failure::Fatal(format!("{other:?}")),
    }
}

/// A hosted zone as GetHostedZone or ListHostedZonesByName describe it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostedZoneInfo {
    /// The id, without `/hostedzone/`.
    pub id: String,
    /// The name, canonical.
    pub name: String,
    /// True for a private hosted zone.
    pub private: bool,
}

/// One complete listing of a hosted zone.
#[derive(Clone, Debug, Default)]
pub struct Listing {
    /// The plain record sets.
    pub sets: Vec<RecordSet>,
    /// Alias and routing-policy record sets.
    pub foreign: Vec<ForeignSet>,
    /// Record sets listed, of every kind (what counts against the quota).
    pub count: usize,
}

/// A Route 53 endpoint with the mirror's retry policy.
#[derive(Clone)]
pub struct Route53 {
    client: Client,
    max_attempts: u32,
    base_delay: Duration,
    max_delay: Duration,
    operation_timeout: Duration,
    budget: Arc<RequestBudget>,
    /// API counters.
    pub counters: Arc<ApiCounters>,
}

impl Route53 {
    /// Builds a client from the standard AWS configuration chain, with the
    /// configured region, endpoint and timeouts; every request draws from
    /// `budget`.
    pub async fn new(
        cfg: &Route53Config,
        counters: Arc<ApiCounters>,
        budget: Arc<RequestBudget>,
    ) -> Self {
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(cfg.call_timeout.min(10)))
            .operation_attempt_timeout(Duration::from_secs(cfg.call_timeout))
            .build();
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(cfg.region.clone()))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(timeouts);
        if let Some(url) = &cfg.endpoint_url {
            loader = loader.endpoint_url(url.clone());
        }
        let shared = loader.load().await;
        Route53 {
            client: Client::new(&shared),
            max_attempts: cfg.max_attempts,
            base_delay: Duration::from_millis(cfg.base_delay_ms),
            max_delay: Duration::from_secs(20),
            operation_timeout: Duration::from_secs(cfg.operation_timeout),
            budget,
            counters,
        }
    }

    /// The request budget this client draws from.
    pub fn budget(&self) -> &Arc<RequestBudget> {
        &self.budget
    }

    async fn backoff(&self, attempt: u32) {
        // Full jitter: a uniform delay up to the exponential cap.
        let cap = self
            .base_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_delay);
        let ms = rand::random::<u64>() % (cap.as_millis() as u64 + 1);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    /// Runs one API operation: a budget slot before every attempt,
    /// retries with backoff, the whole within `operation_timeout`.
    async fn call<T, E, F, Fut>(
        &self,
        operation: &'static str,
        priority: Priority,
        mut attempt_once: F,
    ) -> Result<T, Route53Error>
    where
        E: ProvideErrorMetadata + std::fmt::Debug,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E>>>,
    {
        let attempts = async {
            let mut attempt = 0;
            loop {
                attempt += 1;
                if self.budget.acquire(priority).await {
                    self.counters.budget_waits.fetch_add(1, Ordering::Relaxed);
                }
                let e = match attempt_once().await {
                    Ok(v) => return Ok(v),
                    Err(e) => e,
                };
                match classify(&e) {
                    Failure::Retry(m) if attempt < self.max_attempts => {
                        self.counters.retries.fetch_add(1, Ordering::Relaxed);
                        debug!(attempt, error = %m, "{operation}: retrying");
                        self.backoff(attempt).await;
                    }
                    Failure::Retry(m) => {
                        self.counters.errors.fetch_add(1, Ordering::Relaxed);
                        return Err(Route53Error::GaveUp {
                            operation,
                            attempts: attempt,
                            last: m,
                        });
                    }
                    Failure::Invalid(m) => {
                        self.counters.errors.fetch_add(1, Ordering::Relaxed);
                        return Err(Route53Error::InvalidChangeBatch(m));
                    }
                    Failure::Fatal(m) => {
                        self.counters.errors.fetch_add(1, Ordering::Relaxed);
                        return Err(Route53Error::Fatal {
                            operation,
                            message: m,
                        });
                    }
                }
            }
        };
        match tokio::time::timeout(self.operation_timeout, attempts).await {
            Ok(r) => r,
            Err(_) => {
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                warn!(
                    operation,
                    seconds = self.operation_timeout.as_secs(),
                    "Route 53 operation over its time limit (operation_timeout)"
                );
                Err(Route53Error::Deadline {
                    operation,
                    seconds: self.operation_timeout.as_secs(),
                })
            }
        }
    }

    /// Sends one change batch; returns the change id.
    pub async fn change(
        &self,
        hosted_zone_id: &str,
        batch: &[Change],
        comment: &str,
        priority: Priority,
    ) -> Result<String, Route53Error> {
        let changes = batch
            .iter()
            .map(to_sdk_change)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|m| Route53Error::Fatal {
                operation: "ChangeResourceRecordSets",
                message: m,
            })?;
        let change_batch = ChangeBatch::builder()
            .set_changes(Some(changes))
            .comment(comment)
            .build()
            .map_err(|e| Route53Error::Fatal {
                operation: "ChangeResourceRecordSets",
                message: e.to_string(),
            })?;
        let out = self
            .call("ChangeResourceRecordSets", priority, || {
                self.client
                    .change_resource_record_sets()
                    .hosted_zone_id(hosted_zone_id)
                    .change_batch(change_batch.clone())
                    .send()
            })
            .await?;
        self.counters.changes.fetch_add(1, Ordering::Relaxed);
        Ok(out
            .change_info()
            .map(|c| c.id().to_string())
            .unwrap_or_default())
    }

    /// Lists every RRset of a hosted zone (all pages, `priority` for the
    /// budget). Bounded: at most `max_rrsets` record sets (the zone's quota
    /// and some), [`LIST_MAX_BYTES`] of values, and a page must never start
    /// where an earlier one did (some Route 53 look-alikes page forever over
    /// duplicate entries).
    pub async fn list(
        &self,
        hosted_zone_id: &str,
        max_rrsets: usize,
        priority: Priority,
    ) -> Result<Listing, Route53Error> {
        let mut out = Listing::default();
        let mut bytes = 0usize;
        let mut next: Option<(String, RrType, Option<String>)> = None;
        let mut seen_starts = std::collections::HashSet::new();
        let too_large = |what: String| Route53Error::ListTooLarge {
            hosted_zone_id: hosted_zone_id.to_string(),
            what,
        };
        loop {
            let page = self
                .call("ListResourceRecordSets", priority, || {
                    let mut req = self
                        .client
                        .list_resource_record_sets()
                        .hosted_zone_id(hosted_zone_id)
                        .max_items(LIST_PAGE_ITEMS);
                    if let Some((n, t, id)) = &next {
                        req = req.start_record_name(n).start_record_type(t.clone());
                        if let Some(id) = id {
                            req = req.start_record_identifier(id);
                        }
                    }
                    req.send()
                })
                .await?;
            self.counters.lists.fetch_add(1, Ordering::Relaxed);
            for s in page.resource_record_sets() {
                out.count += 1;
                if out.count > max_rrsets {
                    warn!(
                        hosted_zone_id,
                        max_rrsets, "listing over its bound; stopped"
                    );
                    return Err(too_large(format!("more than {max_rrsets} record sets")));
                }
                let name = canonical_r53_name(s.name());
                if s.alias_target().is_some() || s.set_identifier().is_some() {
                    let kind = match (s.alias_target(), s.set_identifier()) {
                        (Some(_), Some(id)) => {
                            format!("an alias routing-policy (SetIdentifier {id:?})")
                        }
                        (None, Some(id)) => format!("a routing-policy (SetIdentifier {id:?})"),
                        _ => "an alias".to_string(),
                    };
                    out.foreign.push(ForeignSet {
                        name,
                        rtype: r53_type_code(s.r#type().as_str()).unwrap_or(0),
                        kind,
                    });
                    continue;
                }
                let ttl = s.ttl().unwrap_or(0).clamp(0, i64::from(u32::MAX)) as u32;
                let values: Vec<String> = s
                    .resource_records()
                    .iter()
                    .map(|r| r.value().to_string())
                    .collect();
                bytes += values.iter().map(String::len).sum::<usize>();
                if bytes > LIST_MAX_BYTES {
                    warn!(
                        hosted_zone_id,
                        bytes, "listing over its byte bound; stopped"
                    );
                    return Err(too_large(format!(
                        "more than {LIST_MAX_BYTES} bytes of values"
                    )));
                }
                match listed_rrset(s.name(), s.r#type().as_str(), ttl, values) {
                    Some(set) => out.sets.push(set),
                    None => debug!(
                        name = s.name(),
                        rtype = s.r#type().as_str(),
                        "listed RRset of an unknown type left alone"
                    ),
                }
            }
            if !page.is_truncated() {
                break;
            }
            let (Some(n), Some(t)) = (page.next_record_name(), page.next_record_type()) else {
                break;
            };
            let key = (
                n.to_string(),
                t.as_str().to_string(),
                page.next_record_identifier().map(str::to_string),
            );
            if !seen_starts.insert(key.clone()) {
                warn!(
                    hosted_zone_id,
                    "ListResourceRecordSets paged back to an earlier start; stopping"
                );
                return Err(too_large(format!(
                    "page start {} {} seen twice",
                    key.0, key.1
                )));
            }
            next = Some((key.0, t.clone(), key.2));
        }
        Ok(out)
    }

    /// GetHostedZone: the hosted zone's name and kind.
    pub async fn hosted_zone(&self, id: &str) -> Result<HostedZoneInfo, Route53Error> {
        let out = self
            .call("GetHostedZone", Priority::Replay, || {
                self.client.get_hosted_zone().id(id).send()
            })
            .await?;
        let z = out.hosted_zone().ok_or_else(|| Route53Error::Fatal {
            operation: "GetHostedZone",
            message: format!("no hosted zone in the answer for {id}"),
        })?;
        Ok(HostedZoneInfo {
            id: z.id().trim_start_matches("/hostedzone/").to_string(),
            name: canonical_r53_name(z.name()),
            private: z.config().is_some_and(|c| c.private_zone()),
        })
    }

    /// GetHostedZoneLimit (MAX_RRSETS_BY_ZONE): the hosted zone's RRset
    /// quota and how many it holds, as `(limit, count)`.
    pub async fn rrset_limit(&self, id: &str) -> Result<(usize, usize), Route53Error> {
        let out = self
            .call("GetHostedZoneLimit", Priority::Bulk, || {
                self.client
                    .get_hosted_zone_limit()
                    .hosted_zone_id(id)
                    .r#type(HostedZoneLimitType::MaxRrsetsByZone)
                    .send()
            })
            .await?;
        let limit = out
            .limit()
            .map(|l| l.value().max(0) as usize)
            .unwrap_or(DEFAULT_RRSET_LIMIT);
        Ok((limit, out.count().max(0) as usize))
    }

    /// Finds the hosted zone named `apex` (ListHostedZonesByName, every
    /// page of that name). `private` picks a private (true) or public
    /// (false) one; without it, the name must be unambiguous: two hosted
    /// zones of the name (a public and a private one, or two public ones)
    /// are refused.
    pub async fn find_hosted_zone(
        &self,
        apex: &str,
        private: Option<bool>,
    ) -> Result<HostedZoneInfo, Route53Error> {
        let want = canonical_r53_name(apex);
        let mut found: Vec<HostedZoneInfo> = Vec::new();
        let mut start: Option<(String, Option<String>)> = None;
        // Bounded: a name has few hosted zones; 20 pages of 100 is plenty.
        for _ in 0..20 {
            let r = self
                .call("ListHostedZonesByName", Priority::Replay, || {
                    let (dns, id) = match &start {
                        Some((d, id)) => (d.clone(), id.clone()),
                        None => (apex.to_string(), None),
                    };
                    self.client
                        .list_hosted_zones_by_name()
                        .dns_name(dns)
                        .set_hosted_zone_id(id)
                        .max_items(100)
                        .send()
                })
                .await?;
            let mut past = false;
            for z in r.hosted_zones() {
                if canonical_r53_name(z.name()) == want {
                    let id = z.id().trim_start_matches("/hostedzone/").to_string();
                    if !found.iter().any(|f| f.id == id) {
                        found.push(HostedZoneInfo {
                            id,
                            name: want.clone(),
                            private: z.config().is_some_and(|c| c.private_zone()),
                        });
                    }
                } else if !found.is_empty() {
                    past = true;
                }
            }
            match (r.is_truncated(), r.next_dns_name()) {
                (true, Some(n)) if !past && canonical_r53_name(n) == want => {
                    start = Some((n.to_string(), r.next_hosted_zone_id().map(str::to_string)));
                }
                _ => break,
            }
        }
        select_hosted_zone(&want, found, private)
    }

    /// Polls GetChange until the change is INSYNC (true), or `limit`
    /// passes (false). Throttling and other passing errors are retried.
    pub async fn wait_insync(
        &self,
        change_id: &str,
        limit: Duration,
    ) -> Result<bool, Route53Error> {
        let deadline = tokio::time::Instant::now() + limit;
        let id = change_id.trim_start_matches("/change/");
        let mut pause = Duration::from_millis(500);
        loop {
            let r = self
                .call("GetChange", Priority::Replay, || {
                    self.client.get_change().id(id).send()
                })
                .await?;
            if r.change_info().map(|c| c.status().as_str()) == Some("INSYNC") {
                return Ok(true);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }
}

/// Picks the hosted zone among those of the name (see
/// [`Route53::find_hosted_zone`]).
fn select_hosted_zone(
    name: &str,
    found: Vec<HostedZoneInfo>,
    private: Option<bool>,
) -> Result<HostedZoneInfo, Route53Error> {
    let describe = |zs: &[HostedZoneInfo]| {
        zs.iter()
            .map(|z| {
                format!(
                    "{} ({})",
                    z.id,
                    if z.private { "private" } else { "public" }
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let candidates: Vec<HostedZoneInfo> = found
        .iter()
        .filter(|z| private.is_none_or(|p| z.private == p))
        .cloned()
        .collect();
    match candidates.len() {
        1 => Ok(candidates.into_iter().next().expect("one")),
        0 if found.is_empty() => Err(Route53Error::NoHostedZone(name.to_string())),
        0 => Err(Route53Error::NoHostedZone(format!(
            "{name} ({}; found only {})",
            if private == Some(true) {
                "private"
            } else {
                "public"
            },
            describe(&found)
        ))),
        _ => Err(Route53Error::AmbiguousHostedZone {
            name: name.to_string(),
            found: format!(
                "{} hosted zones have this name: {}",
                candidates.len(),
                describe(&candidates)
            ),
        }),
    }
}

fn to_sdk_change(c: &Change) -> Result<SdkChange, String> {
    let records = c
        .set
        .values
        .iter()
        .map(|v| {
            ResourceRecord::builder()
                .value(v)
                .build()
                .map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let set = ResourceRecordSet::builder()
        .name(super::rrset::request_name(&c.set.name))
        .r#type(RrType::from(c.set.type_name()))
        .ttl(i64::from(c.set.ttl))
        .set_resource_records(Some(records))
        .build()
        .map_err(|e| e.to_string())?;
    let action = match c.action {
        ChangeAction::Create => SdkAction::Create,
        ChangeAction::Upsert => SdkAction::Upsert,
        ChangeAction::Delete => SdkAction::Delete,
    };
    SdkChange::builder()
        .action(action)
        .resource_record_set(set)
        .build()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;
