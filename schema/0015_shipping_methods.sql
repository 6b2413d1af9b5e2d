-- Shipping methods configured in D1 (issue 10): zones by country (optionally a postcode
-- prefix), each with its methods; a method's price by weight band per currency, a free-shipping
-- threshold per currency, and estimated delivery days. A destination's zone is the one whose area
-- matches it most specifically (a country over '*', a longer postcode prefix over a shorter):
-- shop_domain::shipping::zone_for. Variants carry their weight.
ALTER TABLE variants ADD COLUMN weight_grams INTEGER NOT NULL DEFAULT 0 CHECK (weight_grams >= 0);

CREATE TABLE shipping_zones (
  id   TEXT PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 40),
  name TEXT NOT NULL
) STRICT;

CREATE TABLE shipping_zone_areas (
  zone_id         TEXT NOT NULL REFERENCES shipping_zones (id),
  -- ISO 3166-1 alpha-2, or '*' for anywhere.
  country         TEXT NOT NULL CHECK (country = '*' OR (length(country) = 2 AND country = upper(country))),
  -- Normalised (uppercase, no spaces); '' for the whole country.
  postcode_prefix TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (country, postcode_prefix)
) STRICT;

CREATE TABLE shipping_methods (
  zone_id  TEXT NOT NULL REFERENCES shipping_zones (id),
  code     TEXT NOT NULL CHECK (length(code) BETWEEN 1 AND 40),
  name     TEXT NOT NULL,
  carrier  TEXT NOT NULL,
  min_days INTEGER NOT NULL CHECK (min_days >= 0),
  max_days INTEGER NOT NULL CHECK (max_days >= min_days),
  PRIMARY KEY (zone_id, code)
) STRICT;

-- The price of a parcel up to max_grams (inclusive); the lightest band that holds the parcel
-- applies, and a parcel heavier than every band cannot go by the method.
CREATE TABLE shipping_rates (
  zone_id      TEXT NOT NULL,
  code         TEXT NOT NULL,
  currency     TEXT NOT NULL CHECK (currency IN ('EUR', 'USD', 'GBP', 'JPY', 'KWD')),
  max_grams    INTEGER NOT NULL CHECK (max_grams > 0),
  amount_minor INTEGER NOT NULL CHECK (amount_minor >= 0),
  PRIMARY KEY (zone_id, code, currency, max_grams),
  FOREIGN KEY (zone_id, code) REFERENCES shipping_methods (zone_id, code)
) STRICT;

-- From this cart subtotal on, the method is free.
CREATE TABLE shipping_free_thresholds (
  zone_id         TEXT NOT NULL,
  code            TEXT NOT NULL,
  currency        TEXT NOT NULL CHECK (currency IN ('EUR', 'USD', 'GBP', 'JPY', 'KWD')),
  threshold_minor INTEGER NOT NULL CHECK (threshold_minor >= 0),
  PRIMARY KEY (zone_id, code, currency),
  FOREIGN KEY (zone_id, code) REFERENCES shipping_methods (zone_id, code)
) STRICT;
