//! App-id prefixes: `/` (everything) or `/seg/.../` ending in a slash, so
//! that `/prod/` covers `/prod/web` and the group `/prod` itself, and never
//! `/production`.

use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Prefix(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    #[error("a prefix starts with `/`, got `{0}`")]
    NotAbsolute(String),
    #[error(
        "a prefix ends with `/` (`{0}/`), so that it cannot cover a sibling whose name merely starts the same"
    )]
    NoTrailingSlash(String),
    #[error("`{0}` has an empty, `.` or `..` segment")]
    BadSegment(String),
}

impl Prefix {
    pub fn parse(text: &str) -> Result<Prefix, PrefixError> {
        if !text.starts_with('/') {
            return Err(PrefixError::NotAbsolute(text.to_owned()));
        }
        if !text.ends_with('/') {
            return Err(PrefixError::NoTrailingSlash(text.to_owned()));
        }
        if text != "/" {
            let inner = &text[1..text.len() - 1];
            if inner
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == "..")
            {
                return Err(PrefixError::BadSegment(text.to_owned()));
            }
        }
        Ok(Prefix(text.to_owned()))
    }

    /// `/`: every app and group.
    pub fn root() -> Prefix {
        Prefix("/".to_owned())
    }

    pub fn is_root(&self) -> bool {
        self.0 == "/"
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the app or group `id` (absolute, e.g. `/prod/web`; a
    /// trailing slash is ignored) lies under this prefix: `id` followed by
    /// `/` starts with it.
    pub fn covers(&self, id: &str) -> bool {
        let id = id.trim_end_matches('/').as_bytes();
        let prefix = self.0.as_bytes();
        // The prefix without its final slash must be all of `id`, or be
        // followed in `id` by a slash.
        let stem = &prefix[..prefix.len() - 1];
        id.starts_with(stem) && (id.len() == stem.len() || id[stem.len()] == b'/')
    }

    /// Whether something under this prefix lies inside the group `id`: a
    /// group under which the principal sees part (`/prod/web/` inside `/`
    /// or `/prod`).
    pub fn within(&self, group: &str) -> bool {
        let group = group.trim_end_matches('/');
        self.0.len() > group.len() + 1
            && self.0.starts_with(group)
            && self.0.as_bytes()[group.len()] == b'/'
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn segment() -> impl Strategy<Value = String> {
        "[a-z0-9]([a-z0-9.-]{0,6}[a-z0-9])?"
    }

    fn id() -> impl Strategy<Value = Vec<String>> {
        prop::collection::vec(segment(), 1..5)
    }

    #[test]
    fn a_prefix_must_be_absolute_and_end_in_a_slash() {
        assert_eq!(
            Prefix::parse("prod/"),
            Err(PrefixError::NotAbsolute("prod/".into()))
        );
        assert_eq!(
            Prefix::parse("/prod"),
            Err(PrefixError::NoTrailingSlash("/prod".into()))
        );
        assert!(matches!(
            Prefix::parse("/prod//web/"),
            Err(PrefixError::BadSegment(_))
        ));
        assert!(matches!(
            Prefix::parse("/prod/../"),
            Err(PrefixError::BadSegment(_))
        ));
        assert!(Prefix::parse("/").unwrap().is_root());
    }

    #[test]
    fn prod_never_grants_production() {
        let prod = Prefix::parse("/prod/").unwrap();
        assert!(prod.covers("/prod"));
        assert!(prod.covers("/prod/"));
        assert!(prod.covers("/prod/web"));
        assert!(!prod.covers("/production"));
        assert!(!prod.covers("/production/web"));
        assert!(!prod.covers("/"));
        assert!(!prod.covers("/pro"));
        assert!(Prefix::root().covers("/"));
        assert!(Prefix::root().covers("/anything/at/all"));
    }

    proptest! {
        /// A prefix covers exactly the ids whose segments begin with its
        /// segments: never an id that only shares characters with it.
        #[test]
        fn covers_is_segment_wise(prefix in id(), app in id()) {
            let grant = Prefix::parse(&format!("/{}/", prefix.join("/"))).unwrap();
            let app_id = format!("/{}", app.join("/"));
            let expected = app.len() >= prefix.len() && app[..prefix.len()] == prefix[..];
            prop_assert_eq!(grant.covers(&app_id), expected, "{} over {}", grant, app_id);
        }

        /// A sibling that extends the last segment is never covered.
        #[test]
        fn a_longer_sibling_is_never_covered(prefix in id(), tail in "[a-z0-9.-]{1,6}", rest in prop::collection::vec(segment(), 0..3)) {
            let grant = Prefix::parse(&format!("/{}/", prefix.join("/"))).unwrap();
            let mut sibling = prefix.clone();
            let last = sibling.len() - 1;
            sibling[last].push_str(&tail);
            sibling.extend(rest);
            let sibling = format!("/{}", sibling.join("/"));
            prop_assert!(!grant.covers(&sibling), "{} over {}", grant, sibling);
        }

        /// `within` is `covers` seen from the other side: a prefix lies
        /// inside a group when the group is a strict ancestor of it.
        #[test]
        fn within_a_group_is_strict_ancestry(prefix in id(), group in prop::collection::vec(segment(), 0..4)) {
            let grant = Prefix::parse(&format!("/{}/", prefix.join("/"))).unwrap();
            let group_id = format!("/{}", group.join("/"));
            let expected = group.len() < prefix.len() && prefix[..group.len()] == group[..];
            prop_assert_eq!(grant.within(&group_id), expected, "{} within {}", grant, group_id);
        }

        #[test]
        fn the_root_covers_every_id(app in id()) {
            let app_id = format!("/{}", app.join("/"));
            prop_assert!(Prefix::root().covers(&app_id));
            prop_assert!(!Prefix::root().within(&app_id));
        }
    }
}
