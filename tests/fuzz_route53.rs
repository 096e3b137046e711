//! Fuzzing the Route 53 responses the mirror reads.
//!
//! No code of ours parses XML: the AWS SDK deserialises each response, and
//! the mirror reads the result (pages of RRsets and their values, change
//! ids, hosted zones and their RRset quota, change status), then plans
//! from it. So the real
//! client (`mirror::client::Route53`, built from its configuration like in
//! the server) is pointed at a local HTTP endpoint that answers every
//! request with the input: an XML body (captured from moto by
//! `tests/fuzz_corpus/capture.sh`, or written after the AWS API reference)
//! and a status code, mutated. For a listing, the RRsets read are planned
//! against a zone (`mirror::plan::Planner`) and cut into batches, as a
//! reconcile does.
//!
//! Checks: no panic, no hang (every call has a deadline, and the harness's
//! watchdog), bounded memory, and batches within Route 53's limits.
//!
//! This is its own test binary because the SDK takes its credentials from
//! the environment, which is set once here before any thread starts.

#[path = "fuzz/dns.rs"]
mod dns;
#[path = "fuzz/harness.rs"]
mod harness;
#[path = "fuzz/mutate.rs"]
mod mutate;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness::{Outcome, Target, corpus_dir, read_dir_files, signal_of};
use mutate::Rng;
use secondary53::config::Route53Config;
use secondary53::mirror::budget::{Priority, RequestBudget};
use secondary53::mirror::client::{ApiCounters, ForeignSet, Route53};
use secondary53::mirror::plan::{
    Change, Limits, MirrorOptions, PlanInput, Planner, Target as MirrorTarget, batches,
    reconcile_keys,
};
use secondary53::mirror::rrset::{RecordSet, RrsetMap};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Operations, by the first input byte.
const OPS: &[&str] = &[
    "ListResourceRecordSets",
    "ChangeResourceRecordSets",
    "ListHostedZonesByName",
    "GetChange",
    "GetHostedZone",
    "GetHostedZoneLimit",
];
/// Status codes, by the second input byte.
const STATUS: &[u16] = &[200, 400, 404, 500, 503, 429, 403, 201];

/// Words for the XML mutator.
const XML_DICT: &[&[u8]] = &[
    b"true",
    b"false",
    b"",
    b"0",
    b"-1",
    b"300",
    b"2147483648",
    b"9223372036854775807",
    b"9223372036854775808",
    b"18446744073709551616",
    b"1e10",
    b"A",
    b"AAAA",
    b"TXT",
    b"SOA",
    b"NS",
    b"CNAME",
    b"MX",
    b"SRV",
    b"CAA",
    b"SPF",
    b"PTR",
    b"NAPTR",
    b"DS",
    b"TYPE65534",
    b"&amp;",
    b"&lt;",
    b"&#0;",
    b"&#x10FFFF;",
    b"&#1114112;",
    b"&#xD800;",
    b"&undefined;",
    b"<![CDATA[x]]>",
    b"<!-- c -->",
    b"\"quoted\" \"two\"",
    b"\"unterminated",
    b"\\052.example.com.",
    b"\\\\",
    b"\\",
    b"example.com.",
    b"www.example.com.",
    b"other.example.",
    b".",
    b"..",
    b"INSYNC",
    b"PENDING",
    b"/change/C1",
    b"/hostedzone/ZFUZZ",
    b"Throttling",
    b"PriorRequestNotComplete",
    b"InvalidChangeBatch",
    b"NoSuchHostedZone",
    b"AccessDenied",
    b"ResourceRecordSet",
    b"ResourceRecords",
    b"ResourceRecord",
    b"Value",
    b"Name",
    b"Type",
    b"TTL",
    b"AliasTarget",
    b"SetIdentifier",
    b"IsTruncated",
    b"NextRecordName",
    b"NextRecordType",
    b"NextRecordIdentifier",
    b"HostedZone",
    b"HostedZones",
    b"HostedZoneLimit",
    b"MAX_RRSETS_BY_ZONE",
    b"Limit",
    b"Count",
    b"Id",
    b"ChangeInfo",
    b"Status",
    b"Error",
    b"Code",
    b"Message",
];

/// What the local endpoint answers with.
type Reply = Arc<Mutex<(u16, Vec<u8>)>>;

