//! Property tests over everything that parses what the network or the user hands in: the
//! JSON:API parsers, error bodies, timestamps and the name encoding. They must
//! never panic, and what they return must keep their promises. CI runs the default number of
//! cases; `scripts/fuzz` runs many more (PROPTEST_CASES).

use apsfs::api::error::error_detail;
use apsfs::api::resource::{ContentsPage, Object};
use apsfs::api::types::{
    buckets_page, contents_page, objects_page, parse_time, refs_page, versions_page, Entry,
};
use apsfs::fs::names::{encode, unique_names, Candidate, NAME_MAX};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Arbitrary JSON, biased towards the shapes the parsers look at.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,20}".prop_map(Value::from),
        prop_oneof![
            Just("folders"),
            Just("items"),
            Just("versions"),
            Just("2020-01-01T00:00:00Z")
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("type".to_string()),
                        Just("id".to_string()),
                        Just("attributes".to_string()),
                        Just("relationships".to_string()),
                        Just("name".to_string()),
                        Just("storageSize".to_string()),
                        Just("tip".to_string()),
                        Just("data".to_string()),
                        Just("included".to_string()),
                        "[a-zA-Z]{1,8}",
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A listing page with the right skeleton and arbitrary contents inside it.
fn listing_page() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(any_json(), 0..8),
        prop::collection::vec(any_json(), 0..8),
    )
        .prop_map(|(data, included)| json!({ "data": data, "included": included }))
}

fn valid_component(n: &str) -> bool {
    !n.is_empty() && n != "." && n != ".." && !n.contains(['/', '\0']) && n.len() <= NAME_MAX
}

proptest! {
    #[test]
    fn contents_parser_never_panics(doc in prop_oneof![any_json(), listing_page()]) {
        // As the client reads a listing page: from its bytes, the page as an `Object`.
        let bytes = serde_json::to_vec(&doc).unwrap();
        let page: Result<Object<ContentsPage>, _> = serde_json::from_slice(&bytes);
        if let Ok(entries) = page.map_err(|e| e.to_string()).and_then(|p| contents_page(&p.0)) {
            for e in entries {
                match e {
                    Entry::Folder(f) => {
                        // A folder is only ever a `folders` resource of `data` with that id.
                        let data = doc["data"].as_array().cloned().unwrap_or_default();
                        prop_assert!(data.iter().any(|r| r["type"] == "folders" && r["id"] == json!(f.id)));
                    }
                    Entry::Item(i) => {
                        if let Some(tip) = i.tip {
                            // A tip is only ever one of the included versions.
                            let included = doc["included"].as_array().cloned().unwrap_or_default();
                            prop_assert!(included.iter().any(|v| v["id"] == json!(tip.id)));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn version_ref_and_bucket_parsers_never_panic(doc in prop_oneof![any_json(), listing_page()]) {
        if let Ok(versions) = versions_page(&doc) {
            let data = doc["data"].as_array().cloned().unwrap_or_default();
            for v in versions {
                prop_assert!(data.iter().any(|r| r["type"] == "versions" && r["id"] == json!(v.id)));
            }
        }
        let _ = refs_page(&doc);
        for items in [json!({"items": doc.clone()}), json!({"items": [doc.clone()]}), doc.clone()] {
            if let Ok(objects) = objects_page(&items) {
                for o in objects {
                    prop_assert!(!o.key.is_empty() || items.to_string().contains("\"objectKey\":\"\""));
                }
            }
            let _ = buckets_page(&items);
        }
    }

    #[test]
    fn error_bodies_and_times_never_panic(body in prop::collection::vec(any::<u8>(), 0..400), t in ".{0,40}") {
        let d = error_detail(&body);
        prop_assert!(d.chars().count() <= 201);
        let _ = parse_time(&t);
    }

    #[test]
    fn every_name_becomes_a_valid_component(raw in prop_oneof![".{0,300}", "[./\\x00a%]{0,6}", "\\PC{250,300}"]) {
        let e = encode(&raw);
        prop_assert!(valid_component(&e), "{e:?}");
        prop_assert_eq!(&encode(&raw), &e);
        if valid_component(&raw) {
            prop_assert_eq!(&e, &raw, "ordinary names are shown as they are");
        }
    }

    #[test]
    fn names_in_a_folder_are_unique(raws in prop::collection::vec(prop_oneof![Just("a".to_string()), Just("a/b".to_string()), Just("a%2Fb".to_string()), Just(".".to_string()), ".{0,12}"], 0..12)) {
        let ids: Vec<String> = (0..raws.len()).map(|i| format!("id-{i}")).collect();
        let cands: Vec<Candidate> = raws
            .iter()
            .zip(&ids)
            .map(|(r, id)| Candidate { raw: r, id, is_dir: id.ends_with('3'), created: None })
            .collect();
        let names = unique_names(&cands);
        let set: std::collections::HashSet<&String> = names.iter().collect();
        prop_assert_eq!(set.len(), names.len());
        for n in &names {
            prop_assert!(valid_component(n), "{n:?}");
        }
    }
}
