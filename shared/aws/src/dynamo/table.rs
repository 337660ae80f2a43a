//! The table itself: created with its indexes and TTL for tests, emulators
//! and set-up (the SAM template declares the same table).

use super::{GSI1, GSI2, GSI3, GSI_BY_IMAGE, TTL_ATTRIBUTE};
use crate::error::{Error, Result};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use std::time::Duration;

/// Creates the table with its indexes and TTL (for tests, emulators and
/// `crtask` set-up; the SAM template declares the same table). Waits until
/// the table is active.
pub async fn create_table(client: &Client, table: &str) -> Result<()> {
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| Error::dynamo("CreateTable", e))
    };
    let key = |name: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(t)
            .build()
            .map_err(|e| Error::dynamo("CreateTable", e))
    };
    let gsi = |name: &str, pk: &str, sk: &str| -> Result<GlobalSecondaryIndex> {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(pk, KeyType::Hash)?)
            .key_schema(key(sk, KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .map_err(|e| Error::dynamo("CreateTable", e))
    };
    let mut req = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .global_secondary_indexes(gsi(GSI_BY_IMAGE, "dep_image", "dep_task")?);
    for a in ["pk", "sk", "dep_image", "dep_task"] {
        req = req.attribute_definitions(attr(a)?);
    }
    for (index, pk, sk) in [
        (GSI1, "gsi1pk", "gsi1sk"),
        (GSI2, "gsi2pk", "gsi2sk"),
        (GSI3, "gsi3pk", "gsi3sk"),
    ] {
        req = req
            .global_secondary_indexes(gsi(index, pk, sk)?)
            .attribute_definitions(attr(pk)?)
            .attribute_definitions(attr(sk)?);
    }
    req.send()
        .await
        .map_err(|e| Error::dynamo("CreateTable", e))?;
    for _ in 0..120 {
        let d = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| Error::dynamo("DescribeTable", e))?;
        let active = d
            .table
            .and_then(|t| t.table_status)
            .is_some_and(|s| s == aws_sdk_dynamodb::types::TableStatus::Active);
        if active {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(TTL_ATTRIBUTE)
                .build()
                .map_err(|e| Error::dynamo("UpdateTimeToLive", e))?,
        )
        .send()
        .await
        .map_err(|e| Error::dynamo("UpdateTimeToLive", e))?;
    Ok(())
}
