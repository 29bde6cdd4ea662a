//! `controller keys list|add|generate|edit|delete` and `controller decrypt`: the
//! certificates results are encrypted to (personal keys and backup keys, added to every
//! encryption), and reading an encrypted result back. Private keys the controller makes
//! are written once for their owner and never kept.

use clap::{Args, Subcommand};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use super::{BadInput, Cli, EXIT_OK};
use crate::clock::now_ms;
use crate::pki::cms::{self, KeyKind, gmt};
use crate::store::{KeyRow, Store};

/// Certificates and keys read from files are this size at most.
const MAX_FILE: u64 = 1 << 20;

#[derive(Subcommand, Debug)]
pub enum KeysCmd {
    /// Every key: personal and backup, CN, issuer, type, expiry (GMT), the jobs using it.
    List,
    /// Import an existing certificate (PEM): only its public key is kept.
    Add {
        name: String,
        #[arg(long)]
        cert: std::path::PathBuf,
        /// A backup key: added to every encryption.
        #[arg(long)]
        backup: bool,
    },
    /// Make a key pair and its certificate; the private key is written to --out once
    /// (PKCS#12 for .p12/.pfx, else encrypted PEM) under a passphrase, and not kept.
    Generate(GenerateArgs),
    /// Rename a key, or make it a backup key or not.
    Edit {
        name: String,
        #[arg(long)]
        rename: Option<String>,
        #[arg(long)]
        backup: Option<bool>,
    },
    /// Delete a key (refused while a job uses it, unless --force).
    Delete {
        name: String,
        #[arg(long)]
        force: bool,
    },
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    pub name: String,
    #[arg(long)]
    pub cn: String,
    #[arg(long, default_value_t = 730)]
    pub days: u32,
    /// rsa (RSA 3072) or ec (P-256).
    #[arg(long = "type", default_value = "rsa")]
    pub kind: String,
    #[arg(long)]
    pub backup: bool,
    #[arg(long)]
    pub out: std::path::PathBuf,
    /// Read the passphrase from standard input (one line) instead of the terminal.
    #[arg(long)]
    pub passphrase_stdin: bool,
}

#[derive(Args, Debug)]
pub struct DecryptArgs {
    /// The encrypted file (.p7m, DER or PEM).
    pub file: std::path::PathBuf,
    /// The private key: PKCS#12 (.p12) or PEM.
    #[arg(long)]
    pub key: std::path::PathBuf,
    /// Where the plain file goes (default: the file without .p7m); never replaced.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    #[arg(long)]
    pub passphrase_stdin: bool,
}

fn read_bounded(path: &std::path::Path) -> Result<Vec<u8>, BadInput> {
    ordo_inventory::read_bounded(path, MAX_FILE)
        .map_err(|e| BadInput(format!("{}: {e}", path.display())))
}

/// A key's name: letters, digits, `-`, `_`, `.`, 1 to 64 characters.
fn check_name(name: &str) -> Result<(), BadInput> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(BadInput(format!(
            "key name `{name}`: 1 to 64 letters, digits, `-`, `_` or `.`"
        )));
    }
    Ok(())
}

fn passphrase(stdin: bool, twice: bool) -> anyhow::Result<String> {
    if stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\n', '\r']).to_string());
    }
    let first = rpassword::prompt_password("passphrase: ")?;
    if twice && rpassword::prompt_password("again: ")? != first {
        return Err(BadInput("the two passphrases differ".into()).into());
    }
    Ok(first)
}

/// The jobs whose archive is encrypted to `name`.
fn used_by(cfg: &crate::project::ProjectConfig, name: &str) -> Vec<String> {
    ordo_jobs::load_all(&cfg.jobs)
        .map(|set| {
            set.jobs
                .values()
                .filter(|j| j.encrypt.iter().any(|(k, _)| k == name))
                .map(|j| j.name.clone())
                .collect()
        })
        .unwrap_or_default()
}

