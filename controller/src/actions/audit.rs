//! Reading the audit log: the whole log for top administrators (and the command line); for
//! another administrator, the entries of its own account and of the accounts it manages.

use super::{ActionResult, Actor};
use crate::store::{AuditFilter, AuditRow, Store};

/// At most this many entries a read.
pub const MAX_ROWS: i64 = 10_000;

pub async fn read(
    store: &Store,
    a: &Actor,
    actor: Option<&str>,
    action: Option<&str>,
    limit: i64,
) -> ActionResult<Vec<AuditRow>> {
    a.require_admin()?;
    let managed_by = (!a.who.is_top()).then_some(a.who.name.as_str());
    Ok(store
        .audit(&AuditFilter {
            actor,
            action,
            managed_by,
            limit: limit.clamp(1, MAX_ROWS),
        })
        .await?)
}
