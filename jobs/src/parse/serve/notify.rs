//! `notify:`: on which events, and by mail or webhook.

use std::time::Duration;

use ordo_inventory::yaml::{Kind, Node};

use super::{Cx, one_or_many};
use crate::model::{Notify, NotifyEvent, NotifyTarget};

const NOTIFY: &[&str] = &["on", "mail", "webhook"];
const NOTIFY_MAIL: &[&str] = &["to", "attach_log"];
const WEBHOOK: &[&str] = &["url", "headers", "timeout"];

pub(super) fn read_notify(n: &Node, cx: &mut Cx<'_>) -> Vec<Notify> {
    let items: Vec<&Node> = match &n.kind {
        Kind::Seq(items) => items.iter().collect(),
        _ => vec![n],
    };
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let what = format!("notify {}", i + 1);
        let f = item.fields(&what, NOTIFY, cx.d);
        let mut on = Vec::new();
        match f.get("on") {
            Some(o) => {
                for (e, pos) in one_or_many(o, &format!("{what}: on"), cx) {
                    match NotifyEvent::parse(&e) {
                        Some(ev) => on.push(ev),
                        None => cx.d.error(
                            pos,
                            format!(
                                "{what}: on: `{e}` is not one of: start, success, failure, late"
                            ),
                        ),
                    }
                }
            }
            None => on.push(NotifyEvent::Failure),
        }
        let target = match (f.get("mail"), f.get("webhook")) {
            (Some(m), None) => read_notify_mail(m, &what, cx),
            (None, Some(w)) => read_webhook(w, &what, cx),
            _ => {
                cx.d.error(
                    item.pos,
                    format!("{what}: needs one of `mail` or `webhook`"),
                );
                None
            }
        };
        if let Some(target) = target {
            out.push(Notify { on, target });
        }
    }
    out
}

fn read_notify_mail(n: &Node, what: &str, cx: &mut Cx<'_>) -> Option<NotifyTarget> {
    let (to_node, attach) = match &n.kind {
        Kind::Map(_) => {
            let f = n.fields(&format!("{what}: mail"), NOTIFY_MAIL, cx.d);
            let attach = f
                .get("attach_log")
                .and_then(|a| a.bool(&format!("{what}: mail: attach_log"), cx.d))
                .unwrap_or(false);
            (f.require("to", &format!("{what}: mail"), cx.d)?, attach)
        }
        _ => (n, false),
    };
    let to: Vec<String> = one_or_many(to_node, &format!("{what}: mail: to"), cx)
        .into_iter()
        .filter_map(|(a, pos)| {
            if a.contains('@') {
                Some(a)
            } else {
                cx.d.error(pos, format!("{what}: mail: `{a}` is not a mail address"));
                None
            }
        })
        .collect();
    if to.is_empty() {
        return None;
    }
    Some(NotifyTarget::Mail {
        to,
        attach_log: attach,
    })
}

fn read_webhook(n: &Node, what: &str, cx: &mut Cx<'_>) -> Option<NotifyTarget> {
    let w = format!("{what}: webhook");
    let (url_node, f) = match &n.kind {
        Kind::Map(_) => {
            let f = n.fields(&w, WEBHOOK, cx.d);
            (f.require("url", &w, cx.d)?, Some(f))
        }
        _ => (n, None),
    };
    let url = url_node.str(&format!("{w}: url"), cx.d)?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        cx.d.error(
            url_node.pos,
            format!("{w}: url `{url}` must start with http:// or https://"),
        );
        return None;
    }
    let get = |k: &str| f.as_ref().and_then(|f| f.get(k));
    let mut headers = Vec::new();
    if let Some(h) = get("headers") {
        for (k, v) in h.entries(&format!("{w}: headers"), cx.d) {
            if let Some(v) = v.str(&format!("{w}: header `{k}`"), cx.d) {
                headers.push((k, v));
            }
        }
    }
    let timeout = get("timeout")
        .and_then(|t| cx.duration(t, &format!("{w}: timeout")))
        .unwrap_or(Duration::from_secs(10));
    Some(NotifyTarget::Webhook {
        url,
        headers,
        timeout,
    })
}
