// SPDX-License-Identifier: MPL-2.0

//! The one tokio runtime shared by every element of the plugin (network I/O only: media work
//! never runs on it).

use std::sync::LazyLock;

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("vdoninja-net")
        .enable_all()
        .build()
        .expect("the tokio runtime can be built")
});

/// The shared runtime.
pub fn handle() -> tokio::runtime::Handle {
    RUNTIME.handle().clone()
}
