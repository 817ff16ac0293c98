//! The desk's statistics (客服统计), pure: the day a time falls on (China time, UTC+8: the
//! platforms' and their users' day), the counters kept per app and per agent per day, the
//! response-time histogram and its percentiles, and the assembly of stored rows into days.
//!
//! The counters are written where things happen (the processor: messages in; the sender: messages
//! out, refusals for quota; the desk: accepted conversations and response times) with `ADD`, so
//! they cost no reads; the store is `ports::desk_stats`. Not here: windows closed unanswered, which
//! are counted from the conversations when read.

use std::collections::BTreeMap;

use serde::Serialize;

/// The offset of the statistics' day from UTC (China, no daylight saving).
pub const DAY_OFFSET_SECS: u64 = 8 * 3600;

/// Upper bounds of the response-time buckets, seconds; the last bucket is everything above.
pub const RESPONSE_BOUNDS: [u64; 11] = [
    10, 30, 60, 120, 300, 600, 1800, 3600, 14_400, 86_400, 172_800,
];

/// One counter of a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Counter {
    /// Conversations accepted (by anyone for the app; by the agent for an agent).
    Conversations,
    /// User messages stored.
    MessagesIn,
    /// Sends that reached the platform (agents', auto replies, the API's).
    MessagesOut,
    /// Sends refused because the window's units were spent (by kefu or by the platform).
    RefusedQuota,
    /// Agent replies that answered a waiting user, in response-time bucket `i`.
    Response(usize),
}

impl Counter {
    /// The stored attribute name.
    pub fn attribute(self) -> String {
        match self {
            Counter::Conversations => "conversations".into(),
            Counter::MessagesIn => "messages_in".into(),
            Counter::MessagesOut => "messages_out".into(),
            Counter::RefusedQuota => "refused_quota".into(),
            Counter::Response(i) => format!("response_{i}"),
        }
    }

    /// The counter an attribute name stores, if any.
    pub fn from_attribute(name: &str) -> Option<Counter> {
        Some(match name {
            "conversations" => Counter::Conversations,
            "messages_in" => Counter::MessagesIn,
            "messages_out" => Counter::MessagesOut,
            "refused_quota" => Counter::RefusedQuota,
            other => {
                let i: usize = other.strip_prefix("response_")?.parse().ok()?;
                (i <= RESPONSE_BOUNDS.len()).then_some(Counter::Response(i))?
            }
        })
    }

    /// The response bucket of a response time.
    pub fn response(secs: u64) -> Counter {
        Counter::Response(
            RESPONSE_BOUNDS
                .iter()
                .position(|b| secs <= *b)
                .unwrap_or(RESPONSE_BOUNDS.len()),
        )
    }
}

/// The statistics' day of `t` (Unix seconds), `YYYY-MM-DD`.
pub fn day_of(t: u64) -> String {
    let days = (t + DAY_OFFSET_SECS) / 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The `n` days ending with the day of `now`, oldest first.
pub fn last_days(now: u64, n: u32) -> Vec<String> {
    (0..u64::from(n))
        .rev()
        .map(|back| day_of(now.saturating_sub(back * 86_400)))
        .collect()
}

/// Howard Hinnant's days-to-civil: the date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The counters of one day, for an app or an agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts(pub BTreeMap<Counter, u64>);

impl Counts {
    fn get(&self, c: Counter) -> u64 {
        self.0.get(&c).copied().unwrap_or(0)
    }

    /// The response-time percentile `p` (0–100) as its bucket's upper bound in seconds (`None`
    /// without responses; the last bucket answers its lower bound).
    pub fn response_percentile(&self, p: u64) -> Option<u64> {
        let counts: Vec<u64> = (0..=RESPONSE_BOUNDS.len())
            .map(|i| self.get(Counter::Response(i)))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let want = (total * p).div_ceil(100).max(1);
        let mut seen = 0;
        for (i, n) in counts.iter().enumerate() {
            seen += n;
            if seen >= want {
                return Some(
                    RESPONSE_BOUNDS
                        .get(i)
                        .copied()
                        .unwrap_or(RESPONSE_BOUNDS[10]),
                );
            }
        }
        None
    }
}

/// One agent's day, as answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentDay {
    /// The agent.
    pub agent: String,
    /// Conversations the agent accepted.
    pub conversations: u64,
    /// The agent's sends.
    pub messages_out: u64,
    /// Response time p50, seconds (bucket bound).
    pub first_response_p50_secs: Option<u64>,
    /// Response time p90, seconds (bucket bound).
    pub first_response_p90_secs: Option<u64>,
}

