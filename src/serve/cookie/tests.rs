use super::*;
use crate::config::cookie_secret::parse_secret;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn secrets(s: &str) -> CookieSecrets {
    CookieSecrets {
        current: parse_secret(s).unwrap(),
        previous: None,
    }
}

fn cookie(client: &str, server: &str) -> CookieIn {
    let mut data = hex(client);
    data.extend(hex(server));
    CookieIn::parse(&data).unwrap()
}

/// RFC 9018 appendix A.1: learning a new server cookie.
#[test]
fn rfc9018_a1_new_server_cookie() {
    let s = secrets("e5e973e5a6b2a43f48e7dc849e37bfcf");
    let client: [u8; 8] = hex("2464c4abcf10c957").try_into().unwrap();
    let ip: IpAddr = "198.51.100.100".parse().unwrap();
    let out = s.issue(&client, ip, 1559731985);
    assert_eq!(out.to_vec(), hex("010000005cf79f111f8130c3eee29480"));
}

/// RFC 9018 appendix A.2: the same client, 30 minutes later... the
/// cookie of A.1 is still valid, and young enough to be echoed.
#[test]
fn rfc9018_a2_valid_cookie_is_accepted_and_reused() {
    let s = secrets("e5e973e5a6b2a43f48e7dc849e37bfcf");
    let c = cookie("2464c4abcf10c957", "010000005cf79f111f8130c3eee29480");
    let ip: IpAddr = "198.51.100.100".parse().unwrap();
    let now = 1559731985 + 60;
    assert_eq!(s.check(&c, ip, now), CookieCheck::Valid);
    assert_eq!(
        s.respond(&c, CookieCheck::Valid, ip, now).to_vec(),
        hex("010000005cf79f111f8130c3eee29480")
    );
    // Another address, another secret: invalid.
    let other: IpAddr = "198.51.100.101".parse().unwrap();
    assert_eq!(s.check(&c, other, now), CookieCheck::Invalid);
    let t = secrets("00000000000000000000000000000000");
    assert_eq!(t.check(&c, ip, now), CookieCheck::Invalid);
}

/// RFC 9018 appendix A.4: an IPv6 client whose cookie was made with
/// the previous secret: accepted, and a new one made with the current
/// secret goes back.
#[test]
fn rfc9018_a4_ipv6_client_after_rotation() {
    let s = CookieSecrets {
        current: parse_secret("445536bcd2513298075a5d379663c962").unwrap(),
        previous: Some(parse_secret("dd3bdf9344b678b185a6f5cb60fca715").unwrap()),
    };
    let c = cookie("22681ab97d52c298", "010000005cf7c57926556bd0934c72f8");
    let ip: IpAddr = "2001:db8:220:1:59de:d0f4:8769:82b8".parse().unwrap();
    let now = 1559741961;
    assert_eq!(s.check(&c, ip, now), CookieCheck::Valid);
    assert_eq!(
        s.respond(&c, CookieCheck::Valid, ip, now).to_vec(),
        hex("010000005cf7c609a6bb79d16625507a")
    );
    let without_previous = CookieSecrets {
        previous: None,
        ..s
    };
    assert_eq!(without_previous.check(&c, ip, now), CookieCheck::Invalid);
}

#[test]
fn old_and_future_cookies_are_invalid_and_reissued() {
    let s = secrets("e5e973e5a6b2a43f48e7dc849e37bfcf");
    let ip: IpAddr = "192.0.2.1".parse().unwrap();
    let client = [7u8; 8];
    let issued = s.issue(&client, ip, 1_000_000);
    let mut data = client.to_vec();
    data.extend(issued);
    let c = CookieIn::parse(&data).unwrap();
    assert_eq!(s.check(&c, ip, 1_000_000 + VALID_FOR), CookieCheck::Valid);
    assert_eq!(
        s.check(&c, ip, 1_000_000 + VALID_FOR + 1),
        CookieCheck::Invalid
    );
    assert_eq!(s.check(&c, ip, 1_000_000 - FUTURE_SKEW), CookieCheck::Valid);
    assert_eq!(
        s.check(&c, ip, 1_000_000 - FUTURE_SKEW - 1),
        CookieCheck::Invalid
    );
    // Older than half an hour: valid, but a new one goes back.
    let later = 1_000_000 + REISSUE_AFTER + 1;
    let r = s.respond(&c, CookieCheck::Valid, ip, later);
    assert_eq!(&r[4..8], &later.to_be_bytes());
    // Timestamps wrap (RFC 1982): issued just before the wrap, checked after.
    let issued = s.issue(&client, ip, u32::MAX - 10);
    let mut data = client.to_vec();
    data.extend(issued);
    let c = CookieIn::parse(&data).unwrap();
    assert_eq!(s.check(&c, ip, 20), CookieCheck::Valid);
}

