// SPDX-License-Identifier: MPL-2.0

use super::*;

#[test]
fn state_is_cleaned_when_a_socket_closes() {
    let mut hub = Hub::new(ServerMode::Official);
    hub.connect(1);
    hub.connect(2);
    hub.message(1, r#"{"request":"seed","streamID":"s"}"#);
    hub.message(2, r#"{"request":"play","streamID":"gone"}"#);
    hub.disconnect(1);
    hub.disconnect(2);
    assert_eq!(hub.connections(), 0);
    assert!(hub.streams.is_empty() && hub.waiting.is_empty());
    assert!(hub.by_uuid.is_empty() && hub.rooms.is_empty() && hub.lobby.is_empty());
    // The stream ID is free for a new publisher.
    hub.connect(3);
    let a = hub.message(3, r#"{"request":"seed","streamID":"s"}"#);
    assert!(a.is_empty(), "{a:?}");
}

#[test]
fn an_early_play_is_remembered_only_outside_rooms() {
    let mut hub = Hub::new(ServerMode::Official);
    let offers_to = |a: &[Action], to: ConnId| {
        a.iter()
            .filter(|x| matches!(x, Action::Deliver(c, t) if *c == to && t.contains("offerSDP")))
            .count()
    };
    for id in 1..=4 {
        hub.connect(id);
    }
    // Outside rooms: the play waits for the seed.
    hub.message(1, r#"{"request":"play","streamID":"solo"}"#);
    let a = hub.message(2, r#"{"request":"seed","streamID":"solo"}"#);
    assert_eq!(offers_to(&a, 2), 1, "{a:?}");
    // In a room: the seed's videoaddedtoroom tells the members; the early play is forgotten
    // (the web app would get an offerSDP it did not ask for).
    hub.message(3, r#"{"request":"joinroom","roomid":"R"}"#);
    hub.message(3, r#"{"request":"play","streamID":"guest"}"#);
    hub.message(4, r#"{"request":"joinroom","roomid":"R"}"#);
    let a = hub.message(4, r#"{"request":"seed","streamID":"guest"}"#);
    assert_eq!(offers_to(&a, 4), 0, "{a:?}");
    assert!(
        a.iter()
            .any(|x| matches!(x, Action::Deliver(3, t) if t.contains("videoaddedtoroom"))),
        "{a:?}"
    );
}

fn deliveries(a: &[Action]) -> Vec<(ConnId, String)> {
    a.iter()
        .filter_map(|x| match x {
            Action::Deliver(to, t) => Some((*to, t.to_string())),
            Action::Log(_) => None,
        })
        .collect()
}

#[test]
fn fanout_relays_verbatim_to_its_room_its_destination_or_the_stream_it_plays() {
    let mut hub = Hub::new(ServerMode::Fanout);
    for id in 1..=5 {
        hub.connect(id);
    }
    for (id, room, sid) in [(1, "R", "a"), (2, "R", "b"), (3, "R", "c"), (4, "Q", "d")] {
        hub.message(
            id,
            format!(
                r#"{{"request":"joinroom","roomid":"{room}","streamID":"{sid}","from":"u{id}"}}"#
            ),
        );
    }
    hub.message(5, r#"{"from":"u5","hello":1}"#);
    // To the room, as it came (spacing and all).
    let text = r#"{"from":"u1",  "candidate":{"x":[1,2]}}"#;
    assert_eq!(
        deliveries(&hub.message(1, text)),
        vec![(2, text.to_string()), (3, text.to_string())]
    );
    // To one member; not across rooms.
    let text = r#"{"from":"u1","UUID":"u3","sdp":1}"#;
    assert_eq!(
        deliveries(&hub.message(1, text)),
        vec![(3, text.to_string())]
    );
    assert!(deliveries(&hub.message(1, r#"{"from":"u1","UUID":"u4"}"#)).is_empty());
    // A play reaches the stream's publisher only.
    let text = r#"{"from":"u1","request":"play","streamID":"b"}"#;
    assert_eq!(
        deliveries(&hub.message(1, text)),
        vec![(2, text.to_string())]
    );
    // Outside rooms: the others outside rooms.
    hub.connect(6);
    assert_eq!(
        deliveries(&hub.message(6, r#"{"from":"u6"}"#)),
        vec![(5, r#"{"from":"u6"}"#.to_string())]
    );
    // A stream ID is owned; a UUID too.
    let a = hub.message(5, r#"{"from":"u5","request":"seed","streamID":"a"}"#);
    assert_eq!(
        deliveries(&a),
        vec![(5, r#"{"error":"sid already in use"}"#.to_string())]
    );
    let a = hub.message(6, r#"{"from":"u6","request":"seed","streamID":"c"}"#);
    assert_eq!(deliveries(&a)[0].1, r#"{"error":"sid already in use"}"#);
    hub.connect(7);
    let a = hub.message(7, r#"{"from":"u1"}"#);
    assert_eq!(
        deliveries(&a),
        vec![(7, r#"{"error":"uuid already in use"}"#.to_string())]
    );
    // Gone: its UUID, stream and room membership are free again.
    hub.disconnect(1);
    assert!(
        deliveries(&hub.message(
            7,
            r#"{"from":"u1","request":"joinroom","roomid":"R","streamID":"a"}"#
        ))
        .len()
            == 2
    );
}

#[test]
fn official_relay_rewrites_only_the_uuid() {
    let mut hub = Hub::new(ServerMode::Official);
    let a = hub.connect(1).unwrap();
    let b = hub.connect(2).unwrap();
    let text = format!(r#"{{"UUID":"{b}","description":"00ff","vector":"ab"}}"#);
    let out = deliveries(&hub.message(1, text));
    assert_eq!(
        out,
        vec![(
            2,
            format!(r#"{{"UUID":"{a}","description":"00ff","vector":"ab"}}"#)
        )]
    );
}

#[test]
fn a_member_that_changes_rooms_leaves_the_old_one() {
    let mut hub = Hub::new(ServerMode::Official);
    for id in 1..=3 {
        hub.connect(id);
    }
    hub.message(1, r#"{"request":"joinroom","roomid":"A"}"#);
    hub.message(2, r#"{"request":"joinroom","roomid":"A"}"#);
    hub.message(2, r#"{"request":"joinroom","roomid":"B"}"#);
    let a = hub.message(3, r#"{"request":"joinroom","roomid":"A"}"#);
    let told: Vec<ConnId> = deliveries(&a).into_iter().map(|(to, _)| to).collect();
    assert_eq!(
        told,
        vec![1, 3],
        "only A's member hears of the newcomer, then its listing"
    );
    assert_eq!(hub.rooms["B"].len(), 1);
}
