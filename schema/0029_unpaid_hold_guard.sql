-- A bound on hoarding that no number of clients escapes (issue 19): all unpaid orders together
-- may hold at most a share of a SKU's stock (CHECKOUT_UNPAID_HOLD_SHARE, rounded up). The
-- placement batch, after its reservation, writes each of its SKUs' holding and cap here and
-- empties the table again: the CHECK aborts the whole batch when a SKU is held beyond its cap,
-- exactly, whatever runs concurrently (D1 runs batches one at a time). Always empty between
-- batches.
CREATE TABLE unpaid_hold_guard (
  sku  TEXT NOT NULL,
  held INTEGER NOT NULL,
  cap  INTEGER NOT NULL,
  CHECK (held <= cap)
) STRICT;