#[test]
fn a_rotated_secret_is_still_accepted_but_not_reused() {
    let old = secrets("e5e973e5a6b2a43f48e7dc849e37bfcf");
    let ip: IpAddr = "192.0.2.1".parse().unwrap();
    let client = [9u8; 8];
    let mut data = client.to_vec();
    data.extend(old.issue(&client, ip, 5000));
    let c = CookieIn::parse(&data).unwrap();
    let rotated = CookieSecrets {
        current: parse_secret("0102030405060708090a0b0c0d0e0f10").unwrap(),
        previous: Some(old.current),
    };
    assert_eq!(rotated.check(&c, ip, 5001), CookieCheck::Valid);
    let r = rotated.respond(&c, CookieCheck::Valid, ip, 5001);
    assert_eq!(
        r,
        rotated.issue(&client, ip, 5001),
        "reissued with the new secret"
    );
    let dropped = CookieSecrets {
        previous: None,
        ..rotated
    };
    assert_eq!(dropped.check(&c, ip, 5001), CookieCheck::Invalid);
}

#[test]
fn malformed_lengths_are_refused() {
    for len in [0, 1, 7, 9, 15, 41] {
        assert!(CookieIn::parse(&vec![1; len]).is_none(), "length {len}");
    }
    for len in [8, 16, 24, 40] {
        let c = CookieIn::parse(&vec![1; len]).unwrap();
        assert_eq!(c.server_cookie().len(), len - 8);
    }
    let c = cookie("0102030405060708", "");
    assert_eq!(
        secrets("e5e973e5a6b2a43f48e7dc849e37bfcf").check(&c, "::1".parse().unwrap(), 0),
        CookieCheck::ClientOnly
    );
    // A server cookie of another length or version is not ours.
    let c = cookie("0102030405060708", "0100000000000000");
    assert_eq!(
        secrets("e5e973e5a6b2a43f48e7dc849e37bfcf").check(&c, "::1".parse().unwrap(), 0),
        CookieCheck::Invalid
    );
}

#[test]
fn secret_is_generated_once_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let a = load_or_generate(dir.path()).unwrap();
    a.storing
        .expect("a new secret is being stored")
        .wait()
        .unwrap();
    let b = load_or_generate(dir.path()).unwrap();
    assert!(b.storing.is_none(), "a kept secret is only read");
    assert_eq!(a.secret, b.secret);
    std::fs::write(dir.path().join(SECRET_FILE), "xyz").unwrap();
    assert!(matches!(
        load_or_generate(dir.path()),
        Err(SecretError::Format(SecretFormatError(3)))
    ));
    assert!(parse_secret("E5E973E5A6B2A43F48E7DC849E37BFCF").is_ok());
}

/// A generated secret is stored by a thread of its own: once it is done
/// the file holds the whole secret (32 hexadecimal digits and a newline),
/// readable by the server's user only, and no temporary file is left.
#[test]
fn a_generated_secret_is_stored_whole_off_the_start_path() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let kept = load_or_generate(dir.path()).unwrap();
    let storing = kept.storing.expect("stored by a thread of its own");
    storing.wait().unwrap();
    let path = dir.path().join(SECRET_FILE);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.len(), 33, "{text:?}");
    assert!(text.ends_with('\n'));
    assert_eq!(parse_secret(&text).unwrap(), kept.secret);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [SECRET_FILE], "no temporary file left");
}

/// A data directory the secret cannot be written to does not stop the
/// start: the secret serves from memory, the storing thread reports the
/// failure.
#[test]
fn a_secret_that_cannot_be_stored_still_serves() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("gone");
    let kept = load_or_generate(&missing).unwrap();
    let failed = kept.storing.expect("stored by a thread of its own").wait();
    assert!(matches!(failed, Err(SecretError::Io { .. })), "{failed:?}");
    assert!(!missing.join(SECRET_FILE).exists());
}
