//! JSON references in configured metadata (spec §3.6.14, REQ-130/131).
//!
//! A configuration may hold a top-level `definitions` object and
//! `{"$ref": "#/definitions/<name>"}` objects inside `parameters`. The default
//! `/info` has them resolved and no `definitions`; `resolve_references=false`
//! may show them as configured.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::validate::Report;

const PREFIX: &str = "#/definitions/";

/// Returns the info with every reference replaced by a copy of its target and
/// without `definitions`. Reference problems are reported and make the result
/// `None`, because the rest cannot be checked until the references resolve.
pub(super) fn resolve(info: &Map<String, Value>, r: &mut Report<'_>) -> Option<Map<String, Value>> {
    let before = r.len();
    let empty = Map::new();
    let defs = match info.get("definitions") {
        None => &empty,
        Some(Value::Object(d)) => d,
        Some(_) => {
            r.dataset("definitions must be a JSON object");
            &empty
        }
    };
    for (name, def) in defs {
        if contains_ref(def) {
            r.dataset(format!(
                "definition {name:?} contains a $ref (definitions must not refer to other definitions)"
            ));
        }
    }

    let mut used = BTreeSet::new();
    let mut out = Map::new();
    for (key, value) in info {
        match key.as_str() {
            "definitions" => {}
            "parameters" => {
                let mut value = value.clone();
                if let Value::Array(params) = &mut value {
                    for (i, p) in params.iter_mut().enumerate() {
                        resolve_parameter(i, p, defs, &mut used, r);
                    }
                }
                out.insert(key.clone(), value);
            }
            _ => {
                if contains_ref(value) {
                    r.dataset(format!("{key}: $ref is only allowed inside parameters"));
                }
                out.insert(key.clone(), value.clone());
            }
        }
    }
    // REQ-131 rule 5: in a full response every definition is used.
    for name in defs.keys() {
        if !used.contains(name.as_str()) {
            r.dataset(format!("definition {name:?} is never used"));
        }
    }
    (r.len() == before).then_some(out)
}

fn resolve_parameter(
    i: usize,
    p: &mut Value,
    defs: &Map<String, Value>,
    used: &mut BTreeSet<String>,
    r: &mut Report<'_>,
) {
    let name = p.get("name").and_then(Value::as_str).map(str::to_owned);
    // Anything but an object is reported by the parameter checks.
    let Value::Object(obj) = p else {
        return;
    };
    if obj.contains_key("$ref") {
        r.param(i, name.as_deref(), "a whole parameter cannot be a $ref (its name must stay visible)");
        return;
    }
    if obj.get("name").is_some_and(is_ref) {
        r.param(i, None, "the parameter name cannot be a $ref");
        return;
    }
    let mut problems = Vec::new();
    for (key, value) in obj.iter_mut() {
        substitute(key, value, defs, used, &mut problems);
    }
    for problem in problems {
        r.param(i, name.as_deref(), problem);
    }
}

/// Replaces every reference object below `value` (found under `path`).
fn substitute(
    path: &str,
    value: &mut Value,
    defs: &Map<String, Value>,
    used: &mut BTreeSet<String>,
    problems: &mut Vec<String>,
) {
    match value {
        Value::Object(obj) if obj.contains_key("$ref") => match target(obj, defs) {
            Ok((name, target)) => {
                used.insert(name);
                *value = target.clone();
            }
            Err(why) => problems.push(format!("{path}: {why}")),
        },
        Value::Object(obj) => {
            for (k, v) in obj.iter_mut() {
                substitute(&format!("{path}.{k}"), v, defs, used, problems);
            }
        }
        Value::Array(items) => {
            for (n, v) in items.iter_mut().enumerate() {
                substitute(&format!("{path}[{n}]"), v, defs, used, problems);
            }
        }
        _ => {}
    }
}

/// The definition a reference object points to, with the definition's name.
fn target<'a>(obj: &Map<String, Value>, defs: &'a Map<String, Value>) -> Result<(String, &'a Value), String> {
    // Siblings of `$ref` would be silently dropped by resolution, so refuse them.
    if obj.len() != 1 {
        return Err("a $ref object must have no other keys".to_owned());
    }
    let Some(reference) = obj.get("$ref").and_then(Value::as_str) else {
        return Err("$ref must be a string".to_owned());
    };
    let Some(pointer) = reference.strip_prefix(PREFIX).filter(|p| !p.is_empty()) else {
        return Err(format!("$ref {reference:?} must start with {PREFIX:?} followed by a name"));
    };
    let (first, rest) = match pointer.split_once('/') {
        Some((first, rest)) => (first, Some(rest)),
        None => (pointer, None),
    };
    let name = unescape(first);
    let unknown = || format!("$ref {reference:?} names no entry of definitions");
    let mut found = defs.get(&name).ok_or_else(unknown)?;
    if let Some(rest) = rest {
        // The rest is a JSON pointer into the definition (RFC 6901).
        found = found.pointer(&format!("/{rest}")).ok_or_else(unknown)?;
    }
    Ok((name, found))
}

/// RFC 6901 escapes in a pointer segment.
fn unescape(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

fn is_ref(v: &Value) -> bool {
    v.as_object().is_some_and(|o| o.contains_key("$ref"))
}

fn contains_ref(v: &Value) -> bool {
    match v {
        Value::Object(o) => o.contains_key("$ref") || o.values().any(contains_ref),
        Value::Array(a) => a.iter().any(contains_ref),
        _ => false,
    }
}
