// SPDX-License-Identifier: MPL-2.0

//! The room stream: everything behind the always `src` pad. Owns the `mpegtsmux` and one
//! [`TsTrack`] per participant track, added as they join (MPEG-TS takes new streams while
//! playing; a new PMT announces them). H.264 and Opus go in as they are; other video is
//! transcoded to H.264.
//!
//! * [`gate`]: the pad probe between the muxer and `src` that holds new tracks back;
//! * [`admit`]: the sans-IO rules it follows (one track at a time, key frames after every
//!   program change; it says why);
//! * [`read`]: the small MPEG-TS reader the gate uses to see PATs, PMTs and key frames.

use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use gst::prelude::*;

mod admit;
mod gate;
mod read;

use crate::common::codec::{Codec, best_decoder};
use crate::common::driver::Runner;
use crate::protocol::machine::PeerId;
use gate::SharedRoom;

/// One participant track feeding the mux.
pub struct TsTrack {
    bin: gst::Bin,
    source: gst::Pad,
    sink: gst::Pad,
    /// Its output, linked to a muxer pad once admitted.
    out: gst::Pad,
    pid: u16,
    codec: Codec,
    room: SharedRoom,
    link: Arc<Mutex<Link>>,
    /// When its last buffer arrived (ms on [`clock_ms`]).
    last_buffer: Arc<AtomicU64>,
}

/// A track linked to the muxer that delivers nothing this long is taken out of the room
/// stream (mpegtsmux 1.22 waits for every linked track, so one silent camera would stop the
/// whole room), and put back when its media resumes.
pub const STALL_LIMIT: std::time::Duration = std::time::Duration::from_millis(700);

/// Milliseconds since the first call (a monotonic clock shared by probes and the watchdog).
fn clock_ms() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
}

/// Whether a track is linked to the muxer, or ended (and must not be linked any more: the
/// muxer would wait for it forever).
#[derive(Debug, Default)]
struct Link {
    linked: bool,
    ended: bool,
}

fn make(factory: &str) -> Result<gst::Element, String> {
    crate::common::elements::make(factory, None)
}

/// The room's muxer.
#[derive(Clone, Debug)]
pub struct RoomMux {
    element: gst::Element,
    room: SharedRoom,
    /// Links admitted tracks (GStreamer work, off the streaming threads).
    runner: Runner,
    next_pid: Arc<AtomicU16>,
}

/// The first elementary stream PID (mpegtsmux's own choice too).
const FIRST_PID: u16 = 0x41;
/// PIDs up to 0x1ffe are for elementary streams.
const LAST_PID: u16 = 0x1ffe;

