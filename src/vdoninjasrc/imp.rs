// SPDX-License-Identifier: MPL-2.0

//! The `vdoninjasrc` subclass: properties, pads, state changes, error isolation. What the
//! signaling asks for is carried out in [`super::handler`] on the media thread.

use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::CAT;
use super::recording::location::Pattern;
use super::recording::manifest::Manifest;
use super::state::{Settings, State};
use crate::common::codec::VideoCodecPreference;
use crate::common::driver::Driver;
use crate::common::elements::peer_failure;
use crate::common::settings::CommonSettings;
use crate::protocol::machine::{Input, Machine, View, ViewOptions};

#[derive(Default)]
pub struct VdoNinjaSrc {
    pub(super) settings: Mutex<Settings>,
    pub(super) state: Mutex<State>,
    /// Held while the element changes state and while the media thread tears a peer down:
    /// the two must not run at once (a peer bin going to NULL while its parent pauses it
    /// deadlocked on a prerolling network sink).
    pub(super) teardown: Mutex<()>,
}

#[glib::object_subclass]
impl ObjectSubclass for VdoNinjaSrc {
    const NAME: &'static str = "GstVdoNinjaSrc";
    type Type = super::VdoNinjaSrc;
    type ParentType = gst::Bin;
}

impl VdoNinjaSrc {
    pub(super) fn settings(&self) -> MutexGuard<'_, Settings> {
        crate::common::lock(&self.settings)
    }

    pub(super) fn teardown_lock(&self) -> MutexGuard<'_, ()> {
        crate::common::lock(&self.teardown)
    }

    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        crate::common::lock(&self.state)
    }

    /// A handle on the media thread, while the signaling runs.
    pub(super) fn runner(&self) -> Option<crate::common::driver::Runner> {
        self.state().driver.as_ref().and_then(|d| d.runner())
    }

    pub(super) fn input(&self, input: Input) {
        self.try_input(input);
    }

    /// Feeds the signaling; false when it is not running.
    fn try_input(&self, input: Input) -> bool {
        crate::common::driver::feed(self.state().driver.as_ref(), input)
    }

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        crate::common::elements::register_bundled();
        let settings = self.settings().clone();
        let bad = |e: String| gst::error_msg!(gst::LibraryError::Settings, ("{e}"));
        let view = match (&settings.stream_id, &settings.common.room) {
            (Some(s), _) => View::Stream(s.clone()),
            (None, Some(_)) => View::Room(settings.named_streams()),
            (None, None) => {
                return Err(bad(
                    "set stream-id (view one stream) or room (receive every stream of a room)"
                        .into(),
                ));
            }
        };
        let base_ice = settings.common.base_ice_config().map_err(bad)?;
        let pattern = match &settings.record_location {
            Some(raw) => Some(Pattern::parse(raw).map_err(|e| bad(e.to_string()))?),
            None => None,
        };
        let ts_linked = self.src_pad().is_some_and(|p| p.is_linked());
        // The MPEG-TS path carries H.264: ask publishers for it unless told otherwise...
        // ...and so do MP4 recordings (editors take H.264 in MP4).
        let mp4 = pattern.as_ref().is_some_and(|p| {
            super::recording::container::Container::of(&p.expand("x", "t"))
                == super::recording::container::Container::Mp4
        });
        let video_codec = match (settings.video_codec.codec(), ts_linked || mp4) {
            (Some(c), _) => Some(c),
            (None, true) => Some(crate::common::codec::Codec::H264),
            (None, false) => None,
        };
        if let Some(codec) = settings.video_codec.codec() {
            let how = crate::common::needs::Receiving {
                decoded: settings.decode || settings.mix,
                ts: ts_linked,
            };
            crate::common::needs::check_receive(codec, how)
                .map_err(|e| gst::error_msg!(gst::CoreError::MissingPlugin, ("{e}")))?;
        }
        let mut cfg = settings.common.machine_config();
        cfg.view = view;
        cfg.view_options = ViewOptions {
            audio: settings.audio,
            video: settings.video,
            bitrate: (settings.bitrate > 0).then_some(settings.bitrate),
            video_codec: video_codec.map(|c| c.nick().to_string()),
        };
        let machine = Machine::new(cfg).map_err(|e| bad(e.to_string()))?;
        // Only once the settings are good: a start that fails leaves no worker thread behind
        // (a process that exits on the error while it makes the DTLS key can crash in exit).
        crate::common::elements::warm_up_webrtc();
        let weak = self.obj().downgrade();
        let driver = Driver::start_held(
            machine,
            settings.common.client_config(),
            &settings.common,
            base_ice.clone(),
            "vdoninjasrc",
            move |job| {
                if let Some(obj) = weak.upgrade() {
                    obj.imp().handle_job(job);
                }
            },
        )
        .map_err(|e| gst::error_msg!(gst::CoreError::Failed, ("cannot start a thread: {e}")))?;
        let tsmux = if ts_linked {
            let mux = super::ts::RoomMux::new(
                self.obj().upcast_ref(),
                settings.ts_slots,
                gst::ClockTime::from_mseconds(u64::from(settings.latency)),
            )
            .map_err(bad)?;
            if let (Some(src), Some(ghost)) = (mux.element().static_pad("src"), self.src_pad()) {
                ghost
                    .set_target(Some(&src))
                    .map_err(|e| bad(e.to_string()))?;
            }
            Some(mux)
        } else {
            None
        };
        let mix = self.start_mix(&settings).map_err(bad)?;
        let lanes = match (settings.record_audio, &pattern) {
            (super::lanes::AudioFormat::None, _) => None,
            (format, Some(p)) => Some(super::lanes::Lanes::new(
                self.obj().upcast_ref(),
                format,
                p.clone(),
            )),
            (_, None) => {
                return Err(bad(
                    "record-audio writes its files next to record-location's: set record-location too"
                        .into(),
                ));
            }
        };
        let manifest = pattern
            .as_ref()
            .map(|p| Manifest::new(&p.directory(), settings.common.room.clone()));
        let mut st = self.state();
        st.ice = base_ice;
        st.video_codec = video_codec;
        st.driver = Some(driver);
        // (Under the state lock: the media thread's first job waits for it.)
        if let Some(d) = &st.driver {
            d.ready();
        }
        st.pattern = pattern;
        st.manifest = manifest;
        st.lanes = lanes;
        st.stall_watch = tsmux.is_some().then(|| self.watch_room_stream());
        st.tsmux = tsmux;
        st.mix = mix;
        st.eos = false;
        drop(st);
        self.save_manifest();
        Ok(())
    }

    /// Adds (or removes) the `video_mix` and `audio_mix` pads, not yet connected to a mix.
    fn expose_mix_pads(&self, on: bool) {
        let obj = self.obj();
        for name in ["video_mix", "audio_mix"] {
            match (obj.static_pad(name), on) {
                (None, true) => {
                    if let Some(templ) = obj.pad_template(name) {
                        let pad = gst::GhostPad::builder_from_template(&templ)
                            .name(name)
                            .build();
                        let _ = obj.add_pad(&pad);
                    }
                }
                (Some(pad), false) => {
                    let _ = obj.remove_pad(&pad);
                }
                _ => {}
            }
        }
    }

    fn mix_pad(&self, name: &str) -> Option<gst::GhostPad> {
        self.obj()
            .static_pad(name)
            .and_then(|p| p.downcast::<gst::GhostPad>().ok())
    }

    /// Builds the room mix for the linked mix pads.
    fn start_mix(&self, settings: &Settings) -> Result<Option<super::mix::RoomMix>, String> {
        if !settings.mix {
            return Ok(None);
        }
        let linked = |n: &str| self.mix_pad(n).is_some_and(|p| p.is_linked());
        let (video, audio) = (
            linked("video_mix") && settings.video,
            linked("audio_mix") && settings.audio,
        );
        if !video && !audio {
            crate::common::log::post_warning(
                *CAT,
                self.obj().upcast_ref(),
                "mix=true, but neither video_mix nor audio_mix is linked (or video/audio are off): no room mix",
            );
            return Ok(None);
        }
        let cfg = super::mix::MixConfig {
            width: settings.mix_width,
            height: settings.mix_height,
            framerate: settings.mix_framerate,
            labels: settings.mix_labels,
            latency: gst::ClockTime::from_mseconds(u64::from(settings.latency) + 300),
        };
        let mix = super::mix::RoomMix::new(self.obj().upcast_ref(), cfg, video, audio)?;
        for (name, src) in [
            ("video_mix", mix.video_src()),
            ("audio_mix", mix.audio_src()),
        ] {
            if let (Some(ghost), Some(src)) = (self.mix_pad(name), src) {
                ghost.set_target(Some(&src)).map_err(|e| e.to_string())?;
            }
        }
        Ok(Some(mix))
    }

    /// The always pad carrying the room as MPEG-TS.
    pub(super) fn src_pad(&self) -> Option<gst::GhostPad> {
        self.obj()
            .static_pad("src")
            .and_then(|p| p.downcast::<gst::GhostPad>().ok())
    }

    /// Says goodbye, ends every participant and finalizes every file (bounded wait).
    fn stop(&self) {
        let bins: Vec<gst::Bin> = self
            .state()
            .remotes
            .values()
            .map(|x| x.peer.bin.clone())
            .collect();
        crate::peer::wake_for_goodbye(&bins);
        let driver = self.state().driver.take();
        if let Some(d) = driver {
            d.stop(Duration::from_secs(3));
        }
        let remotes = std::mem::take(&mut self.state().remotes);
        // The pads first: a stopping element ends none of them one by one.
        self.remove_all_pads();
        for (_, r) in remotes {
            self.remove_remote(r, "shutdown");
        }
        self.wait_for_recordings(Duration::from_secs(5));
        let mux = {
            let mut st = self.state();
            st.pattern = None;
            st.manifest = None;
            if let Some(w) = st.stall_watch.take() {
                w.abort();
            }
            st.tsmux.take()
        };
        let (mix, ended) = {
            let mut st = self.state();
            (st.mix.take(), std::mem::take(&mut st.mix_finished))
        };
        if let Some(mix) = mix {
            for t in ended {
                mix.remove(self.obj().upcast_ref(), t);
            }
            for name in ["video_mix", "audio_mix"] {
                if let Some(ghost) = self.mix_pad(name) {
                    let _ = ghost.set_target(None::<&gst::Pad>);
                }
            }
            mix.shutdown(self.obj().upcast_ref());
        }
        if let Some(mux) = mux {
            if let Some(ghost) = self.src_pad() {
                let _ = ghost.set_target(None::<&gst::Pad>);
            }
            let _ = mux.element().set_state(gst::State::Null);
            let _ = self.obj().remove(mux.element());
            for part in mux.parts() {
                let _ = part.set_state(gst::State::Null);
                let _ = self.obj().remove(&part);
            }
        }
    }

    fn stats(&self) -> gst::Structure {
        let (top, peers) = {
            let st = self.state();
            let top = gst::Structure::builder("application/x-vdoninja-src-stats")
                .field("streams", st.remotes.len() as u32)
                .build();
            let peers = st
                .remotes
                .values()
                .map(|r| {
                    let s = gst::Structure::builder("stream")
                        .field("stream-id", &r.stream_id)
                        .field("uuid", &r.uuid)
                        .field("label", r.label.clone().unwrap_or_default())
                        .field("pads", r.pads.len() as u32)
                        .build();
                    (r.peer.id.to_string(), s, r.peer.webrtc.clone())
                })
                .collect();
            (top, peers)
        };
        crate::peer::stats::collect(top, peers)
    }
}

