//! The examples of RFC 8976 Appendix A (with the corrections of its errata:
//! the digests below are the ones independent implementations, dnspython
//! and miekg/dns among them, compute), and the verification rules of its
//! section 4.

use super::*;

/// RFC 8976 A.1: the simple EXAMPLE zone.
const SIMPLE: &str = r#"
example.      86400  IN  SOA     ns1 admin 2018031900 (
                                 1800 900 604800 86400 )
              86400  IN  NS      ns1
              86400  IN  NS      ns2
              86400  IN  ZONEMD  2018031900 1 1 (
                                 c68090d90a7aed71
                                 6bc459f9340e3d7c
                                 1370d4d24b7e2fc3
                                 a1ddc0b9a87153b9
                                 a9713b3c9ae5cc27
                                 777f98b8e730044c )
ns1           3600   IN  A       203.0.113.63
ns2           3600   IN  AAAA    2001:db8::63
"#;

/// RFC 8976 A.2: the complex EXAMPLE zone (occluded data, a duplicate,
/// out-of-zone data, uppercase names, a wildcard, a non-apex ZONEMD).
const COMPLEX: &str = r#"
example.      86400  IN  SOA     ns1 admin 2018031900 (
                                 1800 900 604800 86400 )
              86400  IN  NS      ns1
              86400  IN  NS      ns2
              86400  IN  ZONEMD  2018031900 1 1 (
                                 a3b69bad980a3504
                                 e1cffcb0fd6397f9
                                 3848071c93151f55
                                 2ae2f6b1711d4bd2
                                 d8b39808226d7b9d
                                 b71e34b72077f8fe )
ns1           3600   IN  A       203.0.113.63
NS2           3600   IN  AAAA    2001:db8::63
occluded.sub  7200   IN  TXT     "I'm occluded but must be digested"
sub           7200   IN  NS      ns1
duplicate     300    IN  TXT     "I must be digested just once"
duplicate     300    IN  TXT     "I must be digested just once"
foo.test.     555    IN  TXT     "out-of-zone data must be excluded"
UPPERCASE     3600   IN  TXT     "canonicalize uppercase owner names"
*             777    IN  PTR     dont-forget-about-wildcards
mail          3600   IN  MX      20 MAIL1
mail          3600   IN  MX      10 Mail2.Example.
sortme        3600   IN  AAAA    2001:db8::5:61
sortme        3600   IN  AAAA    2001:db8::3:62
sortme        3600   IN  AAAA    2001:db8::4:63
sortme        3600   IN  AAAA    2001:db8::1:65
sortme        3600   IN  AAAA    2001:db8::2:64
non-apex      900    IN  ZONEMD  2018031900 1 1 (
                                 616c6c6f77656420
                                 6275742069676e6f
                                 7265642e20616c6c
                                 6f77656420627574
                                 2069676e6f726564
                                 2e20616c6c6f7765 )
"#;

/// RFC 8976 A.3: the EXAMPLE zone with multiple digests (SHA384, SHA512,
/// a private hash algorithm and a private scheme).
const MULTIPLE: &str = r#"
example.      86400  IN  SOA     ns1 admin 2018031900 (
                                 1800 900 604800 86400 )
example.      86400  IN  NS      ns1.example.
example.      86400  IN  NS      ns2.example.
example.      86400  IN  ZONEMD  2018031900 1 1 (
                                 62e6cf51b02e54b9
                                 b5f967d547ce4313
                                 6792901f9f88e637
                                 493daaf401c92c27
                                 9dd10f0edb1c56f8
                                 080211f8480ee306 )
example.      86400  IN  ZONEMD  2018031900 1 2 (
                                 08cfa1115c7b948c
                                 4163a901270395ea
                                 226a930cd2cbcf2f
                                 a9a5e6eb85f37c8a
                                 4e114d884e66f176
                                 eab121cb02db7d65
                                 2e0cc4827e7a3204
                                 f166b47e5613fd27 )
example.      86400  IN  ZONEMD  2018031900 1 240 (
                                 e2d523f654b9422a
                                 96c5a8f44607bbee )
example.      86400  IN  ZONEMD  2018031900 241 1 (
                                 e1846540e33a9e41
                                 89792d18d5d131f6
                                 05fc283eaaaaaaaa
                                 aaaaaaaaaaaaaaaa
                                 aaaaaaaaaaaaaaaa
                                 aaaaaaaaaaaaaaaa )
ns1.example.  3600   IN  A       203.0.113.63
ns2.example.  86400  IN  TXT     "This example has multiple digests"
NS2.EXAMPLE.  3600   IN  AAAA    2001:db8::63
"#;

/// RFC 8976 A.4: the URI.ARPA zone, DNSSEC-signed, its ZONEMD signed too.
const URI_ARPA: &str = r#"
uri.arpa.       3600    IN      SOA     sns.dns.icann.org. (
   noc.dns.icann.org. 2018100702 10800 3600 1209600 3600 )
uri.arpa.       3600    IN      RRSIG   SOA 8 2 3600 (
    20210217232440 20210120232440 37444 uri.arpa.
    GzQw+QzwLDJr13REPGVmpEChjD1D2XlX0ie1DnWHpgaEw1E/dhs3lCN3+B
    mHd4Kx3tffTRgiyq65HxR6feQ5v7VmAifjyXUYB1DZur1eP5q0Ms2ygCB3
    byoeMgCNsFS1oKZ2LdzNBRpy3oace8xQn1SpmHGfyrsgg+WbHKCT1dY= )
