//! Marathon's label selector for `GET /v2/apps?label=`: comma-separated
//! terms, all of which must hold: `key`, `!key`, `key==value`,
//! `key!=value`, `key in (a, b)`, `key notin (a, b)`.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSelector(Vec<Term>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Term {
    Exists(String),
    Missing(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

impl LabelSelector {
    pub fn parse(text: &str) -> Result<LabelSelector, String> {
        split_terms(text)
            .into_iter()
            .map(|term| parse_term(term.trim()))
            .collect::<Result<Vec<_>, _>>()
            .map(LabelSelector)
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|term| match term {
            Term::Exists(key) => labels.contains_key(key),
            Term::Missing(key) => !labels.contains_key(key),
            Term::In(key, values) => labels.get(key).is_some_and(|v| values.contains(v)),
            Term::NotIn(key, values) => labels.get(key).is_none_or(|v| !values.contains(v)),
        })
    }
}

/// Splits on commas outside parentheses, so `k in (a, b)` stays one term.
fn split_terms(text: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let mut depth = 0u32;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                terms.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&text[start..]);
    terms
}

fn parse_term(term: &str) -> Result<Term, String> {
    let bad = || format!("invalid label selector term '{term}'");
    if let Some((key, value)) = term.split_once("!=") {
        return Ok(Term::NotIn(
            key_of(key).ok_or_else(bad)?,
            vec![value.trim().to_owned()],
        ));
    }
    if let Some((key, value)) = term.split_once("==") {
        return Ok(Term::In(
            key_of(key).ok_or_else(bad)?,
            vec![value.trim().to_owned()],
        ));
    }
    for (keyword, negated) in [(" notin ", true), (" in ", false)] {
        if let Some((key, set)) = term.split_once(keyword) {
            let key = key_of(key).ok_or_else(bad)?;
            let values = set
                .trim()
                .strip_prefix('(')
                .and_then(|s| s.strip_suffix(')'))
                .ok_or_else(bad)?
                .split(',')
                .map(|v| v.trim().to_owned())
                .collect();
            return Ok(if negated {
                Term::NotIn(key, values)
            } else {
                Term::In(key, values)
            });
        }
    }
    match term.strip_prefix('!') {
        Some(key) => Ok(Term::Missing(key_of(key).ok_or_else(bad)?)),
        None => Ok(Term::Exists(key_of(term).ok_or_else(bad)?)),
    }
}

fn key_of(text: &str) -> Option<String> {
    let key = text.trim();
    let valid = !key.is_empty() && !key.contains([' ', '(', ')', '!', '=']);
    valid.then(|| key.to_owned())
}

#[cfg(test)]
mod tests {
    use super::LabelSelector;
    use std::collections::BTreeMap;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn matches_every_term_form() {
        let web = labels(&[("team", "web"), ("env", "prod")]);
        for (selector, expected) in [
            ("team", true),
            ("!team", false),
            ("team==web", true),
            ("team!=web", false),
            ("team==web,env==dev", false),
            ("env in (dev, prod)", true),
            ("env notin (dev, prod)", false),
            ("owner!=bob", true),
            ("env in (dev, prod),team", true),
        ] {
            let parsed = LabelSelector::parse(selector).unwrap();
            assert_eq!(parsed.matches(&web), expected, "{selector}");
        }
    }

    #[test]
    fn rejects_malformed_terms() {
        for bad in ["", "==web", "env in dev", "a b"] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad:?}");
        }
    }
}
