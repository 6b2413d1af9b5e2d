-- Idempotency records belong to their caller: the primary key is (scope, key), where scope
-- names who sent the request (an admin token's subject, the capability resource such as a
-- cart, or for anonymous creation the client's address). One caller's key can never replay
-- another caller's answer. Records live 24 h, so the old table (whose keys were global) is
-- dropped rather than copied: an in-flight key at deploy time is forgotten, and the retry
-- runs again, guarded by the mutation's own constraints (one order per cart).
DROP TABLE idempotency_keys;

CREATE TABLE idempotency_keys (
  scope            TEXT NOT NULL,
  key              TEXT NOT NULL,
  fingerprint      TEXT NOT NULL,
  created_at       INTEGER NOT NULL,
  expires_at       INTEGER NOT NULL,
  completed        INTEGER NOT NULL DEFAULT 0 CHECK (completed IN (0, 1)),
  response_status  INTEGER,
  response_headers TEXT,
  response_body    TEXT,
  PRIMARY KEY (scope, key)
) STRICT;
CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);