pub async fn run(cli: &Cli, c: &KeysCmd) -> anyhow::Result<i32> {
    let cfg = super::config(cli)?;
    crate::project::private_data_dir(&cfg)?;
    let store = Store::open(&crate::project::database_url(&cfg)).await?;
    crate::project::private_database(&cfg);
    let me = format!("{} (cli)", crate::transport::current_user());
    let r = match c {
        KeysCmd::List => list(&store, &cfg).await,
        KeysCmd::Add { name, cert, backup } => {
            check_name(name)?;
            let pem = read_bounded(cert)?;
            let what = format!("key `{name}` ({})", cert.display());
            let (_, info) =
                cms::read_cert(&pem, &what, now_ms()).map_err(|e| BadInput(e.to_string()))?;
            let row = KeyRow {
                name: name.clone(),
                cert_pem: String::from_utf8_lossy(&pem).into_owned(),
                backup: *backup,
                ..key_row(&info, &me)
            };
            store
                .insert_key(&row)
                .await
                .map_err(|e| BadInput(e.to_string()))?;
            crate::auth::audit(&store, &me, "", "key add", name, &info.cn).await;
            say!(
                "key {name} added: CN={}, {}, expires {}",
                info.cn,
                info.key_type,
                gmt(info.not_after)
            );
            Ok(EXIT_OK)
        }
        KeysCmd::Generate(a) => generate(&store, a, &me).await,
        KeysCmd::Edit {
            name,
            rename,
            backup,
        } => {
            let k = store
                .key(name)
                .await?
                .ok_or_else(|| BadInput(format!("no key `{name}`")))?;
            let new = rename.clone().unwrap_or_else(|| name.clone());
            check_name(&new)?;
            if new != *name && !used_by(&cfg, name).is_empty() {
                return Err(BadInput(format!(
                    "key `{name}` is used by {}: rename it there too, then here",
                    used_by(&cfg, name).join(", ")
                ))
                .into());
            }
            store
                .update_key(name, &new, backup.unwrap_or(k.backup))
                .await
                .map_err(|e| BadInput(e.to_string()))?;
            crate::auth::audit(
                &store,
                &me,
                "",
                "key edit",
                name,
                &format!("name={new} backup={}", backup.unwrap_or(k.backup)),
            )
            .await;
            say!(
                "key {new}: {}",
                if backup.unwrap_or(k.backup) {
                    "backup"
                } else {
                    "personal"
                }
            );
            Ok(EXIT_OK)
        }
        KeysCmd::Delete { name, force } => {
            let users = used_by(&cfg, name);
            if !users.is_empty() && !force {
                return Err(BadInput(format!(
                    "key `{name}` is used by {}: change those jobs first, or --force",
                    users.join(", ")
                ))
                .into());
            }
            store
                .delete_key(name)
                .await
                .map_err(|e| BadInput(e.to_string()))?;
            crate::auth::audit(&store, &me, "", "key delete", name, "").await;
            say!("key {name} deleted");
            Ok(EXIT_OK)
        }
    };
    store.close().await;
    r
}

fn key_row(info: &cms::CertInfo, me: &str) -> KeyRow {
    KeyRow {
        cn: info.cn.clone(),
        issuer: info.issuer.clone(),
        serial: info.serial.clone(),
        key_type: info.key_type.clone(),
        not_after: info.not_after,
        added_by: me.to_string(),
        added_at: now_ms(),
        ..KeyRow::default()
    }
}

