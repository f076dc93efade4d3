// SPDX-License-Identifier: MPL-2.0

//! One connection's audio into its stream ID's lane: the guest's decoded audio, converted to
//! the file's format, into an `appsink` whose samples the lane places. A bin in the element,
//! named after the peer (an error inside it fails that peer alone), removed with the connection.

use std::sync::atomic::{AtomicU32, Ordering};

use gst::prelude::*;

use super::writer::raw_caps;
use super::{Lanes, NewFile};
use crate::protocol::machine::PeerId;
use crate::vdoninjasrc::CAT;

/// One connection's audio into its lane (a bin in the element, removed with the connection).
pub struct LaneInput {
    bin: gst::Bin,
    source: gst::Pad,
    sink: gst::Pad,
    lanes: Lanes,
    input: u32,
}

fn make(factory: &str) -> Result<gst::Element, String> {
    crate::common::elements::make(factory, None)
}

impl Lanes {
    /// Feeds `source` (a guest's decoded audio) into `stream_id`'s lane.
    pub fn add_input(
        &self,
        parent: &gst::Bin,
        peer: PeerId,
        stream_id: &str,
        source: &gst::Pad,
        on_file: impl Fn(Result<NewFile, String>) + Send + Sync + 'static,
    ) -> Result<LaneInput, String> {
        static N: AtomicU32 = AtomicU32::new(0);
        let input = N.fetch_add(1, Ordering::Relaxed);
        self.inner()
            .input_streams
            .insert(input, stream_id.to_string());
        // Named after its peer: an error inside it fails that peer alone (`peer_of`).
        let bin = gst::Bin::with_name(&format!("{peer}-lane{input}"));
        let queue = make("queue")?;
        // Never hold the guest's other consumers back.
        queue.set_property_from_str("leaky", "downstream");
        queue.set_property("max-size-buffers", 0u32);
        queue.set_property("max-size-bytes", 0u32);
        queue.set_property("max-size-time", 2_000_000_000u64);
        let convert = make("audioconvert")?;
        let resample = make("audioresample")?;
        let filter = make("capsfilter")?;
        // A returning guest's audio is converted to its file's channels.
        filter.set_property("caps", raw_caps(self.channels(stream_id)));
        let lanes = self.clone();
        let id = stream_id.to_string();
        let appsink = gst_app::AppSink::builder()
            .sync(false)
            .async_(false)
            .callbacks(
                gst_app::AppSinkCallbacks::builder()
                    .new_sample(move |sink| {
                        let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                        // A file that cannot be written is reported (once) and its samples
                        // dropped: the guest's other outputs go on.
                        match lanes.write(input, &id, &sample) {
                            Ok(Some(f)) => on_file(Ok(f)),
                            Ok(None) => {}
                            Err(e) => {
                                gst::warning!(CAT, obj = sink, "{id}: no aligned audio: {e}");
                                on_file(Err(format!("{id}: no aligned audio file: {e}")));
                            }
                        }
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .build(),
            )
            .build();
        let chain = [
            &queue,
            &convert,
            &resample,
            &filter,
            appsink.upcast_ref::<gst::Element>(),
        ];
        bin.add_many(chain).map_err(|e| e.to_string())?;
        gst::Element::link_many(chain).map_err(|_| "cannot link an aligned-audio input")?;
        let qsink = queue.static_pad("sink").ok_or("no sink")?;
        let sink = crate::common::elements::ghost(&bin, &qsink, "sink")?;
        parent.add(&bin).map_err(|e| e.to_string())?;
        let fail = |e: String| {
            let _ = bin.set_state(gst::State::Null);
            let _ = parent.remove(&bin);
            e
        };
        bin.sync_state_with_parent()
            .map_err(|_| fail("cannot start an aligned-audio input".into()))?;
        source
            .link(&sink)
            .map_err(|e| fail(format!("cannot feed the aligned audio: {e:?}")))?;
        Ok(LaneInput {
            bin,
            source: source.clone(),
            sink: sink.upcast(),
            lanes: self.clone(),
            input,
        })
    }
}

impl LaneInput {
    /// Unhooks and removes the input (the file goes on).
    pub fn remove(self, parent: &gst::Bin) {
        let _ = self.source.unlink(&self.sink);
        let _ = self.bin.set_state(gst::State::Null);
        let _ = parent.remove(&self.bin);
        self.lanes.input_ended(self.input);
    }
}