uri.arpa.       86400   IN      NS      a.iana-servers.net.
uri.arpa.       86400   IN      NS      b.iana-servers.net.
uri.arpa.       86400   IN      NS      c.iana-servers.net.
uri.arpa.       86400   IN      NS      ns2.lacnic.net.
uri.arpa.       86400   IN      NS      sec3.apnic.net.
uri.arpa.       86400   IN      RRSIG   NS 8 2 86400 (
    20210217232440 20210120232440 37444 uri.arpa.
    M+Iei2lcewWGaMtkPlrhM9FpUAHXFkCHTVpeyrjxjEONeNgKtHZor5e4V4
    qJBOzNqo8go/qJpWlFBm+T5Hn3asaBZVstFIYky38/C8UeRLPKq1hTTHAR
    YUlFrexr5fMtSUAVOgOQPSBfH3xBq/BgSccTdRb9clD+HE7djpqrLS4= )
uri.arpa.       600     IN      MX      10 pechora.icann.org.
uri.arpa.       600     IN      RRSIG   MX 8 2 600 (
    20210217232440 20210120232440 37444 uri.arpa.
    kQAJQivmv6A5hqYBK8h6Z13ESY69gmosXwKI6WE09I8RFetfrxr24ecdnY
    d0lpnDtgNNSoHkYRSOoB+C4+zuJsoyAAzGo9uoWMWj97/2xeGhf3PTC9me
    Q9Ohi6hul9By7OR76XYmGhdWX8PBi60RUmZ1guslFBfQ8izwPqzuphs= )
uri.arpa.       3600    IN      DNSKEY  256 3 8 (
    AwEAAbMxuFuLeVDuOwIMzYOTD/bTREjLflo7wOi6ieIJhqltEzgjNzmWJf
    9kGwwDmzxU7kbthMEhBNBZNn84zmcyRSCMzuStWveL7xmqqUlE3swL8kLO
    vdZvc75XnmpHrk3ndTyEb6eZM7slh2C63Oh6K8VR5VkiZAkEGg0uZIT3Nj
    sF )
uri.arpa.       3600    IN      DNSKEY  257 3 8 (
    AwEAAdkTaWkZtZuRh7/OobBUFxM+ytTst+bCu0r9w+rEwXD7GbDs0pIMhM
    enrZzoAvmv1fQxw2MGs6Ri6yPKfNULcFOSt9l8i6BVBLI+SKTY6XXeDUQp
    SEmSaxohHeRPMQFzpysfjxINp/L2rGtZ7yPmxY/XRiFPSO0myqwGJa9r06
    Zw9CHM5UDHKWV/E+zxPFq/I7CfPbrrzbUotBX7Z6Vh3Sarllbe8cGUB2UF
    NaTRgwB0TwDBPRD5ER3w2Dzbry9NhbElTr7vVfhaGWeOGuqAUXwlXEg6Cr
    NkmJXJ2F1Rzr9WHUzhp7uWxhAbmJREGfi2dEyPAbUAyCjBqhFaqglknvc= )
uri.arpa.       3600    IN      DNSKEY  257 3 8 (
    AwEAAenQaBoFmDmvRT+/H5oNbm0Tr5FmNRNDEun0Jpj/ELkzeUrTWhNpQm
    ZeIMC8I0kZ185tEvOnRvn8OvV39B17QIdrvvKGIh2HlgeDRCLolhaojfn2
    QM0DStjF/WWHpxJOmE6CIuvhqYEU37yoJscGAPpPVPzNvnL1HhYTaao1VR
    YWQ/maMrJ+bfHg+YX1N6M/8MnRjIKBif1FWjbCKvsn6dnuGGL9oCWYUFJ3
    DwofXuhgPyZMkzPc88YkJj5EMvbMH4wtelbCwC+ivx732l0w/rXJn0ciQS
    OgoeVvDio8dIJmWQITWQAuP+q/ZHFEFHPlrP3gvQh5mcVS48eLX71Bq7c= )
uri.arpa.       3600    IN      RRSIG   DNSKEY 8 2 3600 (
    20210217232440 20210120232440 12670 uri.arpa.
    DBE2gkKAoxJCfz47KKxzoImN/0AKArhIVHE7TyTwy0DdRPo44V5R+vL6th
    UxlQ1CJi2Rw0jwAXymx5Y3Q873pOEllH+4bJoIT4dmoBmPXfYWW7Clvw9U
    PKHRP0igKHmCVwIeBYDTU3gfLcMTbR4nEWPDN0GxlL1Mf7ITaC2Ioabo79
    Ip3M/MR8I3Vx/xZ4ZKKPHtLn3xUuJluPNanqJrED2gTslL2xWZ1tqjsAjJ
    v7JnJo2HJ8XVRB5zBto0IaJ2oBlqcjdcQ/0VlyoM8uOy1pDwHQ2BJl7322
    gNMHBP9HSiUPIOaIDNUCwW8eUcW6DIUk+s9u3GN1uTqwWzsYB/rA== )
