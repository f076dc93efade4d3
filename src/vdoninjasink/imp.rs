// SPDX-License-Identifier: MPL-2.0

//! The `vdoninjasink` subclass: properties, request pads, state changes, error isolation.
//! What the signaling asks for is carried out in [`super::handler`] on the media thread.

use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::input::{self, Chain};
use super::viewer::Viewer;
use crate::common::codec::VideoCodec;
use crate::common::driver::Driver;
use crate::common::elements::peer_failure;
use crate::common::settings::{CommonSettings, IceConfig};
use crate::protocol::machine::{Input, Machine, PeerId, View};

pub(super) static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "vdoninjasink",
        gst::DebugColorFlags::empty(),
        Some("VDO.Ninja publisher"),
    )
});

#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub common: CommonSettings,
    pub stream_id: Option<String>,
    pub video_codec: VideoCodec,
    pub bitrate: u32,
    pub min_bitrate: u32,
    pub max_bitrate: u32,
    pub audio_bitrate: u32,
    pub max_viewers: u32,
    pub congestion_control: super::congestion::CongestionControl,
    pub renditions: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            common: CommonSettings::default(),
            stream_id: None,
            video_codec: VideoCodec::H264,
            bitrate: 2500,
            min_bitrate: 300,
            max_bitrate: 8000,
            audio_bitrate: 64,
            max_viewers: 0,
            congestion_control: Default::default(),
            renditions: 1,
        }
    }
}

impl Settings {
    /// The video bitrate the shared encoder should use given the viewers' requests.
    pub fn effective_video_kbps(&self, requests: impl Iterator<Item = Option<u32>>) -> u32 {
        let lowest = requests.flatten().filter(|k| *k > 0).min();
        let lo = self.min_bitrate.min(self.max_bitrate);
        lowest.unwrap_or(self.bitrate).clamp(lo, self.max_bitrate)
    }
}

/// One request pad and what is behind it.
pub(super) struct Track {
    pub pad: gst::GhostPad,
    pub chain: Option<Chain>,
    pub eos: bool,
}

#[derive(Default)]
pub(super) struct State {
    pub driver: Option<Driver>,
    pub tracks: Vec<Track>,
    pub viewers: BTreeMap<PeerId, Viewer>,
    /// Offers waiting until every input knows its codec.
    pub pending_offers: Vec<(PeerId, bool)>,
    pub ice: IceConfig,
    pub video_kbps: u32,
    pub next_pad: u32,
    /// Moves the shared encoder (see `congestion`).
    pub rate: super::congestion::rate::RateController,
    /// Its periodic tick, while running.
    pub congestion: Option<tokio::task::JoinHandle<()>>,
    /// The warning that pre-encoded input cannot follow the viewers' links was posted.
    pub warned_preencoded: bool,
}

impl State {
    /// The chain of the video input, once its caps are known.
    pub fn video_chain(&self) -> Option<&Chain> {
        self.tracks
            .iter()
            .filter_map(|t| t.chain.as_ref())
            .find(|c| c.codec.is_video())
    }

    pub fn tracks_ready(&self) -> bool {
        !self.tracks.is_empty() && self.tracks.iter().all(|t| t.chain.is_some())
    }
}

#[derive(Default)]
pub struct VdoNinjaSink {
    pub(super) settings: Mutex<Settings>,
    pub(super) state: Mutex<State>,
    /// Held while the element changes state and while the media thread tears a peer down:
    /// the two must not run at once (a peer bin going to NULL while its parent pauses it
    /// deadlocked on a prerolling network sink).
    pub(super) teardown: Mutex<()>,
}

#[glib::object_subclass]
impl ObjectSubclass for VdoNinjaSink {
    const NAME: &'static str = "GstVdoNinjaSink";
    type Type = super::VdoNinjaSink;
    type ParentType = gst::Bin;
}

impl VdoNinjaSink {
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

