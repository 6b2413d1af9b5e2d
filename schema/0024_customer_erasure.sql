-- Erasure of a customer's personal data (issue 12, DELETE /v1/me). The row stays as a tombstone
-- (orders, reviews and the points ledger keep pointing at it): its email becomes
-- erased-<id>@erased.invalid, its name and password go, and erased_at is set; nothing finds it
-- by email, and no token opens it again.
ALTER TABLE customers ADD COLUMN erased_at INTEGER;
