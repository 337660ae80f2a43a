//! The deployed stack as its users see it: CloudFormation's outputs of a
//! stack (`DescribeStacks`, feature `stack`, for `crtask aws configure`)
//! and the registry the builder project pushes to (its `CRTASK_REGISTRY`).

use crate::error::{describe, Error, Result};
use std::collections::BTreeMap;

/// The longest stack name CloudFormation accepts.
const MAX_STACK_NAME: usize = 128;

/// Checks a stack name (or stack ARN) before it is sent anywhere: a
/// CloudFormation stack name is a letter followed by letters, digits and
/// hyphens, at most 128 characters.
pub fn check_stack_name(name: &str) -> Result<()> {
    if name.starts_with("arn:") {
        let ok = name.len() <= 2048
            && name.split(':').nth(2) == Some("cloudformation")
            && name.chars().all(|c| c.is_ascii_graphic());
        return if ok {
            Ok(())
        } else {
            Err(Error::Config(
                "the stack ARN is not a CloudFormation stack ARN (arn:<partition>:cloudformation:<region>:<account>:stack/<name>/<id>)".into(),
            ))
        };
    }
    let mut chars = name.chars();
    let ok = name.len() <= MAX_STACK_NAME
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "'{}' is not a CloudFormation stack name: a letter, then letters, digits and hyphens (at most {MAX_STACK_NAME} characters)",
            crtask_core::domain::text::inert(name)
        )))
    }
}

/// Whether a stack in `status` has outputs to read: it was created or
/// updated (possibly rolled back to its previous, complete state). A stack
/// still in progress, whose creation was rolled back, or deleted has none
/// (or may not keep them).
pub fn usable_status(status: &str) -> bool {
    matches!(
        status,
        "CREATE_COMPLETE"
            | "UPDATE_COMPLETE"
            | "UPDATE_ROLLBACK_COMPLETE"
            | "IMPORT_COMPLETE"
            | "IMPORT_ROLLBACK_COMPLETE"
    )
}

/// One stack's outputs, by output key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackOutputs {
    /// The stack's name as CloudFormation reports it.
    pub name: String,
    /// `OutputKey` -> `OutputValue`.
    pub outputs: BTreeMap<String, String>,
}

impl StackOutputs {
    /// The value of output `key`, when the stack has it and it is not empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.outputs
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }
}

/// Reads stack `name`'s outputs with `DescribeStacks`. A stack that does
/// not exist, or whose status has no outputs to read ([`usable_status`]),
/// is a [`Error::Config`] that says so.
#[cfg(feature = "stack")]
pub async fn describe_stack(
    client: &aws_sdk_cloudformation::Client,
    name: &str,
) -> Result<StackOutputs> {
    check_stack_name(name)?;
    let out = match client.describe_stacks().stack_name(name).send().await {
        Ok(o) => o,
        // CloudFormation answers an unknown stack with a ValidationError
        // "Stack with id NAME does not exist".
        Err(e)
            if e.as_service_error().is_some_and(|s| {
                s.meta().code() == Some("ValidationError")
                    && s.meta().message().is_some_and(|m| m.contains("does not exist"))
            }) =>
        {
            return Err(Error::Config(format!(
                "stack '{name}' does not exist in this account and region (check --region and the AWS credentials)"
            )))
        }
        Err(e) => {
            return Err(Error::Stack {
                op: "DescribeStacks",
                name: name.to_string(),
                message: describe(&e),
            })
        }
    };
    let stack = out.stacks().first().ok_or_else(|| {
        Error::Config(format!(
            "stack '{name}' does not exist in this account and region (check --region and the AWS credentials)"
        ))
    })?;
    let status = stack
        .stack_status()
        .map(|s| s.as_str())
        .unwrap_or("UNKNOWN");
    if !usable_status(status) {
        return Err(Error::Config(format!(
            "stack '{name}' is {}: configure a stack whose deployment completed",
            crtask_core::domain::text::inert(status)
        )));
    }
    let outputs = stack
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_string(), o.output_value()?.to_string())))
        .collect();
    Ok(StackOutputs {
        name: stack.stack_name().unwrap_or(name).to_string(),
        outputs,
    })
}

/// The registry the builder `project` pushes unqualified image names to:
/// the project's `CRTASK_REGISTRY` environment variable (template.yaml sets
/// it to the stack's registry). `None` when the project has no such
/// variable.
pub async fn project_registry(
    client: &aws_sdk_codebuild::Client,
    project: &str,
) -> Result<Option<String>> {
    let out = client
        .batch_get_projects()
        .names(project)
        .send()
        .await
        .map_err(|e| Error::CodeBuild {
            op: "BatchGetProjects",
            message: describe(&e),
            retryable: false,
        })?;
    let p = out.projects().first().ok_or_else(|| {
        Error::Config(format!(
            "CodeBuild project '{}' does not exist in this account and region",
            crtask_core::domain::text::inert(project)
        ))
    })?;
    Ok(p.environment()
        .map(|e| e.environment_variables())
        .unwrap_or_default()
        .iter()
        .find(|v| v.name() == "CRTASK_REGISTRY")
        .map(|v| v.value().trim().to_string())
        .filter(|v| !v.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_names_are_checked_before_any_call() {
        for ok in [
            "crtask",
            "crtask-prod-2",
            "A",
            "arn:aws:cloudformation:us-east-1:123456789012:stack/crtask/0f1e",
        ] {
            assert!(check_stack_name(ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(129);
        for bad in [
            "",
            "1crtask",
            "crtask_prod",
            "crtask prod",
            "crt\x1b[31mask",
            long.as_str(),
            "arn:aws:s3:::bucket",
        ] {
            let e = check_stack_name(bad).unwrap_err().to_string();
            assert!(!e.contains('\x1b'), "{e:?}");
        }
        assert!(check_stack_name(&"a".repeat(128)).is_ok());
    }

    #[test]
    fn only_deployed_stacks_have_outputs_to_read() {
        for ok in [
            "CREATE_COMPLETE",
            "UPDATE_COMPLETE",
            "UPDATE_ROLLBACK_COMPLETE",
        ] {
            assert!(usable_status(ok), "{ok}");
        }
        for no in [
            "CREATE_IN_PROGRESS",
            "ROLLBACK_COMPLETE",
            "DELETE_COMPLETE",
            "CREATE_FAILED",
            "UPDATE_IN_PROGRESS",
        ] {
            assert!(!usable_status(no), "{no}");
        }
    }

    #[test]
    fn empty_outputs_count_as_missing() {
        let s = StackOutputs {
            name: "s".into(),
            outputs: [("A".into(), "a".into()), ("B".into(), " ".into())].into(),
        };
        assert_eq!(
            (s.get("A"), s.get("B"), s.get("C")),
            (Some("a"), None, None)
        );
    }
}