uri.arpa.       3600    IN      RRSIG   DNSKEY 8 2 3600 (
    20210217232440 20210120232440 30577 uri.arpa.
    Kx6HwP4UlkGc1UZ7SERXtQjPajOF4iUvkwDj7MEG1xbQFB1KoJiEb/eiW0
    qmSWdIhMDv8myhgauejRLyJxwxz8HDRV4xOeHWnRGfWBk4XGYwkejVzOHz
    oIArVdUVRbr2JKigcTOoyFN+uu52cNB7hRYu7dH5y1hlc6UbOnzRpMtGxc
    gVyKQ+/ARbIqGG3pegdEOvV49wTPWEiyY65P2urqhvnRg5ok/jzwAdMx4X
    Gshiib7Ojq0sRVl2ZIzj4rFgY/qsSO8SEXEhMo2VuSkoJNiofVzYoqpxEe
    GnANkIT7Tx2xJL1BWyJxyc7E8Wr2QSgCcc+rYL6IkHDtJGHy7TaQ== )
uri.arpa.       3600    IN      ZONEMD  2018100702 1 1 (
    0dbc3c4dbfd75777c12ca19c337854b1577799901307c482e9d91d5d15
    cd934d16319d98e30c4201cf25a1d5a0254960 )
uri.arpa.       3600    IN      RRSIG   ZONEMD 8 2 3600 (
    20210217232440 20210120232440 37444 uri.arpa.
    QDo4XZcL3HMyn8aAHyCUsu/Tqj4Gkth8xY1EqByOb8XOTwVtA4ZNQORE1s
    iqNqjtJUbeJPtJSbLNqCL7rCq0CzNNnBscv6IIf4gnqJZjlGtHO30ohXtK
    vEc4z7SU3IASsi6bB3nLmEAyERdYSeU6UBfx8vatQDIRhkgEnnWUTh4= )
uri.arpa.       3600    IN      NSEC    ftp.uri.arpa. (
    NS SOA MX RRSIG NSEC DNSKEY ZONEMD )
uri.arpa.       3600    IN      RRSIG   NSEC 8 2 3600 (
    20210217232440 20210120232440 37444 uri.arpa.
    dU/rXLM/naWd1+1PiWiYVaNJyCkiuyZJSccr91pJI673T8r3685B4ODMYF
    afZRboVgwnl3ZrXddY6xOhZL3n9V9nxXZwjLJ2HJUojFoKcXTlpnUyYUYv
    VQ2kj4GHAo6fcGCEp5QFJ2KbCpeJoS+PhKGRRx28icCiNT4/uXQvO2E= )
ftp.uri.arpa.   604800  IN      NAPTR   0 0 "" "" (
    "!^ftp://([^:/?#]*).*$!\\1!i" . )
ftp.uri.arpa.   604800  IN      RRSIG   NAPTR 8 3 604800 (
    20210217232440 20210120232440 37444 uri.arpa.
    EygekDgl+Lyyq4NMSEpPyOrOywYf9Y3FAB4v1DT44J3R5QGidaH8l7ZFjH
    oYFI8sY64iYOCV4sBnX/dh6C1L5NgpY+8l5065Xu3vvjyzbtuJ2k6YYwJr
    rCbvl5DDn53zAhhO2hL9uLgyLraZGi9i7TFGd0sm3zNyUF/EVL0CcxU= )
ftp.uri.arpa.   3600    IN      NSEC    http.uri.arpa. (
    NAPTR RRSIG NSEC )
ftp.uri.arpa.   3600    IN      RRSIG   NSEC 8 3 3600 (
    20210217232440 20210120232440 37444 uri.arpa.
    pbP4KxevPXCu/bDqcvXiuBppXyFEmtHyiy0eAN5gS7mi6mp9Z9bWFjx/Ld
    H9+6oFGYa5vGmJ5itu/4EDMe8iQeZbI8yrpM4TquB7RR/MGfBnTd8S+sjy
    QtlRYG7yqEu77Vd78Fme22BKPJ+MVqjS0JHMUE/YUGomPkAjLJJwwGw= )
http.uri.arpa.  604800  IN      NAPTR   0 0 "" "" (
    "!^http://([^:/?#]*).*$!\\1!i" . )
http.uri.arpa.  604800  IN      RRSIG   NAPTR 8 3 604800 (
    20210217232440 20210120232440 37444 uri.arpa.
    eTqbWvt1GvTeXozuvm4ebaAfkXFQKrtdu0cEiExto80sHIiCbO0WL8UDa/
    J3cDivtQca7LgUbOb6c17NESsrsVkc6zNPx5RK2tG7ZQYmhYmtqtfg1oU5
    BRdHZ5TyqIXcHlw9Blo2pir1Y9IQgshhD7UOGkbkEmvB1Lrd0aHhAAg= )
http.uri.arpa.  3600    IN      NSEC    mailto.uri.arpa. (
    NAPTR RRSIG NSEC )
http.uri.arpa.  3600    IN      RRSIG   NSEC 8 3 3600 (
    20210217232440 20210120232440 37444 uri.arpa.
    R9rlNzw1CVz2N08q6DhULzcsuUm0UKcPaGAWEU40tr81jEDHsFHNM+khCd
    OI8nDstzA42aee4rwCEgijxJpRCcY9hrO1Ysrrr2fdqNz60JikMdarvU5O
    0p0VXeaaJDfJQT44+o+YXaBwI7Qod3FTMx7aRib8i7istvPm1Rr7ixA= )
