//! Quotas and blueprints in the store, on the backend under test: usage
//! from the inventory plus reservations, defaults and overrides, a
//! check-and-reserve that concurrent launches cannot overshoot, and
//! blueprint versions that never change once written.

use crate::harness::*;
use skyhold_core::audit::AuditDraft;
use skyhold_core::blueprint::{BlueprintSpec, KeyMode};
use skyhold_core::quota::{Amount, Dimension, Limits, QuotaSubject};
use skyhold_core::{AccountName, ObservedResource, ResourceKind};
use skyhold_store::{QuotaScope, Store, StoreError};
use std::collections::BTreeMap;

fn owned(id: &str, owner: &str, rtype: &str, state: &str) -> ObservedResource {
    let mut o = ObservedResource::new(ResourceKind::Instance, id);
    o.name = id.to_owned();
    o.state = state.to_owned();
    o.rtype = rtype.to_owned();
    o.owner = owner.to_owned();
    o
}

fn volume(id: &str, owner: &str, gib: i64) -> ObservedResource {
    let mut o = ObservedResource::new(ResourceKind::Volume, id);
    o.state = "in-use".into();
    o.owner = owner.to_owned();
    o.size_gib = gib;
    o
}

fn user_scope(name: &str) -> QuotaScope {
    QuotaScope {
        subject: QuotaSubject::User(name.into()),
        fallback: QuotaSubject::DefaultUser,
        owners: vec![name.into()],
    }
}

fn one_micro() -> Amount {
    Amount::of_instances("t3.micro", 1, 8).unwrap()
}

fn limits(instances: Option<u64>, vcpus: Option<u64>) -> Limits {
    Limits {
        instances,
        vcpus,
        ..Default::default()
    }
}

/// ann: 3 instances not stopped (6 vCPUs, 10 GiB of memory) and 108 GiB
/// of volumes; bob and group:dev one instance each.
fn seeded_instances() -> Vec<ObservedResource> {
    vec![
        owned("i-1", "ann", "t3.micro", "running"),
        owned("i-2", "ann", "m5.large", "pending"),
        owned("i-3", "Ann", "t3.micro", "running"),
        owned("i-4", "ann", "t3.micro", "stopped"),
        owned("i-5", "bob", "t3.micro", "running"),
        owned("i-6", "group:dev", "t3.micro", "running"),
    ]
}

async fn seeded() -> (TestDb, Store) {
    let db = TestDb::new().await;
    let store = Store::connect(&db.url).await.unwrap();
    let acct = AccountName::parse("acme").unwrap();
    store
        .apply_listing(
            &acct,
            "us-east-1",
            ResourceKind::Instance,
            &seeded_instances(),
            1_000,
        )
        .await
        .unwrap();
    let volumes = vec![volume("vol-1", "ann", 8), volume("vol-2", "ann", 100)];
    store
        .apply_listing(&acct, "us-east-1", ResourceKind::Volume, &volumes, 1_000)
        .await
        .unwrap();
    (db, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_counts_running_owned_capacity_and_defaults_apply_until_overridden() {
    let (_db, store) = seeded().await;
    let d = AuditDraft::default();
    // No quota at all: unlimited, nothing counted.
    let u = store
        .quota_usage(&[user_scope("ann")], 2_000)
        .await
        .unwrap();
    assert!(u[0].limits.is_unlimited());
    store
        .set_quota(
            &QuotaSubject::DefaultUser,
            &limits(Some(5), None),
            None,
            2_000,
            &d,
        )
        .await
        .unwrap();
    let u = store
        .quota_usage(&[user_scope("ann")], 2_000)
        .await
        .unwrap();
    assert_eq!(u[0].source, QuotaSubject::DefaultUser);
    assert_eq!(u[0].limits.instances, Some(5));
    // i-1, i-2 and i-3 (owner compared without case); the stopped one and
    // other owners' do not count. 2 + 2 + 2 vCPUs, 108 GiB of volumes.
    assert_eq!(
        (
            u[0].usage.instances,
            u[0].usage.vcpus,
            u[0].usage.volume_gib
        ),
        (3, 6, 108),
        "{u:?}"
    );
    // An override wins over the default; removing it brings the default back.
    let ann = QuotaSubject::User("ann".into());
    store
        .set_quota(&ann, &limits(Some(1), None), None, 2_000, &d)
        .await
        .unwrap();
    let u = store
        .quota_usage(&[user_scope("ann")], 2_000)
        .await
        .unwrap();
    assert_eq!(
        (u[0].source.clone(), u[0].limits.instances),
        (ann.clone(), Some(1))
    );
    store.delete_quota(&ann, &d).await.unwrap();
    assert!(matches!(
        store.delete_quota(&ann, &d).await,
        Err(StoreError::NotFound)
    ));
    let u = store
        .quota_usage(&[user_scope("ann")], 2_000)
        .await
        .unwrap();
    assert_eq!(u[0].source, QuotaSubject::DefaultUser);
    // A group's usage is its members' and its own.
    store
        .set_quota(
            &QuotaSubject::DefaultGroup,
            &limits(None, Some(100)),
            None,
            2_000,
            &d,
        )
        .await
        .unwrap();
    let dev = QuotaScope {
        subject: QuotaSubject::Group("dev".into()),
        fallback: QuotaSubject::DefaultGroup,
        owners: vec!["ann".into(), "bob".into(), "group:dev".into()],
    };
    let u = store.quota_usage(&[dev], 2_000).await.unwrap();
    assert_eq!(u[0].usage.instances, 5, "{u:?}");
    let listed = store.list_quotas().await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|q| q.subject.to_string())
            .collect::<Vec<_>>(),
        ["default:group", "default:user"]
    );
}

