//! A mail partner: a compressed file in segments, joined back byte for byte.

use super::*;

#[test]
fn a_compressed_file_in_segments_by_mail_is_joined_back() {
    let smtp = SmtpServer::start();
    let p = project();
    p.write(
        "ordo.yaml",
        &format!(
            "mail:\n  from: ordo@example.com\n  smtp: {{ host: localhost, port: {}, tls: none }}\n",
            smtp.port
        ),
    );
    let w = temp_dir("xfer-mail");
    let (src, bak, inbox) = (
        dir(w.path(), "in"),
        dir(w.path(), "bak"),
        dir(w.path(), "recu"),
    );
    p.write(
        "profiles/pecoto.yaml",
        "smtp: { to: [recensement@example.com], subject: \"[scenario] [name] part [part]\" }\n",
    );
    p.write(
        "jobs/recensement.yaml",
        &format!(
            "kind: transfer\ntransfer: {{ profile: pecoto, source: {}, backup: {}, compress: true, segment_size: 40KiB, watch: false }}\n",
            src.display(),
            bak.display()
        ),
    );
    let data = noise(100_000, 3);
    std::fs::write(src.join("RECENS.csv"), &data).unwrap();
    p.controller(&["run", "recensement", "--no-progress"])
        .expect_code(0);
    let mails = smtp.wait_for(4);
    let mut subjects = Vec::new();
    for m in &mails {
        let parsed = m.parsed();
        subjects.push(parsed.subject().unwrap_or("").to_string());
        let a = parsed.attachments().next().expect("an attachment");
        use mail_parser::MimeHeaders;
        std::fs::write(inbox.join(a.attachment_name().unwrap()), a.contents()).unwrap();
    }
    subjects.sort();
    assert_eq!(
        subjects,
        [
            "recensement RECENS.csv part 1/4",
            "recensement RECENS.csv part 2/4",
            "recensement RECENS.csv part 3/4",
            "recensement RECENS.csv part 4/4"
        ]
    );
    let joined = p
        .controller(&[
            "transfer",
            "join",
            &inbox.join("RECENS.csv.gz.manifest").display().to_string(),
        ])
        .expect_code(0);
    assert!(joined.stdout.contains("joined:"), "{}", joined.stdout);
    assert_eq!(std::fs::read(inbox.join("RECENS.csv")).unwrap(), data);
    let t = &transfers(&p, "recensement")[0];
    assert_eq!((t.status.as_str(), t.segments), ("delivered", 4));
    // A missing segment is named.
    std::fs::remove_file(inbox.join("RECENS.csv.gz.002")).unwrap();
    let err = p
        .controller(&[
            "transfer",
            "join",
            &inbox.join("RECENS.csv.gz.manifest").display().to_string(),
            "-o",
            &w.path().join("x").display().to_string(),
        ])
        .expect_code(2);
    assert!(err.stderr.contains("RECENS.csv.gz.002"), "{}", err.stderr);
}
