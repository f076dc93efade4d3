// SPDX-License-Identifier: MPL-2.0

//! A compact summary of webrtcbin's `get-stats` for the elements' `stats` properties.

use std::time::Duration;

use super::Peer;

fn number(s: &gst::StructureRef, field: &str) -> Option<f64> {
    let v = s.value(field).ok()?;
    v.get::<f64>()
        .ok()
        .or_else(|| v.get::<u64>().ok().map(|x| x as f64))
        .or_else(|| v.get::<i64>().ok().map(|x| x as f64))
        .or_else(|| v.get::<u32>().ok().map(|x| x as f64))
        .or_else(|| v.get::<i32>().ok().map(|x| x as f64))
}

/// `candidate-type` (host/srflx/relay of our side), `rtt-ms`, `bytes-sent`, `bytes-received`,
/// `packets-lost`, `packets-received`; `None` if webrtcbin does not answer within 200 ms.
pub fn summary(peer: &Peer) -> Option<gst::Structure> {
    let stats = peer.stats(Duration::from_millis(200))?;
    let mut rtt: Option<f64> = None;
    let (mut sent, mut received, mut lost, mut packets) = (0f64, 0f64, 0f64, 0f64);
    let mut candidate: Option<String> = None;
    for (_, value) in stats.iter() {
        let Ok(s) = value.get::<gst::Structure>() else {
            continue;
        };
        let name = s.name().as_str();
        if let Some(r) = number(&s, "round-trip-time") {
            rtt = Some(rtt.map_or(r, |x: f64| x.max(r)));
        }
        if name.contains("outbound") && !name.contains("remote") {
            sent += number(&s, "bytes-sent").unwrap_or(0.0);
        }
        if name.contains("inbound") && !name.contains("remote") {
            received += number(&s, "bytes-received").unwrap_or(0.0);
            packets += number(&s, "packets-received").unwrap_or(0.0);
            lost += number(&s, "packets-lost").unwrap_or(0.0).max(0.0);
        }
        if name.contains("remote-inbound") {
            lost += number(&s, "packets-lost").unwrap_or(0.0).max(0.0);
        }
        if candidate.is_none()
            && name.contains("local-candidate")
            && let Ok(t) = s.get::<String>("candidate-type")
        {
            candidate = Some(t);
        }
    }
    Some(
        gst::Structure::builder("summary")
            .field("candidate-type", candidate.unwrap_or_default())
            .field("rtt-ms", rtt.map(|r| r * 1000.0).unwrap_or(-1.0))
            .field("bytes-sent", sent as u64)
            .field("bytes-received", received as u64)
            .field("packets-received", packets as u64)
            .field("packets-lost", lost as u64)
            .build(),
    )
}
