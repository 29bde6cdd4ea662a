//! `controller keys list|add|generate|edit|delete` and `controller decrypt`: the
//! certificates results are encrypted to (personal keys and backup keys, added to every
//! encryption), and reading an encrypted result back. Private keys the controller makes
//! are written once for their owner and never kept.

use clap::{Args, Subcommand};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use super::{BadInput, Cli, EXIT_OK};
use crate::actions::keys::KeysCx;
use crate::actions::{self, ActionError, Actor};
use crate::clock::now_ms;
use crate::pki::cms::{self, KeyKind, gmt};
use crate::pki::keys;
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

/// The project's jobs and profiles (what names keys); empty when they do not load.
/// The project's jobs and profiles (what names keys), or why they do not load.
type Named = (
    ordo_jobs::JobSet,
    std::collections::BTreeMap<String, ordo_jobs::transfer::Profile>,
);

fn project(cfg: &crate::project::ProjectConfig) -> Result<Named, String> {
    let jobs = ordo_jobs::load_all(&cfg.jobs).map_err(|e| e.to_string())?;
    let profiles = crate::project::profiles(cfg, &jobs).map_err(|e| e.0)?;
    Ok((jobs, profiles))
}

pub async fn run(cli: &Cli, c: &KeysCmd) -> anyhow::Result<i32> {
    let cfg = super::config(cli)?;
    crate::project::private_data_dir(&cfg)?;
    let store = Store::open(&crate::project::database_url(&cfg)).await?;
    crate::project::private_database(&cfg);
    let me = Actor::cli();
    // Without the jobs and profiles, whether a key is in use is not known: deleting or
    // renaming then needs --force.
    let loaded = project(&cfg);
    let unsure = |force: bool, hint: &str| -> Result<(), BadInput> {
        match (&loaded, force) {
            (Err(e), false) => Err(BadInput(format!(
                "the jobs or profiles do not load, so which use the key is not known: fix them (controller check){hint}\n{e}"
            ))),
            _ => Ok(()),
        }
    };
    let (set, profiles) = loaded.clone().unwrap_or_default();
    let cx = KeysCx {
        store: &store,
        users: keys::Users {
            jobs: &set,
            profiles: &profiles,
        },
        mail: &cfg.mail,
    };
    let r = match c {
        KeysCmd::List => list(&cx, &me).await,
        KeysCmd::Add { name, cert, backup } => {
            let pem = read_bounded(cert)?;
            let k = actions::keys::add(&cx, &me, name, &pem, *backup)
                .await
                .map_err(|e| match e {
                    ActionError::Invalid { ref field, .. } if field == "cert" => {
                        BadInput(format!("{e} ({})", cert.display())).into()
                    }
                    e => super::action_error(e),
                })?;
            say!(
                "key {name} added: CN={}, {}, expires {}",
                k.cn,
                k.key_type,
                gmt(k.not_after)
            );
            Ok(EXIT_OK)
        }
        KeysCmd::Generate(a) => generate(&cx, a, &me).await,
        KeysCmd::Edit {
            name,
            rename,
            backup,
        } => {
            unsure(rename.is_none(), " before renaming")?;
            let k = actions::keys::edit(&cx, &me, name, rename.as_deref(), *backup)
                .await
                .map_err(super::action_error)?;
            say!(
                "key {}: {}",
                k.name,
                if k.backup { "backup" } else { "personal" }
            );
            Ok(EXIT_OK)
        }
        KeysCmd::Delete { name, force } => {
            unsure(*force, ", or --force")?;
            actions::keys::delete(&cx, &me, name, *force)
                .await
                .map_err(super::action_error)?;
            say!("key {name} deleted");
            Ok(EXIT_OK)
        }
    };
    store.close().await;
    r
}

async fn generate(cx: &KeysCx<'_>, a: &GenerateArgs, me: &Actor) -> anyhow::Result<i32> {
    let kind = match a.kind.as_str() {
        "rsa" => KeyKind::Rsa3072,
        "ec" => KeyKind::EcP256,
        other => return Err(BadInput(format!("--type `{other}`: rsa or ec")).into()),
    };
    if cx.store.key(&a.name).await?.is_some() {
        return Err(BadInput(format!("a key named `{}` exists", a.name)).into());
    }
    if a.out.exists() {
        return Err(BadInput(format!("{} exists: not replaced", a.out.display())).into());
    }
    let pass = passphrase(a.passphrase_stdin, true)?;
    let spec = keys::GenerateSpec {
        name: a.name.clone(),
        cn: a.cn.clone(),
        days: a.days,
        kind,
        backup: a.backup,
        passphrase: pass,
        pkcs12: matches!(
            a.out.extension().and_then(|e| e.to_str()),
            Some("p12" | "pfx")
        ),
    };
    // The private key first: if it cannot be written, nothing is recorded.
    let out = a.out.clone();
    let deliver = |_: &KeyRow, file: &[u8]| {
        crate::project::write_private(&out, file)
            .map_err(|e| ActionError::invalid("out", format!("{}: {e}", out.display())))
    };
    let (row, _) = match actions::keys::generate(cx, me, spec, deliver).await {
        Ok(made) => made,
        Err(e) => {
            if !matches!(&e, ActionError::Invalid { field, .. } if field == "out") {
                let _ = std::fs::remove_file(&a.out);
            }
            return Err(super::action_error(e));
        }
    };
    say!(
        "key {} generated: CN={}, {}, expires {}; its private key is in {} (give it to its owner: the controller keeps only the certificate)",
        a.name,
        row.cn,
        row.key_type,
        gmt(row.not_after),
        a.out.display()
    );
    Ok(EXIT_OK)
}

async fn list(cx: &KeysCx<'_>, me: &Actor) -> anyhow::Result<i32> {
    let users = &cx.users;
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
    for k in actions::keys::list(cx, me)
        .await
        .map_err(super::action_error)?
    {
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
            keys::used_by(users, &k.name).join(", ")
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
    let data = ordo_inventory::read_bounded(&a.file, cms::MAX_CONTENT + (1 << 20))
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
    let (key, cert) =
        cms::read_private_key(&key_bytes, &pass, &what).map_err(|e| BadInput(e.to_string()))?;
    let plain = cms::decrypt(&data, &key, cert.as_ref())
        .map_err(|e| BadInput(format!("{}: {e}", a.file.display())))?;
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
