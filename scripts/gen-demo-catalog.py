#!/usr/bin/env python3
"""Writes schema/seed/demo_catalog.sql: the demo catalog that scripts/dev loads once.

Deterministic (no randomness): run it again after editing the tables below.
Prices are integer minor units: EUR/USD/GBP cents, JPY yen (0 digits), KWD fils (3 digits).
"""
import json
import pathlib

CREATED_AT = 1_790_000_000_000  # fixed, so the file is stable

# (category, base name, EUR cents, option axes)
FAMILIES = [
    ("t-shirts", ["Classic Tee", "Pocket Tee", "Striped Tee", "Organic Tee", "Heavyweight Tee",
                  "Raglan Tee", "Long Sleeve Tee", "Graphic Tee"], 1999,
     {"size": ["S", "M", "L", "XL"], "color": ["black", "white"]}),
    ("hoodies", ["Zip Hoodie", "Pullover Hoodie", "Fleece Hoodie", "Tech Hoodie", "Cropped Hoodie"],
     5499, {"size": ["S", "M", "L"], "color": ["grey", "navy"]}),
    ("mugs", ["Enamel Mug", "Stoneware Mug", "Travel Mug", "Espresso Cup", "Tall Latte Mug",
              "Camp Mug"], 1250, {"color": ["white", "black", "sage"]}),
    ("posters", ["Mountain Poster", "City Map Poster", "Botanical Poster", "Retro Space Poster",
                 "Typography Poster", "Wave Poster"], 2400, {"format": ["A3", "A2"]}),
    ("stickers", ["Logo Sticker Pack", "Holo Sticker", "Laptop Sticker Set", "Vinyl Decal",
                  "Glow Sticker"], 399, {}),
    ("socks", ["Crew Socks", "Ankle Socks", "Wool Hiking Socks", "Striped Socks", "Compression Socks"],
     1100, {"size": ["S-M", "L-XL"]}),
    ("caps", ["Dad Cap", "Snapback", "Beanie", "Bucket Hat", "Trucker Cap"], 2599,
     {"color": ["black", "olive", "sand"]}),
    ("notebooks", ["Dot Grid Notebook", "Lined Notebook", "Sketchbook", "Pocket Notebook",
                   "Planner 2027", "Recipe Journal"], 1499, {"paper": ["plain", "recycled"]}),
]

# Grams per unit, by category (shipping quotes weigh the cart).
WEIGHTS = {"t-shirts": 180, "hoodies": 650, "mugs": 400, "posters": 250, "stickers": 20,
           "socks": 80, "caps": 120, "notebooks": 300}

# Shipping zones: (id, name, countries; '*' is anywhere else).
ZONES = [
    ("eu", "Domestic EU", ["NL", "BE", "LU", "DE", "FR", "AT", "IT", "ES", "PT", "IE", "DK", "SE",
                           "FI", "PL", "CZ", "SK", "SI", "HR", "HU", "RO", "BG", "GR", "EE", "LV",
                           "LT", "CY", "MT"]),
    ("europe", "Rest of Europe", ["GB", "CH", "NO", "IS", "LI"]),
    ("us", "United States", ["US"]),
    ("world", "Rest of world", ["*"]),
]
# Per zone: (code, name, carrier, min days, max days, EUR cents per weight band, free from EUR cents).
BANDS = [500, 2000, 10000]  # grams, inclusive
METHODS = {
    "eu": [("standard", "Standard", "postnl", 1, 3, [490, 695, 1295], 5000),
           ("express", "Express", "dhl", 1, 1, [1200, 1500, 2400], None)],
    "europe": [("standard", "Standard", "postnl", 3, 6, [990, 1490, 2490], 10000),
               ("express", "Express", "dhl", 1, 3, [2200, 2900, 4500], None)],
    "us": [("standard", "Standard", "usps", 5, 9, [1490, 2190, 3990], 15000),
           ("express", "Express", "ups", 2, 4, [3200, 4200, 6900], None)],
    "world": [("standard", "Standard", "postnl", 7, 21, [1990, 2990, 5490], None),
              ("express", "Express", "dhl", 3, 6, [4500, 5900, 9900], None)],
}


def in_currencies(cents):
    """EUR cents in every currency, as the demo prices convert them."""
    return {
        "EUR": cents,
        "USD": cents * USD_PER_EUR[0] // USD_PER_EUR[1],
        "GBP": cents * GBP_PER_EUR[0] // GBP_PER_EUR[1],
        "JPY": cents * JPY_PER_EUR // 100 // 10 * 10,
        "KWD": cents * KWD_FILS_PER_EUR_CENT // 10 * 10,
    }


USD_PER_EUR = (108, 100)
GBP_PER_EUR = (86, 100)
JPY_PER_EUR = 165  # yen per euro
KWD_FILS_PER_EUR_CENT = 3  # 1 EUR ~ 0.33 KWD -> 3.3 fils per cent, rounded down


def slug(text):
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-").replace("--", "-")


def sku_code(text):
    return "".join(c for c in text.upper() if c.isalnum())[:10]


def combos(axes):
    items = [{}]
    for axis, values in axes.items():
        items = [dict(item, **{axis: v}) for item in items for v in values]
    return items


