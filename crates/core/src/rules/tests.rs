use std::net::IpAddr;

use super::*;

/// Whether `rule` matches each (url, expected) with the given request decoration.
fn check(rule: &str, cases: &[(&str, bool)], decorate: impl Fn(SimpleRequest) -> SimpleRequest) {
    let r = Rule::compile(rule).unwrap_or_else(|e| panic!("{rule}: {e}"));
    for (url, want) in cases {
        let req = decorate(SimpleRequest::get(url));
        assert_eq!(r.matches(&Prepared::new(&req)), *want, "{rule} on {url}");
    }
}

fn err(rule: &str) -> RuleError {
    match Rule::compile(rule) {
        Err(e) => e,
        Ok(_) => panic!("{rule} should not compile"),
    }
}

#[test]
fn invalid_rules() {
    for rule in [
        "",
        "   ",
        "Host(`a`",
        "Host(`a`))",
        "Host(`a`) &&",
        "Host(`a`) & Path(`/`)",
        "Host('a')",
        "Host(a)",
        "Hots(`a`)",
        "Host()",
        "Host(``)",
        "Host(`🦭.com`)",
        "Host(`/`)",
        "Host(`a`, `b`)",
        "HostRegexp(`(a`)",
        "HostRegexp(`🦭`)",
        "Path(`css`)",
        "Path(`/a`, `/b`)",
        "PathPrefix(`css`)",
        "PathRegexp(`/(css`)",
        "Method()",
        "Method(``)",
        "Method(`GET`, `POST`)",
        "Header(`X`)",
        "Header(`X`, ``)",
        "HeaderRegexp(`X`, `(`)",
        "Query()",
        "Query(`a`, `b`, `c`)",
        "Query(`a`, ``)",
        "QueryRegexp(`a`, `(`)",
        "ClientIP(`1`)",
        "ClientIP()",
        "ClientIP(``)",
        "ClientIP(`10.0.0.0/33`)",
        "ClientIP(`127.0.0.1`, `10.0.0.0/8`)",
        "Host(\"a\\q\")",
        "Host(\"a)",
        "!",
        "()",
        "Host(`a`) Path(`/`)",
    ] {
        assert!(Rule::compile(rule).is_err(), "{rule:?} should not compile");
    }
}

#[test]
fn error_spans_point_at_the_problem() {
    let rule = "Host(`a`) && Pth(`/`)";
    let e = err(rule);
    assert_eq!(&rule[e.span.clone()], "Pth");
    assert_eq!(e.caret(rule), "Host(`a`) && Pth(`/`)\n             ^^^");
    let rule = "Host(`a`) && PathPrefix(`css`)";
    assert_eq!(&rule[err(rule).span], "`css`");
    let rule = "Host(`a`) & Path(`/`)";
    assert_eq!(err(rule).span, 10..11);
    let rule = "Host(`a`) && (Path(`/`)";
    assert_eq!(err(rule).span, rule.len()..rule.len());
}

#[test]
fn error_spans_never_point_past_the_rule() {
    // Inputs found by fuzzing, and their neighbours: escapes cut short by the end of the rule.
    for rule in [
        ")B(P!!!!!\"\u{1}\u{0}\u{0}\\62",
        "Host(\"\\62",
        "Host(\"\\x4",
        "Host(\"\\u12",
        "Host(\"\\U0001F60",
        "Host(\"\\",
    ] {
        let e = err(rule);
        assert!(
            e.span.start <= e.span.end && e.span.end <= rule.len(),
            "{rule:?}: {:?}",
            e.span
        );
        let _ = e.caret(rule);
    }
}

#[test]
fn matcher_name_casings() {
    for rule in [
        "PathPrefix(`/`)",
        "pathprefix(`/`)",
        "PATHPREFIX(`/`)",
        "Pathprefix(`/`)",
        "hostregexp(`.`)",
        "Clientip(`::1`)",
        "CLIENTIP(`::1`)",
    ] {
        assert!(Rule::compile(rule).is_ok(), "{rule}");
    }
    for rule in ["pathPrefix(`/`)", "PathPREFIX(`/`)", "hostRegexp(`.`)"] {
        assert!(Rule::compile(rule).is_err(), "{rule}");
    }
}

