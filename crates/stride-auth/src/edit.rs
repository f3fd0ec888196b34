//! Changes to the auth file made by `stride auth`: each reads and checks
//! the whole file, edits it in place (comments and layout kept), checks the
//! result again and replaces the file atomically, readable by its owner
//! only. A running Stride sees the change on SIGHUP.

use crate::{AuthFile, FileError, Token, hash_password};
use std::io::Write;
use std::path::{Path, PathBuf};
use toml_edit::{Array, ArrayOfTables, DocumentMut, Item, Table, value};

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("{}: `{name}` is already a principal there; rotate it or revoke it first", path.display())]
    Taken { path: PathBuf, name: String },
    #[error("{}: no token or user named `{name}`", path.display())]
    Unknown { path: PathBuf, name: String },
    #[error("{}: `{name}` is a user, not a token", path.display())]
    NotAToken { path: PathBuf, name: String },
    #[error("{}: no role named `{role}` in [roles] (it has: {defined})", path.display())]
    UnknownRole {
        path: PathBuf,
        role: String,
        defined: String,
    },
    #[error("{}: exists already", path.display())]
    Exists { path: PathBuf },
    #[error("{}: {message}: {source}", path.display())]
    Io {
        path: PathBuf,
        message: &'static str,
        source: std::io::Error,
    },
}

/// A starting file: an `admin` role (everything) and a `viewer` role (read
/// and stream everything), no principals, no anonymous access.
pub fn init(path: &Path) -> Result<(), EditError> {
    if path.exists() {
        return Err(EditError::Exists {
            path: path.to_owned(),
        });
    }
    write_checked(path, STARTER)
}

const STARTER: &str = r#"# Stride's auth file: who may do what (docs/security.md).
# Requests without credentials are refused (401) unless `anonymous` names
# roles for them, e.g. anonymous = ["viewer"].
# A grant's prefix ends in `/`: "/prod/" covers /prod and /prod/web, never
# /production. Verbs: read, write, stream, audit, admin.

[roles.admin]
grants = [{ prefix = "/", verbs = ["read", "write", "stream", "audit", "admin"] }]

[roles.viewer]
grants = [{ prefix = "/", verbs = ["read", "stream"] }]
"#;

/// Adds the token `name` with `roles`; the secret is returned to be shown
/// once, and only its hash is written.
pub fn create_token(path: &Path, name: &str, roles: &[String]) -> Result<Token, EditError> {
    let (file, mut document) = open(path)?;
    known_roles(&file, roles)?;
    if principal_exists(&file, name) {
        return Err(EditError::Taken {
            path: path.to_owned(),
            name: name.to_owned(),
        });
    }
    let token = Token::generate();
    let mut entry = Table::new();
    entry.insert("name", value(name));
    entry.insert("roles", value(role_array(roles)));
    entry.insert("sha256", value(token.hash().to_hex()));
    entry.insert("created", value(now()));
    tables(&mut document, "tokens").push(entry);
    write_checked(path, &document.to_string())?;
    Ok(token)
}

/// Gives the token `name` a new secret; the old one stops working when
/// Stride reloads the file.
pub fn rotate_token(path: &Path, name: &str) -> Result<Token, EditError> {
    let (file, mut document) = open(path)?;
    if file.users.iter().any(|(u, _)| u.name == name) {
        return Err(EditError::NotAToken {
            path: path.to_owned(),
            name: name.to_owned(),
        });
    }
    let token = Token::generate();
    let entry = find(&mut document, "tokens", name).ok_or_else(|| EditError::Unknown {
        path: path.to_owned(),
        name: name.to_owned(),
    })?;
    entry.insert("sha256", value(token.hash().to_hex()));
    entry.insert("created", value(now()));
    write_checked(path, &document.to_string())?;
    Ok(token)
}

/// Removes the token or user `name`.
pub fn revoke(path: &Path, name: &str) -> Result<(), EditError> {
    let (_, mut document) = open(path)?;
    let mut removed = false;
    for key in ["tokens", "users"] {
        if let Some(list) = document.get_mut(key).and_then(Item::as_array_of_tables_mut) {
            let before = list.len();
            list.retain(|t| t.get("name").and_then(Item::as_str) != Some(name));
            removed |= list.len() != before;
        }
    }
    if !removed {
        return Err(EditError::Unknown {
            path: path.to_owned(),
            name: name.to_owned(),
        });
    }
    write_checked(path, &document.to_string())
}

/// Adds the Basic user `name`, or gives an existing one a new password and
/// roles.
pub fn set_user(
    path: &Path,
    name: &str,
    roles: &[String],
    password: &str,
) -> Result<(), EditError> {
    let (file, mut document) = open(path)?;
    known_roles(&file, roles)?;
    if file.tokens.iter().any(|(t, _)| t.name == name) {
        return Err(EditError::Taken {
            path: path.to_owned(),
            name: name.to_owned(),
        });
    }
    let phc = hash_password(password);
    match find(&mut document, "users", name) {
        Some(entry) => {
            entry.insert("roles", value(role_array(roles)));
            entry.insert("argon2", value(phc));
        }
        None => {
            let mut entry = Table::new();
            entry.insert("name", value(name));
            entry.insert("roles", value(role_array(roles)));
            entry.insert("argon2", value(phc));
            tables(&mut document, "users").push(entry);
        }
    }
    write_checked(path, &document.to_string())
}