mailto.uri.arpa.        604800  IN      NAPTR   0 0 "" "" (
    "!^mailto:(.*)@(.*)$!\\2!i" . )
mailto.uri.arpa.        604800  IN      RRSIG   NAPTR 8 3 604800 (
    20210217232440 20210120232440 37444 uri.arpa.
    Ch2zTG2F1plEvQPyIH4Yd80XXLjXOPvMbiqDjpJBcnCJsV8QF7kr0wTLnU
    T3dB+asQudOjPyzaHGwFlMzmrrAsszN4XAMJ6htDtFJdsgTMP/NkHhYRSm
    Vv6rLeAhd+mVfObY12M//b/GGVTjeUI/gJaLW0fLVZxr1Fp5U5CRjyw= )
mailto.uri.arpa.        3600    IN      NSEC    urn.uri.arpa. (
    NAPTR RRSIG NSEC )
mailto.uri.arpa.        3600    IN      RRSIG   NSEC 8 3 3600 (
    20210217232440 20210120232440 37444 uri.arpa.
    fQUbSIE6E7JDi2rosah4SpCOTrKufeszFyj5YEavbQuYlQ5cNFvtm8KuE2
    xXMRgRI4RGvM2leVqcoDw5hS3m2pOJLxH8l2WE72YjYvWhvnwc5Rofe/8y
    B/vaSK9WCnqN8y2q6Vmy73AGP0fuiwmuBra7LlkOiqmyx3amSFizwms= )
urn.uri.arpa.   604800  IN      NAPTR   0 0 "" "" (
    "/urn:([^:]+)/\\1/i" . )
urn.uri.arpa.   604800  IN      RRSIG   NAPTR 8 3 604800 (
    20210217232440 20210120232440 37444 uri.arpa.
    CVt2Tgz0e5ZmaSXqRfNys/8OtVCk9nfP0zhezhN8Bo6MDt6yyKZ2kEEWJP
    jkN7PCYHjO8fGjnUn0AHZI2qBNv7PKHcpR42VY03q927q85a65weOO1YE0
    vPYMzACpua9TOtfNnynM2Ws0uN9URxUyvYkXBdqOC81N3sx1dVELcwc= )
urn.uri.arpa.   3600    IN      NSEC    uri.arpa. NAPTR RRSIG NSEC
urn.uri.arpa.   3600    IN      RRSIG   NSEC 8 3 3600 (
    20210217232440 20210120232440 37444 uri.arpa.
    JuKkMiC3/j9iM3V8/izcouXWAVGnSZjkOgEgFPhutMqoylQNRcSkbEZQzF
    K8B/PIVdzZF0Y5xkO6zaKQjOzz6OkSaNPIo1a7Vyyl3wDY/uLCRRAHRJfp
    knuY7O+AUNXvVVIEYJqZggd4kl/Rjh1GTzPYZTRrVi5eQidI1LqCOeg= )
"#;

/// RFC 8976 A.5: the ROOT-SERVERS.NET zone.
const ROOT_SERVERS: &str = r#"
root-servers.net.     3600000 IN  SOA     a.root-servers.net. (
                      nstld.verisign-grs.com. 2018091100 14400
                      7200 1209600 3600000 )
root-servers.net.     3600000 IN  NS      a.root-servers.net.
root-servers.net.     3600000 IN  NS      b.root-servers.net.
root-servers.net.     3600000 IN  NS      c.root-servers.net.
root-servers.net.     3600000 IN  NS      d.root-servers.net.
root-servers.net.     3600000 IN  NS      e.root-servers.net.
root-servers.net.     3600000 IN  NS      f.root-servers.net.
root-servers.net.     3600000 IN  NS      g.root-servers.net.
root-servers.net.     3600000 IN  NS      h.root-servers.net.
root-servers.net.     3600000 IN  NS      i.root-servers.net.
root-servers.net.     3600000 IN  NS      j.root-servers.net.
root-servers.net.     3600000 IN  NS      k.root-servers.net.
root-servers.net.     3600000 IN  NS      l.root-servers.net.
root-servers.net.     3600000 IN  NS      m.root-servers.net.
a.root-servers.net.   3600000 IN  AAAA    2001:503:ba3e::2:30
a.root-servers.net.   3600000 IN  A       198.41.0.4
b.root-servers.net.   3600000 IN  MX      20 mail.isi.edu.
b.root-servers.net.   3600000 IN  AAAA    2001:500:200::b
b.root-servers.net.   3600000 IN  A       199.9.14.201
c.root-servers.net.   3600000 IN  AAAA    2001:500:2::c
c.root-servers.net.   3600000 IN  A       192.33.4.12
d.root-servers.net.   3600000 IN  AAAA    2001:500:2d::d
d.root-servers.net.   3600000 IN  A       199.7.91.13
e.root-servers.net.   3600000 IN  AAAA    2001:500:a8::e
e.root-servers.net.   3600000 IN  A       192.203.230.10
f.root-servers.net.   3600000 IN  AAAA    2001:500:2f::f
f.root-servers.net.   3600000 IN  A       192.5.5.241
g.root-servers.net.   3600000 IN  AAAA    2001:500:12::d0d
g.root-servers.net.   3600000 IN  A       192.112.36.4
h.root-servers.net.   3600000 IN  AAAA    2001:500:1::53
h.root-servers.net.   3600000 IN  A       198.97.190.53
i.root-servers.net.   3600000 IN  MX      10 mx.i.root-servers.org.
i.root-servers.net.   3600000 IN  AAAA    2001:7fe::53
i.root-servers.net.   3600000 IN  A       192.36.148.17
j.root-servers.net.   3600000 IN  AAAA    2001:503:c27::2:30
j.root-servers.net.   3600000 IN  A       192.58.128.30
k.root-servers.net.   3600000 IN  AAAA    2001:7fd::1
k.root-servers.net.   3600000 IN  A       193.0.14.129
l.root-servers.net.   3600000 IN  AAAA    2001:500:9f::42
l.root-servers.net.   3600000 IN  A       199.7.83.42
m.root-servers.net.   3600000 IN  AAAA    2001:dc3::35
m.root-servers.net.   3600000 IN  A       202.12.27.33
root-servers.net.     3600000 IN  ZONEMD  2018091100 1 1 (
                      f1ca0ccd91bd5573d9f431c00ee0101b2545c97602be0a97
                      8a3b11dbfc1c776d5b3e86ae3d973d6b5349ba7f04340f79 )
"#;

// ---------------------------------------------------------------------------
// A reader for the master-file text of the examples: only the syntax and
// the types they use (hickory's parser has no ZONEMD, RRSIG, DNSKEY or
// NSEC).
// ---------------------------------------------------------------------------

/// A token of a record line: a bare word, or a quoted string's bytes.
#[derive(Debug)]
enum Token {
    Word(String),
    Quoted(Vec<u8>),
}

impl Token {
    fn word(&self) -> &str {
        match self {
            Token::Word(w) => w,
            Token::Quoted(_) => panic!("expected a word, found a quoted string"),
        }
    }
}

/// Joins parenthesized continuations into one line each.
fn logical_lines(text: &str) -> Vec<String> {
    let (mut lines, mut line) = (Vec::new(), String::new());
    let (mut depth, mut quoted, mut escaped) = (0, false, false);
    for c in text.chars() {
        if quoted {
            line.push(c);
            match (escaped, c) {
                (false, '\\') => escaped = true,
                (false, '"') => quoted = false,
                _ => escaped = false,
            }
            continue;
        }
        match c {
            '"' => {
                quoted = true;
                line.push(c);
            }
            '(' => {
                depth += 1;
                line.push(' ');
            }
            ')' => {
                depth -= 1;
                line.push(' ');
            }
            '\n' if depth == 0 => lines.push(std::mem::take(&mut line)),
            '\n' => line.push(' '),
            _ => line.push(c),
        }
    }
    lines.push(line);
    lines.into_iter().filter(|l| !l.trim().is_empty()).collect()
}

fn tokens(line: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut bytes = Vec::new();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => {
                        let next = chars.next().expect("escape at end of string");
                        bytes.push(next as u8);
                    }
                    _ => bytes.push(c as u8),
                }
            }
            out.push(Token::Quoted(bytes));
        } else {
            let mut word = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
            out.push(Token::Word(word));
        }
    }
    out
}

