// SPDX-License-Identifier: MPL-2.0

//! At most so many tests of one binary at once: each holds a [`Slot`] while it runs. For files
//! whose tests each run whole rooms (publishers, a recorder, a server): all at once on 2 cores,
//! one of them now and then waited past its bound for what normally takes half a second.

use std::sync::{Condvar, Mutex};

pub struct Slots {
    used: Mutex<usize>,
    freed: Condvar,
    max: usize,
}

/// Held while a test runs; its place is given back on drop (also when the test panics).
pub struct Slot(&'static Slots);

impl Slots {
    pub const fn new(max: usize) -> Self {
        Self {
            used: Mutex::new(0),
            freed: Condvar::new(),
            max,
        }
    }

    /// Waits for a free place.
    pub fn take(&'static self) -> Slot {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        while *used >= self.max {
            used = self.freed.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        *used += 1;
        Slot(self)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut used = self.0.used.lock().unwrap_or_else(|e| e.into_inner());
        *used -= 1;
        self.0.freed.notify_one();
    }
}