/// Usage comes from counters the store keeps as resources change: every
/// kind of change (stop, start, new owner, resize, gone from a listing)
/// moves them, and they agree with what the inventory holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_follows_stops_owner_changes_resizes_and_deletions() {
    let (_db, store) = seeded().await;
    let d = AuditDraft::default();
    store
        .set_quota(
            &QuotaSubject::DefaultUser,
            &limits(Some(50), None),
            None,
            2_000,
            &d,
        )
        .await
        .unwrap();
    let acct = AccountName::parse("acme").unwrap();
    let usage = |u: &[skyhold_core::quota::Applicable]| {
        (
            u[0].usage.instances,
            u[0].usage.vcpus,
            u[0].usage.volume_gib,
        )
    };
    // i-1 stopped, i-2 given to bob, i-3 gone, i-4 started; vol-2 grown to
    // 150 GiB, vol-1 gone.
    let instances = vec![
        owned("i-1", "ann", "t3.micro", "stopped"),
        owned("i-2", "bob", "m5.large", "running"),
        owned("i-4", "ann", "t3.micro", "running"),
        owned("i-5", "bob", "t3.micro", "running"),
        owned("i-6", "group:dev", "t3.micro", "running"),
    ];
    store
        .apply_listing(
            &acct,
            "us-east-1",
            ResourceKind::Instance,
            &instances,
            3_000,
        )
        .await
        .unwrap();
    store
        .apply_listing(
            &acct,
            "us-east-1",
            ResourceKind::Volume,
            &[volume("vol-2", "ann", 150)],
            3_000,
        )
        .await
        .unwrap();
    let ann = store
        .quota_usage(&[user_scope("ann")], 3_000)
        .await
        .unwrap();
    assert_eq!(usage(&ann), (1, 2, 150), "{ann:?}");
    let bob = store
        .quota_usage(&[user_scope("bob")], 3_000)
        .await
        .unwrap();
    assert_eq!(usage(&bob), (2, 4, 0), "{bob:?}");
    // Everything stopped or gone: nothing counts.
    store
        .apply_listing(
            &acct,
            "us-east-1",
            ResourceKind::Instance,
            &[owned("i-4", "ann", "t3.micro", "terminated")],
            4_000,
        )
        .await
        .unwrap();
    store
        .apply_listing(&acct, "us-east-1", ResourceKind::Volume, &[], 4_000)
        .await
        .unwrap();
    for who in ["ann", "bob"] {
        let u = store.quota_usage(&[user_scope(who)], 4_000).await.unwrap();
        assert_eq!(usage(&u), (0, 0, 0), "{who}: {u:?}");
    }
}

/// Owner values that look like SQL quoting (quotes, dollar quotes,
/// backslashes) are stored and counted as they are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_owner_values_are_reserved_and_counted_verbatim() {
    let (_db, store) = seeded().await;
    store
        .set_quota(
            &QuotaSubject::DefaultUser,
            &limits(Some(1), None),
            None,
            2_000,
            &AuditDraft::default(),
        )
        .await
        .unwrap();
    for odd in ["o'neil", "a$sk$b", "c$sk", "d\\e", "$sk1$f$sk$"] {
        let scopes = [user_scope(odd)];
        store
            .reserve_quota(&scopes, one_micro(), odd, 2_000, 10_000)
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("{odd}: {e}"));
        let u = store.quota_usage(&scopes, 2_000).await.unwrap();
        assert_eq!(u[0].usage.instances, 1, "{odd}: {u:?}");
        // The limit of one is reached for this owner and no other.
        assert!(
            store
                .reserve_quota(&scopes, one_micro(), odd, 2_000, 10_000)
                .await
                .unwrap()
                .is_err(),
            "{odd}"
        );
    }
}

