//! [`StatsStore`] on DynamoDB: in the desk table, `stats#platform#app_id` / `<day>#app` and
//! `<day>#agent#<id>`, each counter a number attribute grown with `ADD` (no read); one `Query` reads
//! a range of days.

use async_trait::async_trait;

use super::items::{self, ItemReader, n, s};
use super::{DynamoDbStore, unavailable};
use crate::desk::stats::{Counter, Counts};
use crate::ports::StoreError;
use crate::ports::desk_stats::StatsStore;

fn stats_pk(app: &str) -> String {
    format!("stats#{app}")
}

#[async_trait]
impl StatsStore for DynamoDbStore {
    async fn add(
        &self,
        app: &str,
        day: &str,
        agent: Option<&str>,
        by: &[(Counter, u64)],
    ) -> Result<(), StoreError> {
        if by.is_empty() {
            return Ok(());
        }
        let mut sks = vec![format!("{day}#app")];
        if let Some(agent) = agent {
            sks.push(format!("{day}#agent#{agent}"));
        }
        for sk in sks {
            let mut update = self
                .client
                .update_item()
                .table_name(self.desk_table()?)
                .key(items::PK, s(stats_pk(app)))
                .key(items::DESK_SK, s(sk));
            let mut parts = Vec::new();
            for (i, (counter, amount)) in by.iter().enumerate() {
                parts.push(format!("#c{i} :c{i}"));
                update = update
                    .expression_attribute_names(format!("#c{i}"), counter.attribute())
                    .expression_attribute_values(format!(":c{i}"), n(*amount));
            }
            update
                .update_expression(format!("ADD {}", parts.join(", ")))
                .send()
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    async fn rows(
        &self,
        app: &str,
        first: &str,
        last: &str,
    ) -> Result<Vec<(String, Option<String>, Counts)>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(self.desk_table()?)
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :first AND :last")
                .expression_attribute_names("#pk", items::PK)
                .expression_attribute_names("#sk", items::DESK_SK)
                .expression_attribute_values(":pk", s(stats_pk(app)))
                .expression_attribute_values(":first", s(first))
                // `~` sorts after every suffix of the last day.
                .expression_attribute_values(":last", s(format!("{last}~")))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            for item in page.items() {
                let r = ItemReader::new(item, "stats");
                let sk = r.req_s(items::DESK_SK)?;
                let Some((day, who)) = sk.split_once('#') else {
                    continue;
                };
                let agent = who.strip_prefix("agent#").map(str::to_owned);
                let mut counts = Counts::default();
                for name in item.keys() {
                    if let Some(c) = Counter::from_attribute(name) {
                        counts.0.insert(c, r.opt_n(name)?.unwrap_or(0));
                    }
                }
                out.push((day.to_owned(), agent, counts));
            }
            match page.last_evaluated_key {
                Some(next) if !next.is_empty() => start = Some(next),
                _ => break,
            }
        }
        Ok(out)
    }
}
