//! Smoke test of the Route 53 test double in `tests/common/moto.rs`: moto in
//! server mode behind the fault-injecting proxy, driven with the AWS SDK.

mod common;

use std::time::Instant;

use common::moto::{self, FaultProxy, Moto, Op};

#[test]
fn change_batch_parser_and_classifier() {
    let xml = concat!(
        r#"<?xml version="1.0" encoding="UTF-8"?><ChangeResourceRecordSetsRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/">"#,
        "<ChangeBatch><Changes>",
        "<Change><Action>UPSERT</Action><ResourceRecordSet><Name>a.example.com.</Name><Type>TXT</Type><TTL>60</TTL>",
        "<ResourceRecords><ResourceRecord><Value>&quot;x&amp;y&quot; &quot;&lt;z&gt;&apos;&#65;&quot;</Value></ResourceRecord></ResourceRecords>",
        "</ResourceRecordSet></Change>",
        "<Change><Action>DELETE</Action><ResourceRecordSet><Name>\\052.example.com.</Name><Type>A</Type><TTL>300</TTL>",
        "<ResourceRecords><ResourceRecord><Value>192.0.2.1</Value></ResourceRecord><ResourceRecord><Value>192.0.2.2</Value></ResourceRecord></ResourceRecords>",
        "</ResourceRecordSet></Change>",
        "</Changes></ChangeBatch></ChangeResourceRecordSetsRequest>"
    );
    assert_eq!(
        moto::parse_change_batch(xml),
        vec![
            moto::change_spec(
                "UPSERT",
                "a.example.com.",
                "TXT",
                60,
                &["\"x&y\" \"<z>'A\""]
            ),
            moto::change_spec(
                "DELETE",
                "\\052.example.com.",
                "A",
                300,
                &["192.0.2.1", "192.0.2.2"]
            ),
        ]
    );
    assert_eq!(
        Op::classify("POST", "/2013-04-01/hostedzone/Z1/rrset/"),
        Op::Change
    );
    assert_eq!(
        Op::classify("GET", "/2013-04-01/hostedzone/Z1/rrset?maxitems=3"),
        Op::List
    );
    assert_eq!(Op::classify("GET", "/2013-04-01/change/C1"), Op::GetChange);
    assert_eq!(Op::classify("POST", "/2013-04-01/hostedzone"), Op::Other);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_behind_fault_proxy() {
    let started = Instant::now();
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.url());
    eprintln!("moto up on {} after {:?}", moto.url(), started.elapsed());

    // Plain round trip through the proxy.
    let client = moto::route53_client(&proxy.url()).await;
    let zone = moto::create_hosted_zone(&client, "example.com.").await;
    assert!(!zone.contains('/'), "zone id {zone:?}");
    moto::change(
        &client,
        &zone,
        "UPSERT",
        "www.example.com.",
        "A",
        300,
        &["192.0.2.1"],
    )
    .await;
    let rrsets = moto::list_rrsets(&client, &zone).await;
    assert!(
        rrsets.contains(&(
            "www.example.com.".to_string(),
            "A".to_string(),
            300,
            vec!["192.0.2.1".to_string()]
        )),
        "{rrsets:?}"
    );
    assert!(
        rrsets
            .iter()
            .any(|(n, t, _, _)| n == "example.com." && t == "SOA"),
        "moto adds an apex SOA: {rrsets:?}"
    );
    assert_eq!(proxy.changes_forwarded(), 1);
    assert_eq!(proxy.changes_faulted(), 0);
    assert_eq!(proxy.lists(), 1);
    assert_eq!(proxy.received(Op::Other), 1, "CreateHostedZone");
    assert_eq!(proxy.requests(), 3);
    let bodies = proxy.sent_change_bodies();
    assert_eq!(bodies.len(), 1);
    assert_eq!(
        moto::parse_change_batch(&bodies[0]),
        vec![moto::change_spec(
            "UPSERT",
            "www.example.com.",
            "A",
            300,
            &["192.0.2.1"]
        )]
    );

    // Values with XML specials survive the SDK's escaping and our parser.
    let txt = "\"a&b\" \"<c>\"";
    moto::change(
        &client,
        &zone,
        "UPSERT",
        "txt.example.com.",
        "TXT",
        60,
        &[txt],
    )
    .await;
    let last = proxy.sent_change_bodies().pop().expect("a change body");
    assert_eq!(moto::parse_change_batch(&last)[0].4, vec![txt.to_string()]);
    assert_eq!(proxy.accepted_changes().len(), 2);

    // Every call faulted: without SDK retries the error reaches the caller,
    // Throttling (400) and InternalError (500) alternating.
    proxy.set_fault_rate(1.0);
    let no_retry = moto::route53_client_with_retry(&proxy.url(), moto::no_retry()).await;
    let mut codes = Vec::new();
    for i in 0..2 {
        let name = format!("f{i}.example.com.");
        let err = moto::try_change(&no_retry, &zone, "UPSERT", &name, "A", 60, &["192.0.2.9"])
            .await
            .expect_err("fault rate 1.0 must fail the call");
        codes.push(moto::error_code(&err).unwrap_or_else(|| format!("{err:?}")));
    }
    assert_eq!(codes, ["Throttling", "InternalError"]);
    assert_eq!(proxy.changes_faulted(), 2);
    assert_eq!(
        proxy.changes_forwarded(),
        2,
        "faulted calls are not forwarded"
    );

    // 30 % faults: standard SDK retries get all 20 changes through.
    proxy.set_fault_rate(0.3);
    let retrying = moto::route53_client_with_retry(&proxy.url(), moto::fast_retry(10)).await;
    for i in 0..20 {
        let name = format!("r{i}.example.com.");
        let value = format!("198.51.100.{i}");
        moto::change(&retrying, &zone, "UPSERT", &name, "A", 120, &[value]).await;
    }
    assert_eq!(proxy.changes_forwarded(), 22);
    assert!(
        proxy.changes_faulted() > 2,
        "expected injected faults at rate 0.3, got {}",
        proxy.changes_faulted() - 2
    );

    proxy.set_fault_rate(0.0);
    let rrsets = moto::list_rrsets(&client, &zone).await;
    let retried: Vec<_> = rrsets
        .iter()
        .filter(|(n, _, ttl, _)| n.starts_with('r') && *ttl == 120)
        .collect();
    assert_eq!(retried.len(), 20, "{rrsets:?}");
    eprintln!(
        "smoke done in {:?}: {} requests, {} change faults injected",
        started.elapsed(),
        proxy.requests(),
        proxy.changes_faulted()
    );
}

