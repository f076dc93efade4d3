// SPDX-License-Identifier: MPL-2.0

//! What keeps each slot's stream acceptable to mpegtsmux 1.22: every slot has caps before the
//! first write, keeps its first caps, and its running time never goes back.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use gst::prelude::*;

/// mpegtsmux makes every stream when it first writes, and fails on a pad that has no caps yet:
/// the placeholder's first buffers wait (at most [`CAPS_WAIT`]) at the selectors until every
/// slot stream has its caps there (a selector passes caps on with its first buffer).
pub(super) struct CapsReady {
    total: usize,
    with_caps: Mutex<usize>,
    changed: std::sync::Condvar,
}

const CAPS_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

impl CapsReady {
    pub(super) fn new(total: usize) -> Self {
        Self {
            total,
            with_caps: Mutex::new(0),
            changed: std::sync::Condvar::new(),
        }
    }

    pub(super) fn watch(self: &Arc<Self>, pad: &gst::Pad) {
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
pub(super) fn keep_first_caps(pad: &gst::Pad) {
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

pub(super) fn drop_until_keyframe(pad: &gst::Pad) {
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
pub(in crate::vdoninjasrc) fn keep_time_monotonic(pad: &gst::Pad) {
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
