// SPDX-License-Identifier: MPL-2.0

//! The bounded queue of remote ICE candidates that arrived before their peer (or its remote
//! description) existed (spec §5.2, inbound rules 2–4 and 7).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::message::{Direction, IceCandidate};

/// Bounds of the queue. The defaults follow the SDK and OBS clients (§5.2).
#[derive(Debug, Clone, Copy)]
pub struct IceQueueLimits {
    /// Entries older than this are discarded.
    pub ttl: Duration,
    /// At most this many candidates per (UUID, direction).
    pub per_key: usize,
    /// At most this many (UUID, direction) keys.
    pub keys: usize,
    /// At most this many bytes of candidate text in all.
    pub total_bytes: usize,
    /// A longer candidate line is refused.
    pub max_candidate_len: usize,
}

impl Default for IceQueueLimits {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(30),
            per_key: 100,
            keys: 256,
            total_bytes: 2 * 1024 * 1024,
            max_candidate_len: 16 * 1024,
        }
    }
}

/// Candidates for one peer are queued under (its UUID, the direction the message carried).
pub type QueueKey = (String, Direction);

#[derive(Debug)]
struct Entry {
    session: Option<String>,
    candidate: IceCandidate,
    at: Instant,
}

impl Entry {
    fn bytes(&self) -> usize {
        self.candidate.candidate.len() + self.candidate.sdp_mid.as_ref().map_or(0, String::len)
    }
}

/// Why a candidate was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    TooLong,
    KeyFull,
    TooManyKeys,
    TotalFull,
}

#[derive(Debug, Default)]
pub struct IceQueue {
    limits: IceQueueLimits,
    queues: HashMap<QueueKey, VecDeque<Entry>>,
    bytes: usize,
    /// No entry expires before this (none when empty): a flood does not scan every queue on
    /// every push.
    next_expiry: Option<Instant>,
}

impl IceQueue {
    pub fn new(limits: IceQueueLimits) -> Self {
        Self {
            limits,
            queues: HashMap::new(),
            bytes: 0,
            next_expiry: None,
        }
    }

    pub fn limits(&self) -> IceQueueLimits {
        self.limits
    }

    /// Queues one candidate. Expired entries are purged first, so a full queue frees up with time.
    pub fn push(
        &mut self,
        key: QueueKey,
        session: Option<String>,
        candidate: IceCandidate,
        now: Instant,
    ) -> Result<(), Refused> {
        let entry = Entry {
            session,
            candidate,
            at: now,
        };
        if entry.candidate.candidate.len() > self.limits.max_candidate_len {
            return Err(Refused::TooLong);
        }
        self.expire(now);
        if self.bytes + entry.bytes() > self.limits.total_bytes {
            return Err(Refused::TotalFull);
        }
        if !self.queues.contains_key(&key) && self.queues.len() >= self.limits.keys {
            return Err(Refused::TooManyKeys);
        }
        let q = self.queues.entry(key).or_default();
        if q.len() >= self.limits.per_key {
            return Err(Refused::KeyFull);
        }
        self.bytes += entry.bytes();
        let expiry = now + self.limits.ttl;
        self.next_expiry = Some(self.next_expiry.map_or(expiry, |t| t.min(expiry)));
        q.push_back(entry);
        Ok(())
    }

    /// Takes every live candidate queued for `key` whose session is absent or equal to
    /// `session` (or any session when `session` is `None`); the rest of that key is discarded.
    pub fn drain(
        &mut self,
        key: &QueueKey,
        session: Option<&str>,
        now: Instant,
    ) -> Vec<IceCandidate> {
        let Some(q) = self.queues.remove(key) else {
            return Vec::new();
        };
        let ttl = self.limits.ttl;
        let mut out = Vec::new();
        for e in q {
            self.bytes -= e.bytes();
            let fresh = now.saturating_duration_since(e.at) <= ttl;
            let same = match (session, e.session.as_deref()) {
                (Some(want), Some(got)) => want == got,
                _ => true,
            };
            if fresh && same {
                out.push(e.candidate);
            }
        }
        out
    }