impl RoomMux {
    /// Creates the muxer inside `parent`.
    pub fn new(parent: &gst::Bin, runner: Runner) -> Result<Self, String> {
        let element = gst::ElementFactory::make("mpegtsmux")
            .name("roommux")
            .build()
            .map_err(|_| "the GStreamer element mpegtsmux is not installed")?;
        parent.add(&element).map_err(|e| e.to_string())?;
        let room: SharedRoom = Arc::new(Mutex::new(gate::Room::default()));
        let src = element
            .static_pad("src")
            .ok_or("mpegtsmux has no src pad")?;
        let weak = Arc::downgrade(&room);
        src.add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
            move |_, info| {
                let Some(room) = weak.upgrade() else {
                    return gst::PadProbeReturn::Ok;
                };
                gate::drive(&room, |r, now| {
                    let mut actions = Vec::new();
                    let mut read = |b: &gst::BufferRef| {
                        if let Ok(map) = b.map_readable() {
                            actions.extend(r.read(&map, now));
                        }
                    };
                    if let Some(b) = info.buffer() {
                        read(b);
                    } else if let Some(list) = info.buffer_list() {
                        list.iter().for_each(read);
                    }
                    actions
                });
                gst::PadProbeReturn::Ok
            },
        );
        Ok(Self {
            element,
            room,
            runner,
            next_pid: Arc::new(AtomicU16::new(FIRST_PID)),
        })
    }

    pub fn element(&self) -> &gst::Element {
        &self.element
    }

    /// Adds a track (from a peer-bin pad) to the mux. Returns whether it had to be transcoded.
    /// `ask_keyframe` asks the publisher for a key frame by the protocol. `pid` is the PID of
    /// the track this one continues (a stalled track that resumed), `None` for a new one.
    pub fn add_track(
        &self,
        parent: &gst::Bin,
        peer: PeerId,
        codec: Codec,
        source: &gst::Pad,
        pid: Option<u16>,
        ask_keyframe: impl Fn() + Send + Sync + 'static,
    ) -> Result<(TsTrack, bool), String> {
        static N: AtomicU32 = AtomicU32::new(0);
        // Named after its peer: an error inside it fails that peer alone (`peer_of`).
        let bin = gst::Bin::with_name(&format!("{peer}-ts{}", N.fetch_add(1, Ordering::Relaxed)));
        let queue = make("queue")?;
        queue.set_property("max-size-time", 3_000_000_000u64);
        let mut chain = vec![queue.clone()];
        let transcode = codec.is_video() && codec != Codec::H264;
        if transcode {
            let caps = gst::Caps::new_empty_simple(codec.caps_name());
            let dec = best_decoder(&caps)
                .ok_or_else(|| format!("no {} decoder is installed", codec.encoding_name()))?;
            chain.push(dec.create().build().map_err(|e| e.to_string())?);
            chain.push(make("videoconvert")?);
            let enc = make("x264enc")?;
            enc.set_property_from_str("tune", "zerolatency");
            enc.set_property_from_str("speed-preset", "veryfast");
            enc.set_property("key-int-max", 60u32);
            chain.push(enc);
            let parse = make("h264parse")?;
            crate::peer::shield_parser_from_key_unit_events(&parse);
            chain.push(parse);
            // What mpegtsmux takes: negotiated before the track is linked to it.
            let filter = make("capsfilter")?;
            filter.set_property("caps", crate::common::codec::h264_byte_stream_caps());
            chain.push(filter);
        }
        bin.add_many(&chain).map_err(|e| e.to_string())?;
        gst::Element::link_many(&chain).map_err(|_| "cannot link a TS track")?;
        let qsink = queue.static_pad("sink").ok_or("no sink")?;
        let last_buffer = Arc::new(AtomicU64::new(clock_ms()));
        {
            let last = last_buffer.clone();
            qsink.add_probe(
                gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
                move |_, _| {
                    last.store(clock_ms(), Ordering::Relaxed);
                    gst::PadProbeReturn::Ok
                },
            );
        }
        if transcode {
            // The decoder starts at a key frame.
            drop_until_keyframe(&qsink);
        }
        let sink = gst::GhostPad::builder_with_target(&qsink)
            .map_err(|e| e.to_string())?
            .name("sink")
            .build();
        bin.add_pad(&sink).map_err(|e| e.to_string())?;
        let last = chain
            .last()
            .and_then(|e| e.static_pad("src"))
            .ok_or("no src")?;
        let src = gst::GhostPad::builder_with_target(&last)
            .map_err(|e| e.to_string())?
            .name("src")
            .build();
        bin.add_pad(&src).map_err(|e| e.to_string())?;
        parent.add(&bin).map_err(|e| e.to_string())?;
        // A resumed track keeps its PID: to a player it is the same stream after a pause, not
        // one more stream of the room (each stall and resume added one).
        let pid = pid.unwrap_or_else(|| self.next_pid.fetch_add(1, Ordering::Relaxed));
        if pid > LAST_PID {
            return Err("the room stream has no PID left".into());
        }
        let link = Arc::new(Mutex::new(Link::default()));
        let admit = {
            let (runner, mux, src, link) = (
                self.runner.clone(),
                self.element.downgrade(),
                src.clone(),
                link.clone(),
            );
            move |opener: gate::Opener| {
                let (mux, src, link) = (mux.clone(), src.clone(), link.clone());
                runner.run(move || {
                    let Some(mux) = mux.upgrade() else {
                        return;
                    };
                    let Ok(mut link) = link.lock() else {
                        return;
                    };
                    if link.ended || link.linked {
                        return;
                    }
                    match link_to_mux(&mux, &src, pid) {
                        Ok(()) => {
                            link.linked = true;
                            opener.open();
                        }
                        Err(e) => gst::warning!(crate::vdoninjasrc::CAT, obj = &mux, "{e}"),
                    }
                });
            }
        };
        gate::install(
            &self.room,
            pid,
            codec.is_video(),
            &last,
            Arc::new(ask_keyframe),
            Arc::new(admit),
        );
        keep_time_monotonic(&last);
        bin.sync_state_with_parent()
            .map_err(|_| "cannot start a TS track")?;
        source
            .link(&sink)
            .map_err(|e| format!("cannot feed the TS track: {e:?}"))?;
        Ok((
            TsTrack {
                bin,
                source: source.clone(),
                sink: sink.upcast(),
                out: src.clone().upcast(),
                pid,
                codec,
                room: self.room.clone(),
                link,
                last_buffer,
            },
            transcode,
        ))
    }
}

