//! Creates the DynamoDB tables described by `infra/local/resources.json`, so tests and local tools
//! share one source of key schemas with the deployed template.
//!
//! Not for production: deployed tables come from `template.yaml`. Queues in the same document are
//! ignored here.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters as _;
use aws_sdk_dynamodb::operation::create_table::CreateTableError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification, TimeToLiveStatus,
};
use serde::Deserialize;

use super::Tables;
use crate::ports::Cause;

/// How long to wait for a new table to become `ACTIVE`.
pub const TABLE_ACTIVE_TIMEOUT: Duration = Duration::from_secs(120);

/// The part of `resources.json` read here.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Resources {
    /// The tables (`queues` and other keys are ignored).
    pub tables: Vec<TableSpec>,
}

/// One table: base name, key schema and optional TTL attribute.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TableSpec {
    /// Base name; the table is created as `{prefix}{name}`.
    pub name: String,
    /// Partition key.
    pub hash_key: KeySpec,
    /// Sort key, if any.
    pub range_key: Option<KeySpec>,
    /// Attribute DynamoDB expires items by, if any.
    pub ttl_attribute: Option<String>,
    /// Global secondary indexes (each projects the whole item).
    #[serde(default)]
    pub indexes: Vec<IndexSpec>,
}

/// A global secondary index: name and key schema.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IndexSpec {
    /// Index name.
    pub name: String,
    /// Partition key.
    pub hash_key: KeySpec,
    /// Sort key, if any.
    pub range_key: Option<KeySpec>,
}

/// A key attribute: name and scalar type (`S`, `N` or `B`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct KeySpec {
    /// Attribute name.
    pub name: String,
    /// `S`, `N` or `B`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// Why the tables could not be provisioned.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// `resources.json` is not valid JSON of the expected shape.
    #[error("resources document is invalid: {0}")]
    Document(#[from] serde_json::Error),
    /// A key attribute type other than `S`, `N` or `B`.
    #[error("table {table}: key attribute type {kind:?} is not S, N or B")]
    KeyType {
        /// The table's base name.
        table: String,
        /// The type given.
        kind: String,
    },
    /// One of the tables the store needs is not in the document.
    #[error("resources document has no {0:?} table")]
    MissingTable(&'static str),
    /// A DynamoDB call failed.
    #[error("{action} {table} failed: {source}")]
    Sdk {
        /// What was being done (`CreateTable`, ...).
        action: &'static str,
        /// The full table name.
        table: String,
        /// The SDK error.
        #[source]
        source: Cause,
    },
}

impl Resources {
    /// Parses a `resources.json` document.
    pub fn parse(json: &str) -> Result<Self, ProvisionError> {
        Ok(serde_json::from_str(json)?)
    }

    /// The store's table names under `prefix`; errors if the document lacks one of them.
    pub fn tables(&self, prefix: &str) -> Result<Tables, ProvisionError> {
        let name = |base: &'static str| {
            self.tables
                .iter()
                .find(|t| t.name == base)
                .map(|t| format!("{prefix}{}", t.name))
                .ok_or(ProvisionError::MissingTable(base))
        };
        Ok(Tables {
            conversations: name("conversations")?,
            messages: name("messages")?,
            tokens: Some(name("tokens")?),
            desk: name("desk").ok(),
        })
    }
}

fn scalar(table: &str, key: &KeySpec) -> Result<ScalarAttributeType, ProvisionError> {
    match key.kind.as_str() {
        "S" => Ok(ScalarAttributeType::S),
        "N" => Ok(ScalarAttributeType::N),
        "B" => Ok(ScalarAttributeType::B),
        other => Err(ProvisionError::KeyType {
            table: table.to_owned(),
            kind: other.to_owned(),
        }),
    }
}

fn sdk_error<E: std::error::Error + Send + Sync + 'static>(
    action: &'static str,
    table: &str,
) -> impl FnOnce(E) -> ProvisionError {
    move |err| ProvisionError::Sdk {
        action,
        table: table.to_owned(),
        source: Box::new(err),
    }
}

/// Creates every table of `resources_json` as `{prefix}{name}` (on-demand billing) unless it
/// exists, waits until it is active, enables TTL where the document sets one, and returns the
/// store's table names. Idempotent: an existing table or an already-enabled TTL is fine.
pub async fn create_tables(
    client: &Client,
    resources_json: &str,
    prefix: &str,
) -> Result<Tables, ProvisionError> {
    let resources = Resources::parse(resources_json)?;
    let tables = resources.tables(prefix)?;
    for spec in &resources.tables {
        create_table(client, spec, &format!("{prefix}{}", spec.name)).await?;
    }
    Ok(tables)
}

