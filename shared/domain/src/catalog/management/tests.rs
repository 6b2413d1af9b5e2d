use proptest::prelude::*;

use super::*;

#[test]
fn a_title_is_trimmed_plain_text_of_1_to_200_characters() {
    assert_eq!(
        Title::parse("  Linen shirt ").unwrap().as_str(),
        "Linen shirt"
    );
    assert_eq!(
        Title::parse(&"é".repeat(200))
            .unwrap()
            .as_str()
            .chars()
            .count(),
        200
    );
    for bad in ["", "   ", "tab\tinside", "rtl\u{202E}override"] {
        assert_eq!(
            Title::parse(bad).unwrap_err().code,
            "invalid_title",
            "{bad:?}"
        );
    }
    assert!(Title::parse(&"x".repeat(201)).is_err());
}

#[test]
fn a_handle_is_taken_as_written_only_when_it_is_one() {
    for good in ["tee", "linen-shirt-2", "a", "9-to-5"] {
        assert_eq!(Handle::parse(good).unwrap().as_str(), good);
    }
    for bad in [
        "",
        "Tee",
        "linen--shirt",
        "-tee",
        "tee-",
        "tee shirt",
        "t\u{e9}e",
        "tee_shirt",
    ] {
        assert_eq!(
            Handle::parse(bad).unwrap_err().code,
            "invalid_handle",
            "{bad:?}"
        );
    }
    assert!(Handle::parse(&"a".repeat(100)).is_ok());
    assert!(Handle::parse(&"a".repeat(101)).is_err());
}

#[test]
fn a_title_makes_its_handle_with_accents_and_case_folded() {
    let derive = |title: &str| Handle::derive(title).map(|h| h.as_str().to_owned());
    assert_eq!(
        derive("Crème Brûlée Mug").as_deref(),
        Some("creme-brulee-mug")
    );
    assert_eq!(
        derive("T-Shirt (Organic), 100% cotton!").as_deref(),
        Some("t-shirt-organic-100-cotton")
    );
    assert_eq!(
        derive("Straße & Smørrebrød Œuvre").as_deref(),
        Some("strasse-smorrebrod-oeuvre")
    );
    assert_eq!(derive("ＦＵＬＬ ｗｉｄｔｈ").as_deref(), Some("full-width"));
    assert_eq!(derive("  --  ").as_deref(), None);
    assert_eq!(
        derive("茶碗").as_deref(),
        None,
        "no Latin letter or digit: the merchant names it"
    );
    // Cut at a word break, never mid-word.
    let long = format!("{} tail", "word ".repeat(30));
    let handle = derive(&long).unwrap();
    assert!(
        handle.len() <= Handle::MAX_CHARS && handle.ends_with("word"),
        "{handle}"
    );
    // One word longer than a handle: its first letters.
    assert_eq!(derive(&"x".repeat(150)).unwrap().len(), Handle::MAX_CHARS);
}

#[test]
fn only_an_active_product_is_shown_and_statuses_read_back() {
    for status in ProductStatus::ALL {
        assert_eq!(ProductStatus::parse(status.as_str()).unwrap(), status);
        assert_eq!(status.is_visible(), status == ProductStatus::Active);
    }
    assert_eq!(
        ProductStatus::parse("deleted").unwrap_err().code,
        "invalid_status"
    );
}

