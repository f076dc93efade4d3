// SPDX-License-Identifier: MPL-2.0

//! What a room-stream slot carries while no guest is in it: black H.264 (320x180, every frame
//! a key frame, 10 a second: a slot can go back to it at any frame) and silent Opus. Made once
//! and shared by every slot; each slot takes it through a queue of its own that drops rather
//! than waits, so that no slot holds another back.

use gst::prelude::*;

pub struct Placeholder {
    bin: gst::Bin,
    video: gst::Element,
    audio: gst::Element,
}

fn make(factory: &str) -> Result<gst::Element, String> {
    crate::common::elements::make(factory, None)
}

fn chain(bin: &gst::Bin, elements: &[gst::Element]) -> Result<(), String> {
    bin.add_many(elements).map_err(|e| e.to_string())?;
    gst::Element::link_many(elements)
        .map_err(|_| "cannot link the room stream's placeholder".into())
}

impl Placeholder {
    /// Builds the placeholder sources in `parent`.
    pub fn new(parent: &gst::Bin) -> Result<Self, String> {
        let bin = gst::Bin::with_name("ts-placeholder");
        let vsrc = make("videotestsrc")?;
        vsrc.set_property("is-live", true);
        vsrc.set_property_from_str("pattern", "black");
        let vcaps = make("capsfilter")?;
        vcaps.set_property(
            "caps",
            gst::Caps::builder("video/x-raw")
                .field("format", "I420")
                .field("width", 320i32)
                .field("height", 180i32)
                .field("framerate", gst::Fraction::new(10, 1))
                .build(),
        );
        let enc = make("x264enc")?;
        enc.set_property_from_str("tune", "zerolatency");
        enc.set_property_from_str("speed-preset", "ultrafast");
        enc.set_property("key-int-max", 1u32);
        enc.set_property("bitrate", 64u32);
        let parse = make("h264parse")?;
        let hcaps = make("capsfilter")?;
        hcaps.set_property("caps", crate::common::codec::h264_byte_stream_caps());
        let video = make("tee")?;
        video.set_property("allow-not-linked", true);
        chain(&bin, &[vsrc, vcaps, enc, parse, hcaps, video.clone()])?;

        let asrc = make("audiotestsrc")?;
        asrc.set_property("is-live", true);
        // Silence as real samples: `wave=silence` marks its buffers as gaps, which the encoder
        // turns into GAP events instead of packets.
        asrc.set_property("volume", 0.0f64);
        let acaps = make("capsfilter")?;
        acaps.set_property(
            "caps",
            gst::Caps::builder("audio/x-raw")
                .field("rate", 48_000i32)
                .field("channels", 2i32)
                .build(),
        );
        let opus = make("opusenc")?;
        let audio = make("tee")?;
        audio.set_property("allow-not-linked", true);
        chain(
            &bin,
            &[asrc, make("audioconvert")?, acaps, opus, audio.clone()],
        )?;
        parent.add(&bin).map_err(|e| e.to_string())?;
        Ok(Self { bin, video, audio })
    }

    pub fn bin(&self) -> &gst::Bin {
        &self.bin
    }

    /// A new branch of the video or audio placeholder, ending in the returned src pad.
    pub fn branch(&self, video: bool) -> Result<gst::Pad, String> {
        let tee = if video { &self.video } else { &self.audio };
        let queue = make("queue")?;
        queue.set_property_from_str("leaky", "downstream");
        queue.set_property("max-size-buffers", 0u32);
        queue.set_property("max-size-bytes", 0u32);
        queue.set_property("max-size-time", 1_000_000_000u64);
        self.bin.add(&queue).map_err(|e| e.to_string())?;
        let tee_pad = tee
            .request_pad_simple("src_%u")
            .ok_or("the placeholder's tee gave no pad")?;
        let sink = queue.static_pad("sink").ok_or("no sink")?;
        tee_pad
            .link(&sink)
            .map_err(|e| format!("cannot branch the placeholder: {e:?}"))?;
        let src = queue.static_pad("src").ok_or("no src")?;
        let ghost = gst::GhostPad::builder_with_target(&src)
            .map_err(|e| e.to_string())?
            .name(format!("src_{}", self.bin.num_src_pads()))
            .build();
        self.bin.add_pad(&ghost).map_err(|e| e.to_string())?;
        Ok(ghost.upcast())
    }
}
