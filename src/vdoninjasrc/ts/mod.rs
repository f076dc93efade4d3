// SPDX-License-Identifier: MPL-2.0

//! The room stream: everything behind the always `src` pad, as MPEG-TS. It has a fixed number
//! of guest slots (`ts-slots`), each a video and an audio stream whose PIDs are all in the
//! very first program map, and the map never changes: a slot carries placeholder media (black
//! H.264, silent Opus) until a guest takes it, while the guest's media stops, and after it
//! left. H.264 and Opus go in as they are; other video is transcoded to H.264.
//!
//! Why slots: GStreamer 1.22's tsdemux starts a new program on every program-map change, and
//! `decodebin3`/`playbin3`, `parsebin` and `gst-discoverer-1.0` follow only the first one: a
//! map that grew as guests joined left them with the first guest's audio (ffmpeg, VLC and
//! `decodebin` read every version). With one map from the start, every reader sees every
//! slot.
//!
//! * [`placeholder`]: the placeholder media, made once for every slot.
//!
//! A slot switches to its guest at the guest's first key frame (audio: its first packet) and
//! back to the placeholder when the guest leaves or delivers nothing for [`STALL_LIMIT`]
//! (mpegtsmux waits for data on every stream it has); the placeholder's frames are all key
//! frames, so that switch is immediate. Each slot keeps the caps it started with (H.264 and
//! Opus carry their parameters in band), and its time stamps never go back.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use gst::prelude::*;

mod placeholder;

use crate::common::codec::{Codec, best_decoder};
use crate::protocol::machine::PeerId;
use placeholder::Placeholder;

/// A guest in a slot that delivers nothing this long gives its stream back to the placeholder
/// (mpegtsmux 1.22 waits for data on every stream, so one silent camera would stop the whole
/// room); its media takes the slot again when it resumes.
pub const STALL_LIMIT: std::time::Duration = std::time::Duration::from_millis(700);

/// The first elementary stream PID (mpegtsmux's own choice too): slot `i` has video on
/// `FIRST_PID + 2i` and audio on `FIRST_PID + 2i + 1`.
const FIRST_PID: u16 = 0x41;

/// Milliseconds since the first call (a monotonic clock shared by probes and the watchdog).
fn clock_ms() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
}

fn make(factory: &str) -> Result<gst::Element, String> {
    crate::common::elements::make(factory, None)
}

/// One stream of a slot: an `input-selector` between the placeholder and a guest, feeding one
/// muxer pad.
#[derive(Debug)]
struct SlotStream {
    selector: gst::Element,
    placeholder: gst::Pad,
}

impl SlotStream {
    fn to_placeholder(&self) {
        self.selector
            .set_property("active-pad", Some(&self.placeholder));
    }
}

/// Who has each slot, and how many of its tracks are in it.
#[derive(Debug, Default)]
struct Owners(Vec<Option<(PeerId, usize)>>);

/// The room's muxer.
#[derive(Clone, Debug)]
pub struct RoomMux {
    element: gst::Element,
    /// (video, audio) per slot.
    slots: Arc<Vec<(Arc<SlotStream>, Arc<SlotStream>)>>,
    owners: Arc<Mutex<Owners>>,
    placeholder: gst::Bin,
}

/// One participant track in a slot.
pub struct TsTrack {
    bin: gst::Bin,
    source: gst::Pad,
    sink: gst::Pad,
    /// Its output, linked to the slot's selector.
    out: gst::Pad,
    /// The selector pad it is linked to.
    guest: gst::Pad,
    stream: Arc<SlotStream>,
    slot: usize,
    peer: PeerId,
    owners: Arc<Mutex<Owners>>,
    codec: Codec,
    /// When its last buffer arrived (ms on [`clock_ms`]).
    last_buffer: Arc<AtomicU64>,
}

