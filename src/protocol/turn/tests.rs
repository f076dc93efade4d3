// SPDX-License-Identifier: MPL-2.0

use super::*;

#[test]
fn parse_user_urls() {
    let t = TurnServer::parse("turn://user:pass@127.0.0.1:3478", None, None).unwrap();
    assert_eq!(t.scheme, TurnScheme::Turn);
    assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 3478));
    assert_eq!(
        (t.username.as_str(), t.credential.as_str()),
        ("user", "pass")
    );
    assert_eq!(t.to_webrtcbin_uri(), "turn://user:pass@127.0.0.1:3478");

    let t = TurnServer::parse("turns://a%40b:p%3Aw%2Fd@turn.example.com", None, None).unwrap();
    assert_eq!(t.scheme, TurnScheme::Turns);
    assert_eq!(t.port, 443);
    assert_eq!(
        (t.username.as_str(), t.credential.as_str()),
        ("a@b", "p:w/d")
    );
    assert_eq!(
        t.to_webrtcbin_uri(),
        "turns://a%40b:p%3Aw%2Fd@turn.example.com:443"
    );

    let t = TurnServer::parse("turn:[::1]:3479?transport=tcp", Some("u"), Some("p")).unwrap();
    assert_eq!((t.host.as_str(), t.port, t.tcp), ("[::1]", 3479, true));

    assert_eq!(
        TurnServer::parse("stun:x", None, None),
        Err(TurnParseError::Scheme)
    );
    assert_eq!(
        TurnServer::parse("turn://u:p@", None, None),
        Err(TurnParseError::NoHost)
    );
    assert_eq!(
        TurnServer::parse("turn://u:p@h:99999", None, None),
        Err(TurnParseError::Port)
    );
    assert_eq!(
        TurnServer::parse("turn://h:1", None, None),
        Err(TurnParseError::NoCredentials)
    );
}

#[test]
fn debug_hides_credential() {
    let t = TurnServer::parse("turn://user:s3cret@h:1", None, None).unwrap();
    assert!(!format!("{t:?}").contains("s3cret"));
    assert!(!t.redacted().contains("s3cret"));
    assert!(t.redacted().contains("***:***@"), "{}", t.redacted());
}

#[test]
fn fetched_list() {
    let json = r#"{"servers":[
        {"username":"u1","credential":"c1","urls":["turn:a.example:3478"],"tz":300,"udp":true,"locale":"cae1"},
        {"username":"u2","credential":"c2","urls":"turns:b.example:443","tz":-60,"udp":false},
        {"username":"u3","credential":"c3","urls":["bogus:x"],"tz":0},
        "nonsense"
    ], "extra": 1}"#;
    let l = parse_turn_list(json);
    assert_eq!(l.len(), 2);
    assert_eq!(l[0].server.host, "a.example");
    assert!(l[0].udp);
    assert_eq!(l[1].tz, -60);
    assert!(!l[1].udp);
    assert!(parse_turn_list("not json").is_empty());
    assert!(parse_turn_list("{}").is_empty());
}

#[test]
fn fallback_table_is_complete() {
    let l = fallback_turn_list();
    assert_eq!(l.len(), 10);
    assert_eq!(l.iter().filter(|e| e.udp).count(), 7);
}

#[test]
fn selection_by_timezone() {
    let l = fallback_turn_list();
    // US Eastern (standard time): +300.
    let s = select_turn(&l, 300);
    assert_eq!(s.len(), 3);
    assert_eq!(s[0].locale, "cae1");
    assert_eq!(s[1].locale, "use1");
    assert!(!s[2].udp);
    assert_eq!(s[2].locale, "cae1");
    // Central Europe: -60.
    let s = select_turn(&l, -60);
    let locales: Vec<&str> = s.iter().map(|e| e.locale.as_str()).collect();
    assert_eq!(locales, ["fr1", "de1", "de1"]);
    // Poland-ish offset picks pol1 first.
    assert_eq!(select_turn(&l, -70)[0].locale, "pol1");
    // Wrap-around: +700 (far west) is closer to -60 via the date line? |700-(-60)|=760 → 680.
    let s = select_turn(&l, 700);
    assert_eq!(s[0].locale, "usw2");
    // Across the date line, -720 is 240 minutes from +480 (wrapping), closer than from -60.
    assert_eq!(select_turn(&l, -720)[0].locale, "usw2");
    assert!(select_turn(&[], 0).is_empty());
}
