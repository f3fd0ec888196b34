//! From a request's `Authorization` header to a verified principal.

use crate::file::AuthFile;
use crate::{ANONYMOUS, Access, TokenHash, password};
use base64::Engine;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use subtle::ConstantTimeEq;

/// Who a request proved to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's or user's name, or [`ANONYMOUS`].
    pub name: String,
    pub access: Access,
    /// What proved it, so a reloaded file can say whether it still does.
    credential: Credential,
}

/// What a principal was proven by: never a secret, only what the file
/// holds of it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Credential {
    Anonymous,
    Token(TokenHash),
    /// A user and the SHA-256 of the stored password hash: a password
    /// changed in the file no longer proves the user.
    User(String, [u8; 32]),
}

impl Principal {
    pub fn is_anonymous(&self) -> bool {
        self.name == ANONYMOUS
    }
}

/// What an `Authorization` header carries.
#[derive(Debug, PartialEq, Eq)]
pub enum Credentials<'a> {
    None,
    Bearer(&'a str),
    Basic { user: String, password: String },
}

/// Why no principal was proven: each is a 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unauthenticated {
    #[error("credentials are required: a bearer token or a Basic user and password")]
    Missing,
    #[error("the bearer token is not known (revoked or rotated?)")]
    UnknownToken,
    #[error("wrong user name or password")]
    BadPassword,
    #[error("the Authorization header is malformed: {0}")]
    Malformed(&'static str),
}

impl<'a> Credentials<'a> {
    /// Reads `Bearer <token>` or `Basic <base64 user:password>` (schemes
    /// in any case, as HTTP has them).
    pub fn from_header(header: Option<&'a str>) -> Result<Credentials<'a>, Unauthenticated> {
        let Some(header) = header else {
            return Ok(Credentials::None);
        };
        let (scheme, value) = header
            .trim()
            .split_once(' ')
            .ok_or(Unauthenticated::Malformed(
                "expected `Bearer <token>` or `Basic <credentials>`",
            ))?;
        let value = value.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            return Ok(Credentials::Bearer(value));
        }
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(Unauthenticated::Malformed(
                "the scheme is neither Bearer nor Basic",
            ));
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(value)
            .map_err(|_| Unauthenticated::Malformed("Basic credentials are not base64"))?;
        let text = String::from_utf8(decoded)
            .map_err(|_| Unauthenticated::Malformed("Basic credentials are not UTF-8"))?;
        let (user, password) = text
            .split_once(':')
            .ok_or(Unauthenticated::Malformed("Basic credentials lack the `:`"))?;
        Ok(Credentials::Basic {
            user: user.to_owned(),
            password: password.to_owned(),
        })
    }
}

/// Marathon's `--http_credentials user:password`: one user who may do
/// everything.
#[derive(Clone)]
pub struct HttpCredentials {
    pub user: String,
    password: [u8; 32],
}

impl HttpCredentials {
    pub fn parse(text: &str) -> Result<HttpCredentials, String> {
        let (user, password) = text
            .split_once(':')
            .filter(|(user, password)| !user.is_empty() && !password.is_empty())
            .ok_or_else(|| "expected user:password, both non-empty".to_owned())?;
        Ok(HttpCredentials {
            user: user.to_owned(),
            password: Sha256::digest(password.as_bytes()).into(),
        })
    }
}

impl std::fmt::Debug for HttpCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HttpCredentials({}:..)", self.user)
    }
}

enum Secret {
    Argon2(String),
    /// `--http-credentials`: the password's SHA-256, compared in constant
    /// time (it came on the command line; hashing it slowly protects
    /// nothing).
    Digest([u8; 32]),
}

impl Secret {
    fn fingerprint(&self) -> [u8; 32] {
        match self {
            Secret::Argon2(phc) => Sha256::digest(phc.as_bytes()).into(),
            Secret::Digest(digest) => Sha256::digest(digest).into(),
        }
    }
}

/// The file's tokens by their hash's `bucket`: one lookup whatever their
/// number. Within a bucket (nearly always one token) every hash is
/// compared in constant time, so how long a check takes says nothing of
/// how much of a stored hash a guess's hash shares, beyond the bucket.
#[derive(Default)]
struct Tokens {
    buckets: HashMap<u64, Vec<(TokenHash, Arc<Principal>)>>,
    count: usize,
}