#[test]
fn host() {
    let plain = |u| SimpleRequest::get(u);
    let _ = plain;
    check(
        "Host(`example.com`)",
        &[
            ("https://example.com", true),
            ("https://example.com:8080", true),
            ("https://example.com/path", true),
            ("https://EXAMPLE.COM/path", true),
            ("https://example.org", false),
            ("https://example.com.", true),
            ("https://example.com./path", true),
            ("https://example.org.", false),
            ("https://sub.example.com", false),
        ],
        |r| r,
    );
    check(
        "Host(`example.com.`)",
        &[
            ("https://example.com", true),
            ("https://example.com.", true),
            ("https://example.org.", false),
        ],
        |r| r,
    );
    check(
        "Host(`EXAMPLE.COM`)",
        &[
            ("https://example.com", true),
            ("https://example.org", false),
        ],
        |r| r,
    );
    check(
        "Host(`xn--9t9h.com`)",
        &[("https://xn--9t9h.com", true), ("https://🦭.com", false)],
        |r| r,
    );
    check(
        "Host(`*.example.com`)",
        &[
            ("https://a.example.com", true),
            ("https://A.Example.com:443", true),
            ("https://a.b.example.com", false),
            ("https://example.com", false),
            ("https://a.example.com.", true),
        ],
        |r| r,
    );
    check(
        "Host(`**.example.com`)",
        &[
            ("https://a.example.com", true),
            ("https://a.b.example.com", true),
            ("https://example.com", false),
            ("https://aexample.com", false),
        ],
        |r| r,
    );
    check(
        "Host(`[::1]`)",
        &[("http://[::1]:8080/", true), ("http://[::2]/", false)],
        |r| r,
    );
    // Traefik v3.7: `*` alone matches every host, and a request without one.
    check(
        "Host(`*`)",
        &[
            ("https://example.com", true),
            ("http://127.0.0.1:8080/x", true),
            ("http://[::1]/", true),
        ],
        |r| r,
    );
    check("Host(`*`)", &[("http://h/", true)], |r| {
        r.header("Host", "")
    });
    assert_eq!(Rule::compile("Host(`*`)").unwrap().default_priority(), 9);
    check("!Host(`*`)", &[("https://example.com", false)], |r| r);
    // The Host header, not the URL, is the request host.
    check(
        "Host(`api.example.com`)",
        &[("http://127.0.0.1:8080/", true)],
        |r| r.header("Host", "api.example.com:8080"),
    );
}

#[test]
fn host_regexp() {
    check(
        "HostRegexp(`^[a-zA-Z-]+\\.com$`)",
        &[
            ("https://example.com", true),
            ("https://example.com:8080", true),
            ("https://example.org", false),
        ],
        |r| r,
    );
    check(
        "HostRegexp(`^[A-Z]+\\.com$`)",
        &[
            ("https://example.com", false),
            ("https://EXAMPLE.com", false),
        ],
        |r| r,
    );
    check(
        "HostRegexp(`{domain:[a-zA-Z-]+\\.com}`)",
        &[("https://example.com", false)],
        |r| r,
    );
    check(
        "HostRegexp(`example`)",
        &[("https://www.example.org", true)],
        |r| r,
    ); // unanchored
}

#[test]
fn method() {
    let r = Rule::compile("Method(`get`)").unwrap();
    for (m, want) in [("GET", true), ("POST", false), ("get", false)] {
        let req = SimpleRequest::parse(m, "https://example.com").unwrap();
        assert_eq!(r.matches(&Prepared::new(&req)), want, "{m}");
    }
}

#[test]
fn path_family() {
    check(
        "Path(`/css`)",
        &[
            ("https://example.com", false),
            ("https://example.com/html", false),
            ("https://example.org/css", true),
            ("https://example.com/css/", false),
            ("https://example.com/css/main.css", false),
            ("https://example.com/css?x=1", true),
        ],
        |r| r,
    );
    check(
        "PathPrefix(`/css`)",
        &[
            ("https://example.com/css", true),
            ("https://example.com/css/", true),
            ("https://example.com/cssx", true),
            ("https://example.com/CSS", false),
            ("https://example.com/", false),
        ],
        |r| r,
    );
    check(
        "PathRegexp(`^/(css|js)`)",
        &[
            ("https://example.com/css/main.css", true),
            ("https://example.com/CSS", false),
            ("https://example.com/js", true),
            ("https://example.com/html", false),
        ],
        |r| r,
    );
    check(
        "PathRegexp(\"/{path:(css|js)}\")",
        &[
            ("https://example.com/{path:css}", true),
            ("https://example.com/%7Bpath:js%7D/", true),
            ("https://example.org/css", false),
        ],
        |r| r,
    );
    check(
        "PathRegexp(`css`)",
        &[("https://example.com/a/css/b", true)],
        |r| r,
    ); // unanchored
       // Unreserved characters are decoded, reserved ones are not.
    check(
        "PathPrefix(`/foo bar`)",
        &[
            ("https://example.com/foo%20bar", true),
            ("https://example.com/foo+bar", false),
        ],
        |r| r,
    );
    check(
        "Path(`/a/b`)",
        &[
            ("https://example.com/a%2Fb", false),
            ("https://example.com/a/b", true),
        ],
        |r| r,
    );
    check(
        "Path(`/a%2Fb`)",
        &[
            ("https://example.com/a%2Fb", true),
            ("https://example.com/a%2fb", true),
        ],
        |r| r,
    );
    check(
        "Path(`/~user`)",
        &[("https://example.com/%7Euser", true)],
        |r| r,
    );
}

