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

/// Ends a recorder: see [`Recorder::end`].
#[must_use = "the recorder ends only when it is sent"]
pub struct RecorderEnd(Vec<(gst::Pad, gst::Pad)>);

impl RecorderEnd {
    pub fn send(self) {
        for (src, sink) in &self.0 {
            let _ = src.unlink(sink);
            sink.send_event(gst::event::Eos::new());
        }
    }
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

    /// Marks the recorder as finishing; the returned end unhooks it from the participant and
    /// sends EOS through it (once: `None` if it was already ended). Send it without holding
    /// the element's state lock: an element may post a message from within the EOS, and the
    /// element's message handler takes that lock.
    pub fn end(&mut self) -> Option<RecorderEnd> {
        if std::mem::replace(&mut self.finishing, true) {
            return None;
        }
        Some(RecorderEnd(self.links.clone()))
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
    // A GAP before the first frame (a depayloader sends one for a lost packet) would make a
    // parser invent caps to send it with (h264parse: 16x16 without codec data, which mp4mux
    // refuses and then keeps, so that the file gets no frame).
    let g = gate.clone();
    pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
        let gap = matches!(info.event().map(|e| e.type_()), Some(gst::EventType::Gap));
        if gap && g.lock().is_ok_and(|g| g.base.is_none()) {
            return crate::common::elements::DROP;
        }
        gst::PadProbeReturn::Ok
    });
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

#[cfg(test)]
mod tests {
    use super::super::super::rtp_testing::run;
    use super::*;

    /// What `desc` (ending in `appsink name=out`) encodes, each buffer shifted by `start`,
    /// and the caps of the last.
    fn encoded(desc: &str, start: gst::ClockTime) -> (gst::Caps, Vec<gst::Buffer>) {
        let (caps, buffers, _) = run(desc, None);
        let buffers = buffers
            .into_iter()
            .map(|mut b| {
                let m = b.make_mut();
                m.set_pts(m.pts().map(|p| p + start));
                m.set_dts(m.dts().map(|p| p + start));
                b
            })
            .collect();
        (caps.expect("caps"), buffers)
    }

    /// H.264 access units (byte-stream) of 2 s of 320x240 video, a key frame a second.
    fn h264() -> (gst::Caps, Vec<gst::Buffer>) {
        encoded(
            "videotestsrc num-buffers=60 ! video/x-raw,width=320,height=240,framerate=30/1 ! \
             x264enc key-int-max=30 tune=zerolatency ! \
             video/x-h264,stream-format=byte-stream,alignment=au ! appsink name=out sync=false",
            gst::ClockTime::ZERO,
        )
    }

    /// AV1 temporal units (obu-stream) of 1 s of `w`x`h` video starting at `start`.
    fn av1(w: u32, h: u32, start: gst::ClockTime) -> (gst::Caps, Vec<gst::Buffer>) {
        encoded(
            &format!(
                "videotestsrc num-buffers=30 ! video/x-raw,width={w},height={h},framerate=30/1 ! \
                 av1enc usage-profile=realtime cpu-used=9 end-usage=cbr target-bitrate=300 \
                 min-quantizer=10 max-quantizer=63 keyframe-max-dist=30 ! av1parse ! \
                 video/x-av1,stream-format=obu-stream,alignment=tu ! appsink name=out sync=false"
            ),
            start,
        )
    }

    /// Records into `path` what `feed` pushes on a source pad of `codec` (after stream-start;
    /// it sends caps and segment itself), then EOS; the file is closed on return.
    fn record(codec: Codec, path: &std::path::Path, feed: impl FnOnce(&gst::Pad)) {
        let pipeline = gst::Pipeline::new();
        let src = gst::Pad::builder(gst::PadDirection::Src).build();
        src.set_active(true).expect("active");
        let rec = Recorder::start(
            pipeline.upcast_ref(),
            "r",
            path.to_path_buf(),
            &[(codec, src.clone())],
        )
        .expect("recorder");
        pipeline.set_state(gst::State::Playing).expect("plays");
        assert!(src.push_event(gst::event::StreamStart::new("r")));
        feed(&src);
        assert!(src.push_event(gst::event::Eos::new()));
        let bus = pipeline.bus().expect("bus");
        let eos = bus.timed_pop_filtered(
            gst::ClockTime::from_seconds(10),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        assert!(
            eos.as_ref()
                .is_some_and(|m| m.type_() == gst::MessageType::Eos),
            "{eos:?}"
        );
        rec.close(pipeline.upcast_ref());
        let _ = pipeline.set_state(gst::State::Null);
    }

    fn push_all(src: &gst::Pad, buffers: &[gst::Buffer]) {
        for b in buffers {
            let _ = src.push(b.clone());
        }
    }

    fn segment() -> gst::Event {
        gst::event::Segment::new(&gst::FormattedSegment::<gst::ClockTime>::new())
    }

    fn frames_in(path: &std::path::Path) -> usize {
        let desc = format!(
            "filesrc location={} ! qtdemux ! appsink name=out sync=false",
            path.display()
        );
        run(&desc, None).1.len()
    }

    /// The participant's parser has not seen a key frame yet when the recording is hooked on,
    /// and a lost packet makes the depayloader send a GAP: h264parse in the recorder then
    /// made up caps (16x16, no codec data) to send the GAP with, which mp4mux refused and
    /// kept, so that the file got no frame at all (1 run in 5 of `tests/mp4.rs`).
    #[test]
    fn a_gap_before_the_first_key_frame_does_not_spoil_an_mp4_file() {
        gst::init().expect("GStreamer initialises");
        let (caps, buffers) = h264();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("g.mp4");
        record(Codec::H264, &path, |src| {
            // What the participant's parser sends before its first key frame, then the stream.
            let early = gst::Caps::builder("video/x-h264")
                .field("stream-format", "byte-stream")
                .field("alignment", "au")
                .field("parsed", true)
                .build();
            assert!(src.push_event(gst::event::Caps::new(&early)));
            assert!(src.push_event(segment()));
            src.push_event(
                gst::event::Gap::builder(gst::ClockTime::ZERO)
                    .duration(gst::ClockTime::from_mseconds(33))
                    .build(),
            );
            assert!(src.push_event(gst::event::Caps::new(&caps)));
            push_all(src, &buffers);
        });
        assert_eq!(frames_in(&path), buffers.len(), "{path:?}");
    }

    /// The file keeps its first caps (`keep_first_caps`); an AV1 stream whose frame grows
    /// brings a new sequence header in-band, which the file keeps and a decoder follows. (The
    /// real-peer AV1 recording failed twice at the web app's switch to 960x540: this shows the
    /// recorder's part is not the cause.)
    #[test]
    fn an_av1_stream_that_grows_its_frame_records_to_the_end() {
        gst::init().expect("GStreamer initialises");
        let (caps1, small) = av1(320, 180, gst::ClockTime::ZERO);
        let (caps2, large) = av1(960, 540, gst::ClockTime::from_seconds(1));
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.mkv");
        record(Codec::Av1, &path, |src| {
            assert!(src.push_event(gst::event::Caps::new(&caps1)));
            assert!(src.push_event(segment()));
            push_all(src, &small);
            assert!(src.push_event(gst::event::Caps::new(&caps2)));
            push_all(src, &large);
        });
        let desc = format!(
            "filesrc location={} ! matroskademux ! av1dec ! appsink name=out sync=false",
            path.display()
        );
        let decoded = run(&desc, None).1;
        assert_eq!(decoded.len(), small.len() + large.len(), "{path:?}");
    }
}
