// SPDX-License-Identifier: MPL-2.0

//! A VDO.Ninja-compatible handshake server: [`hub`] is its logic, sans I/O.

pub mod hub;