impl TsTrack {
    /// Unhooks the track from its participant and ends it (the mux goes on with the others).
    pub fn finish(&self) {
        if let Ok(mut link) = self.link.lock() {
            link.ended = true;
        }
        let _ = self.source.unlink(&self.sink);
        self.sink.send_event(gst::event::Eos::new());
        let pid = self.pid;
        gate::drive(&self.room, |r, now| r.remove(pid, now));
    }

    pub fn bin(&self) -> &gst::Bin {
        &self.bin
    }

    /// Takes the track out of the room stream at once: its muxer pad is released (the next
    /// program map no longer lists it) and its bin goes.
    pub fn withdraw(&self, parent: &gst::Bin) {
        if let Ok(mut link) = self.link.lock() {
            link.ended = true;
        }
        let _ = self.source.unlink(&self.sink);
        let pid = self.pid;
        gate::drive(&self.room, |r, now| r.remove(pid, now));
        if let Some(mux_pad) = self.out.peer() {
            let _ = self.out.unlink(&mux_pad);
            if let Some(mux) = mux_pad.parent_element() {
                mux.release_request_pad(&mux_pad);
            }
        }
        let _ = self.bin.set_state(gst::State::Null);
        let _ = parent.remove(&self.bin);
    }

    /// Linked to the muxer, yet nothing arrived for [`STALL_LIMIT`].
    pub fn stalled(&self) -> bool {
        let linked = self.link.lock().is_ok_and(|l| l.linked && !l.ended);
        let idle = clock_ms().saturating_sub(self.last_buffer.load(Ordering::Relaxed));
        linked && idle >= STALL_LIMIT.as_millis() as u64
    }

    /// The participant's pad that fed it, its codec and PID (to feed a new track from when
    /// the media resumes).
    pub fn source(&self) -> (gst::Pad, Codec, u16) {
        (self.source.clone(), self.codec, self.pid)
    }
}

/// Calls `resumed` (once, from the streaming thread) when the next buffer leaves `source`.
pub fn on_next_buffer(source: &gst::Pad, resumed: impl FnOnce() + Send + 'static) {
    let resumed = Mutex::new(Some(resumed));
    source.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        if let Some(f) = resumed.lock().ok().and_then(|mut f| f.take()) {
            f();
        }
        gst::PadProbeReturn::Remove
    });
}

/// Gives `src` the muxer pad of PID `pid` (mpegtsmux takes the PID from the pad name).
fn link_to_mux(mux: &gst::Element, src: &gst::GhostPad, pid: u16) -> Result<(), String> {
    let templ = mux
        .pad_template("sink_%d")
        .ok_or("mpegtsmux has no sink_%d template")?;
    let pad = mux
        .request_pad(&templ, Some(&format!("sink_{pid}")), None)
        .ok_or_else(|| format!("mpegtsmux gave no pad for PID {pid}"))?;
    src.link(&pad).map(|_| ()).map_err(|e| {
        mux.release_request_pad(&pad);
        format!("mpegtsmux refused a track: {e:?}")
    })
}

fn drop_until_keyframe(pad: &gst::Pad) {
    pad.add_probe(gst::PadProbeType::BUFFER, |_, info| match info.buffer() {
        Some(b) if b.flags().contains(gst::BufferFlags::DELTA_UNIT) => gst::PadProbeReturn::Handled,
        Some(_) => gst::PadProbeReturn::Remove,
        None => gst::PadProbeReturn::Ok,
    });
}

/// MPEG-TS muxing needs a time stamp on every buffer, never going back. A receiver's lip-sync
/// correction (when the first RTCP sender reports arrive) moves a stream's time back, and
/// GStreamer 1.22's h264parse emits some buffers without a time stamp around key-frame
/// requests (mpegtsmux then stops muxing that track, and with it the room). Such buffers are
/// given the last time stamp until the stream's clock catches up.
fn keep_time_monotonic(pad: &gst::Pad) {
    let last = std::sync::Mutex::new(None::<gst::ClockTime>);
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let Ok(mut last) = last.lock() else {
            return gst::PadProbeReturn::Ok;
        };
        let Some(buf) = info.buffer_mut() else {
            return gst::PadProbeReturn::Ok;
        };
        match (buf.pts().or(buf.dts()), *last) {
            (Some(ts), Some(l)) if ts <= l => {}
            (Some(ts), _) => {
                *last = Some(ts);
                return gst::PadProbeReturn::Ok;
            }
            // Nothing to place it by yet.
            (None, None) => return gst::PadProbeReturn::Handled,
            (None, Some(_)) => {}
        }
        let fixed = last.unwrap_or_default() + gst::ClockTime::from_nseconds(1);
        let b = buf.make_mut();
        b.set_pts(fixed);
        b.set_dts(fixed);
        *last = Some(fixed);
        gst::PadProbeReturn::Ok
    });
}