#[test]
fn headers() {
    check(
        "Header(`X-RiksTV-Beta`, `true`)",
        &[("https://x", true)],
        |r| r.header("x-rikstv-beta", "true"),
    );
    check(
        "Header(`X-RiksTV-Beta`, `true`)",
        &[("https://x", false)],
        |r| r.header("X-RiksTV-Beta", "TRUE"),
    );
    check(
        "Header(`X-RiksTV-Beta`, `true`)",
        &[("https://x", false)],
        |r| r,
    );
    // Any of several header lines matches; values are not split on commas.
    check("Header(`X-A`, `2`)", &[("https://x", true)], |r| {
        r.header("x-a", "1").header("X-A", "2")
    });
    check("Header(`X-A`, `2`)", &[("https://x", false)], |r| {
        r.header("x-a", "1, 2")
    });
    check(
        "HeaderRegexp(`Content-Type`, `^application/(json|xml)`)",
        &[("https://x", true)],
        |r| r.header("content-type", "application/json; charset=utf-8"),
    );
    check(
        "HeaderRegexp(`Content-Type`, `json`)",
        &[("https://x", true)],
        |r| r.header("content-type", "text/json"),
    ); // unanchored
    check(
        "HeaderRegexp(`Content-Type`, `^json`)",
        &[("https://x", false)],
        |r| r.header("content-type", "text/json"),
    );
}

#[test]
fn query() {
    check(
        "Query(`mobile`, `true`)",
        &[
            ("https://x/?mobile=true", true),
            ("https://x/?mobile=false", false),
            ("https://x/?mobile=false&mobile=true", true),
            ("https://x/?Mobile=true", false),
            ("https://x/", false),
            ("https://x/?mobile=tr%75e", true),
        ],
        |r| r,
    );
    // One argument: the parameter is present with an empty value.
    check(
        "Query(`mobile`)",
        &[
            ("https://x/?mobile", true),
            ("https://x/?mobile=", true),
            ("https://x/?mobile=1", false),
            ("https://x/", false),
        ],
        |r| r,
    );
    check(
        "QueryRegexp(`mobile`, `^(true|yes)$`)",
        &[
            ("https://x/?mobile=yes", true),
            ("https://x/?mobile=no", false),
        ],
        |r| r,
    );
    check(
        "QueryRegexp(`mobile`)",
        &[("https://x/?mobile", true), ("https://x/?mobile=1", false)],
        |r| r,
    );
    check(
        "Query(`q`, `a b`)",
        &[("https://x/?q=a+b", true), ("https://x/?q=a%20b", true)],
        |r| r,
    );
}

#[test]
fn client_ip() {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let cases = [
        ("ClientIP(`127.0.0.1`)", "127.0.0.1", true),
        ("ClientIP(`127.0.0.1`)", "192.168.1.1", false),
        ("ClientIP(`192.168.1.0/24`)", "192.168.1.100", true),
        ("ClientIP(`192.168.1.0/24`)", "192.168.2.1", false),
        ("ClientIP(`192.168.1.1/24`)", "192.168.1.7", true),
        ("ClientIP(`10.0.0.0/8`)", "::ffff:10.1.2.3", true),
        ("ClientIP(`2001:db8::/32`)", "2001:db8::1", true),
        ("ClientIP(`2001:db8::/32`)", "2001:db9::1", false),
        ("ClientIP(`::1`)", "::1", true),
        ("ClientIP(`0.0.0.0/0`)", "8.8.8.8", true),
        ("ClientIP(`0.0.0.0/0`)", "::1", false),
    ];
    for (rule, client, want) in cases {
        check(rule, &[("https://x", want)], |r| r.client(ip(client)));
    }
    // X-Forwarded-For is never the client address.
    check("ClientIP(`10.0.0.1`)", &[("https://x", false)], |r| {
        r.header("X-Forwarded-For", "10.0.0.1")
    });
}

