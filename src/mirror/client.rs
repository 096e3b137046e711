//! The Route 53 API, as the mirror uses it: list a hosted zone, send one
//! change batch, find a hosted zone by name, wait for INSYNC.
//!
//! Retries are ours, not the SDK's (its retry layer is set to one attempt),
//! so every attempt is counted and paced: Throttling (Route 53 rate-limits
//! each account with token buckets), PriorRequestNotComplete (an earlier
//! change to the same hosted zone is still processing), 5xx answers and
//! connection failures are retried with exponential backoff and full jitter,
//! up to `max_attempts`. InvalidChangeBatch is not retried: the caller
//! reconciles instead.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_route53::Client;
use aws_sdk_route53::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_route53::types::{
    Change as SdkChange, ChangeAction as SdkAction, ChangeBatch, ResourceRecord, ResourceRecordSet,
    RrType,
};
use tracing::{debug, warn};

use super::plan::{Change, ChangeAction};
use super::rrset::{RecordSet, listed_rrset};
use crate::config::Route53Config;

/// Counters of API use, for metrics and tests.
#[derive(Debug, Default)]
pub struct ApiCounters {
    /// ChangeResourceRecordSets calls accepted.
    pub changes: AtomicU64,
    /// ListResourceRecordSets pages read.
    pub lists: AtomicU64,
    /// Attempts that failed and were retried.
    pub retries: AtomicU64,
    /// Calls that failed for good.
    pub errors: AtomicU64,
}

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
}

/// How an attempt failed.
enum Failure {
    Retry(String),
    Invalid(String),
    Fatal(String),
}

