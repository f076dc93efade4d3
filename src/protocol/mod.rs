// SPDX-License-Identifier: MPL-2.0

//! The VDO.Ninja protocol, sans I/O.
//!
//! Pure types and state machines: no GStreamer, no sockets, no clock of their own (time is
//! passed in). The elements drive them from their signaling task; tests drive them directly.
//!
//! * [`crypto`]: passwords, salts, wire IDs and AES payload encryption (spec §3);
//! * [`message`]: the messages of spec §2 and §6.4;
//! * [`routing`]: the official and the fan-out routing models (spec §1.3);
//! * [`ice_queue`]: the bounded queue for early remote ICE candidates (spec §5);
//! * [`rate`]: a token-bucket message rate limit;
//! * [`turn`]: TURN URLs, VDO.Ninja's TURN list and its selection (spec §4);
//! * [`machine`]: the signaling state machine for publishers, viewers and room recorders.

pub mod crypto;
pub mod ice_queue;
pub mod machine;
pub mod message;
pub mod rate;
pub mod routing;
pub mod turn;

/// Our version string, sent in `info.version`.
pub const VERSION: &str = concat!("gst-vdoninja-", env!("CARGO_PKG_VERSION"));
