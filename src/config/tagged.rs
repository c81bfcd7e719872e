//! Sections tagged by a `"type"` key (the optimizer, the schedule), read so that an error inside
//! one still names its full key path.

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer};
use serde_json::{Map, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Empty {}

/// Reads an object whose `"type"` key picks one of `kinds`; returns the kind and the other keys.
///
/// Written by hand rather than with `#[serde(tag)]`, whose buffering loses the key path: this
/// way an error inside the section still names its key.
pub(super) fn tagged_section<'de, D: Deserializer<'de>>(
    deserializer: D,
    kinds: &[&str],
) -> Result<(String, Map<String, Value>), D::Error> {
    let mut section = Map::deserialize(deserializer)?;
    let expected = kinds.join(", ");
    let kind = match section.remove("type") {
        Some(Value::String(kind)) if kinds.contains(&kind.as_str()) => kind,
        Some(Value::String(kind)) => {
            return Err(de::Error::custom(format_args!(
                "type: unknown type \"{kind}\" (expected one of: {expected})"
            )));
        }
        Some(other) => {
            return Err(de::Error::custom(format_args!(
                "type: expected a string (one of: {expected}), found {other}"
            )));
        }
        None => {
            return Err(de::Error::custom(format_args!(
                "missing key \"type\" (one of: {expected})"
            )));
        }
    };
    Ok((kind, section))
}

pub(super) fn section_body<T: DeserializeOwned, E: de::Error>(
    section: Map<String, Value>,
) -> Result<T, E> {
    serde_path_to_error::deserialize(Value::Object(section)).map_err(|err| {
        let path = err.path().to_string();
        if path == "." {
            E::custom(err.into_inner())
        } else {
            E::custom(format_args!("{path}: {}", err.into_inner()))
        }
    })
}

/// A tagged section reports errors as `subkey: message`; fold the subkey into the key path.
pub(super) fn join_key(key: &str, message: &str) -> String {
    match subkey(message) {
        Some(sub) if key == "." => sub.to_string(),
        Some(sub) => format!("{key}.{sub}"),
        None => key.to_string(),
    }
}

pub(super) fn strip_subkey(message: &str) -> String {
    match subkey(message) {
        Some(sub) => message[sub.len() + 2..].to_string(),
        None => message.to_string(),
    }
}

/// The leading `key.path` of a `key.path: message` error, if the message has one.
fn subkey(message: &str) -> Option<&str> {
    let (head, _) = message.split_once(": ")?;
    let is_key = !head.is_empty()
        && head
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
    is_key.then_some(head)
}
