// SPDX-License-Identifier: MPL-2.0

use super::*;

#[test]
fn rate_limit_drops_and_refills() {
    let t0 = Instant::now();
    let mut hub = Hub::new(
        ServerMode::Official,
        RateLimit {
            per_second: 10.0,
            burst: 5.0,
        },
    );
    hub.connect(1, t0);
    let room = r#"{"request":"joinroom","roomid":"R"}"#;
    let delivered = |a: &[Action]| {
        a.iter()
            .filter(|x| matches!(x, Action::Deliver(..)))
            .count()
    };
    let mut ok = 0;
    let mut logs = 0;
    for _ in 0..20 {
        let a = hub.message(1, room, t0);
        ok += delivered(&a);
        logs += a.iter().filter(|x| matches!(x, Action::Log(_))).count();
    }
    assert_eq!(ok, 5, "only the burst passes");
    assert!(logs >= 1, "drops are logged");
    // Half a second later five more tokens are there.
    let later = t0 + Duration::from_millis(500);
    let passed: usize = (0..10)
        .map(|_| delivered(&hub.message(1, room, later)))
        .sum();
    assert_eq!(passed, 5);
}

#[test]
fn state_is_cleaned_when_a_socket_closes() {
    let t0 = Instant::now();
    let mut hub = Hub::new(ServerMode::Official, RateLimit::default());
    hub.connect(1, t0);
    hub.connect(2, t0);
    hub.message(1, r#"{"request":"seed","streamID":"s"}"#, t0);
    hub.message(2, r#"{"request":"play","streamID":"gone"}"#, t0);
    hub.disconnect(1);
    hub.disconnect(2);
    assert_eq!(hub.connections(), 0);
    assert!(hub.streams.is_empty() && hub.waiting.is_empty());
    // The stream ID is free for a new publisher.
    hub.connect(3, t0);
    let a = hub.message(3, r#"{"request":"seed","streamID":"s"}"#, t0);
    assert!(a.is_empty(), "{a:?}");
}

#[test]
fn an_early_play_is_remembered_only_outside_rooms() {
    let t0 = Instant::now();
    let mut hub = Hub::new(ServerMode::Official, RateLimit::default());
    let offers_to = |a: &[Action], to: ConnId| {
        a.iter()
            .filter(|x| matches!(x, Action::Deliver(c, t) if *c == to && t.contains("offerSDP")))
            .count()
    };
    for id in 1..=4 {
        hub.connect(id, t0);
    }
    // Outside rooms: the play waits for the seed.
    hub.message(1, r#"{"request":"play","streamID":"solo"}"#, t0);
    let a = hub.message(2, r#"{"request":"seed","streamID":"solo"}"#, t0);
    assert_eq!(offers_to(&a, 2), 1, "{a:?}");
    // In a room: the seed's videoaddedtoroom tells the members; the early play is forgotten
    // (the web app would get an offerSDP it did not ask for).
    hub.message(3, r#"{"request":"joinroom","roomid":"R"}"#, t0);
    hub.message(3, r#"{"request":"play","streamID":"guest"}"#, t0);
    hub.message(4, r#"{"request":"joinroom","roomid":"R"}"#, t0);
    let a = hub.message(4, r#"{"request":"seed","streamID":"guest"}"#, t0);
    assert_eq!(offers_to(&a, 4), 0, "{a:?}");
    assert!(
        a.iter()
            .any(|x| matches!(x, Action::Deliver(3, t) if t.contains("videoaddedtoroom"))),
        "{a:?}"
    );
}
