-- Account messages (issue 19): a customer's single-use links (email verification, password
-- reset) are handed to the merchant's account mail endpoint (ACCOUNT_MAIL_URL), never carried by
-- events. The body (which holds the plaintext token) exists only while the message is pending:
-- once delivered, given up, superseded by a newer link or expired, it is NULL, and the CHECK
-- refuses any other combination. Only the token's digest stays (customer_tokens).
CREATE TABLE account_messages (
  id              TEXT PRIMARY KEY CHECK (id GLOB 'amsg_*'),
  customer_id     TEXT NOT NULL REFERENCES customers (id),
  type            TEXT NOT NULL CHECK (type IN ('account.email_verification', 'account.password_reset')),
  body            TEXT,
  status          TEXT NOT NULL
                    CHECK (status IN ('pending', 'delivered', 'failed', 'superseded', 'expired')),
  attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  next_attempt_at INTEGER NOT NULL,
  expires_at      INTEGER NOT NULL,
  last_error      TEXT,
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL,
  CHECK ((status = 'pending') = (body IS NOT NULL))
) STRICT;
CREATE INDEX account_messages_due ON account_messages (status, next_attempt_at);
CREATE INDEX account_messages_by_customer ON account_messages (customer_id, type, status);

-- The links events used to carry are taken out of everything that kept them.
UPDATE outbox SET payload = json_remove(payload, '$.verification_token')
WHERE type = 'customer.registered' AND json_extract(payload, '$.verification_token') IS NOT NULL;
UPDATE outbox SET payload = json_remove(payload, '$.reset_token')
WHERE type = 'customer.password_reset_requested' AND json_extract(payload, '$.reset_token') IS NOT NULL;
UPDATE webhook_deliveries SET payload = json_remove(payload, '$.data.verification_token')
WHERE event_type = 'customer.registered' AND json_extract(payload, '$.data.verification_token') IS NOT NULL;
UPDATE webhook_deliveries SET payload = json_remove(payload, '$.data.reset_token')
WHERE event_type = 'customer.password_reset_requested'
  AND json_extract(payload, '$.data.reset_token') IS NOT NULL;
DELETE FROM dead_events WHERE type IN ('customer.registered', 'customer.password_reset_requested');
