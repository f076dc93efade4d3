// SPDX-License-Identifier: MPL-2.0

//! How GStreamer's own readers see a file: `decodebin3` with every stream selected (as a
//! player that shows the whole room does), and `gst-discoverer-1.0`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use gst::prelude::*;

/// Per decodebin3 pad: decoded buffers and the picture sizes seen (in order).
pub type Decoded = BTreeMap<String, (u64, Vec<(i32, i32)>)>;

/// Decodes every stream of `path` with decodebin3, all of them selected.
pub fn decodebin3_all(path: &Path) -> Decoded {
    let pipeline = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! decodebin3 name=d",
        path.display()
    ))
    .expect("parses")
    .downcast::<gst::Pipeline>()
    .expect("a pipeline");
    let d = pipeline.by_name("d").expect("decodebin3");
    let seen: Arc<Mutex<Decoded>> = Arc::default();
    let (p, s) = (pipeline.downgrade(), seen.clone());
    d.connect_pad_added(move |_, pad| {
        let Some(pipeline) = p.upgrade() else { return };
        let sink = gst::ElementFactory::make("fakesink")
            .property("sync", false)
            .build()
            .expect("fakesink");
        pipeline.add(&sink).expect("add");
        sink.sync_state_with_parent().expect("sync");
        pad.link(&sink.static_pad("sink").expect("sink"))
            .expect("link");
        let (name, s) = (pad.name().to_string(), s.clone());
        pad.add_probe(gst::PadProbeType::BUFFER, move |pad, _| {
            let size = pad.current_caps().and_then(|c| {
                let s = c.structure(0)?;
                Some((s.get::<i32>("width").ok()?, s.get::<i32>("height").ok()?))
            });
            let mut seen = s.lock().expect("lock");
            let e = seen.entry(name.clone()).or_default();
            e.0 += 1;
            if let Some(wh) = size
                && e.1.last() != Some(&wh)
            {
                e.1.push(wh);
            }
            gst::PadProbeReturn::Ok
        });
    });
    pipeline.set_state(gst::State::Paused).expect("pauses");
    let bus = pipeline.bus().expect("bus");
    // Select every stream of the collection (decodebin3 picks one of each kind by default).
    if let Some(msg) = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(10),
        &[gst::MessageType::StreamCollection, gst::MessageType::Error],
    ) && let gst::MessageView::StreamCollection(c) = msg.view()
    {
        let collection = c.stream_collection();
        let ids: Vec<String> = collection
            .iter()
            .filter_map(|s| s.stream_id().map(|i| i.to_string()))
            .collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        d.send_event(gst::event::SelectStreams::new(ids));
    }
    pipeline.set_state(gst::State::Playing).expect("plays");
    let end = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(30),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let _ = pipeline.set_state(gst::State::Null);
    if let Some(m) = end
        && let gst::MessageView::Error(e) = m.view()
    {
        panic!("decodebin3 fails on {path:?}: {}", e.error());
    }
    seen.lock().expect("lock").clone()
}

/// `gst-discoverer-1.0`'s video and audio streams.
pub fn discovered(path: &Path) -> (usize, usize) {
    let out = std::process::Command::new("gst-discoverer-1.0")
        .arg(path)
        .output()
        .expect("gst-discoverer-1.0 runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let count = |kind: &str| {
        text.lines()
            .filter(|l| l.trim_start().starts_with(&format!("{kind} #")))
            .count()
    };
    (count("video"), count("audio"))
}
