// SPDX-License-Identifier: MPL-2.0

//! The room mix (`mix=true`): every guest's video in one picture and every guest's audio in
//! one track, behind the `video_mix` and `audio_mix` pads. Owns a `compositor` and an
//! `audiomixer`, each driven by a live background source (black, silence) so that the mix runs
//! at its frame rate with no guest, and through guests that stall (the aggregators time out
//! and keep a stalled guest's last picture) or leave. Each guest track is a [`MixTrack`]: a bin
//! named after its peer (`leaky queue ! [textoverlay]` for video, `leaky queue` for audio)
//! fed by the guest's decoded branch. [`layout`] says where each picture goes.

pub mod layout;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use gst::prelude::*;

use crate::protocol::machine::PeerId;

/// What the mix makes (the element's `mix-*` properties).
#[derive(Debug, Clone)]
pub struct MixConfig {
    pub width: u32,
    pub height: u32,
    pub framerate: gst::Fraction,
    pub labels: bool,
    /// The latency the aggregators allow a guest at least (their `min-upstream-latency`):
    /// its jitter buffer, the way and decoding. A stalled guest holds the mix this long once.
    pub latency: gst::ClockTime,
}

fn make(factory: &str) -> Result<gst::Element, String> {
    crate::common::elements::make(factory, None)
}

/// One aggregator with its background source and output caps.
#[derive(Debug, Clone)]
struct Mixer {
    aggregator: gst::Element,
    background: gst::Element,
    output: gst::Element,
}

impl Mixer {
    fn new(
        parent: &gst::Bin,
        name: &str,
        aggregator: &str,
        background: gst::Element,
        caps: gst::Caps,
        latency: gst::ClockTime,
    ) -> Result<Self, String> {
        let agg = gst::ElementFactory::make(aggregator)
            .name(name)
            .build()
            .map_err(|_| format!("the GStreamer element {aggregator} is not installed"))?;
        // Guests join later than the latency is first computed: wait for them as if they were
        // there from the start.
        agg.set_property("min-upstream-latency", latency.nseconds());
        let bg_caps = make("capsfilter")?;
        bg_caps.set_property("caps", &caps);
        let output = make("capsfilter")?;
        output.set_property("caps", &caps);
        let chain = [&background, &bg_caps, &agg, &output];
        parent.add_many(chain).map_err(|e| e.to_string())?;
        gst::Element::link_many([&background, &bg_caps])
            .map_err(|_| format!("cannot link the {name} background"))?;
        let pad = agg
            .request_pad_simple("sink_%u")
            .ok_or_else(|| format!("{aggregator} gave no pad"))?;
        bg_caps
            .static_pad("src")
            .ok_or("no src pad")?
            .link(&pad)
            .map_err(|e| format!("cannot link the {name} background: {e:?}"))?;
        agg.link(&output)
            .map_err(|_| format!("cannot link {aggregator}'s output"))?;
        Ok(Self {
            aggregator: agg,
            background,
            output,
        })
    }

    fn src(&self) -> Option<gst::Pad> {
        self.output.static_pad("src")
    }

    fn elements(&self) -> Vec<gst::Element> {
        let mut v = vec![self.background.clone()];
        if let Some(bg_caps) = self
            .background
            .static_pad("src")
            .and_then(|p| p.peer())
            .and_then(|p| p.parent_element())
        {
            v.push(bg_caps);
        }
        v.extend([self.aggregator.clone(), self.output.clone()]);
        v
    }
}

/// The video tiles in join order with their pictures' aspect ratio once known, shared with
/// the tracks' caps probes.
#[derive(Debug, Default)]
struct Tiles {
    pads: Vec<(gst::Pad, Option<f64>)>,
}

/// The room's mix.
#[derive(Debug, Clone)]
pub struct RoomMix {
    cfg: MixConfig,
    video: Option<Mixer>,
    audio: Option<Mixer>,
    tiles: Arc<Mutex<Tiles>>,
}

/// One guest track in the mix.
#[derive(Debug, Clone)]
pub struct MixTrack {
    bin: gst::Bin,
    source: gst::Pad,
    sink: gst::Pad,
    agg_pad: gst::Pad,
    aggregator: gst::Element,
    overlay: Option<gst::Element>,
}

