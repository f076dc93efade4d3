// SPDX-License-Identifier: MPL-2.0

//! Renditions of `vdoninjasink` (the `renditions` property): extra encodings of raw video at
//! lower sizes and rates, so that one viewer on a narrow link does not set every viewer's
//! picture.
//!
//! Owns: the lower renditions' encoders and tees (fed from a tee of the raw picture, beside the
//! input's own encoder, each encoded once for all its viewers); where each viewer is
//! ([`ladder::Placement`], from its link's estimate); moving a viewer's video branch from one
//! rendition's tee to another's, at a key frame; and each rendition's encoder rate (its own
//! [`RateController`]: the lowest estimate of its viewers, within its cap).
//! With one rendition (the default) none of this runs and the congestion control moves the
//! one encoder as before.

pub mod ladder;

use std::time::Instant;

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::congestion::rate::RateController;
use super::imp::{CAT, VdoNinjaSink};
use super::input::{Params, encode, parse_to_tee, set_bitrate};
use crate::common::codec::Codec;
use ladder::Ladder;

/// One lower rendition of a raw video input.
#[derive(Debug)]
pub struct Rendition {
    pub level: usize,
    pub encoder: gst::Element,
    pub tee: gst::Element,
    /// `queue ! videoscale ! capsfilter ! encoder … ! tee`, in the sink.
    pub elements: Vec<gst::Element>,
    pub width: i32,
    pub height: i32,
    /// The input's own size (rendition 0's).
    pub full: (i32, i32),
    /// Its encoder's rate: the lowest estimate of its viewers, within its cap.
    pub rate: RateController,
}

/// Builds renditions 1.. of `params.renditions` from `raw` (the raw picture's tee) in `bin`:
/// each half the width and height of the one above, at a quarter of its rate.
pub fn build(
    bin: &gst::Bin,
    raw: &gst::Element,
    pad_name: &str,
    caps: &gst::StructureRef,
    codec: Codec,
    params: &Params,
) -> Result<Vec<Rendition>, String> {
    let (Ok(width), Ok(height)) = (caps.get::<i32>("width"), caps.get::<i32>("height")) else {
        return Err("raw video without a picture size".into());
    };
    let ladder = Ladder {
        levels: params.renditions.min(ladder::MAX_LEVELS),
        top: params.video_kbps,
        floor: params.min_kbps,
    };
    let mut out = Vec::new();
    for level in 1..ladder.levels {
        // Even sizes (4:2:0), no smaller than 16 pixels.
        let w = ((width >> level) & !1).max(16);
        let h = ((height >> level) & !1).max(16);
        let prefix = format!("{pad_name}-r{level}");
        let n = |what: &str| format!("{prefix}-{what}");
        let make = |f: &str, name: String| crate::common::elements::make(f, Some(&name));
        let queue = make("queue", n("queue"))?;
        // A rendition that falls behind drops pictures, it never holds the others back.
        queue.set_property("max-size-buffers", 2u32);
        queue.set_property_from_str("leaky", "downstream");
        let scale = make("videoscale", n("scale"))?;
        let size = make("capsfilter", n("size"))?;
        size.set_property(
            "caps",
            gst::Caps::builder("video/x-raw")
                .field("width", w)
                .field("height", h)
                .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
                .build(),
        );
        let params = Params {
            video_kbps: ladder.nominal(level),
            ..params.clone()
        };
        let (encoder, filters) = encode(codec, &prefix, &params)?;
        let (tail, tee) = parse_to_tee(codec, &prefix)?;
        let mut elements = vec![queue, scale, size, encoder.clone()];
        elements.extend(filters);
        elements.extend(tail);
        bin.add_many(&elements).map_err(|e| e.to_string())?;
        gst::Element::link_many(&elements)
            .map_err(|_| format!("cannot link rendition {level} of {pad_name}"))?;
        raw.link(&elements[0])
            .map_err(|_| format!("cannot feed rendition {level} of {pad_name}"))?;
        out.push(Rendition {
            level,
            encoder,
            tee,
            elements,
            width: w,
            height: h,
            full: (width, height),
            rate: RateController::new(
                ladder.nominal(level),
                ladder.floor.min(ladder.cap(level)),
                ladder.cap(level),
            ),
        });
    }
    Ok(out)
}