impl RoomMux {
    /// Creates the muxer, its `slots` and the placeholder inside `parent`. `delay` is the
    /// receivers' jitter-buffer latency: guests' media runs that far behind the placeholder's,
    /// which is moved back as much, so that a slot's time goes on smoothly when a guest takes it.
    pub fn new(parent: &gst::Bin, slots: u32, delay: gst::ClockTime) -> Result<Self, String> {
        let element = gst::ElementFactory::make("mpegtsmux")
            .name("roommux")
            .build()
            .map_err(|_| "the GStreamer element mpegtsmux is not installed")?;
        // Its clock starts at the first buffer, which waits until every stream has its caps
        // (see `CapsReady`): never a first write before that.
        element.set_property_from_str("start-time-selection", "first");
        // ...and the streams' first buffers, released together, all make it into the first write.
        element.set_property("latency", 200_000_000u64);
        parent.add(&element).map_err(|e| e.to_string())?;
        let placeholder = Placeholder::new(parent)?;
        let templ = element
            .pad_template("sink_%d")
            .ok_or("mpegtsmux has no sink_%d template")?;
        let ready = Arc::new(CapsReady::new(2 * slots as usize));
        let mut all = Vec::new();
        for i in 0..slots as u16 {
            let mut pair = Vec::new();
            for (video, pid) in [(true, FIRST_PID + 2 * i), (false, FIRST_PID + 2 * i + 1)] {
                let selector = make("input-selector")?;
                // Inactive inputs are dropped, not held: a guest's other consumers go on.
                selector.set_property("sync-streams", false);
                parent.add(&selector).map_err(|e| e.to_string())?;
                let ph = placeholder.branch(video)?;
                ph.set_offset(-(delay.nseconds() as i64));
                let ph_sink = selector
                    .request_pad_simple("sink_%u")
                    .ok_or("input-selector gave no pad")?;
                ph.link(&ph_sink)
                    .map_err(|e| format!("cannot link the placeholder: {e:?}"))?;
                selector.set_property("active-pad", Some(&ph_sink));
                ready.watch(&ph_sink);
                let out = selector.static_pad("src").ok_or("no src")?;
                keep_first_caps(&out);
                keep_time_monotonic(&out);
                // mpegtsmux takes the PID from the pad name.
                let mux_pad = element
                    .request_pad(&templ, Some(&format!("sink_{pid}")), None)
                    .ok_or_else(|| format!("mpegtsmux gave no pad for PID {pid}"))?;
                out.link(&mux_pad)
                    .map_err(|e| format!("mpegtsmux refused a slot: {e:?}"))?;
                pair.push(Arc::new(SlotStream {
                    selector,
                    placeholder: ph_sink,
                }));
            }
            let audio = pair.pop().ok_or("no audio stream")?;
            let video = pair.pop().ok_or("no video stream")?;
            all.push((video, audio));
        }
        Ok(Self {
            element,
            owners: Arc::new(Mutex::new(Owners(vec![None; all.len()]))),
            slots: Arc::new(all),
            placeholder: placeholder.bin().clone(),
        })
    }

    pub fn element(&self) -> &gst::Element {
        &self.element
    }

    /// Ends the stream: every slot sends EOS to the muxer (placeholders included).
    pub fn end(&self) {
        for pad in self.element.sink_pads() {
            pad.send_event(gst::event::Eos::new());
        }
    }

    /// Everything it added to the element besides the muxer (selectors, placeholder).
    pub fn parts(&self) -> Vec<gst::Element> {
        let mut v: Vec<gst::Element> = vec![self.placeholder.clone().upcast()];
        for (video, audio) in self.slots.iter() {
            v.push(video.selector.clone());
            v.push(audio.selector.clone());
        }
        v
    }

    /// Puts a track (from a peer-bin pad) in `peer`'s slot (taking a free one for a new
    /// participant). Returns whether it had to be transcoded. `ask_keyframe` asks the
    /// publisher for a key frame by the protocol.
    pub fn add_track(
        &self,
        parent: &gst::Bin,
        peer: PeerId,
        codec: Codec,
        source: &gst::Pad,
        ask_keyframe: impl Fn() + Send + Sync + 'static,
    ) -> Result<(TsTrack, bool), String> {
        static N: AtomicU32 = AtomicU32::new(0);
        let slot = {
            let mut o = crate::common::lock(&self.owners);
            let i = o
                .0
                .iter()
                .position(|s| s.is_some_and(|(p, _)| p == peer))
                .or_else(|| o.0.iter().position(Option::is_none))
                .ok_or_else(|| format!("its {} slots are taken (ts-slots)", self.slots.len()))?;
            let n = o.0[i].map_or(0, |(_, n)| n);
            o.0[i] = Some((peer, n + 1));
            i
        };
        let stream = if codec.is_video() {
            self.slots[slot].0.clone()
        } else {
            self.slots[slot].1.clone()
        };
        let built = build_track(parent, peer, codec, N.fetch_add(1, Ordering::Relaxed));
        let (bin, sink, src, last_buffer, transcode) = match built {
            Ok(b) => b,
            Err(e) => {
                release_slot(&self.owners, slot);
                return Err(e);
            }
        };
        let guest = match stream.selector.request_pad_simple("sink_%u") {
            Some(p) => p,
            None => {
                release_slot(&self.owners, slot);
                return Err("input-selector gave no pad".into());
            }
        };
        src.link(&guest)
            .map_err(|e| format!("cannot put a track in its slot: {e:?}"))?;
        switch_in(&guest, &stream, codec.is_video(), slot, ask_keyframe);
        bin.sync_state_with_parent()
            .map_err(|_| "cannot start a TS track")?;
        source
            .link(&sink)
            .map_err(|e| format!("cannot feed the TS track: {e:?}"))?;
        Ok((
            TsTrack {
                bin,
                source: source.clone(),
                sink,
                out: src,
                guest,
                stream,
                slot,
                peer,
                owners: self.owners.clone(),
                codec,
                last_buffer,
            },
            transcode,
        ))
    }
}

