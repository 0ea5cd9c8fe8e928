//! The breaker record as stored in Redis, and the clock that converts its times.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::state::{BreakerPhase, BreakerRecord};

/// The longest span a record's times and cooldown may stand for: a day, like the longest
/// wait an error may ask for.
const MAX_RECORD_SPAN: Duration = Duration::from_secs(24 * 60 * 60);

/// One moment seen both as this process's [`Instant`] and as Unix milliseconds, to convert
/// times in records between the two.
pub(super) struct Clock {
    pub(super) instant: Instant,
    pub(super) wall_ms: i64,
}

impl Clock {
    pub(super) fn now() -> Clock {
        let wall_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        Clock {
            instant: Instant::now(),
            wall_ms,
        }
    }

    fn to_wall(&self, at: Instant) -> i64 {
        if at >= self.instant {
            self.wall_ms + (at - self.instant).as_millis() as i64
        } else {
            self.wall_ms - (self.instant - at).as_millis() as i64
        }
    }

    /// Converts a time from a record; one more than a day ahead is taken as a day ahead,
    /// so a corrupt or hostile record cannot overflow the clock.
    fn to_instant(&self, wall_ms: i64) -> Instant {
        let offset = Duration::from_millis(wall_ms.abs_diff(self.wall_ms));
        if wall_ms >= self.wall_ms {
            self.instant + offset.min(MAX_RECORD_SPAN)
        } else {
            self.instant.checked_sub(offset).unwrap_or(self.instant)
        }
    }
}

/// A breaker record as stored in Redis.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct WireRecord {
    #[serde(default)]
    phase: WirePhase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) open_until_ms: Option<i64>,
    #[serde(default)]
    cooldown_ms: u64,
    #[serde(default)]
    failures: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    window: Vec<(i64, bool)>,
    /// When the probe in flight was taken; absent when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) probe_since_ms: Option<i64>,
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WirePhase {
    #[default]
    Closed,
    Open,
    HalfOpen,
}

impl WireRecord {
    /// Converts to a record of this process, and returns when its probe was taken if the
    /// probe still counts (a mark older than `lease` is dropped).
    pub(super) fn to_record(&self, clock: &Clock, lease: Duration) -> (BreakerRecord, Option<i64>) {
        let probe_since = self
            .probe_since_ms
            .filter(|since| clock.wall_ms.saturating_sub(*since) < lease.as_millis() as i64);
        let record = BreakerRecord {
            phase: match self.phase {
                WirePhase::Closed => BreakerPhase::Closed,
                WirePhase::Open => BreakerPhase::Open,
                WirePhase::HalfOpen => BreakerPhase::HalfOpen,
            },
            open_until: self.open_until_ms.map(|ms| clock.to_instant(ms)),
            cooldown: Duration::from_millis(self.cooldown_ms).min(MAX_RECORD_SPAN),
            consecutive_failures: self.failures,
            window: self
                .window
                .iter()
                .map(|(ms, failed)| (clock.to_instant(*ms), *failed))
                .collect(),
            probe_in_flight: probe_since.is_some(),
        };
        (record, probe_since)
    }

    /// Converts from a record of this process; a probe in flight keeps the time it was
    /// taken (`probe_since`) or, newly taken, is stamped now.
    pub(super) fn from_record(
        record: &BreakerRecord,
        probe_since: Option<i64>,
        clock: &Clock,
    ) -> WireRecord {
        WireRecord {
            phase: match record.phase {
                BreakerPhase::Closed => WirePhase::Closed,
                BreakerPhase::Open => WirePhase::Open,
                BreakerPhase::HalfOpen => WirePhase::HalfOpen,
            },
            open_until_ms: record.open_until.map(|at| clock.to_wall(at)),
            cooldown_ms: record.cooldown.as_millis() as u64,
            failures: record.consecutive_failures,
            window: record
                .window
                .iter()
                .map(|(at, failed)| (clock.to_wall(*at), *failed))
                .collect(),
            probe_since_ms: record
                .probe_in_flight
                .then(|| probe_since.unwrap_or(clock.wall_ms)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_with_absurd_times_is_read_without_overflow() {
        let wire: WireRecord = serde_json::from_str(&format!(
            r#"{{"phase":"open","open_until_ms":{},"cooldown_ms":{},"window":[[{},true]]}}"#,
            i64::MAX,
            u64::MAX,
            i64::MIN
        ))
        .unwrap();
        let clock = Clock::now();
        let (record, _) = wire.to_record(&clock, Duration::from_secs(60));
        assert_eq!(
            record.open_until,
            Some(clock.instant + MAX_RECORD_SPAN),
            "a time past a day is a day"
        );
        assert_eq!(record.cooldown, MAX_RECORD_SPAN);
        // Doubling the cooldown, as a failed probe does, must not overflow either.
        assert!(record.cooldown.checked_mul(2).is_some());
    }
}
