//! The auth file (TOML, named by `--auth-file`): roles, the anonymous
//! role list, tokens (by SHA-256) and Basic users (by argon2 hash). Every
//! error names the file, the line and the field.
//!
//! ```toml
//! anonymous = ["viewer"]          # absent: no credentials, no entry (401)
//!
//! [roles.deployer]
//! grants = [{ prefix = "/prod/", verbs = ["read", "write", "stream"] }]
//!
//! [[tokens]]
//! name = "ci"
//! roles = ["deployer"]
//! sha256 = "<64 hex digits>"
//!
//! [[users]]
//! name = "marathon"
//! roles = ["deployer"]
//! argon2 = "$argon2id$v=19$..."
//! ```

use crate::access::{Access, Grant};
use crate::password::check_phc;
use crate::{Prefix, TokenHash, Verb};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    anonymous: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    roles: BTreeMap<Spanned<String>, RawRole>,
    #[serde(default)]
    tokens: Vec<RawToken>,
    #[serde(default)]
    users: Vec<RawUser>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRole {
    grants: Vec<RawGrant>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrant {
    prefix: Spanned<String>,
    verbs: Spanned<BTreeSet<Verb>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    name: Spanned<String>,
    roles: Spanned<Vec<Spanned<String>>>,
    sha256: Spanned<String>,
    /// When it was made or last rotated (RFC 3339), for the operator.
    #[allow(dead_code)]
    created: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    name: Spanned<String>,
    roles: Spanned<Vec<Spanned<String>>>,
    argon2: Spanned<String>,
}

/// A principal the file names, with what its roles grant.
#[derive(Debug, Clone)]
pub struct PrincipalEntry {
    pub name: String,
    pub roles: Vec<String>,
    pub access: Access,
}

/// A parsed, checked auth file.
#[derive(Debug, Clone)]
pub struct AuthFile {
    pub path: PathBuf,
    /// What requests without credentials may do; `None`: they are refused.
    pub anonymous: Option<Access>,
    pub roles: BTreeMap<String, Vec<Grant>>,
    pub tokens: Vec<(PrincipalEntry, TokenHash)>,
    /// Users with their argon2 PHC strings.
    pub users: Vec<(PrincipalEntry, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct FileError {
    pub path: PathBuf,
    /// 1-based; `None` when the file could not be read at all.
    pub line: Option<usize>,
    /// The field at fault, e.g. `tokens[1].roles`, when known.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Names a principal may have: what the audit index and a terminal show
/// without quoting.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c))
}

impl AuthFile {
    pub fn load(path: &Path) -> Result<AuthFile, FileError> {
        let text = std::fs::read_to_string(path).map_err(|e| FileError {
            path: path.to_owned(),
            line: None,
            field: None,
            message: format!("cannot read: {e}"),
        })?;
        AuthFile::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<AuthFile, FileError> {
        let at = |span: Range<usize>, field: String, message: String| FileError {
            path: path.to_owned(),
            line: Some(line_of(text, span.start)),
            field: Some(field),
            message,
        };
        let raw: Raw = toml::from_str(text).map_err(|e| FileError {
            path: path.to_owned(),
            line: e.span().map(|s| line_of(text, s.start)),
            field: None,
            message: e.message().to_owned(),
        })?;

        let mut roles = BTreeMap::new();
        for (name, role) in &raw.roles {
            let field = format!("roles.{}", name.get_ref());
            if !valid_name(name.get_ref()) {
                return Err(at(
                    name.span(),
                    field,
                    "a role name is letters, digits, `.`, `_`, `@` or `-`".into(),
                ));
            }
            let mut grants = Vec::new();
            for (i, grant) in role.grants.iter().enumerate() {
                let field = format!("{field}.grants[{i}]");
                let prefix = Prefix::parse(grant.prefix.get_ref()).map_err(|e| {
                    at(
                        grant.prefix.span(),
                        format!("{field}.prefix"),
                        e.to_string(),
                    )
                })?;
                if grant.verbs.get_ref().is_empty() {
                    return Err(at(
                        grant.verbs.span(),
                        format!("{field}.verbs"),
                        "an empty list grants nothing; name at least one of read, write, stream, audit, admin".into(),
                    ));
                }
                grants.push(Grant {
                    prefix,
                    verbs: grant.verbs.get_ref().clone(),
                });
            }
            roles.insert(name.get_ref().clone(), grants);
        }

        let access_of = |list: &Spanned<Vec<Spanned<String>>>, field: String| {
            if list.get_ref().is_empty() {
                return Err(at(list.span(), field, "name at least one role".into()));
            }
            let mut grants = Vec::new();
            for role in list.get_ref() {
                let Some(granted) = roles.get(role.get_ref()) else {
                    return Err(at(
                        role.span(),
                        field,
                        format!("no role named `{}` in [roles]", role.get_ref()),
                    ));
                };
                grants.extend(granted.iter().cloned());
            }
            Ok(Access::new(grants))
        };
        let entry = |name: &Spanned<String>,
                     list: &Spanned<Vec<Spanned<String>>>,
                     field: &str,
                     seen: &mut BTreeSet<String>| {
            let text = name.get_ref();
            if !valid_name(text) || text == crate::ANONYMOUS {
                return Err(at(
                    name.span(),
                    format!("{field}.name"),
                    format!(
                        "a principal's name is letters, digits, `.`, `_`, `@` or `-` (and not `{}`)",
                        crate::ANONYMOUS
                    ),
                ));
            }
            if !seen.insert(text.clone()) {
                return Err(at(
                    name.span(),
                    format!("{field}.name"),
                    format!(
                        "`{text}` is named twice (tokens and users share one namespace: the audit records the name)"
                    ),
                ));
            }
            Ok(PrincipalEntry {
                name: text.clone(),
                roles: list.get_ref().iter().map(|r| r.get_ref().clone()).collect(),
                access: access_of(list, format!("{field}.roles"))?,
            })
        };

        let mut seen = BTreeSet::new();
        let mut tokens = Vec::new();
        for (i, token) in raw.tokens.iter().enumerate() {
            let field = format!("tokens[{i}]");
            let principal = entry(&token.name, &token.roles, &field, &mut seen)?;
            let hash = TokenHash::parse_hex(token.sha256.get_ref()).ok_or_else(|| {
                at(
                    token.sha256.span(),
                    format!("{field}.sha256"),
                    "not a SHA-256 (64 hex digits); `stride auth token create` writes one".into(),
                )
            })?;
            tokens.push((principal, hash));
        }
        let mut users = Vec::new();
        for (i, user) in raw.users.iter().enumerate() {
            let field = format!("users[{i}]");
            let principal = entry(&user.name, &user.roles, &field, &mut seen)?;
            check_phc(user.argon2.get_ref())
                .map_err(|e| at(user.argon2.span(), format!("{field}.argon2"), e))?;
            users.push((principal, user.argon2.get_ref().clone()));
        }
        let anonymous = match &raw.anonymous {
            None => None,
            Some(list) => {
                let mut grants = Vec::new();
                for role in list {
                    let Some(granted) = roles.get(role.get_ref()) else {
                        return Err(at(
                            role.span(),
                            "anonymous".into(),
                            format!("no role named `{}` in [roles]", role.get_ref()),
                        ));
                    };
                    grants.extend(granted.iter().cloned());
                }
                Some(Access::new(grants))
            }
        };
        Ok(AuthFile {
            path: path.to_owned(),
            anonymous,
            roles,
            tokens,
            users,
        })
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GOOD: &str = r#"
anonymous = ["viewer"]

[roles.viewer]
grants = [{ prefix = "/", verbs = ["read"] }]

[roles.deployer]
grants = [
  { prefix = "/prod/", verbs = ["read", "write", "stream"] },
  { prefix = "/", verbs = ["audit"] },
]

[[tokens]]
name = "ci"
roles = ["deployer"]
sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
created = "2025-01-01T00:00:00Z"
"#;

    fn parse(text: &str) -> Result<AuthFile, FileError> {
        AuthFile::parse(Path::new("auth.toml"), text)
    }

    #[test]
    fn a_good_file_parses_into_principals_with_their_grants() {
        let file = parse(GOOD).unwrap();
        assert_eq!(file.tokens.len(), 1);
        let (ci, hash) = &file.tokens[0];
        assert_eq!(ci.name, "ci");
        assert!(hash.matches(&TokenHash::of("test")));
        assert!(ci.access.allows(Verb::Write, "/prod/web"));
        assert!(!ci.access.allows(Verb::Write, "/production"));
        assert!(ci.access.allows(Verb::Audit, "/production"));
        let anonymous = file.anonymous.unwrap();
        assert!(anonymous.allows(Verb::Read, "/x"));
        assert!(!anonymous.allows_anywhere(Verb::Write));
    }

    /// Each damage, the line it is on and the field named.
    #[test]
    fn errors_name_the_line_and_the_field() {
        let cases: &[(&str, &str, usize, Option<&str>, &str)] = &[
            (
                r#""/prod/""#,
                r#""/prod""#,
                9,
                Some("roles.deployer.grants[0].prefix"),
                "ends with `/`",
            ),
            (
                r#""write", "stream""#,
                r#""write", "wirte""#,
                9,
                None,
                "unknown variant `wirte`",
            ),
            (
                r#"roles = ["deployer"]"#,
                r#"roles = ["deployr"]"#,
                15,
                Some("tokens[0].roles"),
                "no role named `deployr`",
            ),
            (
                r#"roles = ["deployer"]"#,
                "roles = []",
                15,
                Some("tokens[0].roles"),
                "at least one role",
            ),
            (
                r#"sha256 = "9f86"#,
                r#"sha256 = "zz86"#,
                16,
                Some("tokens[0].sha256"),
                "64 hex digits",
            ),
            (
                r#"anonymous = ["viewer"]"#,
                r#"anonymous = ["nobody"]"#,
                2,
                Some("anonymous"),
                "no role named `nobody`",
            ),
            (
                r#"name = "ci""#,
                r#"name = "c i""#,
                14,
                Some("tokens[0].name"),
                "letters, digits",
            ),
            (
                r#"name = "ci""#,
                r#"name = "anonymous""#,
                14,
                Some("tokens[0].name"),
                "not `anonymous`",
            ),
            (
                r#"created = "#,
                "expires = ",
                17,
                None,
                "unknown field `expires`",
            ),
            (
                r#"{ prefix = "/", verbs = ["audit"] }"#,
                r#"{ prefix = "/", verbs = [] }"#,
                10,
                Some("roles.deployer.grants[1].verbs"),
                "grants nothing",
            ),
            (r#"[[tokens]]"#, "[[tokens]\n", 13, None, ""),
        ];
        for (from, to, line, field, message) in cases {
            assert!(GOOD.contains(from), "{from}");
            let error = parse(&GOOD.replacen(from, to, 1)).unwrap_err();
            assert_eq!(error.line, Some(*line), "{from} -> {to}: {error}");
            assert_eq!(error.field.as_deref(), *field, "{from} -> {to}: {error}");
            assert!(error.message.contains(message), "{from} -> {to}: {error}");
            assert!(
                error.to_string().starts_with(&format!("auth.toml:{line}")),
                "{error}"
            );
        }
    }

    #[test]
    fn a_name_used_twice_is_refused_where_it_is_used_again() {
        let text = format!(
            "{GOOD}\n[[users]]\nname = \"ci\"\nroles = [\"viewer\"]\nargon2 = \"{}\"\n",
            crate::hash_password("pw")
        );
        let error = parse(&text).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("users[0].name"));
        assert_eq!(error.line, Some(20), "{error}");
    }

    #[test]
    fn an_empty_file_denies_everyone() {
        let file = parse("").unwrap();
        assert!(file.anonymous.is_none());
        assert!(file.tokens.is_empty() && file.users.is_empty());
    }

    proptest! {
        /// Whatever the bytes, parsing answers (never panics), and an error
        /// names a line inside the file.
        #[test]
        fn any_damage_is_an_error_on_a_line_of_the_file(cut in 0..GOOD.len(), insert in "[\\[\\]\"={}a-z ,\n]{0,8}") {
            let mut text = GOOD.as_bytes()[..cut].to_vec();
            text.extend_from_slice(insert.as_bytes());
            text.extend_from_slice(&GOOD.as_bytes()[cut..]);
            let text = String::from_utf8_lossy(&text).into_owned();
            if let Err(error) = parse(&text) {
                let lines = text.lines().count().max(1);
                let line = error.line.unwrap();
                prop_assert!((1..=lines + 1).contains(&line), "{error} of {lines}");
            }
        }
    }
}