fn release_slot(owners: &Mutex<Owners>, slot: usize) {
    let mut o = crate::common::lock(owners);
    if let Some(entry) = o.0.get_mut(slot) {
        *entry = match *entry {
            Some((p, n)) if n > 1 => Some((p, n - 1)),
            _ => None,
        };
    }
}

type Built = (gst::Bin, gst::Pad, gst::Pad, Arc<AtomicU64>, bool);

/// A track's bin: a queue, and for video other than H.264 a transcoder to it.
fn build_track(parent: &gst::Bin, peer: PeerId, codec: Codec, n: u32) -> Result<Built, String> {
    // Named after its peer: an error inside it fails that peer alone (`peer_of`).
    let bin = gst::Bin::with_name(&format!("{peer}-ts{n}"));
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
    Ok((bin, sink.upcast(), src.upcast(), last_buffer, transcode))
}

/// The slot takes the guest's media at its first key frame (audio: its first packet); while
/// the guest waits for one, it is asked for one, at most once a second.
fn switch_in(
    guest: &gst::Pad,
    stream: &Arc<SlotStream>,
    video: bool,
    slot: usize,
    ask_keyframe: impl Fn() + Send + Sync + 'static,
) {
    let selector = stream.selector.downgrade();
    let last_ask = AtomicU64::new(0);
    guest.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(selector) = selector.upgrade() else {
            return gst::PadProbeReturn::Ok;
        };
        let active = selector.property::<Option<gst::Pad>>("active-pad");
        if active.as_ref() == Some(pad) {
            return gst::PadProbeReturn::Ok;
        }
        let key = info
            .buffer()
            .is_some_and(|b| !b.flags().contains(gst::BufferFlags::DELTA_UNIT));
        if video && !key {
            let now = clock_ms() + 1000;
            if now.saturating_sub(last_ask.load(Ordering::Relaxed)) >= 1000 {
                last_ask.store(now, Ordering::Relaxed);
                ask_keyframe();
            }
            return gst::PadProbeReturn::Ok;
        }
        gst::debug!(
            crate::vdoninjasrc::CAT,
            obj = pad,
            "slot {slot}: the guest's {} is on",
            if video { "video" } else { "audio" }
        );
        selector.set_property("active-pad", Some(pad));
        gst::PadProbeReturn::Ok
    });
}

impl TsTrack {
    /// Takes the track out of its slot (the placeholder goes on) and ends it.
    pub fn finish(&self) {
        let _ = self.source.unlink(&self.sink);
        self.leave_slot();
        self.sink.send_event(gst::event::Eos::new());
    }

    fn leave_slot(&self) {
        let active = self
            .stream
            .selector
            .property::<Option<gst::Pad>>("active-pad");
        if active.as_ref() == Some(&self.guest) {
            self.stream.to_placeholder();
        }
        let _ = self.out.unlink(&self.guest);
        self.stream.selector.release_request_pad(&self.guest);
        release_slot(&self.owners, self.slot);
        gst::debug!(
            crate::vdoninjasrc::CAT,
            "slot {}: {} left it",
            self.slot,
            self.peer
        );
    }

    pub fn bin(&self) -> &gst::Bin {
        &self.bin
    }

    /// Its slot carries it, yet nothing arrived for [`STALL_LIMIT`].
    pub fn stalled(&self) -> bool {
        let on = self
            .stream
            .selector
            .property::<Option<gst::Pad>>("active-pad")
            .is_some_and(|p| p == self.guest);
        let idle = clock_ms().saturating_sub(self.last_buffer.load(Ordering::Relaxed));
        on && idle >= STALL_LIMIT.as_millis() as u64
    }

    /// Gives the slot back to the placeholder until the track's media resumes.
    pub fn rest(&self) {
        self.stream.to_placeholder();
    }

    pub fn codec(&self) -> Codec {
        self.codec
    }
}

/// mpegtsmux makes every stream when it first writes, and fails on a pad that has no caps yet:
/// the placeholder's first buffers wait (at most [`CAPS_WAIT`]) at the selectors until every
/// slot stream has its caps there (a selector passes caps on with its first buffer).
struct CapsReady {
    total: usize,
    with_caps: Mutex<usize>,
    changed: std::sync::Condvar,
}

const CAPS_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

