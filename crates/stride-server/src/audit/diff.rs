//! What changed between two app definitions, field by field: the answer to
//! "who changed what" beyond "something changed".
//!
//! Objects are compared key by key, arrays of equal length element by
//! element; anything else that differs (a scalar, an array that grew or
//! shrank, a value of another type) is one change holding its whole
//! before and after.

use serde::Serialize;
use serde_json::Value;

/// One changed field: where (a JSON pointer), and its value before and
/// after (absent when the field was added or removed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

/// Every change from `before` to `after`, in key order.
pub fn diff(before: &Value, after: &Value) -> Vec<Change> {
    let mut changes = Vec::new();
    walk(String::new(), Some(before), Some(after), &mut changes);
    changes
}

fn walk(path: String, before: Option<&Value>, after: Option<&Value>, out: &mut Vec<Change>) {
    match (before, after) {
        (Some(Value::Object(b)), Some(Value::Object(a))) => {
            let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                walk(child(&path, key), b.get(key), a.get(key), out);
            }
        }
        (Some(Value::Array(b)), Some(Value::Array(a))) if b.len() == a.len() => {
            for (i, (b, a)) in b.iter().zip(a).enumerate() {
                walk(child(&path, &i.to_string()), Some(b), Some(a), out);
            }
        }
        (b, a) if b != a => out.push(Change {
            path: if path.is_empty() { "/".into() } else { path },
            before: b.cloned(),
            after: a.cloned(),
        }),
        _ => {}
    }
}

/// `path` extended by `key`, escaped as RFC 6901 asks.
fn child(path: &str, key: &str) -> String {
    format!("{path}/{}", key.replace('~', "~0").replace('/', "~1"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn changes_name_each_field_with_its_before_and_after() {
        let before = json!({"id": "/web", "instances": 3, "cmd": "a",
            "env": {"A": "1", "B/C": "2"}, "args": ["x", "y"], "labels": {}});
        let after = json!({"id": "/web", "instances": 5, "cmd": "a",
            "env": {"A": "9", "D": "4"}, "args": ["x", "y", "z"], "labels": {}});
        let changes = diff(&before, &after);
        let shown: Vec<(&str, Option<&Value>, Option<&Value>)> = changes
            .iter()
            .map(|c| (c.path.as_str(), c.before.as_ref(), c.after.as_ref()))
            .collect();
        assert_eq!(
            shown,
            [
                (
                    "/args",
                    Some(&json!(["x", "y"])),
                    Some(&json!(["x", "y", "z"]))
                ),
                ("/env/A", Some(&json!("1")), Some(&json!("9"))),
                ("/env/B~1C", Some(&json!("2")), None),
                ("/env/D", None, Some(&json!("4"))),
                ("/instances", Some(&json!(3)), Some(&json!(5))),
            ]
        );
        assert!(diff(&before, &before).is_empty());
    }

    /// Applies `changes` to `value`: what the diff claims, checked below.
    fn apply(mut value: Value, changes: &[Change]) -> Value {
        for change in changes {
            if change.path == "/" {
                value = change.after.clone().unwrap_or(Value::Null);
                continue;
            }
            let (parent, key) = change.path.rsplit_once('/').unwrap();
            let key = key.replace("~1", "/").replace("~0", "~");
            let target = value.pointer_mut(parent).expect("the parent exists");
            match (target, &change.after) {
                (Value::Object(map), Some(after)) => {
                    map.insert(key, after.clone());
                }
                (Value::Object(map), None) => {
                    map.remove(&key);
                }
                (Value::Array(items), Some(after)) => {
                    items[key.parse::<usize>().unwrap()] = after.clone();
                }
                (other, _) => panic!("cannot apply {change:?} to {other}"),
            }
        }
        value
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (0u32..5).prop_map(Value::from),
            "[a-c/~]{0,2}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-c/~]{1,2}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// The changes take `before` exactly to `after`, and name nothing
        /// that stayed the same.
        #[test]
        fn the_changes_lead_from_before_to_after(before in json_value(), after in json_value()) {
            let changes = diff(&before, &after);
            prop_assert_eq!(apply(before.clone(), &changes), after.clone());
            for change in &changes {
                prop_assert_ne!(&change.before, &change.after);
            }
            prop_assert_eq!(changes.is_empty(), before == after);
        }
    }
}
