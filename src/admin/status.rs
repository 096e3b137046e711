//! The control socket's `status` reply, typed: one [`StatusLine`] a zone.
//!
//! The server writes each line with [`StatusLine`]'s `Display`, and the
//! command line reads it back with its `FromStr`, so both sides share one
//! definition of the fields instead of searching the text for words:
//!
//! ```text
//! zone=example.com. serial=7 state=serving primary=192.0.2.1:53 last_refresh=… last_transfer=…
//!   last_kind=IXFR versions_committed=3 next_refresh=… expire_at=… settled=yes
//!   [catalog=… group=…] error=- [transfer_records=N] [route53_lag=… route53_changes=… …]
//! ```
//!
//! (one line; `-` is "none"). The error runs up to the optional fields
//! that follow it, so it may hold spaces.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use crate::registry::ZoneLifecycle;

/// One zone's line of the `status` reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusLine {
    /// Apex, lowercase FQDN.
    pub zone: String,
    /// Serial being served.
    pub serial: Option<u32>,
    /// Lifecycle state.
    pub state: ZoneLifecycle,
    /// The primary that answered last.
    pub primary: Option<SocketAddr>,
    /// Unix time of the last successful refresh.
    pub last_refresh: Option<i64>,
    /// Unix time of the last transfer.
    pub last_transfer: Option<i64>,
    /// Kind of the last transfer ("IXFR", "AXFR", ...).
    pub last_kind: Option<String>,
    /// Versions committed since the server started.
    pub versions_committed: u64,
    /// Unix time of the next scheduled check.
    pub next_refresh: Option<i64>,
    /// Unix time the zone expires unless refreshed.
    pub expire_at: Option<i64>,
    /// No check running or asked for.
    pub settled: bool,
    /// The catalog zone the zone is a member of, and its group.
    pub catalog: Option<(String, Option<String>)>,
    /// Last error, cleared by a success.
    pub error: Option<String>,
    /// Records received by the transfer under way.
    pub transfer_records: Option<u64>,
    /// The zone's Route 53 mirror, when it has one.
    pub route53: Option<Route53Status>,
}

/// The Route 53 part of a [`StatusLine`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Route53Status {
    /// Versions the hosted zone is behind (None: not known).
    pub lag: Option<i64>,
    /// ChangeResourceRecordSets calls accepted.
    pub changes: u64,
    /// ListResourceRecordSets pages read.
    pub lists: u64,
    /// Attempts retried.
    pub retries: u64,
    /// Calls that failed for good.
    pub errors: u64,
}

/// A `status` line that does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("status line: {0}")]
pub struct StatusLineError(String);

/// The keys that may follow the error, in order.
const AFTER_ERROR: [&str; 6] = [
    "transfer_records=",
    "route53_lag=",
    "route53_changes=",
    "route53_lists=",
    "route53_retries=",
    "route53_errors=",
];

fn dash<T: fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".to_string(), T::to_string)
}

impl fmt::Display for StatusLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "zone={} serial={} state={} primary={} last_refresh={} last_transfer={} last_kind={} versions_committed={} next_refresh={} expire_at={} settled={}",
            self.zone,
            dash(&self.serial),
            self.state.as_str(),
            dash(&self.primary),
            dash(&self.last_refresh),
            dash(&self.last_transfer),
            self.last_kind.as_deref().unwrap_or("-").replace(' ', "_"),
            self.versions_committed,
            dash(&self.next_refresh),
            dash(&self.expire_at),
            if self.settled { "yes" } else { "no" },
        )?;
        if let Some((catalog, group)) = &self.catalog {
            write!(
                f,
                " catalog={catalog} group={}",
                group
                    .as_deref()
                    .unwrap_or("-")
                    .replace(char::is_whitespace, "_")
            )?;
        }
        write!(
            f,
            " error={}",
            self.error.as_deref().unwrap_or("-").replace('\n', " ")
        )?;
        if let Some(n) = self.transfer_records {
            write!(f, " transfer_records={n}")?;
        }
        if let Some(m) = &self.route53 {
            write!(
                f,
                " route53_lag={} route53_changes={} route53_lists={} route53_retries={} route53_errors={}",
                dash(&m.lag),
                m.changes,
                m.lists,
                m.retries,
                m.errors
            )?;
        }
        Ok(())
    }
}

fn parse_opt<T: FromStr>(key: &str, v: &str) -> Result<Option<T>, StatusLineError> {
    if v == "-" {
        return Ok(None);
    }
    v.parse()
        .map(Some)
        .map_err(|_| StatusLineError(format!("{key}={v} is not valid")))
}

fn parse_num<T: FromStr>(key: &str, v: &str) -> Result<T, StatusLineError> {
    v.parse()
        .map_err(|_| StatusLineError(format!("{key}={v} is not valid")))
}

impl FromStr for StatusLine {
    type Err = StatusLineError;