async fn generate(store: &Store, a: &GenerateArgs, me: &str) -> anyhow::Result<i32> {
    check_name(&a.name)?;
    if a.cn.is_empty() || a.cn.len() > 64 {
        return Err(BadInput("--cn: 1 to 64 characters".into()).into());
    }
    if !(1..=3650).contains(&a.days) {
        return Err(BadInput("--days: 1 to 3650".into()).into());
    }
    let kind = match a.kind.as_str() {
        "rsa" => KeyKind::Rsa3072,
        "ec" => KeyKind::EcP256,
        other => return Err(BadInput(format!("--type `{other}`: rsa or ec")).into()),
    };
    if store.key(&a.name).await?.is_some() {
        return Err(BadInput(format!("a key named `{}` exists", a.name)).into());
    }
    if a.out.exists() {
        return Err(BadInput(format!("{} exists: not replaced", a.out.display())).into());
    }
    let pass = passphrase(a.passphrase_stdin, true)?;
    if pass.chars().count() < 8 {
        return Err(BadInput("the passphrase: at least 8 characters".into()).into());
    }
    let (key, cert) = cms::generate(&a.cn, a.days, kind)?;
    let p12 = matches!(
        a.out.extension().and_then(|e| e.to_str()),
        Some("p12" | "pfx")
    );
    let bytes = if p12 {
        cms::to_pkcs12(&a.name, &key, &cert, &pass)?
    } else {
        cms::to_pem(&key, &cert, &pass)?
    };
    let info = cms::cert_info(&cert)?;
    let row = KeyRow {
        name: a.name.clone(),
        cert_pem: String::from_utf8_lossy(&cert.to_pem()?).into_owned(),
        backup: a.backup,
        generated: true,
        ..key_row(&info, me)
    };
    // The private key first: if it cannot be written, nothing is recorded.
    crate::project::write_private(&a.out, &bytes)
        .map_err(|e| BadInput(format!("{}: {e}", a.out.display())))?;
    if let Err(e) = store.insert_key(&row).await {
        let _ = std::fs::remove_file(&a.out);
        return Err(BadInput(e.to_string()).into());
    }
    crate::auth::audit(store, me, "", "key generate", &a.name, &a.cn).await;
    say!(
        "key {} generated: CN={}, {}, expires {}; its private key is in {} (give it to its owner: the controller keeps only the certificate)",
        a.name,
        info.cn,
        info.key_type,
        gmt(info.not_after),
        a.out.display()
    );
    Ok(EXIT_OK)
}

async fn list(store: &Store, cfg: &crate::project::ProjectConfig) -> anyhow::Result<i32> {
    let now = now_ms();
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header([
        "NAME",
        "KIND",
        "CN",
        "ISSUER",
        "TYPE",
        "EXPIRES (GMT)",
        "USED BY",
    ]);
    for k in store.keys().await? {
        let expires = if k.not_after <= now {
            format!("{} (expired)", gmt(k.not_after))
        } else if k.not_after - now < crate::pki::keys::EXPIRY_WARNING_DAYS * 86_400_000 {
            format!("{} (soon)", gmt(k.not_after))
        } else {
            gmt(k.not_after)
        };
        let used = if k.backup {
            "every encryption".to_string()
        } else {
            used_by(cfg, &k.name).join(", ")
        };
        t.add_row([
            k.name,
            if k.backup { "backup" } else { "personal" }.to_string(),
            k.cn,
            k.issuer,
            k.key_type,
            expires,
            used,
        ]);
    }
    say!("{t}");
    Ok(EXIT_OK)
}

/// `controller decrypt FILE.p7m --key KEY`: needs no project.
pub fn decrypt(a: &DecryptArgs) -> anyhow::Result<i32> {
    let data = ordo_inventory::read_bounded(&a.file, 8 << 30)
        .map_err(|e| BadInput(format!("{}: {e}", a.file.display())))?;
    let key_bytes = read_bounded(&a.key)?;
    let what = a.key.display().to_string();
    let pass = if key_bytes.starts_with(b"-----")
        && !String::from_utf8_lossy(&key_bytes).contains("ENCRYPTED")
    {
        String::new()
    } else {
        passphrase(a.passphrase_stdin, false)?
    };
    let key =
        cms::read_private_key(&key_bytes, &pass, &what).map_err(|e| BadInput(e.to_string()))?;
    let plain =
        cms::decrypt(&data, &key).map_err(|e| BadInput(format!("{}: {e}", a.file.display())))?;
    let out = match &a.out {
        Some(o) => o.clone(),
        None => {
            let s = a.file.display().to_string();
            match s.strip_suffix(".p7m") {
                Some(base) => std::path::PathBuf::from(base),
                None => std::path::PathBuf::from(format!("{s}.out")),
            }
        }
    };
    crate::project::write_private(&out, &plain)
        .map_err(|e| BadInput(format!("{}: {e}", out.display())))?;
    say!("{} bytes written to {}", plain.len(), out.display());
    Ok(EXIT_OK)
}