impl RoomMix {
    /// Builds the video mix, the audio mix or both inside `parent`.
    pub fn new(
        parent: &gst::Bin,
        cfg: MixConfig,
        video: bool,
        audio: bool,
    ) -> Result<Self, String> {
        let video = if video {
            let bg = make("videotestsrc")?;
            bg.set_property("is-live", true);
            bg.set_property_from_str("pattern", "black");
            // I420: opaque guests are copied into it line by line; a format with alpha would
            // make the compositor blend every pixel (AYUV took ~4x the CPU).
            let caps = gst::Caps::builder("video/x-raw")
                .field("format", "I420")
                .field("width", cfg.width as i32)
                .field("height", cfg.height as i32)
                .field("framerate", cfg.framerate)
                .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
                .build();
            let m = Mixer::new(parent, "videomix", "compositor", bg, caps, cfg.latency)?;
            m.aggregator.set_property_from_str("background", "black");
            Some(m)
        } else {
            None
        };
        let audio = if audio {
            let bg = make("audiotestsrc")?;
            bg.set_property("is-live", true);
            bg.set_property_from_str("wave", "silence");
            // 20 ms buffers, as Opus sends.
            bg.set_property("samplesperbuffer", 960i32);
            let caps = gst::Caps::builder("audio/x-raw")
                .field("rate", 48_000i32)
                .field("channels", 2i32)
                .build();
            Some(Mixer::new(
                parent,
                "audiomix",
                "audiomixer",
                bg,
                caps,
                cfg.latency,
            )?)
        } else {
            None
        };
        Ok(Self {
            cfg,
            video,
            audio,
            tiles: Arc::default(),
        })
    }

    pub fn video_src(&self) -> Option<gst::Pad> {
        self.video.as_ref().and_then(Mixer::src)
    }

    pub fn audio_src(&self) -> Option<gst::Pad> {
        self.audio.as_ref().and_then(Mixer::src)
    }

    /// Whether this mix takes tracks of this kind.
    pub fn wants(&self, video: bool) -> bool {
        if video {
            self.video.is_some()
        } else {
            self.audio.is_some()
        }
    }