#[test]
fn operators_and_precedence() {
    // && binds tighter than ||.
    check(
        "Path(`/a`) || Path(`/b`) && Method(`POST`)",
        &[("https://x/a", true), ("https://x/b", false)],
        |r| r,
    );
    check(
        "(Path(`/a`) || Path(`/b`)) && Method(`POST`)",
        &[("https://x/a", false)],
        |r| r,
    );
    check(
        "!Path(`/a`)",
        &[("https://x/a", false), ("https://x/b", true)],
        |r| r,
    );
    check(
        "!(Path(`/a`) || Path(`/b`))",
        &[
            ("https://x/a", false),
            ("https://x/b", false),
            ("https://x/c", true),
        ],
        |r| r,
    );
    check("!!Path(`/a`)", &[("https://x/a", true)], |r| r);
    check(
        "Host(\"example.com\") && PathPrefix(\"/\\x61\")",
        &[("https://example.com/abc", true)],
        |r| r,
    );
    check(
        "Host(`example.com`)\n  && PathPrefix(`/a`,)",
        &[("https://example.com/a", true)],
        |r| r,
    );
}

#[test]
fn default_priority_is_length_minus_double_wildcard_stars() {
    assert_eq!(
        Rule::compile("Host(`a.com`)").unwrap().default_priority(),
        13
    );
    assert_eq!(
        Rule::compile("Host(`**.a.com`)")
            .unwrap()
            .default_priority(),
        16 - 2
    );
    assert_eq!(
        Rule::compile("!Host(`**.a.com`)")
            .unwrap()
            .default_priority(),
        17
    );
}

fn table(routers: &[(&str, &str, Option<i64>)]) -> Table<()> {
    Table::new(
        routers
            .iter()
            .map(|(n, r, p)| Router::new(n, Rule::compile(r).unwrap(), *p, ()))
            .collect(),
    )
}

fn winner<'a>(t: &'a Table<()>, req: &SimpleRequest) -> Option<&'a str> {
    t.find(req).map(|r| r.name.as_str())
}

#[test]
fn longest_rule_wins_unless_priority_is_set() {
    let t = table(&[
        ("main", "Host(`api.example.com`)", None),
        (
            "beta",
            "Host(`api.example.com`) && Header(`X-RiksTV-Beta`, `true`)",
            None,
        ),
    ]);
    let req = SimpleRequest::get("http://api.example.com/");
    assert_eq!(winner(&t, &req), Some("main"));
    assert_eq!(
        winner(&t, &req.clone().header("x-rikstv-beta", "true")),
        Some("beta")
    );
    assert_eq!(
        winner(&t, &req.clone().header("x-rikstv-beta", "false")),
        Some("main")
    );
    assert_eq!(
        winner(&t, &SimpleRequest::get("http://other.example.com/")),
        None
    );

    let t = table(&[
        ("main", "Host(`api.example.com`)", Some(100)),
        (
            "beta",
            "Host(`api.example.com`) && Header(`X-RiksTV-Beta`, `true`)",
            None,
        ),
    ]);
    assert_eq!(
        winner(&t, &req.clone().header("x-rikstv-beta", "true")),
        Some("main")
    );
}

#[test]
fn ties_break_by_name_whatever_the_order() {
    for order in [[0, 1], [1, 0]] {
        let all = [
            ("b-router", "PathPrefix(`/x`)"),
            ("a-router", "PathPrefix(`/y`)"),
        ];
        let routers: Vec<_> = order
            .iter()
            .map(|&i| {
                Router::new(
                    all[i].0,
                    Rule::compile("PathPrefix(`/`)").unwrap(),
                    None,
                    (),
                )
            })
            .collect();
        let t = Table::new(routers);
        assert_eq!(
            winner(&t, &SimpleRequest::get("http://h/")),
            Some("a-router")
        );
    }
}

