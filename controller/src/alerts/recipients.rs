//! Who an account's alerts reach: its addresses and webhook, its primary's, its
//! administrator's; read once per pass.

use std::collections::HashMap;

use crate::project::settings::mail_domain_allowed;
use crate::store::{AlertEventRow, AlertRuleRow, AlertSettingsRow, Store, StoreResult, UserRow};

/// What a pass reads once: the accounts, and each one's settings and rules.
pub(super) struct Accounts {
    pub(super) users: Vec<UserRow>,
    /// `serve: alerts: mail_domains`.
    mail_domains: Vec<String>,
    settings: HashMap<String, Option<(AlertSettingsRow, Vec<AlertRuleRow>)>>,
}

impl Accounts {
    pub(super) async fn load(store: &Store, mail_domains: &[String]) -> StoreResult<Self> {
        Ok(Accounts {
            users: store.users().await?,
            mail_domains: mail_domains.to_vec(),
            settings: HashMap::new(),
        })
    }

    fn user(&self, name: &str) -> Option<&UserRow> {
        self.users.iter().find(|u| u.name == name && !u.disabled)
    }

    /// An account's settings and rules, if it has any and its alerts are on.
    pub(super) async fn active(
        &mut self,
        store: &Store,
        name: &str,
    ) -> StoreResult<Option<(AlertSettingsRow, Vec<AlertRuleRow>)>> {
        if !self.settings.contains_key(name) {
            let found = match store.alert_settings(name).await? {
                Some(s) => Some((s, store.alert_rules(name).await?)),
                None => None,
            };
            self.settings.insert(name.to_string(), found);
        }
        Ok(self.settings[name].clone().filter(|(s, _)| s.active))
    }

    /// Who an account's alert about `ev` goes to (`mail:` and `webhook:` addresses, in
    /// lower case): its addresses (its own when it lists none) and webhook; its
    /// primary's, when that one follows its secondaries, may read the project and wants
    /// this kind of run; with `send_admin`, its administrator's (or the top
    /// administrators').
    pub(super) async fn recipients(
        &mut self,
        store: &Store,
        owner: &str,
        ev: &AlertEventRow,
    ) -> StoreResult<Vec<String>> {
        let Some(u) = self.user(owner).cloned() else {
            return Ok(Vec::new());
        };
        let Some((s, _)) = self.active(store, owner).await? else {
            return Ok(Vec::new());
        };
        let mut out = own(&u, &s);
        if let Some(p) = u.primary_user.as_deref()
            && let Some(pu) = self.user(p).cloned()
            && can_read(&pu, &ev.project)
            && let Some((ps, _)) = self.active(store, p).await?
            && ps.secondary_alerts
            && (!ev.test || ps.send_test)
        {
            out.extend(own(&pu, &ps));
        }
        if s.send_admin {
            let admins = self.users.iter().filter(|a| {
                !a.disabled
                    && a.role == "admin"
                    && a.name != u.name
                    && match &u.manager {
                        Some(m) => a.name == *m,
                        None => a.top,
                    }
            });
            out.extend(
                admins
                    .filter(|a| !a.email.is_empty())
                    .map(|a| format!("mail:{}", a.email)),
            );
        }
        for a in out.iter_mut() {
            *a = a.to_ascii_lowercase();
        }
        // `serve: alerts: mail_domains` binds every address, the accounts' own too.
        out.retain(|a| {
            a.strip_prefix("mail:")
                .is_none_or(|m| mail_domain_allowed(&self.mail_domains, m))
        });
        out.sort();
        out.dedup();
        Ok(out)
    }
}

pub(super) fn can_read(u: &UserRow, project: &str) -> bool {
    u.role == "admin"
        || u.projects
            .iter()
            .any(|g| crate::auth::grant_covers(g, project))
}

fn own(u: &UserRow, s: &AlertSettingsRow) -> Vec<String> {
    let mut out: Vec<String> = if s.mails.is_empty() {
        (!u.email.is_empty())
            .then(|| format!("mail:{}", u.email))
            .into_iter()
            .collect()
    } else {
        s.mails.iter().map(|m| format!("mail:{m}")).collect()
    };
    if !s.webhook.is_empty() {
        out.push(format!("webhook:{}", s.webhook));
    }
    out
}