impl CapsReady {
    fn new(total: usize) -> Self {
        Self {
            total,
            with_caps: Mutex::new(0),
            changed: std::sync::Condvar::new(),
        }
    }

    fn watch(self: &Arc<Self>, pad: &gst::Pad) {
        let me = self.clone();
        pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |pad, info| {
            if matches!(
                info.event().map(|e| e.view()),
                Some(gst::EventView::Caps(_))
            ) && pad.current_caps().is_none()
            {
                let mut n = crate::common::lock(&me.with_caps);
                *n += 1;
                gst::debug!(
                    crate::vdoninjasrc::CAT,
                    obj = pad,
                    "caps: {} of {}",
                    *n,
                    me.total
                );
                me.changed.notify_all();
            }
            gst::PadProbeReturn::Ok
        });
        let me = self.clone();
        pad.add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
            move |_, info| {
                // Data: buffers, and GAP events (an aggregator takes them as data too).
                if let Some(e) = info.event()
                    && e.type_() != gst::EventType::Gap
                {
                    return gst::PadProbeReturn::Ok;
                }
                let deadline = std::time::Instant::now() + CAPS_WAIT;
                let mut n = crate::common::lock(&me.with_caps);
                gst::debug!(
                    crate::vdoninjasrc::CAT,
                    "first buffer: {} of {} have caps",
                    *n,
                    me.total
                );
                while *n < me.total {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    n = match me.changed.wait_timeout(n, left) {
                        Ok((g, _)) => g,
                        Err(_) => break,
                    };
                }
                gst::PadProbeReturn::Remove
            },
        );
    }
}

/// A slot's stream keeps its first caps: mpegtsmux would announce new caps as a new stream
/// (a new program map), and H.264 and Opus carry what changes (size, profile) in band.
fn keep_first_caps(pad: &gst::Pad) {
    // (A src pad stores a sticky event before its probes see it: a flag, not current_caps.)
    let passed = std::sync::atomic::AtomicBool::new(false);
    pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
        let is_caps = matches!(
            info.event().map(|e| e.view()),
            Some(gst::EventView::Caps(_))
        );
        if is_caps && passed.swap(true, Ordering::AcqRel) {
            return gst::PadProbeReturn::Handled;
        }
        gst::PadProbeReturn::Ok
    });
}

fn drop_until_keyframe(pad: &gst::Pad) {
    pad.add_probe(gst::PadProbeType::BUFFER, |_, info| match info.buffer() {
        Some(b) if b.flags().contains(gst::BufferFlags::DELTA_UNIT) => gst::PadProbeReturn::Handled,
        Some(_) => gst::PadProbeReturn::Remove,
        None => gst::PadProbeReturn::Ok,
    });
}

/// MPEG-TS muxing needs a time stamp on every buffer, its running time never going back. A
/// slot's stream changes source (the placeholder's segment and the guest's differ: compared in
/// running time), a guest's time starts ~200 ms behind the placeholder's (its jitter buffer),
/// a receiver's lip-sync correction moves a stream's time back, and GStreamer 1.22's h264parse
/// emits some buffers without a time stamp around key-frame requests (mpegtsmux would then stop
/// muxing the stream, and with it the room). Such buffers are given the running time just after
/// the last one until the stream's clock catches up.
fn keep_time_monotonic(pad: &gst::Pad) {
    let last = std::sync::Mutex::new(None::<gst::ClockTime>);
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let segment = pad
            .sticky_event::<gst::event::Segment>(0)
            .and_then(|e| e.segment().downcast_ref::<gst::ClockTime>().cloned());
        let Ok(mut last) = last.lock() else {
            return gst::PadProbeReturn::Ok;
        };
        let Some(buf) = info.buffer_mut() else {
            return gst::PadProbeReturn::Ok;
        };
        let rt = buf
            .pts()
            .or(buf.dts())
            .and_then(|ts| segment.as_ref()?.to_running_time(ts));
        match (rt, *last) {
            (Some(rt), Some(l)) if rt <= l => {}
            (Some(rt), _) => {
                *last = Some(rt);
                return gst::PadProbeReturn::Ok;
            }
            // Nothing to place it by yet.
            (None, None) => return gst::PadProbeReturn::Handled,
            (None, Some(_)) => {}
        }
        let fixed_rt = last.unwrap_or_default() + gst::ClockTime::from_nseconds(1);
        let Some(fixed) = segment
            .as_ref()
            .and_then(|s| s.position_from_running_time(fixed_rt))
        else {
            return gst::PadProbeReturn::Handled;
        };
        let b = buf.make_mut();
        b.set_pts(fixed);
        b.set_dts(fixed);
        *last = Some(fixed_rt);
        gst::PadProbeReturn::Ok
    });
}
