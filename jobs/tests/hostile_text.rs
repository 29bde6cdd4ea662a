//! Malformed and random text never makes a parser panic: inventories, jobs, filters, cron
//! expressions and templates either parse or say what is wrong and where.

use std::path::Path;

use ordo_inventory::NodeFilter;
use ordo_jobs::Template;
use ordo_jobs::schedule::{CronExpr, Syntax};
use proptest::prelude::*;

/// Text made of YAML, filter, cron and template syntax, and random characters.
fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            "[ -~]{0,8}",
            "\\PC{0,4}",
            Just("\n".to_string()),
            Just("  ".to_string()),
            Just(": ".to_string()),
            Just("- ".to_string()),
            Just("&a ".to_string()),
            Just("*a".to_string()),
            Just("<<: *a".to_string()),
            Just("{".to_string()),
            Just("}".to_string()),
            Just("[".to_string()),
            Just("]".to_string()),
            Just("${".to_string()),
            Just("${option.".to_string()),
            Just("servers:".to_string()),
            Just("steps:".to_string()),
            Just("targets:".to_string()),
            Just("schedule:".to_string()),
            Just("group:".to_string()),
            Just(" and ".to_string()),
            Just(" or ".to_string()),
            Just("!".to_string()),
            Just("(".to_string()),
            Just(")".to_string()),
            Just("*/".to_string()),
            Just("L W #".to_string()),
            Just("'".to_string()),
            Just("\"".to_string()),
            Just("\t".to_string()),
        ],
        0..24,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn job_files_never_panic_and_errors_have_positions(t in text()) {
        if let Err(d) = ordo_jobs::parse_job(&t, Path::new("jobs/x.yaml"), "x") {
            let msg = d.to_string();
            prop_assert!(msg.contains("jobs/x.yaml:"), "no position: {msg}");
        }
    }

    #[test]
    fn inventories_never_panic_and_errors_have_positions(t in text()) {
        for name in ["inventory.yaml", "hosts.ini"] {
            if let Err(d) = ordo_inventory::parse(&t, Path::new(name)) {
                let msg = d.to_string();
                prop_assert!(msg.contains(&format!("{name}:")), "no position: {msg}");
            }
        }
    }

    #[test]
    fn filters_cron_and_templates_never_panic(t in text()) {
        let _ = NodeFilter::parse(&t);
        let _ = CronExpr::parse(&t, Syntax::Cron);
        let _ = CronExpr::parse(&t, Syntax::Quartz);
        let _ = Template::parse(&t);
        let _ = Template::parse_shell(&t);
    }
}
