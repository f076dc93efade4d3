// SPDX-License-Identifier: MPL-2.0

//! The I/O around the protocol core: the WebSocket client ([`client`]), the task that runs a
//! state machine on it ([`session`]) and the TURN list fetch ([`turn_fetch`]).

pub mod client;
pub mod session;
pub mod turn_fetch;