/// Every dimension is checked at its limit (on PostgreSQL by the database
/// and by skyhold from the same rows, which must agree): up to the limit
/// fits, one more does not, and the refusal names the dimension. An
/// instance of a type nobody can size counts as an instance without
/// vCPUs or memory; a limited scope that counts no owner still bounds the
/// request itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dimension_fits_up_to_its_limit_and_no_further() {
    let (_db, store) = seeded().await;
    let mut instances = seeded_instances();
    instances.push(owned("i-7", "ann", "zz9.plural", "running"));
    store
        .apply_listing(
            &AccountName::parse("acme").unwrap(),
            "us-east-1",
            ResourceKind::Instance,
            &instances,
            1_500,
        )
        .await
        .unwrap();
    let d = AuditDraft::default();
    let ann = QuotaSubject::User("ann".into());
    let scopes = [user_scope("ann")];
    let micro = one_micro();
    let only = |d: Dimension, v: u64| {
        let mut l = Limits::default();
        match d {
            Dimension::Instances => l.instances = Some(v),
            Dimension::Vcpus => l.vcpus = Some(v),
            Dimension::MemoryGib => l.memory_gib = Some(v),
            Dimension::VolumeGib => l.volume_gib = Some(v),
        }
        l
    };
    for (dim, used) in [
        (Dimension::Instances, 4),
        (Dimension::Vcpus, 6),
        (Dimension::MemoryGib, 10),
        (Dimension::VolumeGib, 108),
    ] {
        let limit = used + micro.get(dim);
        store
            .set_quota(&ann, &only(dim, limit), None, 2_000, &d)
            .await
            .unwrap();
        let (id, applicable) = store
            .reserve_quota(&scopes, micro, "ann", 2_000, 10_000)
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("{dim}: {e}"));
        assert_eq!(applicable[0].usage.get(dim), used, "{dim}");
        let e = store
            .reserve_quota(&scopes, micro, "ann", 2_000, 10_000)
            .await
            .unwrap()
            .expect_err("one more than the limit");
        assert_eq!(
            (e.subject.as_str(), e.dimension, e.limit, e.usage, e.request),
            ("user:ann", dim, limit, limit, micro.get(dim)),
        );
        assert!(store.release_reservation(id).await.unwrap());
    }
    store.delete_quota(&ann, &d).await.unwrap();
    let empty = QuotaSubject::Group("empty".into());
    store
        .set_quota(&empty, &only(Dimension::Instances, 1), None, 2_000, &d)
        .await
        .unwrap();
    let scopes = [
        user_scope("ann"),
        QuotaScope {
            subject: empty.clone(),
            fallback: QuotaSubject::DefaultGroup,
            owners: vec![],
        },
    ];
    let two = micro.plus(micro);
    let e = store
        .reserve_quota(&scopes, two, "ann", 2_000, 10_000)
        .await
        .unwrap()
        .expect_err("two instances under a limit of one");
    assert_eq!(
        (e.subject.as_str(), e.limit, e.usage, e.request),
        ("group:empty", 1, 0, 2)
    );
    assert!(store
        .reserve_quota(&scopes, micro, "ann", 2_000, 10_000)
        .await
        .unwrap()
        .is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reservations_count_until_released_or_expired() {
    let (_db, store) = seeded().await;
    store
        .set_quota(
            &QuotaSubject::User("ann".into()),
            &limits(Some(5), None),
            None,
            2_000,
            &AuditDraft::default(),
        )
        .await
        .unwrap();
    let scopes = [user_scope("ann")];
    let two = one_micro().plus(one_micro());
    let (first, _) = store
        .reserve_quota(&scopes, two, "ann", 2_000, 10_000)
        .await
        .unwrap()
        .expect("3 + 2 fits 5");
    let e = store
        .reserve_quota(&scopes, one_micro(), "ann", 3_000, 10_000)
        .await
        .unwrap()
        .expect_err("3 + 2 + 1 does not");
    assert_eq!(
        (e.subject.as_str(), e.dimension, e.limit, e.usage, e.request),
        ("user:ann", Dimension::Instances, 5, 5, 1)
    );
    // Expired reservations stop counting; released ones are gone.
    assert!(store
        .reserve_quota(&scopes, one_micro(), "ann", 10_000, 20_000)
        .await
        .unwrap()
        .is_ok());
    assert!(store.release_reservation(first).await.unwrap());
    assert!(!store.release_reservation(first).await.unwrap());
    assert_eq!(store.prune_reservations(20_000).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reservations_never_overshoot_the_quota() {
    let (_db, store) = seeded().await;
    // ann holds 3 instances; her quota is 10 and her group's 9.
    let d = AuditDraft::default();
    store
        .set_quota(
            &QuotaSubject::User("ann".into()),
            &limits(Some(10), None),
            None,
            2_000,
            &d,
        )
        .await
        .unwrap();
    store
        .set_quota(
            &QuotaSubject::Group("dev".into()),
            &limits(Some(9), None),
            None,
            2_000,
            &d,
        )
        .await
        .unwrap();
    let scopes = vec![
        user_scope("ann"),
        QuotaScope {
            subject: QuotaSubject::Group("dev".into()),
            fallback: QuotaSubject::DefaultGroup,
            // bob's 1 and the group's own 1: 5 in use for dev.
            owners: vec!["ann".into(), "bob".into(), "group:dev".into()],
        },
    ];
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (store, scopes) = (store.clone(), scopes.clone());
        tasks.push(tokio::spawn(async move {
            store
                .reserve_quota(&scopes, one_micro(), "ann", 2_000, 60_000)
                .await
                .unwrap()
        }));
    }
    let mut granted = 0;
    let mut refused = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => granted += 1,
            Err(e) => refused.push(e),
        }
    }
    // The group's quota is the tighter: 9 - 5 = 4 more, never one more.
    assert_eq!(granted, 4, "{refused:?}");
    assert_eq!(refused.len(), 46);
    assert!(refused
        .iter()
        .all(|e| e.subject == "group:dev" && e.limit == 9 && e.usage == 9 && e.request == 1));
}

