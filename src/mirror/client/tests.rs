use super::*;

// Route 53 sends InvalidChangeBatch as its own root element (API
// reference, ChangeResourceRecordSets errors; the SDKs of other
// languages parse it specially). It must be recognized, not taken for
// an unknown fatal error.
#[test]
fn route53s_own_invalid_change_batch_form_is_recognized() {
    let body = br#"<?xml version="1.0"?>
<InvalidChangeBatch xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Messages><Message>Tried to create resource record set [name='www.example.com.', type='A'] but it already exists</Message><Message>second &amp; last</Message></Messages><RequestId>b25f48e8</RequestId></InvalidChangeBatch>"#;
    assert_eq!(
        classify_service(400, None, None, body),
        Failure::Invalid(
            "InvalidChangeBatch: Tried to create resource record set [name='www.example.com.', type='A'] but it already exists; second & last".into()
        )
    );
    // The ErrorResponse form (moto) too.
    assert!(matches!(
        classify_service(400, Some("InvalidChangeBatch"), Some("x"), b""),
        Failure::Invalid(_)
    ));
    for code in ["Throttling", "PriorRequestNotComplete"] {
        assert!(matches!(
            classify_service(400, Some(code), Some("x"), b""),
            Failure::Retry(_)
        ));
    }
    assert!(matches!(
        classify_service(403, Some("AccessDenied"), Some("no"), b""),
        Failure::Fatal(_)
    ));
    assert!(matches!(
        classify_service(400, None, None, b"<html>bad</html>"),
        Failure::Fatal(_)
    ));
    // An HTML page from an endpoint without the call: one log line.
    assert_eq!(
        classify_service(
            404,
            None,
            None,
            b"<!doctype html>\n<title>404</title>\n  <p>Not Found</p>\n"
        ),
        Failure::Fatal("HTTP 404: <!doctype html> <title>404</title> <p>Not Found</p>".into())
    );
    assert!(matches!(
        classify_service(503, None, None, b""),
        Failure::Retry(_)
    ));
}

fn hz(id: &str, private: bool) -> HostedZoneInfo {
    HostedZoneInfo {
        id: id.into(),
        name: "example.com.".into(),
        private,
    }
}

// lookup = true: a public and a private zone, or two public ones, of
// one name are refused unless `private` says which.
#[test]
fn ambiguous_hosted_zone_names_are_refused() {
    let both = vec![hz("ZPUB", false), hz("ZPRIV", true)];
    let e = select_hosted_zone("example.com.", both.clone(), None).unwrap_err();
    assert!(matches!(e, Route53Error::AmbiguousHostedZone { .. }), "{e}");
    assert!(
        e.to_string().contains("ZPUB (public), ZPRIV (private)"),
        "{e}"
    );
    assert_eq!(
        select_hosted_zone("example.com.", both.clone(), Some(false))
            .unwrap()
            .id,
        "ZPUB"
    );
    assert_eq!(
        select_hosted_zone("example.com.", both, Some(true))
            .unwrap()
            .id,
        "ZPRIV"
    );
    let two = vec![hz("Z1", false), hz("Z2", false)];
    assert!(select_hosted_zone("example.com.", two.clone(), Some(false)).is_err());
    assert!(matches!(
        select_hosted_zone("example.com.", vec![hz("Z1", false)], Some(true)),
        Err(Route53Error::NoHostedZone(_))
    ));
    assert!(matches!(
        select_hosted_zone("example.com.", Vec::new(), None),
        Err(Route53Error::NoHostedZone(_))
    ));
    assert_eq!(
        select_hosted_zone("example.com.", vec![hz("Z1", false)], None)
            .unwrap()
            .id,
        "Z1"
    );
}
