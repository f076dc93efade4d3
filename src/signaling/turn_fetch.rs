// SPDX-License-Identifier: MPL-2.0

//! Fetching VDO.Ninja's TURN list (spec §4.2): HTTPS GET with a 2 s timeout, cached for an
//! hour, falling back to the built-in table. Parsing and selection live in
//! [`crate::protocol::turn`].

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::protocol::turn::{TurnEntry, fallback_turn_list, parse_turn_list};

/// The official list.
pub const DEFAULT_TURN_LIST_URL: &str = "https://turnservers.vdo.ninja/";
/// The web app's timeout.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(2);
/// The web app caches the list for an hour.
pub const CACHE_TTL: Duration = Duration::from_secs(3600);

/// Where a list came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnSource {
    Fetched,
    Cached,
    /// The fetch failed (the reason is returned beside it).
    Fallback,
}

/// Fetched lists by URL, with the time they were fetched.
type Cache = Mutex<HashMap<String, (Instant, Vec<TurnEntry>)>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// GETs and parses the list at `url` (no cache). Blocking: call from a blocking context.
pub fn fetch_blocking(url: &str, timeout: Duration) -> Result<Vec<TurnEntry>, String> {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let sep = if url.contains('?') { '&' } else { '?' };
    let full = format!("{url}{sep}ts={ms}");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .build()
        .into();
    let body = agent
        .get(&full)
        .call()
        .map_err(|e| format!("TURN list fetch failed: {e}"))?
        .body_mut()
        .with_config()
        .limit(1024 * 1024)
        .read_to_string()
        .map_err(|e| format!("TURN list read failed: {e}"))?;
    let list = parse_turn_list(&body);
    if list.is_empty() {
        return Err("the TURN list has no usable entry".into());
    }
    Ok(list)
}

/// The TURN list: cached if fresh, else fetched (never waiting more than `timeout`), else the
/// built-in table. The error says why the fallback was used.
pub async fn turn_list(
    url: &str,
    timeout: Duration,
) -> (Vec<TurnEntry>, TurnSource, Option<String>) {
    if let Ok(c) = cache().lock()
        && let Some((at, list)) = c.get(url)
        && at.elapsed() < CACHE_TTL
    {
        return (list.clone(), TurnSource::Cached, None);
    }
    let u = url.to_string();
    let fetched = tokio::time::timeout(
        timeout + Duration::from_millis(200),
        tokio::task::spawn_blocking(move || fetch_blocking(&u, timeout)),
    )
    .await;
    match fetched {
        Ok(Ok(Ok(list))) => {
            if let Ok(mut c) = cache().lock() {
                c.insert(url.to_string(), (Instant::now(), list.clone()));
            }
            (list, TurnSource::Fetched, None)
        }
        Ok(Ok(Err(e))) => (fallback_turn_list(), TurnSource::Fallback, Some(e)),
        Ok(Err(e)) => (
            fallback_turn_list(),
            TurnSource::Fallback,
            Some(e.to_string()),
        ),
        Err(_) => (
            fallback_turn_list(),
            TurnSource::Fallback,
            Some("TURN list fetch timed out".into()),
        ),
    }
}

/// This machine's timezone as the web app computes it: minutes **west** of UTC, normalised to
/// standard time (§4.2).
pub fn local_timezone_minutes_west() -> i32 {
    let tz = jiff::tz::TimeZone::system();
    let info = tz.to_offset_info(jiff::Timestamp::now());
    let west = -info.offset().seconds() / 60;
    if info.dst().is_dst() { west + 60 } else { west }
}
