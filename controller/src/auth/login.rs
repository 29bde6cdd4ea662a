//! The two-step login: user name and password (or an SSO token), then a 6-digit code sent
//! by mail.
//!
//! Failed passwords make the account wait, **from the address they came from** (the
//! account's holder elsewhere is never locked out by someone else's guesses), and the
//! address itself wait once past a few free failures (guessing many names from one
//! address slows that address only). Both forget after a quiet half hour. Wrong codes
//! have their own stricter count per account, which only someone who passed the password
//! can raise. A login ticket lives 15 minutes at most, whatever is re-sent.

use super::credentials::sso;
use super::secret::{random_hex, same, sha256_hex, six_digits};
use super::users::verify_password;
use super::{AuthError, AuthResult, audit};
use crate::project::ProjectConfig;
use crate::store::{LoginCodeRow, SessionRow, Store, UserRow};

/// How long a mailed code is valid, how many tries it allows, how many times it is re-sent.
pub const CODE_TTL_MS: i64 = 5 * 60_000;
pub const CODE_TRIES: i64 = 5;
pub const CODE_SENDS: i64 = 5;
/// A login ticket's absolute life: re-sent codes never outlive it.
pub const TICKET_TTL_MS: i64 = 15 * 60_000;
/// The longest wait after failed logins.
pub const MAX_WAIT_MS: i64 = 30 * 60_000;
/// Failures are forgotten once the last wait has been over this long.
const DECAY_MS: i64 = 30 * 60_000;
/// A client address may fail this many times before it waits (offices behind one NAT).
const ADDRESS_FREE_FAILURES: i64 = 5;
/// Wrong codes an account may type before it waits (a typo or two costs nothing).
const CODE_FREE_FAILURES: i64 = 5;

/// Compared when the account does not exist, so that its absence takes as long to learn
/// as a wrong password. (Argon2id of a random string nobody knows.)
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| super::users::hash_password(&random_hex(16)).unwrap_or_default());

const WRONG: &str = "wrong user name or password";

/// What the first step gives.
pub enum Started {
    /// A code was mailed: send it back with this ticket.
    Code { ticket: String, sent_to: String },
    /// An SSO token needs no code: the session is open.
    Session(NewSession),
}

/// A session just opened: the cookie's value (shown once) and the CSRF token.
pub struct NewSession {
    pub user: String,
    pub cookie: String,
    pub csrf: String,
}

/// The address a wait applies to: an IPv4 address, or the /64 of an IPv6 one (a client
/// has a whole /64 to pick addresses from).
fn address_subject(address: &str) -> String {
    match address.parse::<std::net::Ipv6Addr>() {
        Ok(v6) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("addr:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Ok(v6) => format!("addr:{}", v6.to_ipv4_mapped().expect("mapped")),
        Err(_) => format!("addr:{address}"),
    }
}

/// The waits a password try meets: this account from this address (`|` is in no
/// address), and this address.
fn subjects(user: &str, address: &str) -> [String; 2] {
    let addr = address_subject(address);
    [format!("pair:{addr}|{user}"), addr]
}

/// The count of wrong codes typed for an account.
fn code_subject(user: &str) -> String {
    format!("code:{user}")
}

/// Login attempts on the same subjects take turns in this process: a burst of parallel
/// guesses meets the wait the first failure set, instead of all being checked before any
/// failure is recorded.
async fn take_turns(subjects: &[String]) -> Vec<tokio::sync::OwnedMutexGuard<()>> {
    static LOCKS: std::sync::LazyLock<
        std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
    > = std::sync::LazyLock::new(Default::default);
    let mut guards = Vec::new();
    for s in subjects {
        let lock = {
            let mut map = LOCKS.lock().unwrap_or_else(|e| e.into_inner());
            // Forget the locks nobody holds or waits for.
            map.retain(|_, l| std::sync::Arc::strong_count(l) > 1);
            map.entry(s.clone()).or_default().clone()
        };
        guards.push(lock.lock_owned().await);
    }
    guards
}

/// Argon2id takes tens of milliseconds of CPU: it runs off the async workers, two at a
/// time at most, so a burst of logins cannot stall the scheduler or the API.
async fn password_matches(password: &str, phc: &str) -> bool {
    static ARGON: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
    let Ok(_permit) = ARGON.acquire().await else {
        return false;
    };
    let (p, h) = (password.to_string(), phc.to_string());
    tokio::task::spawn_blocking(move || verify_password(&p, &h))
        .await
        .unwrap_or(false)
}

/// Refuses while one of `subjects` must still wait.
async fn check_waits(store: &Store, subjects: &[String], now: i64) -> AuthResult<()> {
    let mut until = 0;
    for s in subjects {
        until = until.max(store.login_wait(s).await?.1);
    }
    if until > now {
        let seconds = ((until - now) as u64).div_ceil(1000);
        return Err(AuthError::Wait { seconds });
    }
    Ok(())
}

/// One more failure of `subject`: it waits `(failures - free) x backoff`, 30 minutes at
/// most; the count starts again once its last wait has been over for half an hour.
async fn count_failure(
    store: &Store,
    subject: &str,
    free: i64,
    step: i64,
    now: i64,
) -> AuthResult<()> {
    let n = store.add_login_failure(subject, now - DECAY_MS).await?;
    let counted = (n - free).max(0);
    store
        .extend_login_wait(subject, now + (counted * step).min(MAX_WAIT_MS))
        .await?;
    Ok(())
}

/// One more wrong password: this account waits from this address, `failures x
/// backoff`; the address waits once past its free failures. An unknown name waits the
/// same (nothing tells it from a known one), and is not written to the audit log by name
/// (it is often a password typed in the wrong field).
async fn failed(
    store: &Store,
    cfg: &ProjectConfig,
    user: &str,
    address: &str,
    now: i64,
    known: bool,
) -> AuthResult<()> {
    let step = cfg.serve.auth.login_backoff.as_millis() as i64;
    let [pair, addr] = subjects(user, address);
    // Counted for an unknown name too: a wait must not tell which names exist.
    count_failure(store, &pair, 0, step, now).await?;
    count_failure(store, &addr, ADDRESS_FREE_FAILURES, step, now).await?;
    let target = if known { user } else { "(unknown account)" };
    audit(store, target, address, "login.failed", target, "").await;
    Ok(())
}

/// `a***@example.com`: enough for the user to know where to look.
fn masked(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            format!("{}***@{domain}", local.chars().next().unwrap_or('*'))
        }
        None => "***".into(),
    }
}