/// An absolute name in wire form, case kept.
fn name_wire(name: &str, origin: &str) -> Vec<u8> {
    let full = if name == "@" {
        origin.to_string()
    } else if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.{origin}")
    };
    let mut out = Vec::new();
    for label in full
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

fn type_code(mnemonic: &str) -> u16 {
    match mnemonic {
        "A" => 1,
        "NS" => 2,
        "SOA" => 6,
        "PTR" => 12,
        "MX" => 15,
        "TXT" => 16,
        "AAAA" => 28,
        "NAPTR" => 35,
        "RRSIG" => 46,
        "NSEC" => 47,
        "DNSKEY" => 48,
        "ZONEMD" => 63,
        other => panic!("type {other} not known to the test reader"),
    }
}

/// Seconds since 1970 of a YYYYMMDDHHmmSS time (RFC 4034 section 3.2).
fn rrsig_time(s: &str) -> u32 {
    let n = |a: usize, b: usize| s[a..b].parse::<i64>().expect("digits");
    let (y, m, d) = (n(0, 4), n(4, 6), n(6, 8));
    // Days from civil (H. Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (days * 86_400 + n(8, 10) * 3600 + n(10, 12) * 60 + n(12, 14)) as u32
}

fn type_bitmap(types: &[u16]) -> Vec<u8> {
    let mut windows: std::collections::BTreeMap<u8, Vec<u8>> = Default::default();
    for &t in types {
        let bits = windows.entry((t >> 8) as u8).or_default();
        let low = (t & 0xff) as usize;
        if bits.len() <= low / 8 {
            bits.resize(low / 8 + 1, 0);
        }
        bits[low / 8] |= 0x80 >> (low % 8);
    }
    let mut out = Vec::new();
    for (window, bits) in windows {
        out.push(window);
        out.push(bits.len() as u8);
        out.extend(bits);
    }
    out
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn rdata(rtype: &str, f: &[Token], origin: &str) -> Vec<u8> {
    use base64::Engine as _;
    let rest = |from: usize| -> String { f[from..].iter().map(Token::word).collect() };
    let b64 = |from: usize| {
        base64::engine::general_purpose::STANDARD
            .decode(rest(from))
            .expect("base64")
    };
    let u16_ = |i: usize| f[i].word().parse::<u16>().expect("u16").to_be_bytes();
    let u32_ = |i: usize| f[i].word().parse::<u32>().expect("u32").to_be_bytes();
    let mut out = Vec::new();
    match rtype {
        "A" => out.extend(f[0].word().parse::<std::net::Ipv4Addr>().unwrap().octets()),
        "AAAA" => out.extend(f[0].word().parse::<std::net::Ipv6Addr>().unwrap().octets()),
        "NS" | "PTR" => out.extend(name_wire(f[0].word(), origin)),
        "MX" => {
            out.extend(u16_(0));
            out.extend(name_wire(f[1].word(), origin));
        }
        "SOA" => {
            out.extend(name_wire(f[0].word(), origin));
            out.extend(name_wire(f[1].word(), origin));
            for i in 2..7 {
                out.extend(u32_(i));
            }
        }
        "TXT" => {
            for t in f {
                let Token::Quoted(s) = t else {
                    panic!("TXT takes quoted strings")
                };
                out.push(s.len() as u8);
                out.extend(s);
            }
        }
        "NAPTR" => {
            out.extend(u16_(0));
            out.extend(u16_(1));
            for t in &f[2..5] {
                let Token::Quoted(s) = t else {
                    panic!("NAPTR strings are quoted")
                };
                out.push(s.len() as u8);
                out.extend(s);
            }
            out.extend(name_wire(f[5].word(), origin));
        }
        "ZONEMD" => {
            out.extend(u32_(0));
            out.push(f[1].word().parse().unwrap());
            out.push(f[2].word().parse().unwrap());
            out.extend(unhex(&rest(3)));
        }
        "DNSKEY" => {
            out.extend(u16_(0));
            out.push(f[1].word().parse().unwrap());
            out.push(f[2].word().parse().unwrap());
            out.extend(b64(3));
        }
        "RRSIG" => {
            out.extend(type_code(f[0].word()).to_be_bytes());
            out.push(f[1].word().parse().unwrap());
            out.push(f[2].word().parse().unwrap());
            out.extend(u32_(3));
            out.extend(rrsig_time(f[4].word()).to_be_bytes());
            out.extend(rrsig_time(f[5].word()).to_be_bytes());
            out.extend(u16_(6));
            out.extend(name_wire(f[7].word(), origin));
            out.extend(b64(8));
        }
        "NSEC" => {
            out.extend(name_wire(f[0].word(), origin));
            let types: Vec<u16> = f[1..].iter().map(|t| type_code(t.word())).collect();
            out.extend(type_bitmap(&types));
        }
        other => panic!("type {other} not known to the test reader"),
    }
    out
}

/// The records of an example zone, owner names lowercased as the store
/// keeps them, RDATA as written (case kept).
fn zone(text: &str, origin: &str) -> Vec<Rr> {
    let mut records = Vec::new();
    let mut owner = String::new();
    for line in logical_lines(text) {
        let mut f = tokens(&line);
        if !line.starts_with(char::is_whitespace) {
            let name = f.remove(0);
            let wire = name_wire(name.word(), origin);
            owner = wire::to_presentation(&wire).to_ascii_lowercase();
        }
        let ttl: u32 = f.remove(0).word().parse().expect("TTL");
        assert_eq!(f.remove(0).word(), "IN");
        let rtype = f.remove(0);
        records.push(Rr {
            name: owner.clone(),
            rtype: type_code(rtype.word()),
            class: 1,
            ttl,
            rdata: rdata(rtype.word(), &f, origin),
        });
    }
    records
}

fn zonemd_digest_of(records: &[Rr], owner: &str, algorithm: u8) -> Vec<u8> {
    records
        .iter()
        .filter(|r| r.rtype == ZONEMD && r.name == owner)
        .map(|r| ZonemdRdata::parse(&r.rdata).unwrap())
        .find(|z| z.scheme == 1 && z.hash_algorithm == algorithm)
        .unwrap()
        .digest
        .to_vec()
}

fn verified(serial: u32, algorithm: HashAlgorithm) -> Result<ZonemdStatus, ZonemdError> {
    Ok(ZonemdStatus::Verified { serial, algorithm })
}

// ---------------------------------------------------------------------------
// RFC 8976 Appendix A
// ---------------------------------------------------------------------------

#[test]
fn rfc8976_a1_simple_zone_digest_and_verification() {
    let z = zone(SIMPLE, "example.");
    assert_eq!(z.len(), 6);
    let want = zonemd_digest_of(&z, "example.", 1);
    assert_eq!(
        zone_digest("example.", &z, HashAlgorithm::Sha384).unwrap(),
        want
    );
    assert_eq!(
        verify("example.", &z),
        verified(2018031900, HashAlgorithm::Sha384)
    );
}

#[test]
fn rfc8976_a2_complex_zone_digest_and_verification() {
    let z = zone(COMPLEX, "example.");
    let want = zonemd_digest_of(&z, "example.", 1);
    assert_eq!(
        hex(&want),
        "a3b69bad980a3504e1cffcb0fd6397f93848071c93151f552ae2f6b1711d4bd2\
         d8b39808226d7b9db71e34b72077f8fe"
    );
    assert_eq!(
        zone_digest("example.", &z, HashAlgorithm::Sha384).unwrap(),
        want
    );
    assert_eq!(
        verify("example.", &z),
        verified(2018031900, HashAlgorithm::Sha384)
    );
}

#[test]
fn rfc8976_a2_what_the_complex_zone_shows() {
    let z = zone(COMPLEX, "example.");
    let digest = |records: &[Rr]| zone_digest("example.", records, HashAlgorithm::Sha384).unwrap();
    let full = digest(&z);
    // Out-of-zone data is excluded: dropping it changes nothing.
    let in_zone: Vec<Rr> = z
        .iter()
        .filter(|r| r.name != "foo.test.")
        .cloned()
        .collect();
    assert_eq!(in_zone.len(), z.len() - 1);
    assert_eq!(digest(&in_zone), full);
    // A duplicate is digested once: dropping one copy changes nothing.
    let dup = z
        .iter()
        .position(|r| r.name == "duplicate.example.")
        .unwrap();
    let mut once = z.clone();
    once.remove(dup);
    assert_eq!(digest(&once), full);
    // Occluded data and the non-apex ZONEMD are digested.
    for owner in ["occluded.sub.example.", "non-apex.example."] {
        let without: Vec<Rr> = z.iter().filter(|r| r.name != owner).cloned().collect();
        assert_ne!(digest(&without), full, "{owner} must be digested");
    }
    // Names in MX RDATA are digested lowercased: MAIL1 vs mail1 is the
    // same digest.
    let lowered: Vec<Rr> = z
        .iter()
        .map(|r| {
            let mut r = r.clone();
            if r.rtype == 15 {
                r.rdata = canonical_rdata(15, &r.rdata).into_owned();
            }
            r
        })
        .collect();
    assert_ne!(lowered, z);
    assert_eq!(digest(&lowered), full);
    // Record order does not matter.
    let mut reversed = z.clone();
    reversed.reverse();
    assert_eq!(digest(&reversed), full);
}

#[test]
fn rfc8976_a3_multiple_digests_each_verify_and_private_ones_are_ignored() {
    let z = zone(MULTIPLE, "example.");
    assert_eq!(
        zone_digest("example.", &z, HashAlgorithm::Sha384).unwrap(),
        zonemd_digest_of(&z, "example.", 1)
    );
    assert_eq!(
        zone_digest("example.", &z, HashAlgorithm::Sha512).unwrap(),
        zonemd_digest_of(&z, "example.", 2)
    );
    assert_eq!(
        verify("example.", &z),
        verified(2018031900, HashAlgorithm::Sha384)
    );
    // With the SHA384 record broken, the SHA512 one still verifies the
    // zone: one match is enough (RFC 8976 section 4).
    let mut broken = z.clone();
    for r in &mut broken {
        if r.rtype == ZONEMD && r.rdata.get(4..6) == Some(&[1, 1][..]) {
            *r.rdata.last_mut().unwrap() ^= 1;
        }
    }
    assert_eq!(
        verify("example.", &broken),
        verified(2018031900, HashAlgorithm::Sha512)
    );
}

#[test]
fn rfc8976_a4_signed_uri_arpa_verifies_without_its_zonemd_signature() {
    let z = zone(URI_ARPA, "uri.arpa.");
    assert!(z.iter().any(|r| r.rtype == 46 && r.rdata[..2] == [0, 63]));
    assert_eq!(
        zone_digest("uri.arpa.", &z, HashAlgorithm::Sha384).unwrap(),
        zonemd_digest_of(&z, "uri.arpa.", 1)
    );
    assert_eq!(
        verify("uri.arpa.", &z),
        verified(2018100702, HashAlgorithm::Sha384)
    );
}

#[test]
fn rfc8976_a5_root_servers_net_verifies() {
    let z = zone(ROOT_SERVERS, "root-servers.net.");
    assert_eq!(
        hex(&zone_digest("root-servers.net.", &z, HashAlgorithm::Sha384).unwrap()),
        "f1ca0ccd91bd5573d9f431c00ee0101b2545c97602be0a97\
         8a3b11dbfc1c776d5b3e86ae3d973d6b5349ba7f04340f79"
    );
    assert_eq!(
        verify("root-servers.net.", &z),
        verified(2018091100, HashAlgorithm::Sha384)
    );
}

// ---------------------------------------------------------------------------
// RFC 8976 section 4: verification
// ---------------------------------------------------------------------------

#[test]
fn an_altered_digest_fails_with_both_digests_named() {
    let mut z = zone(SIMPLE, "example.");
    let zm = z.iter_mut().find(|r| r.rtype == ZONEMD).unwrap();
    zm.rdata[6] ^= 0xff;
    let err = verify("example.", &z).unwrap_err();
    let ZonemdError::Failed { serial, failures } = &err else {
        panic!("want Failed, got {err:?}");
    };
    assert_eq!(*serial, 2018031900);
    assert!(matches!(
        &failures[..],
        [ZonemdFailure::DigestMismatch { algorithm: HashAlgorithm::Sha384, published, computed }]
            if published.starts_with("3980") && computed.starts_with("c68090d9")
    ));
    let text = err.to_string();
    assert!(text.contains("SHA384 digest mismatch"), "{text}");
    assert!(text.contains("3980"), "{text}");
}

#[test]
fn altered_zone_data_fails() {
    let mut z = zone(SIMPLE, "example.");
    let a = z.iter_mut().find(|r| r.rtype == 1).unwrap();
    a.rdata[3] = 64;
    assert!(matches!(
        verify("example.", &z),
        Err(ZonemdError::Failed { .. })
    ));
    // So does a changed TTL: the TTL is digested.
    let mut z = zone(SIMPLE, "example.");
    z.iter_mut().find(|r| r.rtype == 1).unwrap().ttl += 1;
    assert!(verify("example.", &z).is_err());
    // And a record more.
    let mut z = zone(SIMPLE, "example.");
    z.push(Rr {
        name: "extra.example.".into(),
        rtype: 1,
        class: 1,
        ttl: 60,
        rdata: vec![192, 0, 2, 1],
    });
    assert!(verify("example.", &z).is_err());
}

#[test]
fn a_zonemd_for_another_serial_does_not_verify() {
    let mut z = zone(SIMPLE, "example.");
    let zm = z.iter_mut().find(|r| r.rtype == ZONEMD).unwrap();
    zm.rdata[..4].copy_from_slice(&2018031901u32.to_be_bytes());
    assert_eq!(
        verify("example.", &z),
        Err(ZonemdError::Failed {
            serial: 2018031900,
            failures: vec![ZonemdFailure::SerialMismatch {
                algorithm: HashAlgorithm::Sha384,
                zonemd_serial: 2018031901
            }]
        })
    );
}

#[test]
fn a_zone_without_zonemd_has_nothing_to_verify() {
    let z: Vec<Rr> = zone(SIMPLE, "example.")
        .into_iter()
        .filter(|r| r.rtype != ZONEMD)
        .collect();
    assert_eq!(verify("example.", &z), Ok(ZonemdStatus::Absent));
    // A ZONEMD below the apex is data, not the zone's digest.
    let z = zone(COMPLEX, "example.")
        .into_iter()
        .filter(|r| !(r.rtype == ZONEMD && r.name == "example."))
        .collect::<Vec<_>>();
    assert!(z.iter().any(|r| r.rtype == ZONEMD));
    assert_eq!(verify("example.", &z), Ok(ZonemdStatus::Absent));
}

#[test]
fn only_unsupported_zonemd_records_are_ignored() {
    let z: Vec<Rr> = zone(MULTIPLE, "example.")
        .into_iter()
        .filter(|r| {
            !(r.rtype == ZONEMD
                && r.rdata
                    .get(4..6)
                    .is_some_and(|s| s == [1, 1] || s == [1, 2]))
        })
        .collect();
    assert_eq!(
        z.iter().filter(|r| r.rtype == ZONEMD).count(),
        2,
        "the private scheme and the private hash algorithm are left"
    );
    assert_eq!(
        verify("example.", &z),
        Ok(ZonemdStatus::Unsupported { records: 2 })
    );
}

#[test]
fn two_records_of_one_scheme_and_algorithm_make_the_rrset_invalid() {
    let mut z = zone(SIMPLE, "example.");
    let mut second = z.iter().find(|r| r.rtype == ZONEMD).unwrap().clone();
    second.rdata[6] ^= 1;
    z.push(second);
    assert_eq!(
        verify("example.", &z),
        Err(ZonemdError::Duplicate {
            scheme: 1,
            algorithm: HashAlgorithm::Sha384
        })
    );
}

#[test]
fn a_digest_shorter_than_12_octets_does_not_verify() {
    let mut z = zone(SIMPLE, "example.");
    let zm = z.iter_mut().find(|r| r.rtype == ZONEMD).unwrap();
    zm.rdata.truncate(6 + 11);
    assert!(matches!(
        verify("example.", &z),
        Err(ZonemdError::Failed { failures, .. })
            if failures == [ZonemdFailure::DigestTooShort { algorithm: HashAlgorithm::Sha384, len: 11 }]
    ));
    zm_truncate_to_header(&mut z);
    assert!(matches!(
        verify("example.", &z),
        Err(ZonemdError::Malformed { len: 5 })
    ));
}

fn zm_truncate_to_header(z: &mut [Rr]) {
    let zm = z.iter_mut().find(|r| r.rtype == ZONEMD).unwrap();
    zm.rdata.truncate(5);
}

#[test]
fn the_apex_zonemd_signature_is_not_digested_but_other_signatures_are() {
    let z = zone(URI_ARPA, "uri.arpa.");
    let digest = |records: &[Rr]| zone_digest("uri.arpa.", records, HashAlgorithm::Sha384).unwrap();
    let full = digest(&z);
    let without_zonemd_sig: Vec<Rr> = z
        .iter()
        .filter(|r| !(r.rtype == 46 && r.rdata[..2] == [0, 63]))
        .cloned()
        .collect();
    assert_eq!(digest(&without_zonemd_sig), full);
    let without_soa_sig: Vec<Rr> = z
        .iter()
        .filter(|r| !(r.rtype == 46 && r.rdata[..2] == [0, 6]))
        .cloned()
        .collect();
    assert_ne!(digest(&without_soa_sig), full);
}

#[test]
fn a_zone_without_soa_cannot_be_verified() {
    let z: Vec<Rr> = zone(SIMPLE, "example.")
        .into_iter()
        .filter(|r| r.rtype != 6)
        .collect();
    assert_eq!(verify("example.", &z), Err(ZonemdError::NoSoa));
}