/// Serves HTTP/1.1 on `listener`: every request gets the current reply,
/// then the connection is closed.
async fn endpoint(listener: tokio::net::TcpListener, reply: Reply) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let reply = reply.clone();
        tokio::spawn(async move {
            // The request: headers, then Content-Length bytes of body.
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let head_end = loop {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
                if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break p + 4;
                }
                if buf.len() > 1 << 20 {
                    return;
                }
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < head_end + length {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let (status, body) = reply.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let mut resp = format!(
                "HTTP/1.1 {status} Fuzz\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\
                 x-amzn-RequestId: 00000000-0000-0000-0000-000000000000\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            resp.extend_from_slice(&body);
            let _ = stream.write_all(&resp).await;
            let _ = stream.shutdown().await;
        });
    }
}

struct Route53Target {
    rt: tokio::runtime::Runtime,
    reply: Reply,
    client: Route53,
    planner: Planner,
    target: MirrorTarget,
}

impl Route53Target {
    fn new() -> Route53Target {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let reply: Reply = Arc::new(Mutex::new((200, Vec::new())));
        let client = rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let port = listener.local_addr().expect("addr").port();
            tokio::spawn(endpoint(listener, reply.clone()));
            // The client's own time limits stay under the harness's
            // deadline: a hang it does not bound is a finding.
            let cfg = Route53Config {
                region: "us-east-1".into(),
                endpoint_url: Some(format!("http://127.0.0.1:{port}")),
                max_attempts: 2,
                base_delay_ms: 0,
                reconcile_interval: 3600,
                wait_insync: false,
                call_timeout: 2,
                operation_timeout: 4,
                ..Route53Config::default()
            };
            // No throttling of our own: every input reaches the endpoint.
            let budget = Arc::new(RequestBudget::new(1e9));
            Route53::new(&cfg, Arc::new(ApiCounters::default()), budget).await
        });
        let records = secondary53::zone::file::load(
            &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("zones")
                .join("example.com.zone"),
            &hickory_proto::rr::Name::from_ascii("example.com.").expect("name"),
        )
        .expect("load zones/example.com.zone");
        let planner = Planner::new("example.com.", MirrorOptions::default(), Limits::default())
            .expect("planner");
        let target = planner.target_rrsets(&records);
        Route53Target {
            rt,
            reply,
            client,
            planner,
            target,
        }
    }

    /// Plans a reconcile from a listing, as the mirror does, and checks
    /// that the batches keep to the request limits.
    fn plan(&self, listed: Vec<RecordSet>, foreign: &[ForeignSet]) -> Result<usize, String> {
        let mut current = RrsetMap::new();
        for set in listed {
            current.insert(set.key(), set);
        }
        let touched = reconcile_keys(&self.target, &current);
        let marker = self.planner.serial_marker(2026112201, 60);
        let plan = self.planner.plan_changes(&PlanInput {
            touched: &touched,
            target: &self.target,
            current: &current,
            foreign,
            marker: marker.as_ref(),
            verify: false,
        });
        let limits = self.planner.limits();
        let all = batches(plan.changes, limits);
        for b in &all {
            let elements: usize = b.iter().map(Change::elements).sum();
            let chars: usize = b.iter().map(Change::chars).sum();
            if b.len() > 1 && (elements > limits.max_elements || chars > limits.max_value_chars) {
                return Err(format!(
                    "a batch of {} changes has {elements} elements and {chars} characters, over the limits",
                    b.len()
                ));
            }
        }
        Ok(all.len())
    }
}

