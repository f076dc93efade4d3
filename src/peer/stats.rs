// SPDX-License-Identifier: MPL-2.0

//! A compact summary of a peer's webrtcbin for the elements' `stats` properties.
//!
//! Reading statistics waits for webrtcbin (bounded): call it without holding an element lock.

use std::time::Duration;

use gst::prelude::*;

/// How long to wait for webrtcbin's `get-stats` answer.
const STATS_TIMEOUT: Duration = Duration::from_millis(200);

fn number(s: &gst::StructureRef, field: &str) -> Option<f64> {
    let v = s.value(field).ok()?;
    v.get::<f64>()
        .ok()
        .or_else(|| v.get::<u64>().ok().map(|x| x as f64))
        .or_else(|| v.get::<i64>().ok().map(|x| x as f64))
        .or_else(|| v.get::<u32>().ok().map(|x| x as f64))
        .or_else(|| v.get::<i32>().ok().map(|x| x as f64))
}

/// webrtcbin's `get-stats`, if it answers within [`STATS_TIMEOUT`].
fn get_stats(webrtc: &gst::Element) -> Option<gst::Structure> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let promise = gst::Promise::with_change_func(move |reply| {
        let s = reply.ok().flatten().map(|s| s.to_owned());
        let _ = tx.send(s);
    });
    webrtc.emit_by_name::<()>("get-stats", &[&None::<gst::Pad>, &promise]);
    rx.recv_timeout(STATS_TIMEOUT).ok().flatten()
}

/// The `candidate-type` of the candidate whose statistics are filed under `id`. (webrtcbin
/// 1.22 names its local candidates' structures `remote-candidate`: go by the id.)
fn candidate_type(stats: &gst::StructureRef, id: &str) -> Option<String> {
    stats
        .get::<gst::Structure>(id)
        .ok()?
        .get::<String>("candidate-type")
        .ok()
}

/// Adds to `s`: `connection-state`, and when webrtcbin answers in time `candidate-type`
/// (host/srflx/prflx/relay: our side of the selected candidate pair), `rtt-ms`, `bytes-sent`, `bytes-received`,
/// `packets-received`, `packets-lost`.
pub fn add_summary(s: &mut gst::Structure, webrtc: &gst::Element) {
    let conn = webrtc.property::<gst_webrtc::WebRTCPeerConnectionState>("connection-state");
    s.set("connection-state", format!("{conn:?}").to_lowercase());
    let Some(stats) = get_stats(webrtc) else {
        return;
    };
    let mut rtt: Option<f64> = None;
    let (mut sent, mut received, mut lost, mut packets) = (0f64, 0f64, 0f64, 0f64);
    let mut candidate: Option<String> = None;
    for (_, value) in stats.iter() {
        let Ok(st) = value.get::<gst::Structure>() else {
            continue;
        };
        let name = st.name().as_str();
        if let Some(r) = number(&st, "round-trip-time") {
            rtt = Some(rtt.map_or(r, |x: f64| x.max(r)));
        }
        if name.contains("outbound") && !name.contains("remote") {
            sent += number(&st, "bytes-sent").unwrap_or(0.0);
        }
        if name.contains("inbound") && !name.contains("remote") {
            received += number(&st, "bytes-received").unwrap_or(0.0);
            packets += number(&st, "packets-received").unwrap_or(0.0);
            lost += number(&st, "packets-lost").unwrap_or(0.0).max(0.0);
        }
        if name.contains("remote-inbound") {
            lost += number(&st, "packets-lost").unwrap_or(0.0).max(0.0);
        }
        if name == "candidate-pair"
            && let Ok(local) = st.get::<String>("local-candidate-id")
        {
            candidate = candidate_type(&stats, &local);
        }
    }
    s.set("candidate-type", candidate.unwrap_or_default());
    s.set("rtt-ms", rtt.map(|r| r * 1000.0).unwrap_or(-1.0));
    s.set("bytes-sent", sent as u64);
    s.set("bytes-received", received as u64);
    s.set("packets-received", packets as u64);
    s.set("packets-lost", lost as u64);
}

/// Builds an element's `stats`: `top` plus one field per peer (`name`, its own fields, and
/// the webrtcbin summary). The summaries are read here, after the caller released its locks.
pub fn collect(
    mut top: gst::Structure,
    peers: Vec<(String, gst::Structure, gst::Element)>,
) -> gst::Structure {
    for (name, mut s, webrtc) in peers {
        add_summary(&mut s, &webrtc);
        top.set(name.as_str(), s);
    }
    top
}
