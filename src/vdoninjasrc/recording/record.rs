// SPDX-License-Identifier: MPL-2.0

//! One participant's recording: every track into one file (Matroska, or MP4 for editors: see
//! [`super::container`]), video passed through. Audio and
//! video start together at the first video key frame and the file's clock starts at zero.
//! Finishing unhooks the recorder from the participant and sends EOS through it; the file is
//! final (seekable, with duration and cues) once its filesink has seen that EOS.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use gst::prelude::*;

use super::container::Container;
use crate::common::codec::Codec;

/// Where the recording starts: the first video key frame (or the first audio buffer when there
/// is no video). Shared by the tracks' gates.
#[derive(Default)]
struct Gate {
    base: Option<gst::ClockTime>,
    last: Option<gst::ClockTime>,
    audio_started: bool,
    /// Pads feeding the muxer, whose running time is shifted so that the file starts at zero.
    pads: Vec<gst::Pad>,
}

pub struct Recorder {
    pub bin: gst::Bin,
    pub location: PathBuf,
    pub stream_id: String,
    pub video_codec: Option<Codec>,
    pub audio_codec: Option<Codec>,
    pub container: Container,
    /// (peer-bin pad feeding us, our sink pad)
    links: Vec<(gst::Pad, gst::Pad)>,
    filesink: gst::Element,
    gate: Arc<Mutex<Gate>>,
    finishing: bool,
    /// Its filesink has seen EOS: the file is final.
    pub done: Arc<AtomicBool>,
}

fn make(factory: &str) -> Result<gst::Element, String> {
    crate::common::elements::make(factory, None)
}

impl Recorder {
    /// Builds the recorder in `parent` and links `tracks` (codec, peer-bin pad) into it.
    pub fn start(
        parent: &gst::Bin,
        stream_id: &str,
        location: PathBuf,
        tracks: &[(Codec, gst::Pad)],
    ) -> Result<Self, String> {
        static N: AtomicU32 = AtomicU32::new(0);
        let bin = gst::Bin::with_name(&format!("rec{}", N.fetch_add(1, Ordering::Relaxed)));
        // The recorder runs on its own: when the element stops, it must still be able to
        // take the EOS that finalizes its file.
        bin.set_locked_state(true);
        let container = Container::of(&location);
        let mux = container.muxer()?;
        let filesink = make("filesink")?;
        filesink.set_property("location", location.to_string_lossy().as_ref());
        filesink.set_property("async", false);
        filesink.set_property_from_str("buffer-mode", "unbuffered");
        bin.add_many([&mux, &filesink]).map_err(|e| e.to_string())?;
        mux.link(&filesink)
            .map_err(|_| format!("cannot link {}", mux.name()))?;

        let gate = Arc::new(Mutex::new(Gate::default()));
        let has_video = tracks.iter().any(|(c, _)| c.is_video());
        let mut sinks = Vec::new();
        let (mut video_codec, mut audio_codec) = (None, None);
        for (i, (codec, _)) in tracks.iter().enumerate() {
            let queue = make("queue")?;
            queue.set_property("max-size-buffers", 0u32);
            queue.set_property("max-size-bytes", 0u32);
            queue.set_property("max-size-time", 5_000_000_000u64);
            let mut chain = vec![queue.clone()];
            chain.extend(container.track_chain(*codec)?);
            bin.add_many(&chain).map_err(|e| e.to_string())?;
            gst::Element::link_many(&chain).map_err(|_| "cannot link a recorder track")?;
            let mux_pad = mux
                .request_pad_simple(Container::pad_template(codec.is_video()))
                .ok_or_else(|| format!("{} gave no pad", mux.name()))?;
            let last = chain
                .last()
                .and_then(|e| e.static_pad("src"))
                .ok_or("no src")?;
            if container == Container::Mp4 {
                if codec.is_video() {
                    dts_from_pts(&last);
                }
                // mp4mux stops on a time stamp that goes back ("decreasing DTS"), which a
                // receiver's lip-sync correction does (tens of ms, at the first sender reports);
                // Matroska takes it.
                crate::vdoninjasrc::ts::guards::keep_time_monotonic(&last);
            }
            last.link(&mux_pad)
                .map_err(|e| format!("{} refused {}: {e:?}", mux.name(), codec.encoding_name()))?;
            keep_first_caps(&mux_pad);
            let qsink = queue.static_pad("sink").ok_or("no sink")?;
            let ghost = gst::GhostPad::builder_with_target(&qsink)
                .map_err(|e| e.to_string())?
                .name(format!("sink_{i}"))
                .build();
            bin.add_pad(&ghost).map_err(|e| e.to_string())?;
            if let Ok(mut g) = gate.lock() {
                // On the src pad that feeds the muxer: a src pad re-sends its segment with
                // the new offset (a sink pad's offset would miss the segment already received).
                g.pads.push(last.clone());
            }
            add_gate(&qsink, &gate, *codec, has_video);
            if codec.is_video() {
                video_codec.get_or_insert(*codec);
            } else {
                audio_codec.get_or_insert(*codec);
            }
            sinks.push(ghost.upcast::<gst::Pad>());
        }
        parent.add(&bin).map_err(|e| e.to_string())?;
        bin.set_state(gst::State::Playing)
            .map_err(|_| format!("cannot start recording to {}", location.display()))?;
        let mut links = Vec::new();
        for ((_, src), sink) in tracks.iter().zip(sinks) {
            src.link(&sink)
                .map_err(|e| format!("cannot feed the recorder: {e:?}"))?;
            links.push((src.clone(), sink));
        }
        Ok(Self {
            bin,
            location,
            stream_id: stream_id.into(),
            video_codec,
            audio_codec,
            container,
            links,
            filesink,
            gate,
            finishing: false,
            done: Arc::default(),
        })
    }

