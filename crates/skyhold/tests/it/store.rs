//! The store on its own, on the backend under test: reconciliation writes
//! only what changed; keyset pages are complete and disjoint.

use crate::harness::*;
use skyhold_core::search::{Search, Term, TermKind};
use skyhold_core::{AccountName, ObservedResource, ResourceKind, ResourceQuery, SortKey};
use skyhold_store::Store;

/// A search of plain words, built directly (no parsing).
fn words_search(words: &[String]) -> Search {
    Search {
        terms: words
            .iter()
            .map(|w| Term {
                negated: false,
                kind: TermKind::Word(w.clone()),
            })
            .collect(),
    }
}

fn instance(id: &str, name: &str, state: &str, launched: i64) -> ObservedResource {
    let mut o = ObservedResource::new(ResourceKind::Instance, id);
    o.name = name.to_owned();
    o.state = state.to_owned();
    o.rtype = if launched % 2 == 0 {
        "t3.micro"
    } else {
        "m5.large"
    }
    .to_owned();
    o.created_at = Some(launched);
    o.private_ip = format!("10.0.{}.{}", launched % 7, launched % 250);
    o.tags.insert("Name".into(), name.to_owned());
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_writes_only_changes() {
    let db = TestDb::new().await;
    let store = Store::connect(&db.url).await.unwrap();
    let acct = AccountName::parse("acme").unwrap();
    let mut listing: Vec<ObservedResource> = (0..50)
        .map(|i| instance(&format!("i-{i:03}"), &format!("n{i}"), "running", i))
        .collect();

    let s = store
        .apply_listing(&acct, "r-1", ResourceKind::Instance, &listing, 1_000)
        .await
        .unwrap();
    assert_eq!((s.inserted, s.updated, s.tombstoned), (50, 0, 0));
    let s = store
        .apply_listing(&acct, "r-1", ResourceKind::Instance, &listing, 2_000)
        .await
        .unwrap();
    assert_eq!(
        (s.written(), s.unchanged),
        (0, 50),
        "an unchanged listing writes nothing"
    );

    listing[3].state = "stopped".into();
    listing.remove(7);
    let s = store
        .apply_listing(&acct, "r-1", ResourceKind::Instance, &listing, 3_000)
        .await
        .unwrap();
    assert_eq!(
        (s.inserted, s.updated, s.tombstoned, s.unchanged),
        (0, 1, 1, 48)
    );

    // The same ids in another region are other resources.
    let s = store
        .apply_listing(&acct, "r-2", ResourceKind::Instance, &listing[..5], 3_000)
        .await
        .unwrap();
    assert_eq!(s.inserted, 5);

    let q = ResourceQuery {
        kind: Some(ResourceKind::Instance),
        regions: vec!["r-1".into()],
        ..Default::default()
    };
    assert_eq!(store.count_resources(&q, 1000).await.unwrap(), 49);
    let q = ResourceQuery {
        include_deleted: true,
        ..q
    };
    assert_eq!(store.count_resources(&q, 1000).await.unwrap(), 50);

    // Counts stop at the cap (plus one, to tell "more than").
    assert_eq!(store.count_resources(&q, 10).await.unwrap(), 11);

    // It comes back: the tombstone is lifted.
    listing.push(instance("i-007", "n7", "running", 7));
    let s = store
        .apply_listing(&acct, "r-1", ResourceKind::Instance, &listing, 4_000)
        .await
        .unwrap();
    assert_eq!(s.updated, 1);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyset_pages_are_complete_for_every_sort() {
    let db = TestDb::new().await;
    let store = Store::connect(&db.url).await.unwrap();
    let acct = AccountName::parse("acme").unwrap();
    // Duplicate names and launch times, so ties must be broken by id.
    let listing: Vec<ObservedResource> = (0..230)
        .map(|i| {
            instance(
                &format!("i-{i:04}"),
                &format!("node-{}", i % 13),
                ["running", "stopped"][i as usize % 2],
                i % 17,
            )
        })
        .collect();
    store
        .apply_listing(&acct, "r-1", ResourceKind::Instance, &listing, 1)
        .await
        .unwrap();
    // Free text: a long word (trigram index on SQLite) and a short one (LIKE).
    let expected = (0..230)
        .filter(|i| [1, 10, 11, 12].contains(&(i % 13)))
        .count() as i64;
    for words in [
        vec!["node-1".to_owned()],
        vec!["-1".to_owned()],
        vec!["NODE-1".to_lowercase(), "node".to_owned()],
    ] {
        let q = ResourceQuery {
            kind: Some(ResourceKind::Instance),
            search: words_search(&words),
            ..Default::default()
        };
        assert_eq!(
            store.count_resources(&q, 1000).await.unwrap(),
            expected,
            "{words:?}"
        );
        assert_eq!(
            store.list_resources(&q).await.unwrap().items.len() as i64,
            expected.min(100)
        );
    }
    let q = ResourceQuery {
        kind: Some(ResourceKind::Instance),
        search: words_search(&["node-1\"x".to_owned()]),
        ..Default::default()
    };
    assert_eq!(
        store.count_resources(&q, 1000).await.unwrap(),
        0,
        "quotes in a word are data, not syntax"
    );
    for sort in SortKey::ALL {
        for descending in [false, true] {
            let mut q = ResourceQuery {
                kind: Some(ResourceKind::Instance),
                sort,
                descending,
                limit: 37,
                ..Default::default()
            };
            let mut ids = Vec::new();
            loop {
                let page = store.list_resources(&q).await.unwrap();
                ids.extend(page.items.iter().map(|r| r.id.0));
                match page.next_cursor {
                    Some(c) => q.cursor = Some(c),
                    None => break,
                }
            }
            let n = ids.len();
            ids.sort();
            ids.dedup();
            assert_eq!(
                (n, ids.len()),
                (230, 230),
                "sort {sort:?} desc={descending}"
            );
        }
    }
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_text_pages_are_complete_for_rare_and_common_words() {
    let db = TestDb::new().await;
    let store = Store::connect(&db.url).await.unwrap();
    let acct = AccountName::parse("acme").unwrap();
    // 2,100 "common" rows (more than SQLite's drive-from-FTS threshold) and 40 rare ones.
    let mut listing: Vec<ObservedResource> = (0..2100)
        .map(|i| instance(&format!("i-c{i:05}"), &format!("common-{i}"), "running", i))
        .collect();
    listing.extend(
        (0..40).map(|i| instance(&format!("i-r{i:05}"), &format!("rare-{i}"), "running", i)),
    );
    store
        .apply_listing(&acct, "r-1", ResourceKind::Instance, &listing, 1)
        .await
        .unwrap();
    // (negated?, word) terms, and how many rows match them all.
    let cases: [(&[(bool, &str)], usize); 5] = [
        (&[(false, "common")], 2100),
        (&[(false, "rare-")], 40),
        (&[(false, "mmon-20")], 111),
        (&[(false, "zzz-none")], 0),
        (&[(false, "common"), (true, "mmon-20")], 1989),
    ];
    // Name order, plain words: PostgreSQL's index walk; the other sorts and
    // the kind-less form take the general paths. Small pages make the walk
    // fill several pages through cursors.
    for (terms, expected) in cases {
        for (sort, descending, kind, limit) in [
            (
                SortKey::LaunchTime,
                false,
                Some(ResourceKind::Instance),
                700,
            ),
            (SortKey::Name, false, Some(ResourceKind::Instance), 50),
            (SortKey::Name, true, Some(ResourceKind::Instance), 700),
            (SortKey::Name, false, None, 700),
            (SortKey::Name, true, None, 50),
        ] {
            let label = format!("{terms:?} {sort:?} desc={descending} kind={kind:?} limit={limit}");
            let mut q = ResourceQuery {
                kind,
                search: Search {
                    terms: terms
                        .iter()
                        .map(|(negated, w)| Term {
                            negated: *negated,
                            kind: TermKind::Word((*w).to_owned()),
                        })
                        .collect(),
                },
                limit,
                sort,
                descending,
                ..Default::default()
            };
            assert_eq!(
                store.count_resources(&q, 5000).await.unwrap(),
                expected as i64,
                "{label}"
            );
            let mut seen = Vec::new();
            loop {
                let page = store.list_resources(&q).await.unwrap();
                assert!(
                    page.items.iter().all(|r| terms.iter().all(|(neg, w)| r
                        .observed
                        .name
                        .contains(w)
                        != *neg)),
                    "{label}"
                );
                seen.extend(page.items.iter().map(|r| (r.observed.name.clone(), r.id.0)));
                match page.next_cursor {
                    Some(c) => q.cursor = Some(c),
                    None => break,
                }
            }
            if sort == SortKey::Name {
                let mut ordered = seen.clone();
                ordered.sort();
                if descending {
                    ordered.reverse();
                }
                assert!(seen == ordered, "pages in name order: {label}");
            }
            let n = seen.len();
            seen.sort();
            seen.dedup();
            assert_eq!((n, seen.len()), (expected, expected), "{label}");
        }
    }
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn common_words_late_in_name_order_and_capped_counts_are_exact() {
    let db = TestDb::new().await;
    let store = Store::connect(&db.url).await.unwrap();
    let acct = AccountName::parse("acme").unwrap();
    // 700 rows that do not match, first in name order, then 2,050 that do
    // (more than PostgreSQL's rare-word threshold), the last 30 stopped.
    let mut listing: Vec<ObservedResource> = (0..700)
        .map(|i| {
            instance(
                &format!("i-a{i:05}"),
                &format!("alpha-{i:04}"),
                "running",
                i,
            )
        })
        .collect();
    listing.extend((0..2050).map(|i| {
        let state = if i >= 2020 { "stopped" } else { "running" };
        instance(&format!("i-z{i:05}"), &format!("zword-{i}"), state, i)
    }));
    store
        .apply_listing(&acct, "r-1", ResourceKind::Instance, &listing, 1)
        .await
        .unwrap();
    let query = |q: &str, limit: u32| {
        let mut q = ResourceQuery::from_pairs([("q", q)]).unwrap();
        q.limit = limit;
        q
    };
    // Pages of 10: PostgreSQL's short name walk (550 entries) finds no
    // match, the word is common, so the walk goes on to the matches.
    for kind in [None, Some(ResourceKind::Instance)] {
        let mut q = query("zword", 10);
        q.kind = kind;
        let mut seen = Vec::new();
        loop {
            let page = store.list_resources(&q).await.unwrap();
            seen.extend(page.items.iter().map(|r| r.observed.name.clone()));
            match page.next_cursor {
                Some(c) => q.cursor = Some(c),
                None => break,
            }
        }
        let mut expected: Vec<String> = (0..2050).map(|i| format!("zword-{i}")).collect();
        expected.sort();
        assert_eq!(seen, expected, "kind {kind:?}");
    }
    // Counts up to a cap, whichever way they are made: a cap reached late
    // in name order, an exact count under the cap, rare words, a filter
    // whose matches are few and last.
    for (q, cap, expected) in [
        ("zword", 5, 6),
        ("zword", 5000, 2050),
        ("zword-7", 50, 51),
        ("zword-7", 5000, 111),
        ("state:stopped", 5, 6),
        ("state:stopped", 5000, 30),
        ("zword state:stopped", 5000, 30),
        ("-zword", 5000, 700),
        ("nothing-matches", 5, 0),
    ] {
        for kind in [None, Some(ResourceKind::Instance)] {
            let mut query = query(q, 100);
            query.kind = kind;
            assert_eq!(
                store.count_resources(&query, cap).await.unwrap(),
                expected,
                "{q} cap {cap} kind {kind:?}"
            );
        }
    }
    store.close().await;
}