impl ObjectImpl for VdoNinjaSrc {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let mut p = CommonSettings::properties();
            p.extend([
                glib::ParamSpecString::builder("stream-id")
                    .nick("Stream ID")
                    .blurb("View this one stream (with room: join the room and view only this stream)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("streams")
                    .nick("Streams")
                    .blurb("Room mode: receive only these stream IDs (comma-separated); unset = every stream")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("decode")
                    .nick("Decode")
                    .blurb("Output raw video/audio instead of parsed encoded media")
                    .default_value(false)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("video-codec", VideoCodecPreference::Any)
                    .nick("Video codec")
                    .blurb("Video codec asked of publishers (our answer lists it first; the MPEG-TS src pad asks for H.264)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("audio")
                    .nick("Audio")
                    .blurb("Request audio from publishers")
                    .default_value(true)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("video")
                    .nick("Video")
                    .blurb("Request video from publishers")
                    .default_value(true)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("bitrate")
                    .nick("Bitrate")
                    .blurb("Video bitrate to ask publishers for, in kbit/s (0 = the publisher's choice)")
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("latency")
                    .nick("Latency")
                    .blurb(
                        "Jitter-buffer latency in milliseconds: how long media waits for late and \
                         retransmitted packets (lost video packets are asked for again)",
                    )
                    .default_value(200)
                    .maximum(10_000)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("rejoin-grace")
                    .nick("Rejoin grace")
                    .blurb(
                        "Room mode: seconds a guest's video_<id>/audio_<id> pads wait for it to come \
                         back under the same stream ID (it then continues on them); after that an \
                         EOS ends them and they are removed (0 = at once). Pads of stream-id mode and \
                         of IDs named in streams are kept for the element's life",
                    )
                    .default_value(30)
                    .maximum(86_400)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("ts-slots")
                    .nick("Room stream slots")
                    .blurb(
                        "How many guests the src pad's MPEG-TS stream carries: each slot is a video \
                         and an audio stream, all in the stream's first program map (so that \
                         decodebin3, playbin3 and gst-discoverer-1.0 see every one), showing black \
                         and silence until a guest takes it and after it left; guests beyond them \
                         are left out with a warning",
                    )
                    .minimum(1)
                    .maximum(32)
                    .default_value(4)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("record-location")
                    .nick("Record location")
                    .blurb("Record every participant's audio and video into one Matroska file each, without transcoding: %s = stream ID (made safe for file names), %t = UTC start time, %% = %; the directory must exist; existing files are never overwritten. A manifest (vdoninja-manifest-<time>.json) lists the files")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default(
                    "record-audio",
                    super::lanes::AudioFormat::None,
                )
                .nick("Record aligned audio")
                .blurb("Also write each stream ID's audio to one file (wav or flac, 48 kHz, the guest's channels) next to record-location's files, for DAWs: every file starts when the element starts playing and ends at the same length, with silence wherever the guest was not there; a guest who comes back continues in its file. FLAC is written as it goes; a killed recorder's WAV plays to its last sample. Needs record-location")
                .mutable_ready()
                .build(),
                glib::ParamSpecBoolean::builder("mix")
                    .nick("Room mix")
                    .blurb("Also give the whole room as one picture (video_mix pad: every guest's video in a grid, re-laid-out as guests come and go) and one sound (audio_mix pad: every guest's audio mixed); only the linked mix pads are made")
                    .default_value(false)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("mix-width")
                    .nick("Mix width")
                    .blurb("Width of the room mix's picture, in pixels")
                    .minimum(16)
                    .maximum(7680)
                    .default_value(1280)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("mix-height")
                    .nick("Mix height")
                    .blurb("Height of the room mix's picture, in pixels")
                    .minimum(16)
                    .maximum(4320)
                    .default_value(720)
                    .mutable_ready()
                    .build(),
                gst::ParamSpecFraction::builder("mix-framerate")
                    .nick("Mix frame rate")
                    .blurb("Frame rate of the room mix's picture")
                    .minimum(gst::Fraction::new(1, 1))
                    .maximum(gst::Fraction::new(120, 1))
                    .default_value(gst::Fraction::new(30, 1))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("mix-labels")
                    .nick("Mix labels")
                    .blurb("Write each guest's label (its &label) under its picture in the room mix (needs textoverlay, Debian's gstreamer1.0-x)")
                    .default_value(true)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb("Per stream: stream ID, UUID, label, connection state, candidate type, RTT, bytes and packets received, packets lost")
                    .read_only()
                    .build(),
            ]);
            p
        });
        PROPS.as_ref()
    }

    fn signals() -> &'static [glib::subclass::Signal] {
        static SIGNALS: LazyLock<Vec<glib::subclass::Signal>> = LazyLock::new(|| {
            let mut s = vec![
                glib::subclass::Signal::builder("stream-added")
                    .param_types([String::static_type(), String::static_type()])
                    .build(),
                glib::subclass::Signal::builder("stream-removed")
                    .param_types([String::static_type(), String::static_type()])
                    .build(),
            ];
            s.extend(crate::common::app::action_signals(*CAT, |obj, input| {
                obj.downcast_ref::<super::VdoNinjaSrc>()
                    .is_some_and(|e| e.imp().try_input(input))
            }));
            s
        });
        SIGNALS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let name = pspec.name();
        let mut s = self.settings();
        if s.common.set(name, value) {
            return;
        }
        let string = || {
            value
                .get::<Option<String>>()
                .ok()
                .flatten()
                .filter(|x| !x.trim().is_empty())
        };
        match name {
            "stream-id" => s.stream_id = string(),
            "streams" => s.streams = string(),
            "decode" => s.decode = value.get().unwrap_or(false),
            "video-codec" => s.video_codec = value.get().unwrap_or_default(),
            "audio" => s.audio = value.get().unwrap_or(true),
            "video" => s.video = value.get().unwrap_or(true),
            "bitrate" => s.bitrate = value.get().unwrap_or(0),
            "latency" => s.latency = value.get().unwrap_or(200),
            "record-location" => s.record_location = string(),
            "record-audio" => s.record_audio = value.get().unwrap_or_default(),
            "rejoin-grace" => s.rejoin_grace = value.get().unwrap_or(30),
            "ts-slots" => s.ts_slots = value.get().unwrap_or(4),
            "mix" => {
                s.mix = value.get().unwrap_or(false);
                let on = s.mix;
                drop(s);
                self.expose_mix_pads(on);
            }
            "mix-width" => s.mix_width = value.get().unwrap_or(1280),
            "mix-height" => s.mix_height = value.get().unwrap_or(720),
            "mix-framerate" => {
                s.mix_framerate = value.get().unwrap_or_else(|_| gst::Fraction::new(30, 1))
            }
            "mix-labels" => s.mix_labels = value.get().unwrap_or(true),
            _ => {}
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let name = pspec.name();
        if name == "stats" {
            return self.stats().to_value();
        }
        let s = self.settings();
        if let Some(v) = s.common.get(name) {
            return v;
        }
        match name {
            "stream-id" => s.stream_id.to_value(),
            "streams" => s.streams.to_value(),
            "decode" => s.decode.to_value(),
            "video-codec" => s.video_codec.to_value(),
            "audio" => s.audio.to_value(),
            "video" => s.video.to_value(),
            "bitrate" => s.bitrate.to_value(),
            "latency" => s.latency.to_value(),
            "record-location" => s.record_location.to_value(),
            "record-audio" => s.record_audio.to_value(),
            "rejoin-grace" => s.rejoin_grace.to_value(),
            "ts-slots" => s.ts_slots.to_value(),
            "mix" => s.mix.to_value(),
            "mix-width" => s.mix_width.to_value(),
            "mix-height" => s.mix_height.to_value(),
            "mix-framerate" => s.mix_framerate.to_value(),
            "mix-labels" => s.mix_labels.to_value(),
            _ => glib::Value::from_type(pspec.value_type()),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.set_suppressed_flags(gst::ElementFlags::SINK | gst::ElementFlags::SOURCE);
        // A source, and a sink too: a pipeline ends (EOS) only once all its sinks did, and a
        // recording-only pipeline has no other sink. We post EOS once every file is final.
        obj.set_element_flags(gst::ElementFlags::SOURCE | gst::ElementFlags::SINK);
        if let Some(templ) = obj.pad_template("src") {
            let pad = gst::GhostPad::builder_from_template(&templ)
                .name("src")
                .build();
            let _ = obj.add_pad(&pad);
        }
    }
}