fn spec(name: &str) -> BlueprintSpec {
    BlueprintSpec {
        name: name.into(),
        description: String::new(),
        accounts: vec!["acme".into()],
        regions: vec!["us-east-1".into()],
        image: "ami-12c6146b".into(),
        instance_types: vec!["t3.*".into()],
        default_type: "t3.micro".into(),
        subnet_ids: vec![],
        security_group_ids: vec![],
        root_volume_gib: Some(8),
        max_root_volume_gib: Some(50),
        key_mode: KeyMode::OwnerKey,
        login_user: "ubuntu".into(),
        user_data: String::new(),
        packages: vec![],
        default_ttl_ms: None,
        max_ttl_ms: None,
        expiry_policy: Default::default(),
        idle_policy: Default::default(),
        dns_zone: String::new(),
        dns_name_pattern: String::new(),
        tags: BTreeMap::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blueprint_versions_never_change_once_written() {
    let db = TestDb::new().await;
    let store = Store::connect(&db.url).await.unwrap();
    let d = AuditDraft::default();
    let b = store
        .create_blueprint(&spec("dev-box"), None, 1_000, &d)
        .await
        .unwrap();
    assert_eq!((b.version, b.current_version), (1, 1));
    assert!(matches!(
        store
            .create_blueprint(&spec("dev-box"), None, 1_000, &d)
            .await,
        Err(StoreError::Conflict(_))
    ));
    let mut edited = spec("dev-box");
    edited.default_type = "t3.small".into();
    let b2 = store
        .update_blueprint(b.id, 1, &edited, None, 2_000, &d)
        .await
        .unwrap();
    assert_eq!(b2.version, 2);
    // An edit from a page that showed version 1 is refused.
    assert!(matches!(
        store
            .update_blueprint(b.id, 1, &spec("dev-box"), None, 3_000, &d)
            .await,
        Err(StoreError::Conflict(_))
    ));
    let now = store.blueprint("dev-box", None).await.unwrap();
    assert_eq!(
        (now.version, now.spec.default_type.as_str()),
        (2, "t3.small")
    );
    let old = store.blueprint(&b.id.to_string(), Some(1)).await.unwrap();
    assert_eq!((old.version, old.current_version), (1, 2));
    assert_eq!(old.spec, spec("dev-box"));
    assert_eq!(store.list_blueprints().await.unwrap().len(), 1);
    // Deleted: gone from lists and names, its versions still readable.
    store.delete_blueprint(b.id, 4_000, &d).await.unwrap();
    assert!(store.list_blueprints().await.unwrap().is_empty());
    assert!(matches!(
        store.blueprint("dev-box", None).await,
        Err(StoreError::NotFound)
    ));
    let kept = store.blueprint(&b.id.to_string(), Some(2)).await.unwrap();
    assert_eq!(kept.deleted_at, Some(4_000));
}
