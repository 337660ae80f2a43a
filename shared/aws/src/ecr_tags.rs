//! The tags of an Amazon ECR repository (`ListImages`, tagged images only),
//! for continuous patching on AWS: the schedule function lists the tags of
//! each configured repository of the stack's registry with its own role
//! (`ecr:ListImages`), no registry password involved. Other registries are
//! answered with a reason (recorded in the function's log, the repository
//! skipped), never an error that would retry the whole tick.

use crate::error::describe;
use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_ecr::types::{ListImagesFilter, TagStatus};
use crtask_core::domain::imageref::ImageRef;
use crtask_core::patch::execute::TagLister;
use crtask_core::trigger::registry::credentials::ecr_registry;
use std::collections::HashMap;
use std::sync::Mutex;

/// Lists ECR repositories' tags, one client per region.
pub struct EcrTags {
    sdk: SdkConfig,
    clients: Mutex<HashMap<String, aws_sdk_ecr::Client>>,
}

impl EcrTags {
    pub fn new(sdk: &SdkConfig) -> Self {
        EcrTags {
            sdk: sdk.clone(),
            clients: Mutex::default(),
        }
    }

    fn client(&self, region: &str) -> aws_sdk_ecr::Client {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients
            .entry(region.to_string())
            .or_insert_with(|| {
                let conf = aws_sdk_ecr::config::Builder::from(&self.sdk)
                    .region(aws_sdk_ecr::config::Region::new(region.to_string()))
                    .build();
                aws_sdk_ecr::Client::from_conf(conf)
            })
            .clone()
    }
}

#[async_trait]
impl TagLister for EcrTags {
    async fn list_tags(
        &self,
        image: &ImageRef,
    ) -> crtask_core::Result<std::result::Result<Vec<String>, String>> {
        let Some(ecr) = ecr_registry(&image.registry) else {
            return Ok(Err(format!(
                "cannot list the tags of {}/{}: on AWS continuous patching reads Amazon ECR repositories only",
                image.registry, image.repository
            )));
        };
        let mut pages = self
            .client(&ecr.region)
            .list_images()
            .registry_id(&ecr.account_id)
            .repository_name(&image.repository)
            .filter(
                ListImagesFilter::builder()
                    .tag_status(TagStatus::Tagged)
                    .build(),
            )
            .into_paginator()
            .send();
        let mut tags = Vec::new();
        while let Some(page) = pages.next().await {
            match page {
                Ok(p) => tags.extend(
                    p.image_ids()
                        .iter()
                        .filter_map(|i| i.image_tag().map(str::to_string)),
                ),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_repository_not_found_exception()) =>
                {
                    return Ok(Ok(Vec::new()));
                }
                Err(e) => {
                    return Ok(Err(format!(
                        "cannot list the tags of {}/{} (ECR ListImages): {}",
                        image.registry,
                        image.repository,
                        describe(&e)
                    )))
                }
            }
        }
        tags.sort();
        tags.dedup();
        Ok(Ok(tags))
    }
}