/// Step one. `password` may be an SSO token (`sso:…`), which opens the session at once.
pub async fn start(
    store: &Store,
    cfg: &ProjectConfig,
    user: &str,
    password: &str,
    address: &str,
    now: i64,
) -> AuthResult<Started> {
    if user.is_empty() || user.len() > 64 || password.len() > super::users::MAX_PASSWORD {
        return Err(AuthError::Unauthenticated(WRONG.into()));
    }
    let _turn = take_turns(&subjects(user, address)).await;
    check_waits(store, &subjects(user, address), now).await?;
    let account = store.user(user).await?;
    let known = account.is_some();
    if password.starts_with("sso:") {
        let checked = match &account {
            Some(u) if !u.disabled => sso(store, &cfg.serve.auth, u, password, now).await,
            _ => Err(AuthError::Unauthenticated(WRONG.into())),
        };
        if let Err(e) = checked {
            failed(store, cfg, user, address, now, known).await?;
            return Err(e);
        }
        let u = account.expect("checked above");
        let s = open_session(store, &u, address, now, "sso").await?;
        return Ok(Started::Session(s));
    }
    let phc = account
        .as_ref()
        .map_or(DUMMY_HASH.as_str(), |u| u.password.as_str());
    let ok = password_matches(password, phc).await;
    let u = match account {
        Some(u) if ok && !u.disabled => u,
        _ => {
            failed(store, cfg, user, address, now, known).await?;
            return Err(AuthError::Unauthenticated(WRONG.into()));
        }
    };
    let ticket = random_hex(32);
    let code = six_digits();
    let ticket_hash = sha256_hex(ticket.as_bytes());
    store
        .insert_login_code(&LoginCodeRow {
            ticket_hash: ticket_hash.clone(),
            user_name: u.name.clone(),
            code_hash: code_hash(&ticket_hash, &code),
            expires_at: now + CODE_TTL_MS,
            ends_at: now + TICKET_TTL_MS,
            ..LoginCodeRow::default()
        })
        .await?;
    mail_code(cfg, &u, &code).await?;
    Ok(Started::Code {
        ticket,
        sent_to: masked(&u.email),
    })
}

fn code_hash(ticket_hash: &str, code: &str) -> String {
    sha256_hex(format!("{ticket_hash}:{code}").as_bytes())
}

async fn mail_code(cfg: &ProjectConfig, u: &UserRow, code: &str) -> AuthResult<()> {
    let m = crate::mail::Outgoing {
        to: vec![u.email.clone()],
        cc: vec![],
        subject: "Your ordo login code".into(),
        body: format!(
            "Hello {},\n\nYour ordo login code is {code}\n\nIt is valid for 5 minutes and works once. \
             If you did not try to log in, tell your administrator.\n",
            u.name
        ),
        attachment: None,
    };
    crate::mail::send(&cfg.mail, &m)
        .await
        .map(|_| ())
        .map_err(|e| {
            // The relay's answer is for the log, not for whoever is trying to log in.
            tracing::error!(user = %u.name, "cannot send the login code: {e}");
            AuthError::Mail("the mail relay refused it or did not answer".into())
        })
}