fn classify<E: ProvideErrorMetadata + std::fmt::Debug>(e: &SdkError<E>) -> Failure {
    match e {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let err = se.err();
            let code = err.code().unwrap_or("");
            let msg = format!("{code}: {}", err.message().unwrap_or(""));
            match code {
                "Throttling"
                | "ThrottlingException"
                | "PriorRequestNotComplete"
                | "RequestLimitExceeded" => Failure::Retry(msg),
                "InvalidChangeBatch" => Failure::Invalid(msg),
                _ if status >= 500 || status == 429 => {
                    Failure::Retry(format!("HTTP {status} {msg}"))
                }
                _ => Failure::Fatal(msg),
            }
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

/// A Route 53 endpoint with the mirror's retry policy.
#[derive(Clone)]
pub struct Route53 {
    client: Client,
    max_attempts: u32,
    base_delay: Duration,
    max_delay: Duration,
    /// API counters.
    pub counters: Arc<ApiCounters>,
}

impl Route53 {
    /// Builds a client from the standard AWS configuration chain, with the
    /// configured region and endpoint.
    pub async fn new(cfg: &Route53Config, counters: Arc<ApiCounters>) -> Self {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(cfg.region.clone()))
            .retry_config(aws_config::retry::RetryConfig::disabled());
        if let Some(url) = &cfg.endpoint_url {
            loader = loader.endpoint_url(url.clone());
        }
        let shared = loader.load().await;
        Route53 {
            client: Client::new(&shared),
            max_attempts: cfg.max_attempts,
            base_delay: Duration::from_millis(cfg.base_delay_ms),
            max_delay: Duration::from_secs(20),
            counters,
        }
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

    /// Sends one change batch; returns the change id.
    pub async fn change(
        &self,
        hosted_zone_id: &str,
        batch: &[Change],
        comment: &str,
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
        let mut attempt = 0;
        loop {
            attempt += 1;
            let r = self
                .client
                .change_resource_record_sets()
                .hosted_zone_id(hosted_zone_id)
                .change_batch(change_batch.clone())
                .send()
                .await;
            match r {
                Ok(out) => {
                    self.counters.changes.fetch_add(1, Ordering::Relaxed);
                    return Ok(out
                        .change_info()
                        .map(|c| c.id().to_string())
                        .unwrap_or_default());
                }
                Err(e) => match classify(&e) {
                    Failure::Retry(m) if attempt < self.max_attempts => {
                        self.counters.retries.fetch_add(1, Ordering::Relaxed);
                        debug!(attempt, error = %m, "ChangeResourceRecordSets: retrying");
                        self.backoff(attempt).await;
                    }
                    Failure::Retry(m) => {
                        self.counters.errors.fetch_add(1, Ordering::Relaxed);
                        return Err(Route53Error::GaveUp {
                            operation: "ChangeResourceRecordSets",
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
                            operation: "ChangeResourceRecordSets",
                            message: m,
                        });
                    }
                },
            }
        }
    }

    /// Lists every RRset of a hosted zone (all pages). Stops if a page
    /// would start where an earlier one did (some Route 53 look-alikes can
    /// page forever over duplicate entries).
    pub async fn list(&self, hosted_zone_id: &str) -> Result<Vec<RecordSet>, Route53Error> {
        let mut out = Vec::new();
        let mut next: Option<(String, RrType, Option<String>)> = None;
        let mut seen_starts = std::collections::HashSet::new();
        loop {
            let mut attempt = 0;
            let page = loop {
                attempt += 1;
                let mut req = self
                    .client
                    .list_resource_record_sets()
                    .hosted_zone_id(hosted_zone_id);
                if let Some((n, t, id)) = &next {
                    req = req.start_record_name(n).start_record_type(t.clone());
                    if let Some(id) = id {
                        req = req.start_record_identifier(id);
                    }
                }
                match req.send().await {
                    Ok(p) => break p,
                    Err(e) => match classify(&e) {
                        Failure::Retry(m) if attempt < self.max_attempts => {
                            self.counters.retries.fetch_add(1, Ordering::Relaxed);
                            debug!(attempt, error = %m, "ListResourceRecordSets: retrying");
                            self.backoff(attempt).await;
                        }
                        Failure::Retry(m) => {
                            self.counters.errors.fetch_add(1, Ordering::Relaxed);
                            return Err(Route53Error::GaveUp {
                                operation: "ListResourceRecordSets",
                                attempts: attempt,
                                last: m,
                            });
                        }
                        Failure::Invalid(m) | Failure::Fatal(m) => {
                            self.counters.errors.fetch_add(1, Ordering::Relaxed);
                            return Err(Route53Error::Fatal {
                                operation: "ListResourceRecordSets",
                                message: m,
                            });
                        }
                    },
                }
            };
            self.counters.lists.fetch_add(1, Ordering::Relaxed);
            for s in page.resource_record_sets() {
                if s.alias_target().is_some() || s.set_identifier().is_some() {
                    // Alias and routing-policy records are Route 53's own
                    // features: not mirrored, never touched.
                    continue;
                }
                let ttl = s.ttl().unwrap_or(0).clamp(0, i64::from(u32::MAX)) as u32;
                let values = s
                    .resource_records()
                    .iter()
                    .map(|r| r.value().to_string())
                    .collect();
                match listed_rrset(s.name(), s.r#type().as_str(), ttl, values) {
                    Some(set) => out.push(set),
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
                break;
            }
            next = Some((key.0, t.clone(), key.2));
        }
        Ok(out)
    }

    /// Finds a public hosted zone by its name.
    pub async fn find_hosted_zone(&self, apex: &str) -> Result<String, Route53Error> {
        let r = self
            .client
            .list_hosted_zones_by_name()
            .dns_name(apex)
            .max_items(1)
            .send()
            .await
            .map_err(|e| Route53Error::Fatal {
                operation: "ListHostedZonesByName",
                message: format!("{e:?}"),
            })?;
        let want = apex.trim_end_matches('.').to_ascii_lowercase();
        r.hosted_zones()
            .iter()
            .find(|z| z.name().trim_end_matches('.').eq_ignore_ascii_case(&want))
            .map(|z| z.id().trim_start_matches("/hostedzone/").to_string())
            .ok_or_else(|| Route53Error::NoHostedZone(apex.to_string()))
    }

    /// Polls GetChange until the change is INSYNC (or `limit` passes).
    pub async fn wait_insync(
        &self,
        change_id: &str,
        limit: Duration,
    ) -> Result<bool, Route53Error> {
        let deadline = tokio::time::Instant::now() + limit;
        let id = change_id.trim_start_matches("/change/");
        loop {
            let r =
                self.client
                    .get_change()
                    .id(id)
                    .send()
                    .await
                    .map_err(|e| Route53Error::Fatal {
                        operation: "GetChange",
                        message: format!("{e:?}"),
                    })?;
            if r.change_info().map(|c| c.status().as_str()) == Some("INSYNC") {
                return Ok(true);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
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
