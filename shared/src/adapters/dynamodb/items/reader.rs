//! Typed reading of one DynamoDB item: [`ItemReader`] gives each attribute as the type the schema
//! says, and anything else as [`StoreError::Corrupt`] naming the attribute and the (redacted) key.
//!
//! Not here: which attributes an item has (the schema is in [`super`]) or what they mean (the
//! per-kind mappings in `message`, `conversation` and `tokens_table`).

use aws_sdk_dynamodb::types::AttributeValue;

use super::Item;
use crate::ports::StoreError;

/// Typed, attribute-naming access to one item's attributes.
pub struct ItemReader<'a> {
    item: &'a Item,
    key: String,
}

impl<'a> ItemReader<'a> {
    /// A reader over `item`, which errors name as `key`.
    pub fn new(item: &'a Item, key: impl Into<String>) -> Self {
        Self {
            item,
            key: crate::secret::redact_key(&key.into()),
        }
    }

    /// A corrupt-item error for this item.
    pub fn corrupt(&self, reason: String) -> StoreError {
        StoreError::Corrupt {
            key: self.key.clone(),
            reason,
        }
    }

    /// An optional S attribute; any other type is corrupt.
    pub fn opt_s(&self, name: &str) -> Result<Option<&'a str>, StoreError> {
        match self.item.get(name) {
            None => Ok(None),
            Some(AttributeValue::S(v)) => Ok(Some(v)),
            Some(other) => Err(self.corrupt(format!(
                "attribute {name} is not a string (S): {}",
                type_name(other)
            ))),
        }
    }

    /// A required S attribute.
    pub fn req_s(&self, name: &str) -> Result<&'a str, StoreError> {
        self.opt_s(name)?
            .ok_or_else(|| self.corrupt(format!("attribute {name} is missing")))
    }

    /// An optional N attribute parsed as `T` (an integer type); other types or values are corrupt.
    pub fn opt_n<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, StoreError> {
        match self.item.get(name) {
            None => Ok(None),
            Some(AttributeValue::N(v)) => v.parse().map(Some).map_err(|_| {
                self.corrupt(format!(
                    "attribute {name} is not a {} (N {v:?})",
                    std::any::type_name::<T>()
                ))
            }),
            Some(other) => Err(self.corrupt(format!(
                "attribute {name} is not a number (N): {}",
                type_name(other)
            ))),
        }
    }

    /// An optional SS attribute, sorted (absent: empty).
    pub fn opt_ss(&self, name: &str) -> Result<Vec<String>, StoreError> {
        match self.item.get(name) {
            None => Ok(Vec::new()),
            Some(AttributeValue::Ss(v)) => {
                let mut v = v.clone();
                v.sort();
                Ok(v)
            }
            Some(other) => Err(self.corrupt(format!(
                "attribute {name} is not a string set (SS): {}",
                type_name(other)
            ))),
        }
    }

    /// An optional BOOL attribute.
    pub fn opt_bool(&self, name: &str) -> Result<Option<bool>, StoreError> {
        match self.item.get(name) {
            None => Ok(None),
            Some(AttributeValue::Bool(v)) => Ok(Some(*v)),
            Some(other) => Err(self.corrupt(format!(
                "attribute {name} is not a boolean (BOOL): {}",
                type_name(other)
            ))),
        }
    }

    /// The item itself (maps and other shapes the typed readers do not cover).
    pub fn item(&self) -> &'a Item {
        self.item
    }

    /// A required N attribute parsed as `T`.
    pub fn req_n<T: std::str::FromStr>(&self, name: &str) -> Result<T, StoreError> {
        self.opt_n(name)?
            .ok_or_else(|| self.corrupt(format!("attribute {name} is missing")))
    }
}

fn type_name(value: &AttributeValue) -> &'static str {
    match value {
        AttributeValue::S(_) => "S",
        AttributeValue::N(_) => "N",
        AttributeValue::B(_) => "B",
        AttributeValue::Bool(_) => "BOOL",
        AttributeValue::Null(_) => "NULL",
        AttributeValue::L(_) => "L",
        AttributeValue::M(_) => "M",
        AttributeValue::Ss(_) => "SS",
        AttributeValue::Ns(_) => "NS",
        AttributeValue::Bs(_) => "BS",
        _ => "an unknown type",
    }
}
