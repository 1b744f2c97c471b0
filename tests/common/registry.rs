//! Sentry's attribute registry (`sentry-conventions`), as the fixture
//! `tests/fixtures/sentry-conventions-0.29.0.json` holds it for the keys the crate sends: each
//! key's type and deprecation, copied from `sentry_conventions.attributes.ATTRIBUTE_METADATA`.
//!
//! Sections: `attributes` (registry keys the attributes and builders send), `not_in_registry`
//! (keys they send that the registry lacks), `integrations` (what only the automatic
//! integrations send: registry keys, and a few marked with a `note` that the registry lacks).

use std::collections::{BTreeMap, BTreeSet};

use sentry::protocol::{Span, Value};

const FIXTURE: &str = include_str!("../fixtures/sentry-conventions-0.29.0.json");

/// The sections of the attributes and builders.
pub const ATTRIBUTES: &[&str] = &["attributes", "not_in_registry"];

/// The section of the automatic integrations (which also send keys of [`ATTRIBUTES`]).
pub const INTEGRATIONS: &str = "integrations";

struct Entry {
    ty: String,
    backfill: Option<String>,
}

/// The keys of some sections of the fixture.
pub struct Registry {
    entries: BTreeMap<String, Entry>,
}

impl Registry {
    /// The keys of `sections`.
    pub fn load(sections: &[&str]) -> Self {
        let fixture: Value = serde_json::from_str(FIXTURE).expect("the fixture is JSON");
        assert_eq!(fixture["package"], "sentry-conventions");
        assert_eq!(fixture["version"], "0.29.0", "the version in the file name");
        let mut entries = BTreeMap::new();
        for section in sections {
            let map = fixture[*section].as_object().expect(section);
            for (key, entry) in map {
                let ty = entry["type"].as_str().expect("a type").to_owned();
                let backfill = match entry.get("deprecation") {
                    Some(d) if d["status"] == "backfill" => {
                        Some(d["replacement"].as_str().expect("a replacement").to_owned())
                    }
                    _ => None,
                };
                entries.insert(key.clone(), Entry { ty, backfill });
            }
        }
        Registry { entries }
    }

    /// The keys of one section only.
    pub fn keys_of(section: &str) -> BTreeSet<String> {
        Self::load(&[section]).entries.into_keys().collect()
    }

    /// Asserts that every data key of `span` is known, has the registry's JSON type and, when
    /// deprecated with status `backfill`, goes out with its replacement beside it (same value).
    /// Returns the keys seen.
    pub fn check<'a>(&self, span: &'a Span) -> Vec<&'a str> {
        let what = format!("{:?} {:?}", span.op, span.description);
        let mut seen = Vec::new();
        for (key, value) in &span.data {
            let Some(entry) = self.entries.get(key) else {
                panic!("{what}: `{key}` is not in the registry fixture");
            };
            assert!(
                has_type(value, &entry.ty),
                "{what}: `{key}` is {value:?}, the registry says {}",
                entry.ty
            );
            if let Some(replacement) = &entry.backfill {
                assert_eq!(
                    span.data.get(replacement),
                    Some(value),
                    "{what}: `{key}` is deprecated with status backfill: `{replacement}` goes \
                     out beside it, with the same value"
                );
            }
            seen.push(key.as_str());
        }
        seen
    }

    /// Every key loaded is one the crate sends: the fixture lists nothing stale.
    pub fn assert_all_seen(&self, seen: &BTreeSet<&str>) {
        let unsent: Vec<_> = self
            .entries
            .keys()
            .filter(|k| !seen.contains(k.as_str()))
            .collect();
        assert!(unsent.is_empty(), "in the fixture, never sent: {unsent:?}");
    }
}

fn has_type(value: &Value, ty: &str) -> bool {
    match ty {
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "double" => value.is_number(),
        "string[]" => value
            .as_array()
            .is_some_and(|items| items.iter().all(Value::is_string)),
        "object" => value.is_object(),
        other => panic!("a type the fixture does not define: {other}"),
    }
}
