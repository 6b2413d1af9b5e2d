-- A ticket's conversation is bounded (issue 19): at most 100 messages
-- (shop_domain::tickets::MAX_MESSAGES), so a ticket can always be read, answered and closed; the
-- trigger aborts the batch of the 101st whatever runs concurrently (409 ticket_full).
CREATE TRIGGER ticket_messages_limit BEFORE INSERT ON ticket_messages
WHEN NEW.seq > 100
BEGIN
  SELECT RAISE(ABORT, 'ticket message limit');
END;