    fn from_str(line: &str) -> Result<Self, Self::Err> {
        let line = line.trim_end_matches('\n');
        // Split off the error, which may hold spaces, and what follows it.
        let (head, tail) = line
            .split_once(" error=")
            .ok_or_else(|| StatusLineError("no error= field".into()))?;
        let mut words: Vec<&str> = tail.split(' ').collect();
        let mut after = Vec::new();
        while let Some(w) = words.last()
            && AFTER_ERROR.iter().any(|k| w.starts_with(k))
        {
            after.push(*w);
            words.pop();
        }
        let error = words.join(" ");
        let mut fields = std::collections::HashMap::new();
        for w in head.split_whitespace().chain(after.iter().copied()) {
            let (k, v) = w
                .split_once('=')
                .ok_or_else(|| StatusLineError(format!("{w} is not key=value")))?;
            fields.insert(k, v);
        }
        let get = |k: &str| {
            fields
                .get(k)
                .copied()
                .ok_or_else(|| StatusLineError(format!("no {k}= field")))
        };
        let state = match get("state")? {
            "loading" => ZoneLifecycle::Loading,
            "serving" => ZoneLifecycle::Serving,
            "expired" => ZoneLifecycle::Expired,
            other => return Err(StatusLineError(format!("unknown state {other}"))),
        };
        let route53 = match fields.get("route53_changes") {
            None => None,
            Some(_) => Some(Route53Status {
                lag: parse_opt("route53_lag", get("route53_lag")?)?,
                changes: parse_num("route53_changes", get("route53_changes")?)?,
                lists: parse_num("route53_lists", get("route53_lists")?)?,
                retries: parse_num("route53_retries", get("route53_retries")?)?,
                errors: parse_num("route53_errors", get("route53_errors")?)?,
            }),
        };
        Ok(StatusLine {
            zone: get("zone")?.to_string(),
            serial: parse_opt("serial", get("serial")?)?,
            state,
            primary: parse_opt("primary", get("primary")?)?,
            last_refresh: parse_opt("last_refresh", get("last_refresh")?)?,
            last_transfer: parse_opt("last_transfer", get("last_transfer")?)?,
            last_kind: parse_opt::<String>("last_kind", get("last_kind")?)?
                .map(|k| k.replace('_', " ")),
            versions_committed: parse_num("versions_committed", get("versions_committed")?)?,
            next_refresh: parse_opt("next_refresh", get("next_refresh")?)?,
            expire_at: parse_opt("expire_at", get("expire_at")?)?,
            settled: match get("settled")? {
                "yes" => true,
                "no" => false,
                other => return Err(StatusLineError(format!("settled={other} is not valid"))),
            },
            catalog: match fields.get("catalog") {
                None => None,
                Some(c) => Some((c.to_string(), parse_opt::<String>("group", get("group")?)?)),
            },
            error: (error != "-").then_some(error),
            transfer_records: match fields.get("transfer_records") {
                None => None,
                Some(v) => Some(parse_num("transfer_records", v)?),
            },
            route53,
        })
    }
}

/// Parses the lines of a `status` reply (after its `ok` line).
pub fn parse_reply(reply: &str) -> Result<Vec<StatusLine>, StatusLineError> {
    reply
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::parse)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> StatusLine {
        StatusLine {
            zone: "example.com.".into(),
            serial: Some(2026112901),
            state: ZoneLifecycle::Serving,
            primary: Some("127.0.0.1:5300".parse().unwrap()),
            last_refresh: Some(1_700_000_000),
            last_transfer: Some(1_700_000_001),
            last_kind: Some("AXFR fallback".into()),
            versions_committed: 3,
            next_refresh: Some(1_700_003_600),
            expire_at: Some(1_701_000_000),
            settled: false,
            catalog: Some(("catalog.example.".into(), Some("east".into()))),
            error: Some("SOA probe to 192.0.2.1:53 timed out".into()),
            transfer_records: Some(12345),
            route53: Some(Route53Status {
                lag: Some(2),
                changes: 5,
                lists: 1,
                retries: 0,
                errors: 1,
            }),
        }
    }

    #[test]
    fn a_line_reads_back_as_written() {
        let s = full();
        let line = s.to_string();
        assert!(
            line.contains(" error=SOA probe to 192.0.2.1:53 timed out transfer_records=12345 ")
        );
        assert_eq!(line.parse::<StatusLine>(), Ok(s));
    }

    #[test]
    fn a_bare_line_reads_back_as_written() {
        let s = StatusLine {
            zone: "example.org.".into(),
            serial: None,
            state: ZoneLifecycle::Loading,
            primary: None,
            last_refresh: None,
            last_transfer: None,
            last_kind: None,
            versions_committed: 0,
            next_refresh: None,
            expire_at: None,
            settled: true,
            catalog: None,
            error: None,
            transfer_records: None,
            route53: None,
        };
        let line = s.to_string();
        assert_eq!(
            line,
            "zone=example.org. serial=- state=loading primary=- last_refresh=- last_transfer=- last_kind=- versions_committed=0 next_refresh=- expire_at=- settled=yes error=-"
        );
        assert_eq!(line.parse::<StatusLine>(), Ok(s));
    }

    #[test]
    fn bad_lines_are_refused_with_the_field() {
        let good = full().to_string();
        let bad = good.replace("state=serving", "state=asleep");
        assert!(
            bad.parse::<StatusLine>()
                .unwrap_err()
                .to_string()
                .contains("asleep")
        );
        let bad = good.replace("versions_committed=3", "versions_committed=x");
        assert!(
            bad.parse::<StatusLine>()
                .unwrap_err()
                .to_string()
                .contains("versions_committed")
        );
        assert!("zone=a. serial=1".parse::<StatusLine>().is_err());
        let two = format!(
            "{good}\n{}\n",
            full().to_string().replace("example.com.", "b.")
        );
        assert_eq!(parse_reply(&two).unwrap().len(), 2);
    }
}