/// One day of an app, as answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Day {
    /// `YYYY-MM-DD` (China time).
    pub date: String,
    /// Conversations accepted.
    pub conversations: u64,
    /// User messages stored.
    pub messages_in: u64,
    /// Sends that reached the platform.
    pub messages_out: u64,
    /// Response time p50, seconds (bucket bound).
    pub first_response_p50_secs: Option<u64>,
    /// Response time p90, seconds (bucket bound).
    pub first_response_p90_secs: Option<u64>,
    /// Conversations whose window closed that day with the user's last message unanswered.
    pub unanswered: u64,
    /// Sends refused for quota.
    pub refused_quota: u64,
    /// Per agent.
    pub agents: Vec<AgentDay>,
}

/// The days `days` from stored rows `(day, agent or None for the app, counts)` and the unanswered
/// counts per day.
pub fn assemble(
    days: &[String],
    rows: &[(String, Option<String>, Counts)],
    unanswered: &BTreeMap<String, u64>,
) -> Vec<Day> {
    days.iter()
        .map(|date| {
            let app = rows
                .iter()
                .find(|(d, a, _)| d == date && a.is_none())
                .map(|(_, _, c)| c.clone())
                .unwrap_or_default();
            let agents = rows
                .iter()
                .filter(|(d, a, _)| d == date && a.is_some())
                .map(|(_, a, c)| AgentDay {
                    agent: a.clone().unwrap_or_default(),
                    conversations: c.get(Counter::Conversations),
                    messages_out: c.get(Counter::MessagesOut),
                    first_response_p50_secs: c.response_percentile(50),
                    first_response_p90_secs: c.response_percentile(90),
                })
                .collect();
            Day {
                date: date.clone(),
                conversations: app.get(Counter::Conversations),
                messages_in: app.get(Counter::MessagesIn),
                messages_out: app.get(Counter::MessagesOut),
                first_response_p50_secs: app.response_percentile(50),
                first_response_p90_secs: app.response_percentile(90),
                unanswered: unanswered.get(date).copied().unwrap_or(0),
                refused_quota: app.get(Counter::RefusedQuota),
                agents,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_china_days() {
        // 2026-12-04 15:59:59 UTC is 23:59:59 in China; a second later it is the 5th there.
        assert_eq!(day_of(1_796_399_999), "2026-12-04");
        assert_eq!(day_of(1_796_400_000), "2026-12-05");
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(day_of(951_782_400), "2000-02-29");
        assert_eq!(
            last_days(1_796_400_000, 3),
            ["2026-12-03", "2026-12-04", "2026-12-05"]
        );
    }

    #[test]
    fn percentiles_come_from_the_buckets() {
        let mut c = Counts::default();
        assert_eq!(c.response_percentile(50), None);
        for secs in [5, 20, 25, 50, 400, 4000, 200_000] {
            *c.0.entry(Counter::response(secs)).or_default() += 1;
        }
        assert_eq!(c.response_percentile(50), Some(60));
        assert_eq!(c.response_percentile(90), Some(172_800));
        assert_eq!(
            Counter::from_attribute("response_3"),
            Some(Counter::Response(3))
        );
        assert_eq!(Counter::from_attribute("response_12"), None);
        assert_eq!(
            Counter::from_attribute("messages_in"),
            Some(Counter::MessagesIn)
        );
    }

    #[test]
    fn days_without_rows_are_zero_and_agents_are_per_day() {
        let days = vec!["2026-12-03".to_owned(), "2026-12-04".to_owned()];
        let mut app = Counts::default();
        app.0.insert(Counter::MessagesIn, 7);
        let mut ann = Counts::default();
        ann.0.insert(Counter::Conversations, 2);
        let rows = vec![
            ("2026-12-04".to_owned(), None, app),
            ("2026-12-04".to_owned(), Some("ann".to_owned()), ann),
        ];
        let unanswered = BTreeMap::from([("2026-12-04".to_owned(), 1)]);
        let out = assemble(&days, &rows, &unanswered);
        assert_eq!((out[0].messages_in, out[0].agents.len()), (0, 0));
        assert_eq!((out[1].messages_in, out[1].unanswered), (7, 1));
        assert_eq!(out[1].agents[0].conversations, 2);
    }
}
