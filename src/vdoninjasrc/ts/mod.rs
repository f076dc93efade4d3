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
//! * [`placeholder`]: the placeholder media, made once for every slot;
//! * [`track`]: one guest's track in its slot (transcoding, the switch in and out);
//! * [`guards`]: what keeps each slot's stream acceptable to mpegtsmux (caps at the start,
//!   first caps kept, running time never back).
//!
//! A slot switches to its guest at the guest's first key frame (audio: its first packet) and
//! back to the placeholder when the guest leaves or delivers nothing for [`STALL_LIMIT`]
//! (mpegtsmux waits for data on every stream it has); the placeholder's frames are all key
//! frames, so that switch is immediate. Each slot keeps the caps it started with (H.264 and
//! Opus carry their parameters in band), and its time stamps never go back.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use gst::prelude::*;

pub(super) mod guards;
mod placeholder;
mod track;

use crate::common::codec::Codec;
use crate::protocol::machine::PeerId;
use guards::{CapsReady, keep_first_caps, keep_time_monotonic};
use placeholder::Placeholder;
pub use track::TsTrack;
use track::{build_track, switch_in};

/// A guest in a slot that delivers nothing this long gives its stream back to the placeholder
/// (mpegtsmux 1.22 waits for data on every stream, so one silent camera would stop the whole
/// room); its media takes the slot again when it resumes.
pub const STALL_LIMIT: std::time::Duration = std::time::Duration::from_millis(700);

/// The first elementary stream PID (mpegtsmux's own choice too): slot `i` has video on
/// `FIRST_PID + 2i` and audio on `FIRST_PID + 2i + 1`.
const FIRST_PID: u16 = 0x41;

/// Milliseconds since the first call (a monotonic clock shared by probes and the watchdog).
pub(super) fn clock_ms() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
}

pub(super) fn make(factory: &str) -> Result<gst::Element, String> {
    crate::common::elements::make(factory, None)
}

/// One stream of a slot: an `input-selector` between the placeholder and a guest, feeding one
/// muxer pad.
#[derive(Debug)]
pub(super) struct SlotStream {
    pub(super) selector: gst::Element,
    placeholder: gst::Pad,
}

impl SlotStream {
    pub(super) fn to_placeholder(&self) {
        self.selector
            .set_property("active-pad", Some(&self.placeholder));
    }
}

/// Who has each slot, and how many of its tracks are in it.
#[derive(Debug, Default)]
pub(super) struct Owners(Vec<Option<(PeerId, usize)>>);

/// The room's muxer.
#[derive(Clone, Debug)]
pub struct RoomMux {
    element: gst::Element,
    /// (video, audio) per slot.
    slots: Arc<Vec<(Arc<SlotStream>, Arc<SlotStream>)>>,
    owners: Arc<Mutex<Owners>>,
    placeholder: gst::Bin,
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
        // On any failure from here, the track leaves nothing behind: its slot, selector pad
        // and bin go.
        let undo = |guest: Option<&gst::Pad>, e: String| {
            if let Some(g) = guest {
                let _ = src.unlink(g);
                stream.selector.release_request_pad(g);
            }
            let _ = bin.set_state(gst::State::Null);
            let _ = parent.remove(&bin);
            release_slot(&self.owners, slot);
            e
        };
        let guest = stream
            .selector
            .request_pad_simple("sink_%u")
            .ok_or_else(|| undo(None, "input-selector gave no pad".into()))?;
        src.link(&guest).map_err(|e| {
            undo(
                Some(&guest),
                format!("cannot put a track in its slot: {e:?}"),
            )
        })?;
        switch_in(&guest, &stream, codec.is_video(), slot, ask_keyframe);
        bin.sync_state_with_parent()
            .map_err(|_| undo(Some(&guest), "cannot start a TS track".into()))?;
        source
            .link(&sink)
            .map_err(|e| undo(Some(&guest), format!("cannot feed the TS track: {e:?}")))?;
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

pub(super) fn release_slot(owners: &Mutex<Owners>, slot: usize) {
    let mut o = crate::common::lock(owners);
    if let Some(entry) = o.0.get_mut(slot) {
        *entry = match *entry {
            Some((p, n)) if n > 1 => Some((p, n - 1)),
            _ => None,
        };
    }
}