/// Step two: the ticket from step one and the mailed code.
pub async fn finish(
    store: &Store,
    cfg: &ProjectConfig,
    ticket: &str,
    code: &str,
    address: &str,
    now: i64,
) -> AuthResult<NewSession> {
    const WHY: &str = "wrong, expired or already used code: log in again or ask for a new code";
    let ticket_hash = sha256_hex(ticket.as_bytes());
    let Some(c) = store.login_code(&ticket_hash).await? else {
        return Err(AuthError::Unauthenticated(WHY.into()));
    };
    let codes = [code_subject(&c.user_name)];
    let _turn = take_turns(&codes).await;
    check_waits(store, &codes, now).await?;
    if c.used || c.expires_at <= now || ticket_over(&c, now) || c.tries >= CODE_TRIES {
        return Err(AuthError::Unauthenticated(WHY.into()));
    }
    let right = code.len() == 6 && same(&c.code_hash, &code_hash(&ticket_hash, code));
    let used = store
        .try_login_code(&ticket_hash, &c.code_hash, right, now, CODE_TRIES)
        .await?;
    if !used {
        if !right {
            let step = cfg.serve.auth.login_backoff.as_millis() as i64;
            count_failure(store, &codes[0], CODE_FREE_FAILURES, step, now).await?;
            audit(
                store,
                &c.user_name,
                address,
                "login.code_failed",
                &c.user_name,
                "",
            )
            .await;
        }
        return Err(AuthError::Unauthenticated(WHY.into()));
    }
    let u = match store.user(&c.user_name).await? {
        Some(u) if !u.disabled => u,
        _ => return Err(AuthError::Unauthenticated(WHY.into())),
    };
    open_session(store, &u, address, now, "password and mailed code").await
}

/// "Send a new code": the previous one stops working.
pub async fn resend(
    store: &Store,
    cfg: &ProjectConfig,
    ticket: &str,
    address: &str,
    now: i64,
) -> AuthResult<String> {
    let ticket_hash = sha256_hex(ticket.as_bytes());
    let c = match store.login_code(&ticket_hash).await? {
        Some(c) if !c.used && c.sends < CODE_SENDS && !ticket_over(&c, now) => c,
        _ => {
            return Err(AuthError::Unauthenticated(
                "this login cannot get another code: log in again".into(),
            ));
        }
    };
    check_waits(store, &[code_subject(&c.user_name)], now).await?;
    let u = match store.user(&c.user_name).await? {
        Some(u) if !u.disabled => u,
        _ => {
            return Err(AuthError::Unauthenticated(
                "this login cannot get another code: log in again".into(),
            ));
        }
    };
    let code = six_digits();
    // A new code never outlives the ticket.
    let ends = if c.ends_at > 0 {
        c.ends_at
    } else {
        c.expires_at
    };
    store
        .replace_login_code(
            &ticket_hash,
            &code_hash(&ticket_hash, &code),
            (now + CODE_TTL_MS).min(ends),
        )
        .await?;
    mail_code(cfg, &u, &code).await?;
    audit(store, &u.name, address, "login.code_resent", &u.name, "").await;
    Ok(masked(&u.email))
}

/// Is the ticket past its absolute end? (Tickets from before that end existed have 0.)
fn ticket_over(c: &LoginCodeRow, now: i64) -> bool {
    c.ends_at > 0 && c.ends_at <= now
}

async fn open_session(
    store: &Store,
    u: &UserRow,
    address: &str,
    now: i64,
    how: &str,
) -> AuthResult<NewSession> {
    let [pair, _] = subjects(&u.name, address);
    store.clear_login_wait(&pair).await?;
    store.clear_login_wait(&code_subject(&u.name)).await?;
    let cookie = random_hex(32);
    let csrf = random_hex(32);
    store
        .insert_session(&SessionRow {
            id_hash: sha256_hex(cookie.as_bytes()),
            user_name: u.name.clone(),
            csrf: csrf.clone(),
            created_at: now,
            seen_at: now,
            ended_at: None,
            how: how.to_string(),
        })
        .await?;
    audit(store, &u.name, address, "login", &u.name, how).await;
    Ok(NewSession {
        user: u.name.clone(),
        cookie,
        csrf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_masked_and_the_dummy_hash_parses() {
        assert_eq!(masked("alice@example.com"), "a***@example.com");
        assert!(DUMMY_HASH.starts_with("$argon2id$"));
        assert!(!verify_password("anything", &DUMMY_HASH));
    }
}