    /// Whether an EOS message from `obj` says this recorder's file is final: its filesink's,
    /// or the recorder bin's own (a bin turns its sinks' EOS into one of its own).
    pub fn is_eos_source(&self, obj: &gst::Object) -> bool {
        obj == self.filesink.upcast_ref::<gst::Object>()
            || obj == self.bin.upcast_ref::<gst::Object>()
    }

    /// Unhooks the recorder from the participant and sends EOS through it.
    pub fn finish(&mut self) {
        if self.finishing {
            return;
        }
        self.finishing = true;
        for (src, sink) in &self.links {
            let _ = src.unlink(sink);
            sink.send_event(gst::event::Eos::new());
        }
    }

    /// Time from the first to the last recorded frame.
    pub fn duration(&self) -> gst::ClockTime {
        self.gate
            .lock()
            .ok()
            .and_then(|g| Some(g.last?.saturating_sub(g.base?)))
            .unwrap_or(gst::ClockTime::ZERO)
    }

    /// Stops and removes the recorder bin.
    pub fn close(&self, parent: &gst::Bin) {
        let _ = self.bin.set_state(gst::State::Null);
        let _ = parent.remove(&self.bin);
    }
}

/// Drops what comes before the recording's start; notes the last time stamp.
fn add_gate(pad: &gst::Pad, gate: &Arc<Mutex<Gate>>, codec: Codec, has_video: bool) {
    let gate = gate.clone();
    let video = codec.is_video();
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(buf) = info.buffer() else {
            return gst::PadProbeReturn::Ok;
        };
        let Some(ts) = buf.pts().or(buf.dts()) else {
            return gst::PadProbeReturn::Ok;
        };
        // Running time, so that every track is on the same clock.
        let pts = pad
            .sticky_event::<gst::event::Segment>(0)
            .and_then(|e| {
                e.segment()
                    .downcast_ref::<gst::ClockTime>()
                    .and_then(|s| s.to_running_time(ts))
            })
            .unwrap_or(ts);
        let Ok(mut g) = gate.lock() else {
            return gst::PadProbeReturn::Ok;
        };
        gst::trace!(
            crate::vdoninjasrc::CAT,
            obj = pad,
            "{} {pts} key {}",
            if video { "video" } else { "audio" },
            crate::common::codec::is_key_frame(codec, buf)
        );
        let starts = g.base.is_none()
            && (video || !has_video)
            && crate::common::codec::is_key_frame(codec, buf);
        if starts {
            gst::debug!(
                crate::vdoninjasrc::CAT,
                obj = pad,
                "recording starts at {pts} (video: {video})"
            );
            g.base = Some(pts);
            let offset = -(pts.nseconds() as i64);
            for p in &g.pads {
                p.set_offset(offset);
            }
        }
        match g.base {
            Some(base) if pts >= base => {
                if !video && !g.audio_started {
                    g.audio_started = true;
                    gst::debug!(
                        crate::vdoninjasrc::CAT,
                        obj = pad,
                        "audio starts at {pts}, {} after the start",
                        pts - base
                    );
                }
                if g.last.is_none_or(|l| pts > l) {
                    g.last = Some(pts);
                }
                gst::PadProbeReturn::Ok
            }
            _ => gst::PadProbeReturn::Handled,
        }
    });
}

/// mp4mux needs a decoding time on video; WebRTC's H.264 has no B-frames, so it is the
/// presentation time.
fn dts_from_pts(pad: &gst::Pad) {
    pad.add_probe(gst::PadProbeType::BUFFER, |_, info| {
        if let Some(gst::PadProbeData::Buffer(buf)) = &mut info.data
            && buf.dts().is_none()
            && buf.pts().is_some()
        {
            let pts = buf.pts();
            buf.make_mut().set_dts(pts);
        }
        gst::PadProbeReturn::Ok
    });
}

/// matroskamux refuses new caps once it has written its header ("Caps changes are not
/// supported by Matroska"), which would end the recording when a publisher changes its
/// resolution. The stream itself carries the change (H.264 parameter sets come with every key
/// frame, VP8/VP9 key frames give their size), and decoders follow it: so once media has gone
/// in, the track keeps its caps, and later caps of the same codec are not passed to the muxer.
/// (Before that, caps may still be completed: h264parse gives its codec data a little later.)
fn keep_first_caps(mux_pad: &gst::Pad) {
    let started = Arc::new(AtomicBool::new(false));
    let s = started.clone();
    mux_pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        s.store(true, Ordering::Release);
        gst::PadProbeReturn::Remove
    });
    mux_pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |pad, info| {
        if !started.load(Ordering::Acquire) {
            return gst::PadProbeReturn::Ok;
        }
        let Some(gst::EventView::Caps(c)) = info.event().map(|e| e.view()) else {
            return gst::PadProbeReturn::Ok;
        };
        let Some(current) = pad.current_caps() else {
            return gst::PadProbeReturn::Ok;
        };
        let same_codec =
            current.structure(0).map(|s| s.name()) == c.caps().structure(0).map(|s| s.name());
        if same_codec && current.as_ref() != c.caps() {
            gst::info!(
                crate::vdoninjasrc::CAT,
                obj = pad,
                "the track changes to {:?}; the file keeps its caps",
                c.caps()
            );
            return gst::PadProbeReturn::Handled;
        }
        gst::PadProbeReturn::Ok
    });
}
