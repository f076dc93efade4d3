// SPDX-License-Identifier: MPL-2.0

//! Pads that outlive a publisher's connection. Owns the element's `video_<id>`/`audio_<id>`
//! pads: a pipeline links a sometimes pad once (gst-launch's delayed linking, obs-gstreamer,
//! most applications), so a publisher that reloads, vanishes and comes back, or a connection
//! that we make again after a signaling outage, must continue on the pads the pipeline has.
//!
//! Each pad is a ghost pad of the element whose target is the current connection's branch
//! (a pad of that peer's bin). When the connection goes, the target is cleared and the pad
//! stays, carrying nothing; when a connection for the same stream ID brings a track of the same
//! kind, it becomes the new target. What downstream sees is one stream: the new connection's
//! `stream-start` is replaced by the first one's (unless an encoded pad changes codec: then it
//! is a new stream),
//! its caps event says where the format changed, its segment starts at 0 with buffers in
//! running time, as the first one did (webrtcbin stamps with the pipeline's running time), so
//! running time stays monotonic. An encoded video pad starts again at a key frame.
//!
//! In `stream-id` mode and for stream IDs named in `streams`, pads stay for the element's life.
//! Other room guests keep theirs for `rejoin-grace` seconds; then an EOS ends the downstream
//! branch and the pads go.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::CAT;
use super::imp::VdoNinjaSrc;
use crate::common::codec::Codec;
use crate::protocol::machine::PeerId;

/// One element pad and what feeds it.
pub(crate) struct LastingPad {
    pub pad: gst::GhostPad,
    pub stream_id: String,
    pub video: bool,
    /// What it carried last (a change of encoded codec is a new stream).
    pub codec: Codec,
    /// The connection whose track it carries now.
    pub owner: Option<PeerId>,
    /// Since when it has had no connection.
    pub orphaned: Option<Instant>,
    /// Kept for the element's life (`stream-id` mode, or named in `streams`).
    pub keep: bool,
    /// Drop what comes before the next key frame (set at each return; encoded video only).
    await_key: Arc<AtomicBool>,
    /// Give the next `stream-start` the first connection's stream ID (set at each return).
    same_stream: Arc<AtomicBool>,
}

/// Whether a new pad is to be added to the element, and which pad carries the track.
pub(crate) struct Claimed {
    pub pad: gst::GhostPad,
    pub fresh: bool,
    pub name: String,
}

impl VdoNinjaSrc {
    /// Gives the track `exposed` (a pad of `peer`'s bin) an element pad: the one this stream ID
    /// had for a track of this kind, if it is free, or a new one (not yet added to the
    /// element: the caller adds it once the rest is in place).
    pub(super) fn claim_pad(
        &self,
        peer: PeerId,
        stream_id: &str,
        codec: Codec,
        exposed: &gst::Pad,
    ) -> Result<Claimed, String> {
        let (decode, keep) = {
            let s = self.settings();
            let named = s
                .named_streams()
                .is_some_and(|list| list.iter().any(|x| x == stream_id));
            (s.decode, s.stream_id.is_some() || named)
        };
        let video = codec.is_video();
        let obj = self.obj();
        let mut st = self.state();
        if let Some(l) = st
            .lasting
            .iter_mut()
            .find(|l| l.owner.is_none() && l.stream_id == stream_id && l.video == video)
        {
            let new_stream = !decode && l.codec != codec;
            l.same_stream.store(!new_stream, Ordering::SeqCst);
            l.await_key.store(video && !decode, Ordering::SeqCst);
            l.pad
                .set_target(Some(exposed))
                .map_err(|e| format!("cannot continue on {}: {e}", l.pad.name()))?;
            let away = l.orphaned.take().map(|t| t.elapsed()).unwrap_or_default();
            l.owner = Some(peer);
            l.codec = codec;
            gst::info!(
                CAT,
                imp = self,
                "{}: {stream_id} is back after {:.1} s ({})",
                l.pad.name(),
                away.as_secs_f64(),
                codec.encoding_name()
            );
            return Ok(Claimed {
                pad: l.pad.clone(),
                fresh: false,
                name: l.pad.name().to_string(),
            });
        }
        let kind = if video { "video" } else { "audio" };
        let base = format!("{kind}_{stream_id}");
        let taken =
            |n: &str| obj.static_pad(n).is_some() || st.lasting.iter().any(|l| l.pad.name() == n);
        let mut name = base.clone();
        let mut i = 2;
        while taken(&name) {
            name = format!("{base}_{i}");
            i += 1;
        }
        let templ = obj
            .pad_template(&format!("{kind}_%s"))
            .ok_or("no pad template")?;
        // Active before it is linked to the running track (see `receive::Track::branch`).
        let pad = gst::GhostPad::builder_from_template(&templ)
            .name(name.as_str())
            .build();
        let _ = pad.set_active(true);
        pad.set_target(Some(exposed)).map_err(|e| e.to_string())?;
        let await_key = Arc::new(AtomicBool::new(false));
        let same_stream = Arc::new(AtomicBool::new(false));
        guard(&pad, await_key.clone(), same_stream.clone());
        st.lasting.push(LastingPad {
            pad: pad.clone(),
            stream_id: stream_id.to_string(),
            video,
            codec,
            owner: Some(peer),
            orphaned: None,
            keep,
            await_key,
            same_stream,
        });
        Ok(Claimed {
            pad,
            fresh: true,
            name,
        })
    }