    /// Forgets everything queued for `uuid` (its peer closed).
    pub fn clear_uuid(&mut self, uuid: &str) {
        let keys: Vec<QueueKey> = self
            .queues
            .keys()
            .filter(|(u, _)| u == uuid)
            .cloned()
            .collect();
        for k in keys {
            if let Some(q) = self.queues.remove(&k) {
                self.bytes -= q.iter().map(Entry::bytes).sum::<usize>();
            }
        }
    }

    /// Drops expired entries.
    pub fn expire(&mut self, now: Instant) {
        if self.next_expiry.is_none_or(|t| now <= t) {
            return;
        }
        let ttl = self.limits.ttl;
        let mut freed = 0;
        self.queues.retain(|_, q| {
            while q
                .front()
                .is_some_and(|e| now.saturating_duration_since(e.at) > ttl)
            {
                if let Some(e) = q.pop_front() {
                    freed += e.bytes();
                }
            }
            !q.is_empty()
        });
        self.bytes -= freed;
        self.next_expiry = self
            .queues
            .values()
            .filter_map(|q| q.front().map(|e| e.at + ttl))
            .min();
    }

    /// Queued candidates in all.
    pub fn len(&self) -> usize {
        self.queues.values().map(VecDeque::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }

    /// Number of keys.
    pub fn keys(&self) -> usize {
        self.queues.len()
    }

    /// Bytes of candidate text held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(i: usize) -> IceCandidate {
        IceCandidate {
            candidate: format!("candidate:{i} 1 UDP 1 10.0.0.1 {i} typ host"),
            sdp_mid: Some("0".into()),
            sdp_mline_index: Some(0),
        }
    }

    fn key(u: &str) -> QueueKey {
        (u.to_string(), Direction::Local)
    }

    #[test]
    fn drain_filters_by_session() {
        let now = Instant::now();
        let mut q = IceQueue::default();
        q.push(key("a"), Some("s1".into()), cand(1), now).unwrap();
        q.push(key("a"), Some("old".into()), cand(2), now).unwrap();
        q.push(key("a"), None, cand(3), now).unwrap();
        q.push(key("b"), Some("s1".into()), cand(4), now).unwrap();
        let got = q.drain(&key("a"), Some("s1"), now);
        assert_eq!(got, vec![cand(1), cand(3)]);
        assert_eq!(q.len(), 1, "the stale-session entry is discarded, b stays");
        assert!(q.drain(&key("a"), Some("s1"), now).is_empty());
        assert_eq!(q.drain(&key("b"), None, now), vec![cand(4)]);
        assert_eq!(q.bytes(), 0);
    }

    #[test]
    fn ttl_expires_entries() {
        let t0 = Instant::now();
        let mut q = IceQueue::default();
        q.push(key("a"), None, cand(1), t0).unwrap();
        let later = t0 + Duration::from_secs(31);
        assert!(q.drain(&key("a"), None, later).is_empty());
        q.push(key("a"), None, cand(2), t0).unwrap();
        q.expire(later);
        assert!(q.is_empty());
        assert_eq!(q.bytes(), 0);
    }

    #[test]
    fn bounds_hold() {
        let now = Instant::now();
        let limits = IceQueueLimits {
            per_key: 3,
            keys: 2,
            total_bytes: 200,
            ..Default::default()
        };
        let mut q = IceQueue::new(limits);
        for i in 0..3 {
            q.push(key("a"), None, cand(i), now).unwrap();
        }
        assert_eq!(q.push(key("a"), None, cand(9), now), Err(Refused::KeyFull));
        q.push(key("b"), None, cand(1), now).unwrap();
        assert_eq!(
            q.push(key("c"), None, cand(1), now),
            Err(Refused::TooManyKeys)
        );
        // total bytes: 4 entries of ~40 bytes each; the fifth overflows 200.
        let r = q.push(key("b"), None, cand(10), now);
        assert_eq!(r, Err(Refused::TotalFull));
        assert!(q.bytes() <= 200);
        let long = IceCandidate {
            candidate: "x".repeat(20_000),
            sdp_mid: None,
            sdp_mline_index: Some(0),
        };
        assert_eq!(q.push(key("b"), None, long, now), Err(Refused::TooLong));
        q.clear_uuid("a");
        assert_eq!(q.len(), 1);
        assert_eq!(q.keys(), 1);
    }
}
