//! Retention on DynamoDB (moto): events and delivery ids carry the table's
//! TTL attribute, set to the time they were recorded plus the retention,
//! through both ways of recording them (`record_event` and the one-
//! transaction `record_delivery`); the table has TTL enabled on it.

use chrono::{TimeZone, Utc};
use crtask_aws::dynamo::TTL_ATTRIBUTE;
use crtask_core::domain::model::{EventRecord, EventSource, Outcome};
use crtask_core::ports::{DeliveryRecorded, DeliverySummary, DeliveryWrite, Store, Summarize};
use crtask_testkit::aws as harness;
use crtask_testkit::FixedClock;
use std::sync::Arc;
use std::time::Duration;

const DAY: i64 = 86_400;

/// The TTL attribute of item (`pk`, `sk`), read raw.
async fn expires_at(table: &str, pk: &str, sk: &str) -> Option<i64> {
    let client = crtask_aws::config::dynamodb(&harness::sdk_config().await);
    let item = client
        .get_item()
        .table_name(table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(pk.into()))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(sk.into()))
        .send()
        .await
        .unwrap()
        .item?;
    item.get(TTL_ATTRIBUTE)?.as_n().ok()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_and_deliveries_expire_after_the_retention() {
    let received = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
    let clock = Arc::new(FixedClock::new(received));
    let store = harness::store()
        .await
        .with_clock(clock.clone())
        .with_retention(Duration::from_secs(30 * DAY as u64));
    let table = store.table().to_string();

    // record_event: the event and its delivery item.
    let event = EventRecord {
        id: "ev7".into(),
        source: EventSource::Git,
        delivery_id: Some("d-1".into()),
        received_at: received,
        outcome: Outcome::Ignored,
        reason: "no task".into(),
        runs: vec![],
        detail: serde_json::json!({}),
    };
    store.record_event(&event).await.unwrap();
    let want = received.timestamp() + 30 * DAY;
    assert_eq!(expires_at(&table, "EVENT#ev7", "EVENT").await, Some(want));
    assert_eq!(
        expires_at(&table, "DELIVERY#git#d-1", "DELIVERY").await,
        Some(want)
    );

    // record_delivery (one transaction): same for its event and delivery.
    let summarize: Summarize = Arc::new(|_, _| DeliverySummary {
        outcome: Outcome::Ignored,
        reason: "nothing to build".into(),
        runs: vec![],
    });
    let write = DeliveryWrite {
        source: EventSource::Registry,
        delivery_id: Some("d-2".into()),
        received_at: received,
        detail: serde_json::json!({}),
        runs: vec![],
    };
    let DeliveryRecorded::New { event, .. } =
        store.record_delivery(write, summarize).await.unwrap()
    else {
        panic!("d-2 is new");
    };
    assert_eq!(
        expires_at(&table, &format!("EVENT#{}", event.id), "EVENT").await,
        Some(want)
    );
    assert_eq!(
        expires_at(&table, "DELIVERY#registry#d-2", "DELIVERY").await,
        Some(want)
    );
    // Still seen within the retention, forgotten after it (before DynamoDB
    // has deleted the item).
    clock.advance(chrono::Duration::days(29));
    assert!(store
        .find_delivery(EventSource::Git, "d-1")
        .await
        .unwrap()
        .is_some());
    clock.advance(chrono::Duration::days(2));
    assert!(store
        .find_delivery(EventSource::Git, "d-1")
        .await
        .unwrap()
        .is_none());

    // The table has TTL enabled on that attribute.
    let client = crtask_aws::config::dynamodb(&harness::sdk_config().await);
    let ttl = client
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let d = ttl.time_to_live_description().unwrap();
    assert_eq!(d.attribute_name(), Some(TTL_ATTRIBUTE));
}

#[test]
fn the_default_retention_is_ninety_days() {
    assert_eq!(
        crtask_aws::dynamo::DEFAULT_RETENTION,
        Duration::from_secs(90 * DAY as u64)
    );
}