/// moto 5.2 refuses to create again a record set that was deleted when
/// any record set sorts after it (it looks for "any set from this name
/// on"); Route 53 accepts it. The strict proxy, which checks CREATEs
/// itself, gets it through to moto, and records the body as sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_record_set_can_be_created_again_through_the_proxy() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.url());
    let direct = moto::route53_client(&moto.url()).await;
    let client = moto::route53_client(&proxy.url()).await;
    let a = |v: &str| vec![v.to_string()];
    for (client, zone_name) in [(&direct, "direct.example."), (&client, "proxied.example.")] {
        let zone = moto::create_hosted_zone(client, zone_name).await;
        let name = |l: &str| format!("{l}.{zone_name}");
        moto::change(
            client,
            &zone,
            "CREATE",
            &name("a"),
            "A",
            60,
            &a("192.0.2.1"),
        )
        .await;
        moto::change(
            client,
            &zone,
            "CREATE",
            &name("b"),
            "A",
            60,
            &a("192.0.2.2"),
        )
        .await;
        moto::change(
            client,
            &zone,
            "DELETE",
            &name("a"),
            "A",
            60,
            &a("192.0.2.1"),
        )
        .await;
        let again = moto::try_change(
            client,
            &zone,
            "CREATE",
            &name("a"),
            "A",
            60,
            &a("192.0.2.1"),
        )
        .await;
        if std::ptr::eq(client, &direct) {
            let err = again.expect_err("moto 5.2 refuses the CREATE (its departure)");
            assert_eq!(
                moto::error_code(&err).as_deref(),
                Some("InvalidChangeBatch")
            );
        } else {
            again.expect("Route 53 (the strict proxy) takes the CREATE");
            let listed = moto::list_rrsets(&direct, &zone).await;
            let held: Vec<_> = listed.iter().filter(|s| s.1 == "A").cloned().collect();
            assert_eq!(
                held,
                vec![
                    (name("a"), "A".to_string(), 60, a("192.0.2.1")),
                    (name("b"), "A".to_string(), 60, a("192.0.2.2")),
                ]
            );
            // A CREATE of what is held is still refused, by the proxy.
            moto::try_change(
                client,
                &zone,
                "CREATE",
                &name("a"),
                "A",
                60,
                &a("192.0.2.9"),
            )
            .await
            .expect_err("CREATE of a held set");
            let refused = proxy.strict_rejections();
            assert_eq!(refused.len(), 1, "{refused:?}");
            assert!(
                refused[0].1.contains("but it already exists"),
                "{refused:?}"
            );
            let bodies = proxy.sent_change_bodies();
            assert_eq!(bodies.len(), 4, "the refused CREATE is not forwarded");
            assert_eq!(moto::parse_change_batch(&bodies[3])[0].0, "CREATE");
        }
    }
}