def q(text):
    return "'" + text.replace("'", "''") + "'"


def main():
    products, variants, prices, stock, categories = [], [], [], [], []
    n = 0
    for position, (category, names, base_cents, axes) in enumerate(FAMILIES):
        title = category.replace("-", " ").capitalize().replace("T shirts", "T-shirts")
        categories.append(f"({q('cat_' + category)}, {q(category)}, {q(title)}, {position}, "
                          f"{CREATED_AT}, {CREATED_AT})")
        for i, name in enumerate(names):
            n += 1
            pid = f"prod_{slug(name)}"
            eur = base_cents + 100 * (i % 3)
            products.append(
                f"({q(pid)}, {q(slug(name))}, {q(name)}, "
                f"{q(f'{name}: part of the demo {category} range.')}, 'active', "
                f"{q('cat_' + category)}, {q(json.dumps(list(axes)))}, "
                f"{CREATED_AT + n}, {CREATED_AT + n})")
            for pos, options in enumerate(combos(axes)):
                sku = "-".join([sku_code(name)] + [sku_code(v) for v in options.values()])
                variants.append(f"({q(sku)}, {q(pid)}, {q(json.dumps(options, sort_keys=True))}, {pos}, "
                                f"{WEIGHTS[category]})")
                cents = eur + (200 if options.get("size") == "XL" or options.get("format") == "A2" else 0)
                usd = (cents * USD_PER_EUR[0] // USD_PER_EUR[1]) // 10 * 10 + 9
                prices.append(f"({q(sku)}, 'EUR', {cents})")
                prices.append(f"({q(sku)}, 'USD', {usd})")
                prices.append(f"({q(sku)}, 'JPY', {cents * JPY_PER_EUR // 100 // 10 * 10})")
                if category in ("t-shirts", "mugs", "posters"):
                    prices.append(f"({q(sku)}, 'GBP', {cents * GBP_PER_EUR[0] // GBP_PER_EUR[1]})")
                if category in ("hoodies", "caps"):
                    prices.append(f"({q(sku)}, 'KWD', {cents * KWD_FILS_PER_EUR_CENT})")
                # Deterministic spread: mostly in stock, some low, some sold out.
                k = (n * 7 + pos * 3) % 20
                on_hand = 0 if k == 0 else (3 if k in (1, 2) else 20 + k * 5)
                stock.append(f"({q(sku)}, {on_hand}, 0, 5)")

    out = ["-- Demo catalog, generated by scripts/gen-demo-catalog.py. Do not edit by hand.",
           f"-- {len(products)} products, {len(variants)} variants.",
           "INSERT INTO categories (id, handle, name, position, created_at, updated_at) VALUES",
           ",\n".join(categories) + ";",
           "INSERT INTO products (id, handle, name, description, status, category_id, options, "
           "created_at, updated_at) VALUES",
           ",\n".join(products) + ";",
           "INSERT INTO variants (sku, product_id, options, position, weight_grams) VALUES",
           ",\n".join(variants) + ";",
           "INSERT INTO prices (sku, currency, amount_minor) VALUES",
           ",\n".join(prices) + ";",
           "INSERT INTO inventory (sku, on_hand, reserved, low_threshold) VALUES",
           ",\n".join(stock) + ";"]
    zones, areas, methods, rates, free = [], [], [], [], []
    for zone, name, countries in ZONES:
        zones.append(f"({q(zone)}, {q(name)})")
        areas.extend(f"({q(zone)}, {q(c)}, '')" for c in countries)
        for code, mname, carrier, lo, hi, band_cents, free_cents in METHODS[zone]:
            methods.append(f"({q(zone)}, {q(code)}, {q(mname)}, {q(carrier)}, {lo}, {hi})")
            for grams, cents in zip(BANDS, band_cents):
                for currency, minor in in_currencies(cents).items():
                    rates.append(f"({q(zone)}, {q(code)}, '{currency}', {grams}, {minor})")
            if free_cents is not None:
                for currency, minor in in_currencies(free_cents).items():
                    free.append(f"({q(zone)}, {q(code)}, '{currency}', {minor})")
    out += ["INSERT INTO shipping_zones (id, name) VALUES", ",\n".join(zones) + ";",
            "INSERT INTO shipping_zone_areas (zone_id, country, postcode_prefix) VALUES",
            ",\n".join(areas) + ";",
            "INSERT INTO shipping_methods (zone_id, code, name, carrier, min_days, max_days) VALUES",
            ",\n".join(methods) + ";",
            "INSERT INTO shipping_rates (zone_id, code, currency, max_grams, amount_minor) VALUES",
            ",\n".join(rates) + ";",
            "INSERT INTO shipping_free_thresholds (zone_id, code, currency, threshold_minor) VALUES",
            ",\n".join(free) + ";", ""]
    path = pathlib.Path(__file__).resolve().parent.parent / "schema" / "seed" / "demo_catalog.sql"
    path.write_text("\n".join(out))
    print(f"wrote {path}: {len(products)} products, {len(variants)} variants")


if __name__ == "__main__":
    main()
