-- Encryption keys: the certificates (public parts only) results are encrypted to; backup
-- keys are added to every encryption. Private keys are never stored here.
CREATE TABLE IF NOT EXISTS encryption_keys (
    name        TEXT PRIMARY KEY,
    cert_pem    TEXT NOT NULL,
    cn          TEXT NOT NULL,
    issuer      TEXT NOT NULL,
    serial      TEXT NOT NULL,
    key_type    TEXT NOT NULL,
    not_after   BIGINT NOT NULL,
    backup      INTEGER NOT NULL,
    generated   INTEGER NOT NULL,
    added_by    TEXT NOT NULL,
    added_at    BIGINT NOT NULL
);
