// SPDX-License-Identifier: MPL-2.0

//! For tests of the receive path and the recorder: real AV1 RTP packets, and pipelines run to
//! their end (fed or not).

use gst::prelude::*;

/// The guards under test, put on the depayloader when a feed asks for them.
fn guard(depay: &gst::Element) {
    super::frametimes::attach(depay);
    super::loss::attach(depay);
}

/// RTP packets (and their caps) of 3 s of AV1 at 320x240, a key frame every 1.5 s, in
/// packets of at most 300 bytes: a frame takes many.
pub fn av1_rtp() -> (gst::Caps, Vec<gst::Buffer>) {
    gst::init().expect("gstreamer");
    crate::common::elements::register_bundled();
    let (caps, buffers, _) = run(
        "videotestsrc num-buffers=90 pattern=snow ! \
         video/x-raw,width=320,height=240,framerate=30/1 ! \
         av1enc usage-profile=realtime cpu-used=9 end-usage=cbr target-bitrate=600 \
         min-quantizer=10 max-quantizer=63 keyframe-max-dist=45 ! av1parse ! \
         rtpav1pay mtu=300 ! appsink name=out sync=false",
        None,
    );
    (caps.expect("caps"), buffers)
}

/// Runs `desc` to its end, feeding `appsrc name=src` with `feed` (caps, buffers, whether
/// the `depay` element is guarded). Returns what `appsink name=out` got (its last caps and
/// buffers) and how many key frames were asked for at `src`; panics on an error message.
pub fn run(
    desc: &str,
    feed: Option<(&gst::Caps, &[gst::Buffer], bool)>,
) -> (Option<gst::Caps>, Vec<gst::Buffer>, u32) {
    use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
    let p = gst::parse::launch(desc)
        .expect("pipeline")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    let asked = std::sync::Arc::new(AtomicU32::new(0));
    let src = p.by_name("src").and_downcast::<gst_app::AppSrc>();
    if let (Some(src), Some((caps, _, guarded))) = (&src, feed) {
        src.set_caps(Some(caps));
        src.set_format(gst::Format::Time);
        if guarded {
            guard(&p.by_name("depay").expect("depay"));
        }
        let a = asked.clone();
        src.static_pad("src").expect("src pad").add_probe(
            gst::PadProbeType::EVENT_UPSTREAM,
            move |_, info| {
                if info
                    .event()
                    .and_then(|e| e.structure())
                    .is_some_and(|s| s.name() == "GstForceKeyUnit")
                {
                    a.fetch_add(1, Relaxed);
                }
                gst::PadProbeReturn::Ok
            },
        );
    }
    let out = p
        .by_name("out")
        .and_downcast::<gst_app::AppSink>()
        .expect("appsink");
    p.set_state(gst::State::Playing).expect("plays");
    if let (Some(src), Some((_, packets, _))) = (&src, feed) {
        for b in packets {
            let _ = src.push_buffer(b.clone());
        }
        let _ = src.end_of_stream();
    }
    // Every sample, then the pipeline's EOS: a file is only whole once every sink has had
    // it (the appsink's branch may end well before the muxer's). Bounded at 120 s.
    let bus = p.bus().expect("bus");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut samples = Vec::new();
    let mut end = None;
    while end.is_none() && std::time::Instant::now() < deadline {
        match out.try_pull_sample(gst::ClockTime::from_mseconds(100)) {
            Some(s) => samples.push(s),
            None => end = bus.pop_filtered(&[gst::MessageType::Eos, gst::MessageType::Error]),
        }
    }
    samples.extend(std::iter::from_fn(|| {
        out.try_pull_sample(gst::ClockTime::ZERO)
    }));
    let _ = p.set_state(gst::State::Null);
    assert!(
        end.as_ref()
            .is_some_and(|m| m.type_() == gst::MessageType::Eos),
        "{desc}: {end:?}"
    );
    let caps = samples.last().and_then(|s| s.caps_owned());
    let buffers = samples.iter().filter_map(|s| s.buffer_owned()).collect();
    (caps, buffers, asked.load(Relaxed))
}

/// The frames of `packets`, as ranges of packets (a frame ends at a marker).
pub fn frames_of(packets: &[gst::Buffer]) -> Vec<std::ops::Range<usize>> {
    let mut frames = Vec::new();
    let mut start = 0;
    for (i, b) in packets.iter().enumerate() {
        let rtp = gst_rtp::RTPBuffer::from_buffer_readable(b).expect("rtp");
        if rtp.is_marker() {
            frames.push(start..i + 1);
            start = i + 1;
        }
    }
    frames
}

/// Records `packets` as a receiver does (depayloaded, parsed, into Matroska; `guarded`: with
/// the guards) into `file`.
pub fn record(caps: &gst::Caps, packets: &[gst::Buffer], guarded: bool, file: &std::path::Path) {
    run(
        &format!(
            "appsrc name=src ! rtpav1depay name=depay ! av1parse ! video/x-av1,alignment=tu ! \
             tee name=t ! queue ! matroskamux ! filesink location={} \
             t. ! queue ! appsink name=out sync=false",
            file.display()
        ),
        Some((caps, packets, guarded)),
    );
}

/// The blocks of `file` (Matroska).
pub fn blocks(file: &std::path::Path) -> usize {
    let desc = format!(
        "filesrc location={} ! matroskademux ! appsink name=out sync=false",
        file.display()
    );
    run(&desc, None).1.len()
}

/// The pictures av1dec decodes of `file` (Matroska); `run` panics on a decoding error.
pub fn pictures(file: &std::path::Path) -> usize {
    let desc = format!(
        "filesrc location={} ! matroskademux ! av1dec ! appsink name=out sync=false",
        file.display()
    );
    run(&desc, None).1.len()
}