    /// Adds a guest's decoded track (a pad on its peer bin) to the mix.
    pub fn add_track(
        &self,
        parent: &gst::Bin,
        peer: PeerId,
        video: bool,
        source: &gst::Pad,
        label: Option<&str>,
    ) -> Result<MixTrack, String> {
        static N: AtomicU32 = AtomicU32::new(0);
        let mixer = if video { &self.video } else { &self.audio };
        let mixer = mixer.as_ref().ok_or("no mix of this kind")?;
        // Named after its peer: an error inside it fails that peer alone (`peer_of`).
        let bin = gst::Bin::with_name(&format!("{peer}-mix{}", N.fetch_add(1, Ordering::Relaxed)));
        let queue = make("queue")?;
        // Never hold the guest's other consumers back (its recording, its pads).
        queue.set_property_from_str("leaky", "downstream");
        queue.set_property("max-size-buffers", 0u32);
        queue.set_property("max-size-bytes", 0u32);
        queue.set_property("max-size-time", 1_000_000_000u64);
        let mut chain = vec![queue.clone()];
        let overlay = if video && self.cfg.labels {
            match make("textoverlay") {
                Ok(o) => {
                    o.set_property_from_str("valignment", "bottom");
                    o.set_property_from_str("halignment", "center");
                    // Scaled with the picture (auto-resize), then with its tile: about 1/13 of its height.
                    o.set_property("font-desc", "Sans Bold 36");
                    o.set_property("shaded-background", true);
                    o.set_property("text", label.unwrap_or_default());
                    chain.push(o.clone());
                    Some(o)
                }
                Err(e) => {
                    gst::info!(crate::vdoninjasrc::CAT, "no labels in the mix: {e}");
                    None
                }
            }
        } else {
            None
        };
        bin.add_many(&chain).map_err(|e| e.to_string())?;
        gst::Element::link_many(&chain).map_err(|_| "cannot link a mix track")?;
        let qsink = queue.static_pad("sink").ok_or("no sink")?;
        let sink = crate::common::elements::ghost(&bin, &qsink, "sink")?;
        let last = chain
            .last()
            .and_then(|e| e.static_pad("src"))
            .ok_or("no src")?;
        let src = crate::common::elements::ghost(&bin, &last, "src")?;
        parent.add(&bin).map_err(|e| e.to_string())?;
        let agg_pad = mixer
            .aggregator
            .request_pad_simple("sink_%u")
            .ok_or("the mixer gave no pad")?;
        if video {
            agg_pad.set_property_from_str("sizing-policy", "keep-aspect-ratio");
            agg_pad.set_property("zorder", 1u32);
            // Hidden until it has its tile.
            agg_pad.set_property("alpha", 0.0f64);
        }
        let cleanup = |e: String| {
            mixer.aggregator.release_request_pad(&agg_pad);
            let _ = parent.remove(&bin);
            e
        };
        src.link(&agg_pad)
            .map_err(|e| cleanup(format!("the mixer refused a track: {e:?}")))?;
        bin.sync_state_with_parent()
            .map_err(|_| cleanup("cannot start a mix track".into()))?;
        source
            .link(&sink)
            .map_err(|e| cleanup(format!("cannot feed the mix: {e:?}")))?;
        if video {
            crate::common::lock(&self.tiles)
                .pads
                .push((agg_pad.clone(), None));
            self.relayout();
            // The grid's shape follows the pictures' once their caps are known.
            let (tiles, cfg, pad) = (
                Arc::downgrade(&self.tiles),
                self.cfg.clone(),
                agg_pad.clone(),
            );
            qsink.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
                if let Some(gst::EventView::Caps(c)) = info.event().map(|e| e.view())
                    && let Some(tiles) = tiles.upgrade()
                {
                    let aspect = aspect_of(c.caps());
                    let mut t = crate::common::lock(&tiles);
                    if let Some(entry) = t.pads.iter_mut().find(|(p, _)| p == &pad)
                        && entry.1 != aspect
                    {
                        entry.1 = aspect;
                        apply(&t, &cfg);
                    }
                }
                gst::PadProbeReturn::Ok
            });
        }
        Ok(MixTrack {
            bin,
            source: source.clone(),
            sink: sink.upcast(),
            agg_pad,
            aggregator: mixer.aggregator.clone(),
            overlay,
        })
    }

    /// Takes a guest's track out of the mix; the others are laid out again.
    pub fn remove(&self, parent: &gst::Bin, t: MixTrack) {
        let _ = t.source.unlink(&t.sink);
        crate::common::lock(&self.tiles)
            .pads
            .retain(|(p, _)| p != &t.agg_pad);
        let _ = t.bin.set_state(gst::State::Null);
        t.aggregator.release_request_pad(&t.agg_pad);
        let _ = parent.remove(&t.bin);
        self.relayout();
    }

    /// Ends the mix (EOS): the backgrounds and every track end, so the aggregators do.
    pub fn end(&self, tracks: &[MixTrack]) {
        for t in tracks {
            let _ = t.source.unlink(&t.sink);
            t.sink.send_event(gst::event::Eos::new());
        }
        for m in self.video.iter().chain(&self.audio) {
            m.background.send_event(gst::event::Eos::new());
        }
    }

    /// Stops the mix and takes it out of `parent`.
    pub fn shutdown(&self, parent: &gst::Bin) {
        for m in self.video.iter().chain(&self.audio) {
            for e in m.elements() {
                let _ = e.set_state(gst::State::Null);
                let _ = parent.remove(&e);
            }
        }
    }

    fn relayout(&self) {
        apply(&crate::common::lock(&self.tiles), &self.cfg);
    }
}

impl MixTrack {
    pub fn set_label(&self, label: &str) {
        if let Some(o) = &self.overlay {
            o.set_property("text", label);
        }
    }

    pub fn bin(&self) -> &gst::Bin {
        &self.bin
    }
}

/// A picture's width / height, from raw video caps.
fn aspect_of(caps: &gst::CapsRef) -> Option<f64> {
    let s = caps.structure(0)?;
    let (w, h) = (s.get::<i32>("width").ok()?, s.get::<i32>("height").ok()?);
    let par = s
        .get::<gst::Fraction>("pixel-aspect-ratio")
        .unwrap_or_else(|_| gst::Fraction::new(1, 1));
    (w > 0 && h > 0 && par.numer() > 0 && par.denom() > 0)
        .then(|| f64::from(w) * f64::from(par.numer()) / (f64::from(h) * f64::from(par.denom())))
}

/// Puts every video pad in its tile. The grid's shape follows the pictures' mean aspect
/// ratio (16:9 until their caps are known).
fn apply(tiles: &Tiles, cfg: &MixConfig) {
    let known: Vec<f64> = tiles.pads.iter().filter_map(|(_, a)| *a).collect();
    let aspect = if known.is_empty() {
        16.0 / 9.0
    } else {
        known.iter().sum::<f64>() / known.len() as f64
    };
    let grid = layout::grid(tiles.pads.len(), cfg.width, cfg.height, aspect);
    for ((pad, _), t) in tiles.pads.iter().zip(grid) {
        pad.set_property("xpos", t.x);
        pad.set_property("ypos", t.y);
        pad.set_property("width", t.width);
        pad.set_property("height", t.height);
        pad.set_property("alpha", 1.0f64);
    }
}
