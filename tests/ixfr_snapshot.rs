//! An IXFR of many versions from a real BIND 9 primary is merged into one
//! delta and applied once to the served snapshot: the journal still holds
//! every version, and every answer (names created and removed, empty
//! non-terminals appearing and disappearing, a wildcard, a delegation, TTL
//! changes, records removed and put back) is BIND's.

mod common;

use std::time::Duration;

use common::{
    Bind, BindOptions, Secondary, dig, free_port, generate_zone, query_serial, stored_serial,
    wait_until,
};

const ZONE: &str = "example.com";

fn config(port: u16, dir: &std::path::Path, primary: &str) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\ndata_dir = \"{}\"\n\n\
         [[zone]]\nname = \"{ZONE}\"\nprimaries = [\"{primary}\"]\n\
         connect_timeout = 2\nmessage_timeout = 4\ntransfer_timeout = 60\n",
        dir.join("var").display()
    )
}

/// Status and answer and authority records of each query (dig's output for
/// several queries in one run), in a form that compares across servers.
/// With RD set, as dig sends by default, BIND leaves the apex NS out of the
/// authority section of positive answers, as secondary53 does.
fn answers(port: u16, queries: &[(&str, &str)]) -> Vec<String> {
    let port = port.to_string();
    let mut args = vec![
        "@127.0.0.1",
        "-p",
        &port,
        "+noall",
        "+comments",
        "+answer",
        "+authority",
    ];
    for (name, qtype) in queries {
        args.push(name);
        args.push(qtype);
    }
    let out = dig(&args);
    let mut per_query: Vec<Vec<String>> = Vec::new();
    for line in out.lines() {
        if let Some(i) = line.find("status: ") {
            let status = line[i + 8..].split(',').next().unwrap_or("").to_string();
            per_query.push(vec![status]);
        } else if !line.starts_with(';')
            && !line.trim().is_empty()
            && let Some(q) = per_query.last_mut()
        {
            q.push(line.split_whitespace().collect::<Vec<_>>().join(" "));
        }
    }
    per_query
        .into_iter()
        .map(|mut q| {
            q[1..].sort();
            q.join("\n")
        })
        .collect()
}