    /// Events on a request pad: the first caps decide the chain behind it.
    fn sink_event(&self, pad: &gst::GhostPad, event: gst::Event) -> bool {
        match event.view() {
            gst::EventView::Caps(c) => {
                let caps = c.caps_owned();
                if let Err(e) = self.configure_track(pad, &caps) {
                    gst::element_imp_error!(self, gst::StreamError::Format, ["{e}"]);
                    return false;
                }
            }
            gst::EventView::Eos(_) => {
                let all = {
                    let mut st = self.state();
                    if let Some(t) = st.tracks.iter_mut().find(|t| &t.pad == pad) {
                        t.eos = true;
                    }
                    st.tracks.iter().all(|t| t.eos)
                };
                let forwarded = gst::Pad::event_default(pad, Some(&*self.obj()), event);
                if all {
                    gst::info!(CAT, imp = self, "every input ended");
                    let _ = self
                        .obj()
                        .post_message(gst::message::Eos::builder().src(&*self.obj()).build());
                }
                return forwarded;
            }
            gst::EventView::FlushStop(_) => {
                if let Some(t) = self.state().tracks.iter_mut().find(|t| &t.pad == pad) {
                    t.eos = false;
                }
            }
            _ => {}
        }
        gst::Pad::event_default(pad, Some(&*self.obj()), event)
    }

    /// Whether a linked video pad gets raw video (what upstream can give is raw only): then
    /// an encoder for `video-codec` must be installed. Checked at start, before caps flow.
    fn raw_video_input(&self) -> bool {
        self.state().tracks.iter().any(|t| {
            t.pad.name().starts_with("video")
                && t.pad.peer().is_some_and(|peer| {
                    let caps = peer.query_caps(None);
                    !caps.is_empty()
                        && !caps.is_any()
                        && caps.iter().all(|s| s.name() == "video/x-raw")
                })
        })
    }

