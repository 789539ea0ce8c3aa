//! Reminders: the business profile's storage, on both backends.

mod common;

use app::accounts::model::Role;
use app::accounts::service::Member;
use app::error::AppError;
use app::reminders::profile::{Channel, SequenceStep};
use app::reminders::service::{profile, save_profile};

both_backends! {
    async fn the_profile_starts_with_calls_off_and_saves_only_when_valid(app: TestApp) {
        let mut owner = app.signed_up("Ana", "ana@example.com", "Acme Ltd").await;
        let owner = app.member(&mut owner).await;
        let start = profile(&app.db, owner).await.unwrap();
        assert_eq!(start.business_name, "Acme Ltd");
        assert!(!start.calls_enabled);
        assert_eq!(start.validate(), Ok(()));

        // A bad profile names its fields and stores nothing.
        let mut bad = start.clone();
        bad.call_end = "07:00".into();
        bad.max_attempts = 0;
        match save_profile(&app.db, owner, &bad).await {
            Err(AppError::Validation(errors)) => {
                assert!(errors.get("call_end").is_some() && errors.get("max_attempts").is_some());
            }
            other => panic!("expected field errors, got {other:?}"),
        }
        assert_eq!(profile(&app.db, owner).await.unwrap(), start);

        // A good one is kept, and switching calls on is audited.
        let mut good = start.clone();
        good.call_start = "10:00".into();
        good.sequence = vec![SequenceStep { offset_days: -3, channel: Channel::Call }];
        good.calls_enabled = true;
        save_profile(&app.db, owner, &good).await.unwrap();
        assert_eq!(profile(&app.db, owner).await.unwrap(), good);
        let audited: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_events WHERE org_id = $1 AND action = 'calls.enabled'",
        )
        .bind(owner.org_id)
        .fetch_one(app.db.pool())
        .await
        .unwrap();
        assert_eq!(audited, 1);

        // Members and viewers cannot change who gets called.
        for role in [Role::Member, Role::Viewer] {
            let lesser = Member { role, ..owner };
            assert!(matches!(save_profile(&app.db, lesser, &start).await, Err(AppError::Forbidden)));
        }
        assert_eq!(profile(&app.db, owner).await.unwrap(), good);

        // Another organization keeps its own.
        let mut other = app.signed_up("Bo", "bo@example.com", "Other Co").await;
        let other = app.member(&mut other).await;
        let theirs = profile(&app.db, other).await.unwrap();
        assert_eq!(theirs.business_name, "Other Co");
        assert!(!theirs.calls_enabled);
    }
}
