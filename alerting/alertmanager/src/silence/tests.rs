//! Silence validation, update semantics, persistence and retention.

use super::*;
use chrono::TimeZone;

fn m(name: &str, value: &str, is_regex: bool, is_equal: bool) -> SilenceMatcher {
    SilenceMatcher {
        name: name.into(),
        value: value.into(),
        is_regex,
        is_equal,
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap()
}

fn mins(n: i64) -> chrono::Duration {
    chrono::Duration::minutes(n)
}

fn post(starts: DateTime<Utc>, ends: DateTime<Utc>) -> PostableSilence {
    PostableSilence {
        id: None,
        matchers: vec![m("alertname", "X", false, true)],
        starts_at: Some(starts),
        ends_at: Some(ends),
        created_by: "alice".into(),
        comment: "maintenance".into(),
        annotations: None,
    }
}

fn labels(pairs: &[(&str, &str)]) -> LabelSet {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn validation() {
    let s = Silences::open(None, DEFAULT_RETENTION, Clock::tokio_at(t0())).unwrap();
    let now = t0();
    let invalid = |p: PostableSilence| matches!(s.set(p), Err(SilenceError::Invalid(_)));
    assert!(invalid(PostableSilence {
        matchers: vec![],
        ..post(now, now + mins(10))
    }));
    assert!(invalid(PostableSilence {
        matchers: vec![m("a", "", false, true), m("b", ".*", true, true)],
        ..post(now, now + mins(10))
    }));
    assert!(invalid(PostableSilence {
        matchers: vec![m("a", "(", true, true)],
        ..post(now, now + mins(10))
    }));
    assert!(invalid(PostableSilence {
        matchers: vec![m("1a", "x", false, true)],
        ..post(now, now + mins(10))
    }));
    assert!(invalid(post(now, now)));
    assert!(invalid(post(now - mins(20), now - mins(10))));
    assert!(invalid(PostableSilence {
        ends_at: None,
        ..post(now, now)
    }));
    // A negative matcher alongside one that cannot match "" is fine.
    let id = s
        .set(PostableSilence {
            matchers: vec![
                m("alertname", "X", false, true),
                m("env", "dev", false, false),
            ],
            ..post(now, now + mins(10))
        })
        .unwrap();
    assert_eq!(id.len(), 36);
    assert!(
        !s.silenced_by(&labels(&[("alertname", "X")]), now)
            .is_empty()
    );
    assert!(
        s.silenced_by(&labels(&[("alertname", "X"), ("env", "dev")]), now)
            .is_empty()
    );
    // Unknown id.
    assert!(matches!(
        s.set(PostableSilence {
            id: Some("nope".into()),
            ..post(now, now + mins(10))
        }),
        Err(SilenceError::NotFound(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn update_semantics() {
    let s = Silences::open(None, DEFAULT_RETENTION, Clock::tokio_at(t0())).unwrap();
    let now = t0();
    let id = s.set(post(now, now + mins(60))).unwrap();
    // Active, same matchers and start, new end in the future: in place.
    let same = s
        .set(PostableSilence {
            id: Some(id.clone()),
            ..post(now, now + mins(120))
        })
        .unwrap();
    assert_eq!(same, id);
    assert_eq!(s.get(&id).unwrap().ends_at, now + mins(120));
    // Changed matchers: the old one is expired and a new one created.
    let other = s
        .set(PostableSilence {
            id: Some(id.clone()),
            matchers: vec![m("alertname", "Y", false, true)],
            ..post(now, now + mins(120))
        })
        .unwrap();
    assert_ne!(other, id);
    assert_eq!(s.get(&id).unwrap().state_at(now), SilenceState::Expired);
    assert_eq!(s.get(&other).unwrap().state_at(now), SilenceState::Active);
    // Active with a changed start: new silence.
    let moved = s
        .set(PostableSilence {
            id: Some(other.clone()),
            matchers: vec![m("alertname", "Y", false, true)],
            ..post(now + mins(5), now + mins(120))
        })
        .unwrap();
    assert_ne!(moved, other);
    assert_eq!(s.get(&moved).unwrap().state_at(now), SilenceState::Pending);
    // Pending, start still in the future: updated in place.
    let again = s
        .set(PostableSilence {
            id: Some(moved.clone()),
            matchers: vec![m("alertname", "Y", false, true)],
            ..post(now + mins(10), now + mins(100))
        })
        .unwrap();
    assert_eq!(again, moved);
    assert_eq!(s.get(&moved).unwrap().starts_at, now + mins(10));
    // Expired silences are never updated in place.
    let revived = s
        .set(PostableSilence {
            id: Some(id.clone()),
            ..post(now, now + mins(30))
        })
        .unwrap();
    assert_ne!(revived, id);
    // A new silence starting in the past starts now.
    let past = s.set(post(now - mins(30), now + mins(30))).unwrap();
    assert_eq!(s.get(&past).unwrap().starts_at, now);
}

#[tokio::test(start_paused = true)]
async fn expire_persist_and_retention() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silences.json");
    let clock = Clock::tokio_at(t0());
    let now = t0();
    let (a, b);
    {
        let s = Silences::open(Some(&path), DEFAULT_RETENTION, clock.clone()).unwrap();
        a = s.set(post(now, now + mins(60))).unwrap();
        b = s.set(post(now + mins(30), now + mins(60))).unwrap();
        s.expire(&b).unwrap();
        let eb = s.get(&b).unwrap();
        assert_eq!((eb.starts_at, eb.ends_at), (now, now));
        assert!(matches!(s.expire("zzz"), Err(SilenceError::NotFound(_))));
        assert_eq!(s.next_transition(now), Some(now + mins(60)));
    }
    let s = Silences::open(Some(&path), DEFAULT_RETENTION, clock.clone()).unwrap();
    assert_eq!(s.list().len(), 2);
    assert_eq!(s.get(&a).unwrap().state_at(now), SilenceState::Active);
    assert_eq!(s.get(&b).unwrap().state_at(now), SilenceState::Expired);
    tokio::time::advance(Duration::from_secs(121 * 3600)).await;
    assert_eq!(s.gc().unwrap(), 2);
    drop(s);
    let s = Silences::open(Some(&path), DEFAULT_RETENTION, clock).unwrap();
    assert!(s.list().is_empty());
}