impl VdoNinjaSink {
    /// Media thread, each congestion tick when there are lower renditions: moves each viewer to
    /// the rendition its link carries, then each rendition's encoder to the lowest estimate of
    /// its viewers. Rendition 0's encoder is left to the caller (`move_encoder`) with the
    /// estimate of its own viewers, which this returns.
    pub(super) fn place_viewers(&self, ladder: &Ladder, now: Instant) -> Option<(u32, String)> {
        let mut guard = self.state();
        let st = &mut *guard;
        let video_kbps = st.video_kbps;
        let chain = st
            .tracks
            .iter_mut()
            .filter_map(|t| t.chain.as_mut())
            .find(|c| c.codec.is_video() && !c.renditions.is_empty())?;
        // What each rendition sends now: what its viewers' links have been carrying.
        let sent: Vec<u32> = std::iter::once(video_kbps)
            .chain(chain.renditions.iter().map(|r| r.rate.current()))
            .collect();
        for v in st.viewers.values_mut() {
            let from = v.placement.level;
            let shown = sent.get(from).copied().unwrap_or(0);
            if let Some(to) = v.placement.update(v.link.video, shown, ladder, now)
                && to != from
            {
                gst::info!(
                    CAT,
                    imp = self,
                    "viewer {} to rendition {to} (video share of its link {:?} kbit/s)",
                    v.uuid,
                    v.link.video
                );
                if let Err(e) = v.switch_video(chain, to) {
                    gst::warning!(CAT, imp = self, "viewer {}: {e}", v.uuid);
                }
            }
        }
        // The lowest estimate on each rendition, of the viewers that watch it and are not
        // about to leave it.
        let mut lowest: Vec<Option<(u32, String)>> = vec![None; chain.levels()];
        for v in st
            .viewers
            .values()
            .filter(|v| v.want_video && v.video_kbps != Some(0))
        {
            let level = v.placement.level.min(chain.levels() - 1);
            let Some(e) = v.link.video else { continue };
            if !ladder.leaving(level, e) && lowest[level].as_ref().is_none_or(|(l, _)| e < *l) {
                lowest[level] = Some((e, v.uuid.clone()));
            }
        }
        for r in &mut chain.renditions {
            let cap = ladder.cap(r.level);
            r.rate.set_limits(ladder.floor.min(cap), cap);
            let estimate = lowest[r.level].as_ref().map(|(e, _)| *e);
            // Without viewers a rendition rests at its own rate.
            let ceiling = if estimate.is_some() {
                cap
            } else {
                ladder.nominal(r.level)
            };
            if let Some(kbps) = r.rate.update(ceiling, estimate, now) {
                gst::debug!(CAT, imp = self, "rendition {} at {kbps} kbit/s", r.level);
                set_bitrate(&r.encoder, kbps);
            }
        }
        lowest.into_iter().next().flatten()
    }

    /// The renditions' rates, for `stats`: (level, width, height, kbit/s, viewers).
    pub(super) fn rendition_stats(&self) -> Vec<(usize, i32, i32, u32, usize)> {
        let st = self.state();
        let Some(chain) = st.video_chain().filter(|c| !c.renditions.is_empty()) else {
            return Vec::new();
        };
        let on = |level: usize| {
            st.viewers
                .values()
                .filter(|v| v.placement.level == level)
                .count()
        };
        let (w, h) = chain.renditions[0].full;
        let mut out = vec![(0, w, h, st.video_kbps, on(0))];
        for r in &chain.renditions {
            out.push((r.level, r.width, r.height, r.rate.current(), on(r.level)));
        }
        out
    }
}
