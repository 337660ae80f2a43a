//! How records are written as DynamoDB items and read back: keys, item
//! builders, and the write requests of batches (the table layout is in the
//! module docs of [`super`]).

use super::Item;
use crate::error::{Error, Result};
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};
use crtask_core::domain::model::{BaseDependency, EventRecord, EventSource, Run, RunStatus, Task};
use crtask_core::{domain::runid, Error as CoreError};
use std::collections::HashMap;

pub(super) fn blocks_dedupe(status: RunStatus) -> bool {
    !status.is_terminal() || status == RunStatus::Succeeded
}

pub(super) fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

pub(super) fn str_attr<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(|v| v.as_str())
}

pub(super) fn seq20(n: u64) -> String {
    format!("{n:020}")
}

pub(super) fn task_pk(name: &str) -> String {
    format!("TASK#{name}")
}

pub(super) fn run_pk(id: &str) -> String {
    format!("RUN#{id}")
}

pub(super) fn event_pk(id: &str) -> String {
    format!("EVENT#{id}")
}

pub(super) fn dedupe_pk(key: &str) -> String {
    format!("DEDUPE#{key}")
}

pub(super) fn lease_pk(name: &str) -> String {
    format!("LEASE#{name}")
}

pub(super) fn delivery_pk(source: EventSource, id: &str) -> String {
    format!("DELIVERY#{}#{id}", source.as_str())
}

pub(super) fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| CoreError::Store(e.to_string()).into())
}

/// Decodes an item's `body`.
pub(super) fn body<T: serde::de::DeserializeOwned>(item: &Item) -> Result<T> {
    let key = format!(
        "{}/{}",
        str_attr(item, "pk").unwrap_or("?"),
        str_attr(item, "sk").unwrap_or("?")
    );
    let b = str_attr(item, "body").ok_or_else(|| Error::corrupt(&key, "no body"))?;
    serde_json::from_str(b).map_err(|e| Error::corrupt(key, e))
}

pub(super) fn task_item(task: &Task) -> Result<Item> {
    Ok(HashMap::from([
        ("pk".to_string(), s(&task_pk(&task.name))),
        ("sk".to_string(), s("TASK")),
        ("body".to_string(), s(&to_json(task)?)),
        ("gsi2pk".to_string(), s("TASKS")),
        ("gsi2sk".to_string(), s(&task.name)),
    ]))
}

pub(super) fn run_item(run: &Run) -> Result<Item> {
    let seq = runid::parse(&run.run_id).map(|(_, n)| n).unwrap_or(0);
    let sk = seq20(seq);
    let mut item = HashMap::from([
        ("pk".to_string(), s(&run_pk(&run.run_id))),
        ("sk".to_string(), s("RUN")),
        ("body".to_string(), s(&to_json(run)?)),
        ("status".to_string(), s(run.status.as_str())),
        ("seq".to_string(), AttributeValue::N(seq.to_string())),
        ("gsi2pk".to_string(), s("RUNS")),
        ("gsi2sk".to_string(), s(&sk)),
        (
            "gsi3pk".to_string(),
            s(&format!("STATUS#{}", run.status.as_str())),
        ),
        ("gsi3sk".to_string(), s(&sk)),
    ]);
    if let Some(task) = &run.task {
        item.insert("gsi1pk".into(), s(&format!("TASKRUNS#{task}")));
        item.insert("gsi1sk".into(), s(&sk));
    }
    if let Some(key) = &run.dedupe_key {
        item.insert("dedupe".into(), s(key));
    }
    Ok(item)
}

pub(super) fn event_seq(id: &str) -> u64 {
    id.strip_prefix("ev")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

pub(super) fn event_item(event: &EventRecord) -> Result<Item> {
    let sk = seq20(event_seq(&event.id));
    Ok(HashMap::from([
        ("pk".to_string(), s(&event_pk(&event.id))),
        ("sk".to_string(), s("EVENT")),
        ("body".to_string(), s(&to_json(event)?)),
        (
            "gsi1pk".to_string(),
            s(&format!("EVSRC#{}", event.source.as_str())),
        ),
        ("gsi1sk".to_string(), s(&sk)),
        ("gsi2pk".to_string(), s("EVENTS")),
        ("gsi2sk".to_string(), s(&sk)),
    ]))
}

pub(super) fn dep_item(task: &str, d: &BaseDependency) -> Item {
    let mut item = HashMap::from([
        ("pk".to_string(), s(&task_pk(task))),
        ("sk".to_string(), s(&format!("DEP#{}", d.image))),
        ("dep_image".to_string(), s(&d.image)),
        ("dep_task".to_string(), s(task)),
        ("runtime".to_string(), AttributeValue::Bool(d.runtime)),
    ]);
    if let Some(digest) = &d.digest {
        item.insert("digest".into(), s(digest));
    }
    item
}

pub(super) fn dep_from(item: &Item) -> Result<(String, BaseDependency)> {
    let task = str_attr(item, "dep_task").unwrap_or_default().to_string();
    let image = str_attr(item, "dep_image")
        .ok_or_else(|| Error::corrupt(format!("TASK#{task}/DEP"), "no dep_image"))?
        .to_string();
    Ok((
        task,
        BaseDependency {
            image,
            digest: str_attr(item, "digest").map(str::to_string),
            runtime: item
                .get("runtime")
                .and_then(|v| v.as_bool().ok())
                .copied()
                .unwrap_or(false),
        },
    ))
}

pub(super) fn key_of(item: &Item) -> Item {
    item.iter()
        .filter(|(k, _)| *k == "pk" || *k == "sk")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

pub(super) fn delete_request(key: Item) -> Result<WriteRequest> {
    Ok(WriteRequest::builder()
        .delete_request(
            DeleteRequest::builder()
                .set_key(Some(key))
                .build()
                .map_err(|e| Error::dynamo("BatchWriteItem", e))?,
        )
        .build())
}

pub(super) fn put_request(item: Item) -> Result<WriteRequest> {
    Ok(WriteRequest::builder()
        .put_request(
            aws_sdk_dynamodb::types::PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(|e| Error::dynamo("BatchWriteItem", e))?,
        )
        .build())
}

pub(super) fn runs_of(items: &[Item]) -> Result<Vec<Run>> {
    items.iter().map(body).collect()
}
