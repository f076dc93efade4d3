// SPDX-License-Identifier: MPL-2.0

//! What both elements share: properties, codecs, the signaling driver, logging.

pub mod codec;
pub mod driver;
pub mod elements;
pub mod log;
pub mod settings;