impl Target for Route53Target {
    fn name(&self) -> &'static str {
        "route53"
    }

    fn seeds(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for (name, body) in read_dir_files(&corpus_dir().join("route53")) {
            let op = OPS.iter().position(|o| name.contains(o)).unwrap_or(
                // CreateHostedZone answers look like the hosted zone lists.
                2,
            );
            let status = STATUS
                .iter()
                .position(|s| name.contains(&format!("-{s}")))
                .unwrap_or(0);
            let mut s = vec![op as u8, status as u8];
            s.extend_from_slice(&body);
            out.push(s);
        }
        out
    }

    fn mutate(&mut self, rng: &mut Rng, input: &mut Vec<u8>, pool: &[Vec<u8>]) {
        while input.len() < 2 {
            input.push(0);
        }
        if rng.chance(1, 10) {
            let i = rng.below(2);
            input[i] = rng.below(if i == 0 { OPS.len() } else { STATUS.len() }) as u8;
            return;
        }
        let mut body = input[2..].to_vec();
        let others: Vec<Vec<u8>> = (0..2)
            .filter(|_| !pool.is_empty())
            .map(|_| rng.pick(pool).get(2..).unwrap_or(&[]).to_vec())
            .collect();
        let n = 1 + rng.below(3);
        for _ in 0..n {
            mutate::xml(rng, &mut body, &others, XML_DICT);
        }
        input.truncate(2);
        input.extend_from_slice(&body);
    }

    fn max_len(&self) -> usize {
        256 * 1024
    }

    fn execute(&mut self, input: &[u8]) -> Outcome {
        if input.len() < 2 {
            return Outcome::signal(0);
        }
        let op = input[0] as usize % OPS.len();
        let status = STATUS[input[1] as usize % STATUS.len()];
        *self.reply.lock().unwrap_or_else(|p| p.into_inner()) = (status, input[2..].to_vec());
        let client = &self.client;
        let deadline = Duration::from_secs(5);
        type Got = (String, Option<(Vec<RecordSet>, Vec<ForeignSet>)>);
        let result: Result<Result<Got, String>, _> = self.rt.block_on(async {
            tokio::time::timeout(deadline, async {
                match op {
                    0 => client
                        .list("ZFUZZ", 11_000, Priority::Bulk)
                        .await
                        .map(|l| {
                            (
                                format!("list {} {}", l.sets.len().min(8), l.foreign.len().min(4)),
                                Some((l.sets, l.foreign)),
                            )
                        })
                        .map_err(|e| e.to_string()),
                    1 => {
                        let set = self.target.sets.values().next().cloned();
                        let change: Vec<Change> = set.into_iter().map(Change::upsert).collect();
                        client
                            .change("ZFUZZ", &change, "fuzz", Priority::Replay)
                            .await
                            .map(|id| (format!("change {}", id.is_empty()), None))
                            .map_err(|e| e.to_string())
                    }
                    2 => client
                        .find_hosted_zone("example.com.", None)
                        .await
                        .map(|z| (format!("zone {} {}", z.id.is_empty(), z.private), None))
                        .map_err(|e| e.to_string()),
                    4 => client
                        .hosted_zone("ZFUZZ")
                        .await
                        .map(|z| {
                            (
                                format!("hosted zone {} {}", z.id.is_empty(), z.private),
                                None,
                            )
                        })
                        .map_err(|e| e.to_string()),
                    5 => client
                        .rrset_limit("ZFUZZ")
                        .await
                        .map(|(limit, count)| {
                            (format!("limit {} {}", limit.min(8), count.min(8)), None)
                        })
                        .map_err(|e| e.to_string()),
                    _ => client
                        .wait_insync("/change/C1", Duration::ZERO)
                        .await
                        .map(|s| (format!("insync {s}"), None))
                        .map_err(|e| e.to_string()),
                }
            })
            .await
        });
        let Ok(result) = result else {
            return Outcome {
                signal: 1,
                violation: Some(format!("{} did not return within {deadline:?}", OPS[op])),
            };
        };
        let mut violation = None;
        let kind = match result {
            Ok((s, listed)) => {
                if let Some((listed, foreign)) = listed
                    && let Err(e) = self.plan(listed, &foreign)
                {
                    violation = Some(e);
                }
                s
            }
            Err(e) => e
                .split(|c: char| !c.is_ascii_alphabetic())
                .filter(|w| w.len() > 3)
                .take(4)
                .collect::<Vec<_>>()
                .join(" "),
        };
        Outcome {
            signal: signal_of(&[&op, &status, &kind]),
            violation,
        }
    }
}

#[test]
fn fuzz_route53_responses() {
    // SAFETY: this binary has this one test, and it sets the environment
    // before it starts any thread of its own (the runtime comes after);
    // nothing else in the process reads the environment concurrently.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "fuzz");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "fuzz");
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        std::env::remove_var("AWS_PROFILE");
        std::env::remove_var("AWS_SESSION_TOKEN");
        std::env::remove_var("AWS_DEFAULT_PROFILE");
    }
    harness::fuzz(&mut Route53Target::new(), 1_000_000, 6.0);
}