    fn configure_track(&self, pad: &gst::GhostPad, caps: &gst::Caps) -> Result<(), String> {
        if self
            .state()
            .tracks
            .iter()
            .any(|t| &t.pad == pad && t.chain.is_some())
        {
            return Ok(()); // later caps flow into the existing chain
        }
        let params = {
            let s = self.settings();
            input::Params {
                video_codec: s.video_codec.into(),
                video_kbps: s.effective_video_kbps(std::iter::empty()),
                audio_kbps: s.audio_bitrate,
                renditions: s.renditions as usize,
                min_kbps: s.min_bitrate,
            }
        };
        if gst::ElementFactory::find(params.video_codec.payloader()).is_none() {
            return Err(format!(
                "video-codec {} cannot be sent: {} is not installed",
                params.video_codec.nick(),
                params.video_codec.payloader()
            ));
        }
        let bin = self.obj();
        let chain = input::build(
            bin.upcast_ref(),
            pad.name().as_str(),
            caps.as_ref(),
            &params,
        )?;
        let target = chain.sink_pad().ok_or("chain without sink pad")?;
        pad.set_target(Some(&target)).map_err(|e| e.to_string())?;
        for e in &chain.elements {
            let _ = e.sync_state_with_parent();
        }
        gst::info!(
            CAT,
            imp = self,
            "{}: {} input, {}",
            pad.name(),
            chain.codec.encoding_name(),
            match &chain.encoder {
                Some(e) => format!(
                    "encoded by {}",
                    e.factory().map(|f| f.name()).unwrap_or_default()
                ),
                None => "sent as is".into(),
            }
        );
        let ready = {
            let mut st = self.state();
            if chain.encoder.is_some() && chain.codec.is_video() {
                st.video_kbps = params.video_kbps;
            }
            if let Some(t) = st.tracks.iter_mut().find(|t| &t.pad == pad) {
                t.chain = Some(chain);
            }
            st.tracks_ready()
        };
        if ready {
            let st = self.state();
            if let Some(d) = &st.driver {
                let weak = self.obj().downgrade();
                d.run(move || {
                    if let Some(obj) = weak.upgrade() {
                        obj.imp().flush_pending_offers();
                    }
                });
            }
        }
        Ok(())
    }

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        crate::common::elements::register_bundled();
        let settings = self.settings().clone();
        let Some(stream_id) = settings.stream_id.clone() else {
            return Err(gst::error_msg!(
                gst::LibraryError::Settings,
                ("stream-id is required: the ID viewers open with ?view=ID")
            ));
        };
        let base_ice = settings
            .common
            .base_ice_config()
            .map_err(|e| gst::error_msg!(gst::LibraryError::Settings, ("{e}")))?;
        crate::common::needs::check_send(settings.video_codec.into(), self.raw_video_input())
            .map_err(|e| gst::error_msg!(gst::CoreError::MissingPlugin, ("{e}")))?;
        let mut cfg = settings.common.machine_config();
        cfg.publish = Some(stream_id);
        cfg.view = View::Nothing;
        cfg.max_viewers = (settings.max_viewers > 0).then_some(settings.max_viewers as usize);
        let machine =
            Machine::new(cfg).map_err(|e| gst::error_msg!(gst::LibraryError::Settings, ("{e}")))?;
        // Only once the settings are good: a start that fails leaves no worker thread behind
        // (a process that exits on the error while it makes the DTLS key can crash in exit).
        crate::common::elements::warm_up_webrtc();
        let weak = self.obj().downgrade();
        let driver = Driver::start_held(
            machine,
            settings.common.client_config(),
            &settings.common,
            base_ice.clone(),
            "vdoninjasink",
            move |job| {
                if let Some(obj) = weak.upgrade() {
                    obj.imp().handle_job(job);
                }
            },
        )
        .map_err(|e| gst::error_msg!(gst::CoreError::Failed, ("cannot start a thread: {e}")))?;
        let mut st = self.state();
        st.ice = base_ice;
        st.driver = Some(driver);
        // (Under the state lock: the media thread's first job waits for it.)
        if let Some(d) = &st.driver {
            d.ready();
        }
        st.rate = super::congestion::rate::RateController::new(
            settings.bitrate,
            settings.min_bitrate,
            settings.max_bitrate,
        );
        st.warned_preencoded = false;
        drop(st);
        let tick = self.start_congestion_control();
        self.state().congestion = tick;
        Ok(())
    }

    fn stop(&self) {
        let bins: Vec<gst::Bin> = self
            .state()
            .viewers
            .values()
            .map(|x| x.peer.bin.clone())
            .collect();
        crate::peer::wake_for_goodbye(&bins);
        if let Some(t) = self.state().congestion.take() {
            t.abort();
        }
        let driver = self.state().driver.take();
        if let Some(d) = driver {
            d.stop(Duration::from_secs(3));
        }
        let viewers = std::mem::take(&mut self.state().viewers);
        for (_, v) in viewers {
            self.remove_viewer(v, "shutdown");
        }
        self.state().pending_offers.clear();
    }

    /// Feeds the signaling state machine.
    pub(super) fn input(&self, input: Input) {
        self.try_input(input);
    }

    /// Feeds the signaling; false when it is not running.
    fn try_input(&self, input: Input) -> bool {
        crate::common::driver::feed(self.state().driver.as_ref(), input)
    }

    fn stats(&self) -> gst::Structure {
        let renditions = self.rendition_stats();
        let (top, peers) = {
            let st = self.state();
            let mut top = gst::Structure::builder("application/x-vdoninja-sink-stats")
                .field("viewers", st.viewers.len() as u32)
                .field("video-bitrate", st.video_kbps)
                .build();
            if !renditions.is_empty() {
                // Per rendition: "level:WIDTHxHEIGHT@KBPS/VIEWERS" (level 0 at the input's size).
                let list: Vec<String> = renditions
                    .iter()
                    .map(|(l, w, h, k, n)| format!("{l}:{w}x{h}@{k}/{n}"))
                    .collect();
                top.set("renditions", gst::Array::new(list));
            }
            let peers = st
                .viewers
                .values()
                .map(|v| {
                    let s = gst::Structure::builder("viewer")
                        .field("uuid", &v.uuid)
                        .field("audio", v.want_audio)
                        .field("video", v.want_video)
                        .field(
                            "requested-bitrate",
                            v.video_kbps.map(|k| k as i64).unwrap_or(-1),
                        )
                        .field("age-ms", v.created.elapsed().as_millis() as u64)
                        .field("congestion-control", v.link.mode.nick())
                        .field(
                            "estimated-bitrate",
                            v.link.estimate.map_or(-1i64, i64::from),
                        )
                        .field("video-share", v.link.video.map_or(-1i64, i64::from))
                        .field("loss-ceiling", v.link.cap.cap().map_or(-1i64, i64::from))
                        .field("loss", v.link.loss_fraction)
                        .field("rendition", v.placement.level as u32)
                        .build();
                    (v.peer.id.to_string(), s, v.peer.webrtc.clone())
                })
                .collect();
            (top, peers)
        };
        crate::peer::stats::collect(top, peers)
    }
}

