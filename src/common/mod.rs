// SPDX-License-Identifier: MPL-2.0

//! What both elements share: properties, codecs, the signaling driver, logging, application
//! messages.

pub mod app;
pub mod codec;
pub mod driver;
pub mod elements;
pub mod log;
pub mod needs;
pub mod settings;

/// Locks `m`, and goes on if a panic elsewhere poisoned it: every critical section of the
/// elements leaves its data consistent, and a poisoned lock must not take the element down.
pub fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