impl GstObjectImpl for VdoNinjaSrc {}

impl ElementImpl for VdoNinjaSrc {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "VDO.Ninja source",
                "Source/Network/WebRTC",
                "Receives one VDO.Ninja stream, or every stream of a room",
                "gst-plugin-vdoninja developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let video = gst::Caps::builder_full()
                .structure(gst::Structure::new_empty("video/x-h264"))
                .structure(gst::Structure::new_empty("video/x-vp8"))
                .structure(gst::Structure::new_empty("video/x-vp9"))
                .structure(gst::Structure::new_empty("video/x-av1"))
                .structure(gst::Structure::new_empty("video/x-raw"))
                .build();
            let audio = gst::Caps::builder_full()
                .structure(gst::Structure::new_empty("audio/x-opus"))
                .structure(gst::Structure::new_empty("audio/x-raw"))
                .build();
            let ts = gst::Caps::builder("video/mpegts")
                .field("systemstream", true)
                .build();
            vec![
                gst::PadTemplate::new("src", gst::PadDirection::Src, gst::PadPresence::Always, &ts)
                    .expect("valid template"),
                gst::PadTemplate::new(
                    "video_%s",
                    gst::PadDirection::Src,
                    gst::PadPresence::Sometimes,
                    &video,
                )
                .expect("valid template"),
                gst::PadTemplate::new(
                    "audio_%s",
                    gst::PadDirection::Src,
                    gst::PadPresence::Sometimes,
                    &audio,
                )
                .expect("valid template"),
                gst::PadTemplate::new(
                    "video_mix",
                    gst::PadDirection::Src,
                    gst::PadPresence::Sometimes,
                    &gst::Caps::new_empty_simple("video/x-raw"),
                )
                .expect("valid template"),
                gst::PadTemplate::new(
                    "audio_mix",
                    gst::PadDirection::Src,
                    gst::PadPresence::Sometimes,
                    &gst::Caps::new_empty_simple("audio/x-raw"),
                )
                .expect("valid template"),
            ]
        });
        TEMPLATES.as_ref()
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::ReadyToPaused
            && let Err(e) = self.start()
        {
            self.post_error_message(e);
            return Err(gst::StateChangeError);
        }
        if transition == gst::StateChange::PausedToReady {
            // Before the children stop: the recorders must still run to finalize their files.
            self.stop();
        }
        let mut ret = {
            let _teardown = self.teardown_lock();
            self.parent_change_state(transition)
        };
        if transition == gst::StateChange::PausedToPlaying && ret.is_ok() {
            self.begin_lanes();
        }
        match transition {
            // A live source: no preroll.
            gst::StateChange::ReadyToPaused | gst::StateChange::PlayingToPaused if ret.is_ok() => {
                ret = Ok(gst::StateChangeSuccess::NoPreroll);
            }
            _ => {}
        }
        ret
    }

    fn send_event(&self, event: gst::Event) -> bool {
        if let gst::EventView::Eos(_) = event.view() {
            gst::info!(
                CAT,
                imp = self,
                "EOS: finalizing every recording and stream"
            );
            self.end_of_stream();
            return true;
        }
        self.parent_send_event(event)
    }
}

impl BinImpl for VdoNinjaSrc {
    fn handle_message(&self, msg: gst::Message) {
        // A recording's filesink saw EOS: that file is final. Our own EOS is posted by us.
        if let gst::MessageView::Eos(_) = msg.view() {
            if let Some(src) = msg.src() {
                self.recording_done(src);
            }
            return;
        }
        if let Some((peer, message)) = peer_failure(*CAT, self.obj().upcast_ref(), &msg, "stream") {
            self.input(Input::PeerError { peer, message });
            return;
        }
        self.parent_handle_message(msg)
    }
}