async fn create_table(
    client: &Client,
    spec: &TableSpec,
    table: &str,
) -> Result<(), ProvisionError> {
    let key_schema = |hash: &KeySpec, range: &Option<KeySpec>| {
        let mut keys = vec![(hash.clone(), KeyType::Hash)];
        if let Some(range) = range {
            keys.push((range.clone(), KeyType::Range));
        }
        keys.into_iter()
            .map(|(key, key_type)| {
                KeySchemaElement::builder()
                    .attribute_name(&key.name)
                    .key_type(key_type)
                    .build()
                    .map_err(sdk_error("CreateTable", table))
            })
            .collect::<Result<Vec<_>, _>>()
    };
    let mut defined = Vec::new();
    let all_keys = std::iter::once((&spec.hash_key, &spec.range_key))
        .chain(spec.indexes.iter().map(|i| (&i.hash_key, &i.range_key)));
    for (hash, range) in all_keys {
        for key in std::iter::once(hash).chain(range.as_ref()) {
            if !defined.iter().any(|d: &KeySpec| d.name == key.name) {
                defined.push(key.clone());
            }
        }
    }
    let mut request = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key_schema(&spec.hash_key, &spec.range_key)?));
    for key in &defined {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(&key.name)
                .attribute_type(scalar(&spec.name, key)?)
                .build()
                .map_err(sdk_error("CreateTable", table))?,
        );
    }
    for index in &spec.indexes {
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(&index.name)
                .set_key_schema(Some(key_schema(&index.hash_key, &index.range_key)?))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .map_err(sdk_error("CreateTable", table))?,
        );
    }
    match request.send().await {
        Ok(_) => {}
        Err(err)
            if matches!(
                err.as_service_error(),
                Some(CreateTableError::ResourceInUseException(_))
            ) => {}
        Err(err) => return Err(sdk_error("CreateTable", table)(err)),
    }
    client
        .wait_until_table_exists()
        .table_name(table)
        .wait(TABLE_ACTIVE_TIMEOUT)
        .await
        .map_err(sdk_error("DescribeTable (wait until active)", table))?;

    let Some(ttl) = &spec.ttl_attribute else {
        return Ok(());
    };
    let current = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(sdk_error("DescribeTimeToLive", table))?;
    let enabled = current.time_to_live_description().is_some_and(|d| {
        matches!(
            d.time_to_live_status(),
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        ) && d.attribute_name() == Some(ttl.as_str())
    });
    if !enabled {
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(ttl)
                    .build()
                    .map_err(sdk_error("UpdateTimeToLive", table))?,
            )
            .send()
            .await
            .map_err(sdk_error("UpdateTimeToLive", table))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESOURCES: &str = include_str!("../../../../infra/local/resources.json");

    #[test]
    fn reads_the_local_resources_document() {
        let r = Resources::parse(RESOURCES).unwrap();
        let messages = r.tables.iter().find(|t| t.name == "messages").unwrap();
        assert_eq!(messages.hash_key.name, "pk");
        assert_eq!(
            messages.range_key.as_ref().map(|k| k.name.as_str()),
            Some("sk")
        );
        let tokens = r.tables.iter().find(|t| t.name == "tokens").unwrap();
        assert_eq!(tokens.ttl_attribute.as_deref(), Some("ttl"));
        assert_eq!(
            r.tables("t1-").unwrap(),
            Tables {
                conversations: "t1-conversations".into(),
                messages: "t1-messages".into(),
                tokens: Some("t1-tokens".into()),
                desk: Some("t1-desk".into()),
            }
        );
    }

    #[test]
    fn rejects_documents_without_the_store_tables_or_with_bad_key_types() {
        let r = Resources::parse(r#"{"tables":[{"name":"conversations","hash_key":{"name":"pk","type":"S"},"range_key":null,"ttl_attribute":null}]}"#).unwrap();
        assert!(matches!(
            r.tables(""),
            Err(ProvisionError::MissingTable("messages"))
        ));
        let bad = KeySpec {
            name: "pk".into(),
            kind: "SS".into(),
        };
        assert!(matches!(
            scalar("x", &bad),
            Err(ProvisionError::KeyType { .. })
        ));
        assert!(Resources::parse("{}").is_err());
    }
}