    /// `peer`'s connection is gone: its pads stay, carrying nothing, until it comes back (or,
    /// for a room guest not named in `streams`, until `rejoin-grace` ends them).
    pub(super) fn release_pads(&self, peer: PeerId) {
        let grace = Duration::from_secs(u64::from(self.settings().rejoin_grace));
        let now = Instant::now();
        let mut expire_soon = false;
        {
            let mut st = self.state();
            for l in st.lasting.iter_mut().filter(|l| l.owner == Some(peer)) {
                let _ = l.pad.set_target(None::<&gst::Pad>);
                l.owner = None;
                l.orphaned = Some(now);
                expire_soon |= !l.keep;
                gst::debug!(
                    CAT,
                    imp = self,
                    "{}: waiting for its publisher",
                    l.pad.name()
                );
            }
        }
        if !expire_soon {
            return;
        }
        if grace.is_zero() {
            self.expire_pads();
            return;
        }
        crate::common::driver::after(
            &*self.obj(),
            grace,
            |obj: &super::VdoNinjaSrc| obj.imp().runner(),
            |obj: &super::VdoNinjaSrc| obj.imp().expire_pads(),
        );
    }

    /// Media thread: ends (EOS) and removes the pads of room guests gone past `rejoin-grace`.
    pub(super) fn expire_pads(&self) {
        let grace = Duration::from_secs(u64::from(self.settings().rejoin_grace));
        let gone: Vec<LastingPad> = {
            let mut st = self.state();
            let (gone, kept) = std::mem::take(&mut st.lasting).into_iter().partition(|l| {
                !l.keep && l.owner.is_none() && l.orphaned.is_some_and(|t| t.elapsed() >= grace)
            });
            st.lasting = kept;
            gone
        };
        let obj = self.obj();
        for l in gone {
            gst::info!(
                CAT,
                imp = self,
                "{}: {} did not come back, the pad ends",
                l.pad.name(),
                l.stream_id
            );
            l.pad.push_event(gst::event::Eos::new());
            let _ = l.pad.set_active(false);
            let _ = obj.remove_pad(&l.pad);
        }
    }

    /// The element stops: every pad goes.
    pub(super) fn remove_all_pads(&self) {
        let all = std::mem::take(&mut self.state().lasting);
        let obj = self.obj();
        for l in all {
            let _ = l.pad.set_target(None::<&gst::Pad>);
            let _ = l.pad.set_active(false);
            let _ = obj.remove_pad(&l.pad);
        }
    }
}

/// What keeps a returning connection one stream for downstream: its `stream-start` is replaced
/// by the first connection's (same stream ID: downstream sees the same stream go on), and
/// encoded video waits for a key frame. (Buffers are dropped by returning `Handled`: the binding
/// then releases them; `Drop` makes GStreamer 1.22 unref a null pointer.)
fn guard(pad: &gst::GhostPad, await_key: Arc<AtomicBool>, same_stream: Arc<AtomicBool>) {
    let first_start: std::sync::Mutex<Option<gst::Event>> = std::sync::Mutex::new(None);
    pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
        let Some(gst::PadProbeData::Event(e)) = &mut info.data else {
            return gst::PadProbeReturn::Ok;
        };
        if e.type_() != gst::EventType::StreamStart {
            return gst::PadProbeReturn::Ok;
        }
        let mut first = crate::common::lock(&first_start);
        match first.as_ref() {
            Some(f) if same_stream.swap(false, Ordering::SeqCst) => *e = f.clone(),
            _ => *first = Some(e.clone()),
        }
        gst::PadProbeReturn::Ok
    });
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |pad, info| {
            if !await_key.load(Ordering::Relaxed) {
                return gst::PadProbeReturn::Ok;
            }
            let delta = match &info.data {
                Some(gst::PadProbeData::Buffer(b)) => b.flags(),
                Some(gst::PadProbeData::BufferList(l)) => {
                    l.get(0).map_or(gst::BufferFlags::empty(), |b| b.flags())
                }
                _ => return gst::PadProbeReturn::Ok,
            }
            .contains(gst::BufferFlags::DELTA_UNIT);
            if delta {
                gst::log!(CAT, obj = pad, "waiting for a key frame");
                return gst::PadProbeReturn::Handled;
            }
            await_key.store(false, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        },
    );
}