#[test]
fn a_many_version_ixfr_is_applied_at_once_and_answers_match_the_primary() {
    // No NOTIFY: the changes pile up on the primary, then one refresh
    // brings them all in one IXFR.
    // BIND answers an IXFR larger than its ratio to the zone AXFR-style.
    let bind = Bind::start(BindOptions {
        extra_options: "max-ixfr-ratio unlimited;".into(),
        ..BindOptions::new(ZONE, generate_zone(ZONE, 100, 60))
    });
    let dir = tempfile::Builder::new()
        .prefix("sec53-")
        .tempdir()
        .expect("temp dir for secondary53");
    let port = free_port();
    let sec = Secondary::start(dir.path(), &config(port, dir.path(), &bind.addr()));
    wait_until("the first transfer", Duration::from_secs(20), || {
        stored_serial(&sec, ZONE) == Some(100)
    });

    let updates = [
        // Empty non-terminals b.c.deep, c.deep and deep appear...
        "update add a.b.c.deep.example.com. 300 IN A 192.0.2.1",
        "update add x.deep.example.com. 300 IN A 192.0.2.2",
        // ... and b.c.deep and c.deep go again (deep stays, for x.deep).
        "update delete a.b.c.deep.example.com. A",
        // A wildcard below an empty non-terminal.
        "update add *.w.v.example.com. 300 IN TXT \"wild\"",
        // A delegation with glue, then a name below it.
        "update add sub.example.com. 300 IN NS ns.sub.example.com.",
        "update add ns.sub.example.com. 300 IN A 192.0.2.53",
        // Added, then removed: no change in the end.
        "update add gone.example.com. 300 IN A 192.0.2.9",
        "update delete gone.example.com. A",
        // Removed, then put back as it was: no change in the end.
        "update delete h0.example.com. A",
        "update add h0.example.com. 300 IN A 10.0.0.0",
        // TTL changed twice.
        "update delete h8.example.com. A\nupdate add h8.example.com. 900 IN A 10.0.0.8",
        "update delete h8.example.com. A\nupdate add h8.example.com. 1200 IN A 10.0.0.8",
        // Removed for good, and a name that changes type.
        "update delete h1.example.com.",
        "update delete h15.example.com. A\nupdate add h15.example.com. 300 IN TXT \"was A\"",
        // A name made an empty non-terminal's only child, then a sibling.
        "update add m.n.example.com. 300 IN A 192.0.2.77",
        "update add o.n.example.com. 300 IN AAAA 2001:db8::77",
        "update delete m.n.example.com. A",
    ];
    for u in updates {
        bind.update(u);
    }
    let serial = bind.soa_serial();
    assert_eq!(serial, 100 + updates.len() as u32);
    let (ok, out, err) = sec.cli(&["zone", "refresh", ZONE]);
    assert!(ok, "zone refresh: {out}{err}");
    wait_until("the IXFR", Duration::from_secs(20), || {
        query_serial(port, ZONE) == Some(serial)
    });

    // One IXFR carried every version; the journal keeps each of them.
    let log = sec.log();
    let line = log
        .lines()
        .find(|l| l.contains("transfer committed") && l.contains("kind=\"IXFR\""))
        .unwrap_or_else(|| panic!("no IXFR commit in the log:\n{log}"));
    assert!(
        line.contains(&format!("versions={}", updates.len())),
        "the IXFR should carry {} versions: {line}",
        updates.len()
    );
    let (ok, journal, err) = sec.cli(&["journal", ZONE]);
    assert!(ok, "journal: {err}");
    for s in 101..=serial {
        assert!(
            journal.contains(&format!("serial {} -> {s} kind=ixfr", s - 1)),
            "the journal lacks version {s}:\n{journal}"
        );
    }

    let queries = [
        ("a.b.c.deep.example.com", "A"),
        ("b.c.deep.example.com", "A"),
        ("c.deep.example.com", "A"),
        ("deep.example.com", "A"),
        ("x.deep.example.com", "A"),
        ("anything.w.v.example.com", "TXT"),
        ("w.v.example.com", "TXT"),
        ("v.example.com", "A"),
        ("sub.example.com", "NS"),
        ("www.sub.example.com", "A"),
        ("gone.example.com", "A"),
        ("h0.example.com", "A"),
        ("h8.example.com", "A"),
        ("h1.example.com", "AAAA"),
        ("h15.example.com", "A"),
        ("h15.example.com", "TXT"),
        ("m.n.example.com", "A"),
        ("n.example.com", "A"),
        ("o.n.example.com", "AAAA"),
        ("example.com", "SOA"),
    ];
    let theirs = answers(bind.port(), &queries);
    let ours = answers(port, &queries);
    assert_eq!(theirs.len(), queries.len(), "BIND answered {theirs:?}");
    for ((q, t), o) in queries.iter().zip(&theirs).zip(&ours) {
        assert_eq!(o, t, "{q:?}: secondary53 (left) and BIND (right) differ");
    }
    // The cases that matter are what they should be.
    let status = |i: usize| theirs[i].lines().next().unwrap_or("");
    // Gone with their last descendant: a.b.c.deep, b.c.deep, c.deep.
    assert_eq!(
        (status(0), status(1), status(2)),
        ("NXDOMAIN", "NXDOMAIN", "NXDOMAIN")
    );
    // Empty non-terminals: deep (x.deep), v (*.w.v), n (o.n).
    assert_eq!(
        (status(3), status(7), status(17)),
        ("NOERROR", "NOERROR", "NOERROR")
    );
    assert_eq!((status(10), status(16)), ("NXDOMAIN", "NXDOMAIN"));
    assert!(theirs[5].contains("wild"), "{}", theirs[5]);
    assert!(theirs[12].contains(" 1200 "), "{}", theirs[12]);
}