impl Tokens {
    /// A hash given twice keeps the later principal, as the file's last
    /// word.
    fn insert(&mut self, hash: TokenHash, principal: Arc<Principal>) {
        let bucket = self.buckets.entry(hash.bucket()).or_default();
        match bucket.iter_mut().find(|(known, _)| known.matches(&hash)) {
            Some(known) => known.1 = principal,
            None => {
                bucket.push((hash, principal));
                self.count += 1;
            }
        }
    }

    fn find(&self, presented: &TokenHash) -> Option<Arc<Principal>> {
        let bucket = self.buckets.get(&presented.bucket())?;
        let mut found = None;
        for (hash, principal) in bucket {
            if hash.matches(presented) {
                found = Some(principal.clone());
            }
        }
        found
    }
}

/// How many verified Basic credentials are remembered: argon2 costs tens
/// of milliseconds by design, and Marathon clients send Basic on every
/// request.
const REMEMBERED: usize = 1024;

pub struct Authenticator {
    /// No auth file: everyone is anonymous and may do everything.
    open: bool,
    anonymous: Option<Arc<Principal>>,
    tokens: Tokens,
    users: HashMap<String, (Secret, Arc<Principal>)>,
    /// SHA-256 of `user\0password` for credentials already verified.
    verified: Mutex<HashMap<[u8; 32], Arc<Principal>>>,
}

impl Authenticator {
    /// Stride without an auth file: nothing is checked, and no name a
    /// client sends is believed.
    pub fn open() -> Authenticator {
        Authenticator {
            open: true,
            anonymous: Some(Arc::new(Principal {
                name: ANONYMOUS.to_owned(),
                access: Access::everything(),
                credential: Credential::Anonymous,
            })),
            tokens: Tokens::default(),
            users: HashMap::new(),
            verified: Mutex::default(),
        }
    }

    /// Deny by default: the file's principals, its anonymous role if it
    /// has one, and the `--http-credentials` user.
    pub fn new(file: Option<&AuthFile>, http: Option<&HttpCredentials>) -> Authenticator {
        let principal = |name: &str, access: &Access, credential: Credential| {
            Arc::new(Principal {
                name: name.to_owned(),
                access: access.clone(),
                credential,
            })
        };
        let user = |name: &str, access: &Access, secret: Secret| {
            let credential = Credential::User(name.to_owned(), secret.fingerprint());
            (secret, principal(name, access, credential))
        };
        let mut users = HashMap::new();
        let mut tokens = Tokens::default();
        let mut anonymous = None;
        if let Some(file) = file {
            anonymous = file
                .anonymous
                .as_ref()
                .map(|a| principal(ANONYMOUS, a, Credential::Anonymous));
            for (entry, hash) in &file.tokens {
                let credential = Credential::Token(hash.clone());
                tokens.insert(
                    hash.clone(),
                    principal(&entry.name, &entry.access, credential),
                );
            }
            for (entry, phc) in &file.users {
                let secret = Secret::Argon2(phc.clone());
                users.insert(entry.name.clone(), user(&entry.name, &entry.access, secret));
            }
        }
        if let Some(http) = http {
            // The flag wins over a file user of the same name.
            let secret = Secret::Digest(http.password);
            users.insert(
                http.user.clone(),
                user(&http.user, &Access::everything(), secret),
            );
        }
        Authenticator {
            open: false,
            anonymous,
            tokens,
            users,
            verified: Mutex::default(),
        }
    }

    pub fn is_open(&self) -> bool {
        self.open
    }

    /// How many tokens and users can authenticate.
    pub fn counts(&self) -> (usize, usize) {
        (self.tokens.count, self.users.len())
    }

    /// The principal `header` (an `Authorization` value) proves.
    pub fn authenticate(&self, header: Option<&str>) -> Result<Arc<Principal>, Unauthenticated> {
        if self.open {
            return Ok(self
                .anonymous
                .clone()
                .expect("an open authenticator has its anonymous"));
        }
        match Credentials::from_header(header)? {
            Credentials::None => self.anonymous.clone().ok_or(Unauthenticated::Missing),
            Credentials::Bearer(secret) => self
                .tokens
                .find(&TokenHash::of(secret))
                .ok_or(Unauthenticated::UnknownToken),
            Credentials::Basic { user, password } => self.basic(&user, &password),
        }
    }

    /// `principal` as this authenticator knows it now (a reloaded file may
    /// have changed its roles), or `None` if what proved it no longer
    /// does: the token revoked or rotated, the user removed or given a new
    /// password, anonymous access withdrawn.
    pub fn reverify(&self, principal: &Principal) -> Option<Arc<Principal>> {
        match &principal.credential {
            Credential::Anonymous => self.anonymous.clone(),
            Credential::Token(hash) => self.tokens.find(hash),
            Credential::User(name, fingerprint) => {
                let (secret, now) = self.users.get(name)?;
                let same: bool = secret.fingerprint().ct_eq(fingerprint).into();
                same.then(|| now.clone())
            }
        }
    }

