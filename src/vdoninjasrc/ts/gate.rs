// SPDX-License-Identifier: MPL-2.0

//! The gate in front of each track's muxer pad, and the room-wide state that drives the gates:
//! what the muxer's output holds ([`TsReader`]) and when tracks go in ([`Admission`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use gst::prelude::*;

use super::admit::{Action, Admission};
use super::read::{TsEvent, TsReader};
use crate::common::codec::{Codec, is_key_frame};

const HELD: u8 = 0;
const OPEN: u8 = 1;
const UNTIL_KEYFRAME: u8 = 2;

/// Shared by the muxer's output probe and every gate.
#[derive(Debug, Default)]
pub struct Room {
    reader: TsReader,
    admission: Admission,
    gates: HashMap<u16, Gate>,
}

pub type SharedRoom = Arc<Mutex<Room>>;

/// Runs `f` on the room's admission state, then carries out its actions (outside the lock).
pub fn drive(room: &SharedRoom, f: impl FnOnce(&mut Room, Instant) -> Vec<Action>) {
    let todo: Vec<(Action, Gate)> = {
        let Ok(mut r) = room.lock() else {
            return;
        };
        let actions = f(&mut r, Instant::now());
        actions
            .into_iter()
            .filter_map(|a| {
                let (Action::Admit(pid)
                | Action::AskKeyframe(pid)
                | Action::DropUntilKeyframe(pid)) = a;
                r.gates.get(&pid).map(|g| (a, g.clone()))
            })
            .collect()
    };
    for (action, gate) in todo {
        gst::debug!(
            crate::vdoninjasrc::CAT,
            obj = &gate.pad,
            "room stream: {action:?}"
        );
        match action {
            Action::Admit(_) => (gate.admit)(Opener(gate.state.clone())),
            Action::DropUntilKeyframe(_) => gate.state.store(UNTIL_KEYFRAME, Ordering::Release),
            Action::AskKeyframe(_) => gate.ask(),
        }
    }
}

impl Room {
    /// Reads the muxer's output: its PMTs and key frames are what readers will see.
    pub fn read(&mut self, data: &[u8], now: Instant) -> Vec<Action> {
        let events = self.reader.feed(data);
        let mut actions = Vec::new();
        for e in events {
            gst::trace!(crate::vdoninjasrc::CAT, "room stream: {e:?}");
            actions.extend(match e {
                TsEvent::Pmt(pids) => self.admission.pmt(&pids, now),
                TsEvent::KeyFrame(pid) => self.admission.keyframe(pid, now),
            });
        }
        actions.extend(self.admission.tick(now));
        actions
    }

    /// A track ended.
    pub fn remove(&mut self, pid: u16, now: Instant) -> Vec<Action> {
        self.gates.remove(&pid);
        self.admission.remove(pid, now)
    }
}

/// Opens a gate once its track is linked to the muxer.
pub struct Opener(Arc<AtomicU8>);

impl Opener {
    pub fn open(self) {
        self.0.store(OPEN, Ordering::Release);
    }
}

/// Holds a track until it is admitted; then passes it, dropping delta frames when told to.
#[derive(Clone)]
struct Gate {
    state: Arc<AtomicU8>,
    pad: gst::Pad,
    ask_publisher: Arc<dyn Fn() + Send + Sync>,
    /// Links the track to the muxer (later, elsewhere), then opens the gate.
    admit: Arc<dyn Fn(Opener) + Send + Sync>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.debug_struct("Gate").field("pad", &self.pad).finish()
    }
}

impl Gate {
    /// Asks for a key frame: upstream (a transcoding encoder, or the receiver's RTCP session
    /// sends a PLI) and by the protocol (a second PLI soon after the first waits for the next
    /// regular RTCP report, seconds away: RFC 4585 §3.5.2).
    fn ask(&self) {
        self.pad.send_event(crate::peer::force_key_unit());
        (self.ask_publisher)();
    }
}

/// Puts a gate for track `pid` on `pad` (the last pad before the muxer). Its first media asks
/// for admission (the muxer waits for data on every pad it has, so a track without media
/// must not have one).
pub fn install(
    room: &SharedRoom,
    pid: u16,
    video: bool,
    pad: &gst::Pad,
    ask_publisher: Arc<dyn Fn() + Send + Sync>,
    admit: Arc<dyn Fn(Opener) + Send + Sync>,
) {
    let gate = Gate {
        state: Arc::new(AtomicU8::new(HELD)),
        pad: pad.clone(),
        ask_publisher,
        admit,
    };
    let (state, weak): (_, Weak<Mutex<Room>>) = (gate.state.clone(), Arc::downgrade(room));
    if let Ok(mut r) = room.lock() {
        r.gates.insert(pid, gate);
    }
    let waiting = AtomicBool::new(false);
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let Some(buf) = info.buffer() else {
            return gst::PadProbeReturn::Ok;
        };
        match state.load(Ordering::Acquire) {
            HELD => {
                // Held media keeps the admission's clock going when nothing else flows.
                if let Some(room) = weak.upgrade() {
                    let first = !waiting.swap(true, Ordering::AcqRel);
                    drive(&room, |r, now| {
                        if first {
                            r.admission.add(pid, video, now)
                        } else {
                            r.admission.tick(now)
                        }
                    });
                }
                return gst::PadProbeReturn::Handled;
            }
            // Only a gate waiting for a key frame looks into the media.
            UNTIL_KEYFRAME if video && !is_key_frame(Codec::H264, buf) => {
                return gst::PadProbeReturn::Handled;
            }
            UNTIL_KEYFRAME => {
                gst::debug!(
                    crate::vdoninjasrc::CAT,
                    "room stream: {pid} passes a key frame"
                );
                state.store(OPEN, Ordering::Release);
            }
            _ => {}
        }
        gst::PadProbeReturn::Ok
    });
}