impl ObjectImpl for VdoNinjaSink {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let mut p = CommonSettings::properties();
            p.extend([
                glib::ParamSpecString::builder("stream-id")
                    .nick("Stream ID")
                    .blurb("The stream to publish (viewers open ?view=ID); required")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("video-codec", VideoCodec::H264)
                    .nick("Video codec")
                    .blurb("Codec raw video is encoded to (encoded input is sent as is)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("bitrate")
                    .nick("Video bitrate")
                    .blurb("Video bitrate in kbit/s where the encoder starts and rests when every viewer's link carries it and no viewer asks for less (raw input)")
                    .minimum(1)
                    .maximum(100_000)
                    .default_value(2500)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("min-bitrate")
                    .nick("Minimum video bitrate")
                    .blurb("Neither the viewers' links nor their bitrate requests push the encoder below this (kbit/s)")
                    .minimum(1)
                    .maximum(100_000)
                    .default_value(300)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("max-bitrate")
                    .nick("Maximum video bitrate")
                    .blurb("Neither the viewers' links nor their bitrate requests push the encoder above this (kbit/s)")
                    .minimum(1)
                    .maximum(100_000)
                    .default_value(8000)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("renditions")
                    .nick("Renditions")
                    .blurb(
                        "Encodings of raw video kept for viewers of different links: 1 (one \
                         encoder, at the lowest viewer's link), 2 or 3 (each further one at half the \
                         width and height and a quarter of the rate of the one above). Each \
                         viewer gets, at a key frame, the best one its link carries, so a viewer \
                         on a narrow link no longer lowers everyone's picture; each extra \
                         rendition costs an encoder's CPU. Pre-encoded input has one",
                    )
                    .minimum(1)
                    .maximum(super::renditions::ladder::MAX_LEVELS as u32)
                    .default_value(1)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default(
                    "congestion-control",
                    super::congestion::CongestionControl::Gcc,
                )
                .nick("Congestion control")
                .blurb(
                    "How the shared video encoder follows its viewers' links: gcc (Google \
                     Congestion Control on each viewer's transport-wide feedback, which browsers \
                     and vdoninjasrc send; viewers that send none are judged by loss), loss (the \
                     loss each viewer's RTCP tells: its receiver reports and the packets it asks \
                     for again), disabled (only explicit bitrate requests move it). The encoder \
                     runs at the lowest viewer's estimate within min-bitrate..max-bitrate, \
                     bitrate being where it starts and rests",
                )
                .mutable_ready()
                .build(),
                glib::ParamSpecUInt::builder("audio-bitrate")
                    .nick("Audio bitrate")
                    .blurb("Opus bitrate in kbit/s when raw audio is encoded")
                    .minimum(6)
                    .maximum(510)
                    .default_value(64)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-viewers")
                    .nick("Maximum viewers")
                    .blurb("Refuse viewers beyond this many (0 = no limit)")
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb("Per viewer: UUID, connection state, requested media and bitrate, candidate type, RTT, bytes sent, packets lost")
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
                glib::subclass::Signal::builder("viewer-added")
                    .param_types([String::static_type()])
                    .build(),
                glib::subclass::Signal::builder("viewer-removed")
                    .param_types([String::static_type(), String::static_type()])
                    .build(),
            ];
            s.extend(crate::common::app::action_signals(*CAT, |obj, input| {
                obj.downcast_ref::<super::VdoNinjaSink>()
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
        match name {
            "stream-id" => s.stream_id = value.get::<Option<String>>().ok().flatten(),
            "video-codec" => s.video_codec = value.get().unwrap_or_default(),
            "bitrate" => s.bitrate = value.get().unwrap_or(2500),
            "min-bitrate" => s.min_bitrate = value.get().unwrap_or(300),
            "max-bitrate" => s.max_bitrate = value.get().unwrap_or(8000),
            "audio-bitrate" => s.audio_bitrate = value.get().unwrap_or(64),
            "congestion-control" => s.congestion_control = value.get().unwrap_or_default(),
            "renditions" => s.renditions = value.get().unwrap_or(1),
            "max-viewers" => s.max_viewers = value.get().unwrap_or(0),
            _ => {}
        }
        if matches!(name, "bitrate" | "min-bitrate" | "max-bitrate") {
            drop(s);
            self.update_video_bitrate();
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
            "video-codec" => s.video_codec.to_value(),
            "bitrate" => s.bitrate.to_value(),
            "congestion-control" => s.congestion_control.to_value(),
            "renditions" => s.renditions.to_value(),
            "min-bitrate" => s.min_bitrate.to_value(),
            "max-bitrate" => s.max_bitrate.to_value(),
            "audio-bitrate" => s.audio_bitrate.to_value(),
            "max-viewers" => s.max_viewers.to_value(),
            _ => glib::Value::from_type(pspec.value_type()),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.set_suppressed_flags(gst::ElementFlags::SINK | gst::ElementFlags::SOURCE);
        obj.set_element_flags(gst::ElementFlags::SINK);
    }
}

impl GstObjectImpl for VdoNinjaSink {}

impl ElementImpl for VdoNinjaSink {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "VDO.Ninja sink",
                "Sink/Network/WebRTC",
                "Publishes audio and video to VDO.Ninja viewers (raw input is encoded once for all)",
                "gst-plugin-vdoninja developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let video = gst::Caps::builder_full()
                .structure(gst::Structure::new_empty("video/x-raw"))
                .structure(
                    gst::Structure::builder("video/x-h264")
                        .field("stream-format", gst::List::new(["byte-stream", "avc"]))
                        .build(),
                )
                .structure(gst::Structure::new_empty("video/x-vp8"))
                .structure(gst::Structure::new_empty("video/x-vp9"))
                .structure(gst::Structure::new_empty("video/x-av1"))
                .build();
            let audio = gst::Caps::builder_full()
                .structure(gst::Structure::new_empty("audio/x-raw"))
                .structure(gst::Structure::new_empty("audio/x-opus"))
                .build();
            vec![
                gst::PadTemplate::new(
                    "video_%u",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Request,
                    &video,
                )
                .expect("valid template"),
                gst::PadTemplate::new(
                    "audio_%u",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Request,
                    &audio,
                )
                .expect("valid template"),
            ]
        });
        TEMPLATES.as_ref()
    }

    fn request_new_pad(
        &self,
        templ: &gst::PadTemplate,
        _name: Option<&str>,
        _caps: Option<&gst::Caps>,
    ) -> Option<gst::Pad> {
        let prefix = templ.name_template().trim_end_matches("%u").to_string();
        let name = {
            let mut st = self.state();
            let n = st.next_pad;
            st.next_pad += 1;
            format!("{prefix}{n}")
        };
        let pad = gst::GhostPad::builder_from_template(templ)
            .name(name.as_str())
            .event_function(|pad, parent, event| {
                let pad = pad.downcast_ref::<gst::GhostPad>();
                VdoNinjaSink::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| pad.is_some_and(|p| imp.sink_event(p, event)),
                )
            })
            .build();
        self.obj().add_pad(&pad).ok()?;
        self.state().tracks.push(Track {
            pad: pad.clone(),
            chain: None,
            eos: false,
        });
        Some(pad.upcast())
    }

    fn release_pad(&self, pad: &gst::Pad) {
        let track = {
            let mut st = self.state();
            st.tracks
                .iter()
                .position(|t| t.pad.upcast_ref::<gst::Pad>() == pad)
                .map(|i| st.tracks.remove(i))
        };
        if let Some(t) = track {
            let _ = t.pad.set_target(None::<&gst::Pad>);
            if let Some(chain) = t.chain {
                let obj = self.obj();
                for e in &chain.elements {
                    let _ = e.set_state(gst::State::Null);
                    // When the bin is being disposed its children are already gone.
                    if e.parent().as_ref() == Some(obj.upcast_ref::<gst::Object>()) {
                        let _ = obj.remove(e);
                    }
                }
            }
        }
        let _ = self.obj().remove_pad(pad);
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
            // Before the children stop: the `bye` goes on each viewer's data channel, which
            // must still be open.
            self.stop();
        }
        let _teardown = self.teardown_lock();
        self.parent_change_state(transition)
    }
}

impl BinImpl for VdoNinjaSink {
    fn handle_message(&self, msg: gst::Message) {
        if let Some((peer, message)) = peer_failure(*CAT, self.obj().upcast_ref(), &msg, "viewer") {
            self.input(Input::PeerError { peer, message });
            return;
        }
        // We post our own EOS once every input has ended.
        if let gst::MessageView::Eos(_) = msg.view() {
            return;
        }
        self.parent_handle_message(msg)
    }
}