#[test]
fn index_never_hides_a_router() {
    let t = table(&[
        ("exact", "Host(`a.example.com`) && Path(`/exact`)", None),
        ("one", "Host(`*.example.com`) && Path(`/one`)", None),
        ("any", "Host(`**.example.com`) && Path(`/any`)", None),
        ("either", "Host(`x.org`) || Host(`a.example.com`)", Some(1)),
        ("negated", "!Host(`zzz.org`) && Path(`/neg`)", None),
        ("regexp", "HostRegexp(`^a\\.`) && Path(`/re`)", None),
        ("free", "Path(`/free`)", None),
        ("dotted", "Host(`a.example.com.`) && Path(`/dot`)", None),
    ]);
    let at =
        |host: &str, path: &str| winner(&t, &SimpleRequest::get(&format!("http://{host}{path}")));
    assert_eq!(at("a.example.com", "/exact"), Some("exact"));
    assert_eq!(at("A.EXAMPLE.COM.", "/exact"), Some("exact"));
    assert_eq!(at("a.example.com", "/one"), Some("one"));
    assert_eq!(at("b.a.example.com", "/one"), None);
    assert_eq!(at("b.a.example.com", "/any"), Some("any"));
    assert_eq!(at("a.example.com", "/any"), Some("any"));
    assert_eq!(at("x.org", "/"), Some("either"));
    assert_eq!(at("a.example.com", "/"), Some("either"));
    assert_eq!(at("q.net", "/neg"), Some("negated"));
    assert_eq!(at("a.net", "/re"), Some("regexp"));
    assert_eq!(at("anything", "/free"), Some("free"));
    assert_eq!(at("a.example.com", "/dot"), Some("dotted"));
    assert_eq!(at("a.example.com.", "/dot"), Some("dotted"));
}

#[test]
fn index_agrees_with_a_linear_scan() {
    // Every (host, path) against a table of mixed routers: the indexed lookup must pick exactly
    // what evaluating all routers in precedence order picks.
    let specs = [
        ("r1", "Host(`a.com`)", None),
        ("r2", "Host(`a.com`) && PathPrefix(`/x`)", None),
        ("r3", "Host(`*.a.com`)", None),
        ("r4", "Host(`**.a.com`) && PathPrefix(`/x`)", None),
        ("r5", "PathPrefix(`/x/y`)", None),
        ("r6", "Host(`b.a.com`) || Host(`c.com`)", Some(5)),
        ("r7", "!Host(`a.com`) && PathPrefix(`/`)", Some(2)),
        ("r8", "HostRegexp(`com$`) && Path(`/z`)", None),
        ("r9", "Host(`a.com.`) && Path(`/d`)", None),
    ];
    let t = table(&specs);
    for host in [
        "a.com",
        "a.com.",
        "b.a.com",
        "c.b.a.com",
        "c.com",
        "d.com",
        "A.COM:81",
        "",
    ] {
        for path in ["/", "/x", "/x/y", "/z", "/d"] {
            let req = SimpleRequest {
                authority: host.into(),
                ..SimpleRequest::get(&format!("http://h{path}"))
            };
            let p = Prepared::new(&req);
            let linear = t
                .routers()
                .iter()
                .find(|r| r.rule.matches(&p))
                .map(|r| r.name.as_str());
            assert_eq!(winner(&t, &req), linear, "{host}{path}");
        }
    }
}

#[test]
fn traefik_v2_placeholders_are_literal_text_in_v3() {
    let h = |v: &'static str| move |r: SimpleRequest| r.header("X-Forwarded-Proto", v);
    let rule = "HeaderRegexp(`X-Forwarded-Proto`, `http{secure:s?}`)";
    check(rule, &[("https://x", false)], h("http"));
    check(rule, &[("https://x", false)], h("https"));
    check(rule, &[("https://x", true)], h("http{secure:}"));
    check(rule, &[("https://x", true)], h("http{secure:s}"));
    check(rule, &[("https://x", false)], h("http{secure:S}"));
    check(
        "QueryRegexp(`q`, `{value:(traefik|nginx)}`)",
        &[
            ("https://x/?q=traefik", false),
            ("https://x/?q={value:traefik}", true),
        ],
        |r| r,
    );
    check(
        "QueryRegexp(`q`, `^.*$`)",
        &[
            ("https://x/?q=TRAEFIK", true),
            ("https://x/?Q=traefik", false),
            ("https://x/?rel=ddg", false),
        ],
        |r| r,
    );
    check(
        "HeaderRegexp(`X-Forwarded-Proto`, `^https?$`)",
        &[("https://x", true)],
        |r| {
            r.header("X-Forwarded-Proto", "ws")
                .header("X-Forwarded-Proto", "https")
        },
    );
}