#[test]
fn tags_keep_their_first_spelling_once_and_at_most_twenty() {
    let tags = |t: &[&str]| Tags::parse(&t.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
    assert_eq!(
        tags(&[" Linen", "linen", "Summer", "LINEN "])
            .unwrap()
            .as_slice(),
        ["Linen", "Summer"]
    );
    assert_eq!(
        tags(&[]).unwrap().as_slice(),
        Vec::<String>::new().as_slice()
    );
    let issue = tags(&["ok", "  "]).unwrap_err();
    assert_eq!(
        (issue.path.as_str(), issue.code),
        ("/tags/1", "invalid_tag")
    );
    assert!(tags(&[&"x".repeat(51)]).is_err());
    let many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
    assert_eq!(Tags::parse(&many).unwrap_err().code, "too_many_tags");
    assert!(Tags::parse(&many[..20]).is_ok());
}

#[test]
fn a_barcode_is_a_gtin_whose_check_digit_holds() {
    // Real barcodes: EAN-13, UPC-A (GTIN-12), EAN-8, GTIN-14.
    for good in [
        "4006381333931",
        "036000291452",
        "96385074",
        "10614141000415",
    ] {
        assert_eq!(Gtin::parse(good).unwrap().as_str(), good);
    }
    for bad in [
        "4006381333932",
        "03600029145",
        "abcdefgh",
        "",
        "400638133393a",
        "123456789012345",
    ] {
        assert_eq!(
            Gtin::parse(bad).unwrap_err().code,
            "invalid_barcode",
            "{bad:?}"
        );
    }
    assert_eq!(check_digit("400638133393"), Some(1));
    assert_eq!(check_digit("40063813339x"), None);
}

proptest! {
    /// Whatever a title says, the handle it makes is a handle, and making one again from that
    /// handle changes nothing.
    #[test]
    fn a_derived_handle_is_a_handle_and_derivation_is_idempotent(title in "\\PC{0,120}") {
        if let Some(handle) = Handle::derive(&title) {
            prop_assert_eq!(Handle::parse(handle.as_str()).unwrap(), handle.clone());
            prop_assert_eq!(Handle::derive(handle.as_str()).unwrap(), handle);
        }
    }

    /// Case and accents never change a handle.
    #[test]
    fn case_and_accents_do_not_change_a_handle(word in "[a-z]{1,12}( [a-z]{1,12}){0,4}") {
        let accented: String = word
            .chars()
            .map(|c| match c { 'a' => 'à', 'e' => 'É', 'o' => 'ö', 'u' => 'Ü', c => c.to_ascii_uppercase() })
            .collect();
        prop_assert_eq!(Handle::derive(&accented), Handle::derive(&word));
    }

    /// A GTIN's computed check digit always holds; changing any one digit breaks it.
    #[test]
    fn a_changed_digit_breaks_the_check(body in "[0-9]{12}", at in 0usize..13, by in 1u8..10) {
        let check = check_digit(&body).unwrap();
        let gtin = format!("{body}{check}");
        prop_assert!(Gtin::parse(&gtin).is_ok());
        let mut bytes = gtin.into_bytes();
        let d = bytes[at] - b'0';
        bytes[at] = b'0' + (d + by) % 10;
        let changed = String::from_utf8(bytes).unwrap();
        prop_assert!(Gtin::parse(&changed).is_err(), "{}", changed);
    }
}

mod changes {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::super::category::{self, CategoryPatch, NewCategory};
    use super::super::product::{self, NewProduct, ProductPatch, ProductRecord};
    use super::super::variant::{self, NewVariant, VariantPatch, VariantStatus};
    use super::super::{ProductStatus, Refusal};
    use crate::events::{EventKind, Payload};
    use crate::kernel::money::{Currency, Money};
    use crate::kernel::time::Timestamp;
    use crate::testing::SequentialIds;

    const T0: Timestamp = Timestamp::from_millis(1_800_000_000_000);
    const T1: Timestamp = Timestamp::from_millis(1_800_000_060_000);

    fn tee(options: &[&str]) -> ProductRecord {
        let input = NewProduct {
            title: "Crème Tee".into(),
            options: Some(options.iter().map(|o| (*o).to_owned()).collect()),
            ..NewProduct::default()
        };
        product::create(input, &SequentialIds::default(), T0)
            .unwrap()
            .product
    }

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_new_product_is_a_draft_at_version_one_with_its_handle_derived_and_announced() {
        let ids = SequentialIds::default();
        let change = product::create(
            NewProduct {
                title: "Crème Brûlée".into(),
                ..NewProduct::default()
            },
            &ids,
            T0,
        )
        .unwrap();
        assert_eq!(change.product.handle.as_str(), "creme-brulee");
        assert_eq!(change.product.status, ProductStatus::Draft);
        assert_eq!(change.product.version, 1);
        assert_eq!(
            change.product.etag(),
            format!("\"{}.v1\"", change.product.id)
        );
        let Payload::ProductCreated(created) = &change.event.payload else {
            panic!("{:?}", change.event.kind());
        };
        assert_eq!(
            (&created.product_id, created.version),
            (&change.product.id, 1)
        );
        let none = product::create(
            NewProduct {
                title: "???".into(),
                ..NewProduct::default()
            },
            &ids,
            T0,
        );
        assert_eq!(none.unwrap_err().code, "handle_required");
    }

    #[test]
    fn a_revision_moves_one_version_names_archiving_and_writes_nothing_when_nothing_changes() {
        let ids = SequentialIds::default();
        let tee = tee(&[]);
        let same = ProductPatch {
            title: Some(" Crème Tee ".into()),
            ..ProductPatch::default()
        };
        assert_eq!(tee.revise(same, &ids, T1).unwrap(), None);

        let renamed = tee
            .revise(
                ProductPatch {
                    title: Some("Cream Tee".into()),
                    seo_title: Some(Some("Cream".into())),
                    ..ProductPatch::default()
                },
                &ids,
                T1,
            )
            .unwrap()
            .unwrap();
        assert_eq!(renamed.product.version, 2);
        assert_eq!(renamed.product.updated_at, T1);
        assert_eq!(
            renamed.product.handle, tee.handle,
            "the handle changes only when given"
        );
        assert_eq!(renamed.event.kind(), EventKind::ProductUpdated);

        let cleared = renamed
            .product
            .revise(
                ProductPatch {
                    seo_title: Some(None),
                    status: Some("archived".into()),
                    ..ProductPatch::default()
                },
                &ids,
                T1,
            )
            .unwrap()
            .unwrap();
        assert_eq!(cleared.product.seo_title, None);
        assert_eq!(cleared.event.kind(), EventKind::ProductArchived);
        assert_eq!(
            tee.revise(
                ProductPatch {
                    status: Some("gone".into()),
                    ..ProductPatch::default()
                },
                &ids,
                T1
            )
            .unwrap_err()
            .code,
            "invalid_status"
        );
    }

    #[test]
    fn a_variant_names_one_value_per_option_and_is_not_added_to_an_archived_product() {
        let ids = SequentialIds::default();
        let tee = tee(&["size", "color"]);
        let input = |options: &[(&str, &str)]| NewVariant {
            sku: "TEE-M-BLACK".into(),
            options: values(options),
            prices: vec![
                Money::parse("25", Currency::Jpy).unwrap(),
                Money::parse("9.90", Currency::Eur).unwrap(),
            ],
            ..NewVariant::default()
        };
        let added =
            variant::add(&tee, input(&[("size", "M"), ("color", "black")]), &ids, T1).unwrap();
        assert_eq!(added.product_version, 2);
        assert_eq!(
            added
                .variant
                .prices
                .iter()
                .map(|p| p.currency())
                .collect::<Vec<_>>(),
            [Currency::Eur, Currency::Jpy],
            "prices are kept in currency order"
        );
        assert_eq!(added.event.kind(), EventKind::VariantCreated);
        for wrong in [&[("size", "M")][..], &[("size", "M"), ("colour", "black")]] {
            assert_eq!(
                variant::add(&tee, input(wrong), &ids, T1),
                Err(Refusal::Invalid(crate::kernel::contact::FieldIssue::new(
                    "/options",
                    "options_mismatch",
                    "a variant of this product names one value for each of its options: size, color",
                )))
            );
        }
        let mut archived = tee.clone();
        archived.status = ProductStatus::Archived;
        assert_eq!(
            variant::add(
                &archived,
                input(&[("size", "M"), ("color", "black")]),
                &ids,
                T1
            ),
            Err(Refusal::ProductArchived)
        );

        let archiving = added
            .variant
            .revise(
                &tee,
                VariantPatch {
                    status: Some("archived".into()),
                    ..VariantPatch::default()
                },
                &ids,
                T1,
            )
            .unwrap()
            .unwrap();
        assert_eq!(archiving.variant.status, VariantStatus::Archived);
        assert_eq!(archiving.event.kind(), EventKind::VariantArchived);
        assert_eq!(
            added
                .variant
                .revise(&tee, VariantPatch::default(), &ids, T1)
                .unwrap(),
            None
        );
    }

    #[test]
    fn a_category_derives_its_handle_and_is_never_its_own_parent() {
        let ids = SequentialIds::default();
        let made = category::create(
            NewCategory {
                name: "Outdoor Gear".into(),
                ..NewCategory::default()
            },
            &ids,
            T0,
        )
        .unwrap();
        assert_eq!(made.category.handle.as_str(), "outdoor-gear");
        assert_eq!(made.event.kind(), EventKind::CategoryCreated);
        let own = CategoryPatch {
            parent_id: Some(Some(made.category.id.to_string())),
            ..CategoryPatch::default()
        };
        assert_eq!(
            made.category.revise(own, &ids, T1).unwrap_err().code,
            "category_cycle"
        );
        let root = CategoryPatch {
            parent_id: Some(None),
            ..CategoryPatch::default()
        };
        assert_eq!(made.category.revise(root, &ids, T1).unwrap(), None);
    }

    proptest! {
        /// Whatever patches come, each revision that changes the product is exactly one version
        /// on and one event, and one that changes nothing is neither.
        #[test]
        fn every_change_is_one_version_and_one_event(
            patches in proptest::collection::vec(
                (
                    proptest::option::of(prop_oneof!["Tee", "Cream Tee", "Crème"]),
                    proptest::option::of(prop_oneof!["draft", "active", "archived"]),
                    proptest::option::of(proptest::collection::vec(prop_oneof!["a", "b", "A"], 0..3)),
                ),
                1..12,
            )
        ) {
            let ids = SequentialIds::default();
            let mut current = tee(&[]);
            for (title, status, tags) in patches {
                let patch = ProductPatch {
                    title,
                    status,
                    tags,
                    ..ProductPatch::default()
                };
                match current.revise(patch, &ids, T1).unwrap() {
                    None => {}
                    Some(change) => {
                        prop_assert_eq!(change.product.version, current.version + 1);
                        prop_assert_ne!(&change.product, &current);
                        let archived = change.product.status == ProductStatus::Archived
                            && current.status != ProductStatus::Archived;
                        prop_assert_eq!(
                            change.event.kind(),
                            if archived { EventKind::ProductArchived } else { EventKind::ProductUpdated }
                        );
                        current = change.product;
                    }
                }
            }
        }
    }
}

mod images {
    use super::super::image::{inspect, ImageHash, ImageKind, ImageRefusal, MAX_IMAGE_BYTES};

    fn be32(n: u32) -> [u8; 4] {
        n.to_be_bytes()
    }

    /// The smallest files of each accepted type whose headers say `w` × `h`.
    fn sample(kind: ImageKind, w: u32, h: u32) -> Vec<u8> {
        let mut out = Vec::new();
        match kind {
            ImageKind::Png => {
                out.extend([0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]);
                out.extend(be32(13));
                out.extend(b"IHDR");
                out.extend(be32(w));
                out.extend(be32(h));
                out.extend([8, 2, 0, 0, 0, 0, 0, 0, 0]);
            }
            ImageKind::Gif => {
                out.extend(b"GIF89a");
                out.extend((w as u16).to_le_bytes());
                out.extend((h as u16).to_le_bytes());
                out.extend([0, 0, 0, 0x3b]);
            }
            ImageKind::Jpeg => {
                out.extend([0xff, 0xd8, 0xff, 0xe0, 0, 16]);
                out.extend(b"JFIF\0");
                out.extend([1, 1, 0, 0, 1, 0, 1, 0, 0, 0xff, 0xc0, 0, 17, 8]);
                out.extend((h as u16).to_be_bytes());
                out.extend((w as u16).to_be_bytes());
                out.extend([3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1, 0xff, 0xd9]);
            }
            ImageKind::Webp => {
                out.extend(b"RIFF");
                out.extend(22u32.to_le_bytes());
                out.extend(b"WEBPVP8X");
                out.extend(10u32.to_le_bytes());
                out.extend([0, 0, 0, 0]);
                out.extend(&(w - 1).to_le_bytes()[..3]);
                out.extend(&(h - 1).to_le_bytes()[..3]);
            }
            ImageKind::Avif => {
                out.extend(be32(20));
                out.extend(b"ftypavif");
                out.extend([0, 0, 0, 0]);
                out.extend(b"avif");
                out.extend(be32(48));
                out.extend(b"meta");
                out.extend([0, 0, 0, 0]);
                out.extend(be32(36));
                out.extend(b"iprp");
                out.extend(be32(28));
                out.extend(b"ipco");
                out.extend(be32(20));
                out.extend(b"ispe");
                out.extend([0, 0, 0, 0]);
                out.extend(be32(w));
                out.extend(be32(h));
            }
        }
        out
    }

    #[test]
    fn the_type_comes_from_the_bytes_and_the_size_from_the_header() {
        for kind in [
            ImageKind::Jpeg,
            ImageKind::Png,
            ImageKind::Webp,
            ImageKind::Avif,
            ImageKind::Gif,
        ] {
            let bytes = sample(kind, 640, 480);
            let facts = inspect(&bytes).unwrap_or_else(|e| panic!("{kind:?}: {e:?}"));
            assert_eq!(
                (facts.kind, facts.width, facts.height),
                (kind, 640, 480),
                "{kind:?}"
            );
            assert_eq!(facts.hash, ImageHash::of(&bytes));
            assert_eq!(facts.bytes, bytes.len() as u64);
        }
    }

    #[test]
    fn anything_else_is_refused_whatever_it_is_called() {
        let exe =
            b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00 this program".to_vec();
        assert_eq!(inspect(&exe), Err(ImageRefusal::UnsupportedType));
        assert_eq!(inspect(b""), Err(ImageRefusal::UnsupportedType));
        let mut heic = sample(ImageKind::Avif, 10, 10);
        heic[8..12].copy_from_slice(b"heic");
        assert_eq!(inspect(&heic), Err(ImageRefusal::UnsupportedType));
        let cut = &sample(ImageKind::Png, 10, 10)[..12];
        assert_eq!(inspect(cut), Err(ImageRefusal::Unreadable));
        assert_eq!(
            inspect(&vec![0; MAX_IMAGE_BYTES + 1]),
            Err(ImageRefusal::TooLarge)
        );
        assert_eq!(
            ImageHash::parse(&"a".repeat(64)).map(|h| h.etag()),
            Some(format!("\"{}\"", "a".repeat(64)))
        );
        assert_eq!(ImageHash::parse("A"), None);
    }
}