    fn basic(&self, user: &str, password: &str) -> Result<Arc<Principal>, Unauthenticated> {
        let key: [u8; 32] = Sha256::new()
            .chain_update(user.as_bytes())
            .chain_update([0])
            .chain_update(password.as_bytes())
            .finalize()
            .into();
        if let Some(principal) = self.remembered().get(&key) {
            return Ok(principal.clone());
        }
        let Some((secret, principal)) = self.users.get(user) else {
            // As slow as a known user, so a name's existence does not show.
            password::verify(dummy_hash(), password);
            return Err(Unauthenticated::BadPassword);
        };
        let good = match secret {
            Secret::Argon2(phc) => password::verify(phc, password),
            Secret::Digest(digest) => {
                let presented: [u8; 32] = Sha256::digest(password.as_bytes()).into();
                presented.ct_eq(digest).into()
            }
        };
        if !good {
            return Err(Unauthenticated::BadPassword);
        }
        let mut remembered = self.remembered();
        if remembered.len() >= REMEMBERED {
            remembered.clear();
        }
        remembered.insert(key, principal.clone());
        Ok(principal.clone())
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Arc<Principal>>> {
        // A panic while holding it leaves only a cache behind.
        self.verified.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (tokens, users) = self.counts();
        write!(
            f,
            "Authenticator(open: {}, tokens: {tokens}, users: {users})",
            self.open
        )
    }
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| password::hash_password("not a password anyone has"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Token, Verb};
    use std::path::Path;

    fn basic(user: &str, password: &str) -> String {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {encoded}")
    }

    fn file(token: &Token, anonymous: bool) -> AuthFile {
        let text = format!(
            "{}[roles.reader]\ngrants = [{{ prefix = \"/\", verbs = [\"read\"] }}]\n\
             [roles.deployer]\ngrants = [{{ prefix = \"/prod/\", verbs = [\"write\"] }}]\n\
             [[tokens]]\nname = \"ci\"\nroles = [\"deployer\"]\nsha256 = \"{}\"\n\
             [[users]]\nname = \"alice\"\nroles = [\"reader\"]\nargon2 = \"{}\"\n",
            if anonymous {
                "anonymous = [\"reader\"]\n"
            } else {
                ""
            },
            token.hash().to_hex(),
            crate::hash_password("wonderland"),
        );
        AuthFile::parse(Path::new("auth.toml"), &text).unwrap()
    }

    #[test]
    fn tokens_and_users_prove_their_names_and_nothing_else_does() {
        let token = Token::generate();
        let auth = Authenticator::new(Some(&file(&token, false)), None);
        let ci = auth
            .authenticate(Some(&format!("Bearer {}", token.secret())))
            .unwrap();
        assert_eq!(ci.name, "ci");
        assert!(ci.access.allows(Verb::Write, "/prod/a"));
        let alice = auth
            .authenticate(Some(&basic("alice", "wonderland")))
            .unwrap();
        assert_eq!(alice.name, "alice");
        // Remembered: the same answer without argon2.
        assert_eq!(
            auth.authenticate(Some(&basic("alice", "wonderland")))
                .unwrap(),
            alice
        );

        assert_eq!(auth.authenticate(None), Err(Unauthenticated::Missing));
        let other = Token::generate();
        assert_eq!(
            auth.authenticate(Some(&format!("Bearer {}", other.secret()))),
            Err(Unauthenticated::UnknownToken)
        );
        assert_eq!(
            auth.authenticate(Some(&basic("alice", "wrong"))),
            Err(Unauthenticated::BadPassword)
        );
        assert_eq!(
            auth.authenticate(Some(&basic("mallory", "wonderland"))),
            Err(Unauthenticated::BadPassword)
        );
        assert!(matches!(
            auth.authenticate(Some("Digest abc")),
            Err(Unauthenticated::Malformed(_))
        ));
        assert!(matches!(
            auth.authenticate(Some("Basic !!!")),
            Err(Unauthenticated::Malformed(_))
        ));
    }

    #[test]
    fn the_anonymous_role_is_explicit() {
        let token = Token::generate();
        let auth = Authenticator::new(Some(&file(&token, true)), None);
        let anonymous = auth.authenticate(None).unwrap();
        assert!(anonymous.is_anonymous());
        assert!(anonymous.access.allows(Verb::Read, "/x"));
        assert!(!anonymous.access.allows(Verb::Write, "/prod/x"));
        // Wrong credentials are not downgraded to anonymous.
        assert!(auth.authenticate(Some(&basic("alice", "wrong"))).is_err());
    }

    #[test]
    fn http_credentials_are_one_user_who_may_do_everything() {
        let http = HttpCredentials::parse("marathon:pa:ss").unwrap();
        let auth = Authenticator::new(None, Some(&http));
        let user = auth
            .authenticate(Some(&basic("marathon", "pa:ss")))
            .unwrap();
        assert!(user.access.allows(Verb::Admin, "/"));
        assert!(auth.authenticate(Some(&basic("marathon", "pa"))).is_err());
        assert_eq!(auth.authenticate(None), Err(Unauthenticated::Missing));
        assert!(HttpCredentials::parse("marathon").is_err());
        assert!(HttpCredentials::parse(":pw").is_err());
    }

    /// A hash whose bucket is `bucket` repeated: few buckets, so tokens
    /// share them as they would if the map were adversarially filled.
    fn hash(bucket: u8, rest: &[u8; 24]) -> TokenHash {
        let bytes: Vec<u8> = std::iter::repeat_n(bucket, 8)
            .chain(rest.iter().copied())
            .collect();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        TokenHash::parse_hex(&hex).unwrap()
    }

    proptest::proptest! {
        /// The keyed lookup finds what scanning every token found: the
        /// principal of the last entry with the presented hash, or none.
        #[test]
        fn the_keyed_lookup_finds_what_a_scan_finds(
            stored in proptest::collection::vec((0u8..3, proptest::prelude::any::<[u8; 24]>()), 0..40),
            random in (0u8..3, proptest::prelude::any::<[u8; 24]>()),
            pick in proptest::prelude::any::<Option<proptest::sample::Index>>(),
        ) {
            let entries: Vec<(TokenHash, Arc<Principal>)> = stored
                .iter()
                .enumerate()
                .map(|(i, (bucket, rest))| {
                    let principal = Principal {
                        name: format!("t{i}"),
                        access: Access::everything(),
                        credential: Credential::Anonymous,
                    };
                    (hash(*bucket, rest), Arc::new(principal))
                })
                .collect();
            let mut tokens = Tokens::default();
            for (hash, principal) in &entries {
                tokens.insert(hash.clone(), principal.clone());
            }
            let presented = match pick.filter(|_| !entries.is_empty()) {
                Some(index) => index.get(&entries).0.clone(),
                None => hash(random.0, &random.1),
            };
            let scanned = entries
                .iter()
                .rev()
                .find(|(hash, _)| hash.matches(&presented))
                .map(|(_, principal)| principal.name.clone());
            let found = tokens.find(&presented).map(|principal| principal.name.clone());
            proptest::prop_assert_eq!(found, scanned);
            let distinct: std::collections::BTreeSet<String> =
                entries.iter().map(|(hash, _)| hash.to_hex()).collect();
            proptest::prop_assert_eq!(tokens.count, distinct.len());
        }
    }

    /// After a reload, a principal stands only if what proved it still
    /// does, with the roles the new file gives it.
    #[test]
    fn a_reloaded_file_reverifies_each_principal_by_its_credential() {
        let token = Token::generate();
        let before = Authenticator::new(Some(&file(&token, true)), None);
        let ci = before
            .authenticate(Some(&format!("Bearer {}", token.secret())))
            .unwrap();
        let alice = before
            .authenticate(Some(&basic("alice", "wonderland")))
            .unwrap();
        let anonymous = before.authenticate(None).unwrap();
        let same = Authenticator::new(Some(&file(&token, true)), None);
        assert_eq!(same.reverify(&ci).unwrap().name, "ci");
        assert!(same.reverify(&anonymous).is_some());
        // `file` hashes alice's password again: a new hash, as after
        // `stride auth user set`, so her old proof no longer stands.
        assert!(same.reverify(&alice).is_none());
        let rotated = Authenticator::new(Some(&file(&Token::generate(), false)), None);
        assert!(rotated.reverify(&ci).is_none());
        assert!(rotated.reverify(&anonymous).is_none());
        assert_eq!(before.reverify(&alice).unwrap().name, "alice");
    }

    #[test]
    fn open_believes_no_one() {
        let auth = Authenticator::open();
        let who = auth.authenticate(Some(&basic("root", "whatever"))).unwrap();
        assert_eq!(who.name, ANONYMOUS);
        assert!(who.access.allows(Verb::Admin, "/"));
    }
}