fn open(path: &Path) -> Result<(AuthFile, DocumentMut), EditError> {
    let file = AuthFile::load(path)?;
    let text = std::fs::read_to_string(path).map_err(|source| EditError::Io {
        path: path.to_owned(),
        message: "cannot read",
        source,
    })?;
    // It parsed as TOML just now.
    let document = text.parse::<DocumentMut>().map_err(|e| FileError {
        path: path.to_owned(),
        line: None,
        field: None,
        message: e.to_string(),
    })?;
    Ok((file, document))
}

fn known_roles(file: &AuthFile, roles: &[String]) -> Result<(), EditError> {
    match roles.iter().find(|r| !file.roles.contains_key(*r)) {
        None => Ok(()),
        Some(role) => Err(EditError::UnknownRole {
            path: file.path.clone(),
            role: role.clone(),
            defined: file.roles.keys().cloned().collect::<Vec<_>>().join(", "),
        }),
    }
}

fn principal_exists(file: &AuthFile, name: &str) -> bool {
    file.tokens.iter().any(|(t, _)| t.name == name)
        || file.users.iter().any(|(u, _)| u.name == name)
}

fn tables<'a>(document: &'a mut DocumentMut, key: &str) -> &'a mut ArrayOfTables {
    if document
        .get(key)
        .and_then(Item::as_array_of_tables)
        .is_none()
    {
        document.insert(key, Item::ArrayOfTables(ArrayOfTables::new()));
    }
    document[key]
        .as_array_of_tables_mut()
        .expect("made an array of tables just now")
}

fn find<'a>(document: &'a mut DocumentMut, key: &str, name: &str) -> Option<&'a mut Table> {
    document
        .get_mut(key)?
        .as_array_of_tables_mut()?
        .iter_mut()
        .find(|t| t.get("name").and_then(Item::as_str) == Some(name))
}

fn role_array(roles: &[String]) -> Array {
    roles.iter().map(String::as_str).collect()
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Checks `text` is a good auth file, then puts it at `path` at once:
/// written beside it, synced, renamed over it, the directory synced.
fn write_checked(path: &Path, text: &str) -> Result<(), EditError> {
    AuthFile::parse(path, text)?;
    let io = |message: &'static str| {
        move |source| EditError::Io {
            path: path.to_owned(),
            message,
            source,
        }
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(io("cannot write beside it"))?;
    set_owner_only(temp.as_file()).map_err(io("cannot restrict its permissions"))?;
    temp.write_all(text.as_bytes())
        .map_err(io("cannot write"))?;
    temp.as_file().sync_all().map_err(io("cannot sync"))?;
    temp.persist(path)
        .map_err(|e| io("cannot replace")(e.error))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("cannot sync its directory"))?;
    Ok(())
}

#[cfg(unix)]
fn set_owner_only(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn set_owner_only(_: &std::fs::File) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Authenticator, Verb};

    fn bearer(token: &Token) -> String {
        format!("Bearer {}", token.secret())
    }

    #[test]
    fn tokens_are_created_rotated_and_revoked_keeping_the_file_s_comments() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.toml");
        init(&path).unwrap();
        assert!(matches!(init(&path), Err(EditError::Exists { .. })));

        let ci = create_token(&path, "ci", &["admin".into()]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# Stride's auth file"), "{text}");
        assert!(!text.contains(ci.secret()), "the secret is never written");
        assert!(text.contains(&ci.hash().to_hex()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let auth = Authenticator::new(Some(&AuthFile::load(&path).unwrap()), None);
        assert!(
            auth.authenticate(Some(&bearer(&ci)))
                .unwrap()
                .access
                .allows(Verb::Admin, "/")
        );

        assert!(matches!(
            create_token(&path, "ci", &["admin".into()]),
            Err(EditError::Taken { .. })
        ));
        let unknown_role = create_token(&path, "ops", &["operator".into()]).unwrap_err();
        assert!(
            unknown_role
                .to_string()
                .ends_with("no role named `operator` in [roles] (it has: admin, viewer)"),
            "{unknown_role}"
        );

        let rotated = rotate_token(&path, "ci").unwrap();
        let auth = Authenticator::new(Some(&AuthFile::load(&path).unwrap()), None);
        assert!(auth.authenticate(Some(&bearer(&ci))).is_err());
        assert_eq!(
            auth.authenticate(Some(&bearer(&rotated))).unwrap().name,
            "ci"
        );

        set_user(&path, "alice", &["viewer".into()], "pw").unwrap();
        assert!(matches!(
            rotate_token(&path, "alice"),
            Err(EditError::NotAToken { .. })
        ));
        set_user(&path, "alice", &["admin".into()], "pw2").unwrap();
        let file = AuthFile::load(&path).unwrap();
        assert_eq!(file.users.len(), 1);
        assert_eq!(file.users[0].0.roles, ["admin"]);

        revoke(&path, "ci").unwrap();
        revoke(&path, "alice").unwrap();
        assert!(matches!(
            revoke(&path, "ci"),
            Err(EditError::Unknown { .. })
        ));
        let file = AuthFile::load(&path).unwrap();
        assert!(file.tokens.is_empty() && file.users.is_empty());
    }

    #[test]
    fn a_damaged_file_is_not_edited() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.toml");
        std::fs::write(&path, "[roles.x]\ngrants = 3\n").unwrap();
        let error = create_token(&path, "ci", &["x".into()]).unwrap_err();
        assert!(error.to_string().contains("auth.toml:2"), "{error}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "[roles.x]\ngrants = 3\n"
        );
    }
}
