//! The AWS stack the CLI talks to: the `--aws-*` flags (each with its
//! `CRTASK_AWS_*` variable), which override the selected profile's values
//! ([`crate::profile`], written by `crtask aws configure`).

use clap::Args;
use serde::{Deserialize, Serialize};

/// The stack's settings (its outputs, named in each field). In a profile
/// they are the `[profiles.NAME.aws]` table, with the same names in kebab
/// case.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[command(
    next_help_heading = "AWS platform (override the profile; `crtask aws configure` writes it)"
)]
pub struct AwsSettings {
    /// AWS: the stack's name; tasks' git access tokens are kept as its
    /// secrets `<stack>/git/<task>` [default: the profile's].
    #[arg(long = "aws-stack", global = true, env = "CRTASK_AWS_STACK")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    /// AWS: the stack's region [default: the profile's, else AWS_REGION].
    #[arg(long = "aws-region", global = true, env = "CRTASK_AWS_REGION")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// AWS: the stack's DynamoDB table (output TableName).
    #[arg(long = "aws-table", global = true, env = "CRTASK_AWS_TABLE")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// AWS: the stack's bucket for contexts and logs (output BucketName).
    #[arg(long = "aws-bucket", global = true, env = "CRTASK_AWS_BUCKET")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// AWS: the stack's CodeBuild project (output CodeBuildProject).
    #[arg(long = "aws-project", global = true, env = "CRTASK_AWS_PROJECT")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// AWS: the registry unqualified image names go to (output
    /// RegistryHost) [default: the project's CRTASK_REGISTRY].
    #[arg(long = "aws-registry", global = true, env = "CRTASK_AWS_REGISTRY")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    /// AWS: the schedule group timers go to (output ScheduleGroupName).
    #[arg(
        long = "aws-schedule-group",
        global = true,
        env = "CRTASK_AWS_SCHEDULE_GROUP"
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_group: Option<String>,
    /// AWS: the function timers' schedules invoke (output ScheduleTargetArn).
    #[arg(
        long = "aws-schedule-target",
        global = true,
        env = "CRTASK_AWS_SCHEDULE_TARGET"
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_target: Option<String>,
    /// AWS: the role timers' schedules run with (output SchedulerRoleArn).
    #[arg(
        long = "aws-scheduler-role",
        global = true,
        env = "CRTASK_AWS_SCHEDULER_ROLE"
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler_role: Option<String>,
    /// AWS: the secret timer payloads are signed with, read with your
    /// credentials (output ScheduleSigningSecretArn).
    #[arg(
        long = "aws-schedule-secret",
        global = true,
        env = "CRTASK_AWS_SCHEDULE_SECRET"
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_secret: Option<String>,
    /// AWS: the dead-letter queue for undeliverable timer payloads
    /// (output FailedEventsQueueArn; optional).
    #[arg(
        long = "aws-schedule-dlq",
        global = true,
        env = "CRTASK_AWS_SCHEDULE_DLQ"
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_dlq: Option<String>,
    /// AWS: the builder's CloudWatch log group (output BuilderLogGroupName);
    /// with it, following a run streams its build log as the build runs.
    #[arg(long = "aws-log-group", global = true, env = "CRTASK_AWS_LOG_GROUP")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_group: Option<String>,
    /// AWS: the IAM path task roles (--assign-identity) must be under
    /// (output TaskRolePath; optional).
    #[arg(
        long = "aws-task-role-path",
        global = true,
        env = "CRTASK_AWS_TASK_ROLE_PATH"
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_role_path: Option<String>,
}

/// Which stack output fills which setting, and whether a profile needs it.
pub struct Output {
    /// The output's key in template.yaml's `Outputs`.
    pub key: &'static str,
    pub field: fn(&mut AwsSettings) -> &mut Option<String>,
    pub required: bool,
}

/// Every output a profile is made of. `RegistryHost` is optional: a stack
/// deployed before it was an output has it only as the builder project's
/// `CRTASK_REGISTRY`, which `crtask aws configure` reads instead.
pub const OUTPUTS: &[Output] = &[
    Output {
        key: "TableName",
        field: |s| &mut s.table,
        required: true,
    },
    Output {
        key: "BucketName",
        field: |s| &mut s.bucket,
        required: true,
    },
    Output {
        key: "CodeBuildProject",
        field: |s| &mut s.project,
        required: true,
    },
    Output {
        key: "RegistryHost",
        field: |s| &mut s.registry,
        required: false,
    },
    Output {
        key: "BuilderLogGroupName",
        field: |s| &mut s.log_group,
        required: true,
    },
    Output {
        key: "ScheduleGroupName",
        field: |s| &mut s.schedule_group,
        required: true,
    },
    Output {
        key: "ScheduleTargetArn",
        field: |s| &mut s.schedule_target,
        required: true,
    },
    Output {
        key: "SchedulerRoleArn",
        field: |s| &mut s.scheduler_role,
        required: true,
    },
    Output {
        key: "ScheduleSigningSecretArn",
        field: |s| &mut s.schedule_secret,
        required: true,
    },
    Output {
        key: "FailedEventsQueueArn",
        field: |s| &mut s.schedule_dlq,
        required: false,
    },
    Output {
        key: "TaskRolePath",
        field: |s| &mut s.task_role_path,
        required: false,
    },
];

impl AwsSettings {
    /// These settings (flags and environment), each filled in from
    /// `profile` where it is not given (or empty).
    pub fn over(self, profile: AwsSettings) -> AwsSettings {
        fn pick(given: Option<String>, profile: Option<String>) -> Option<String> {
            given.filter(|v| !v.trim().is_empty()).or(profile)
        }
        AwsSettings {
            stack: pick(self.stack, profile.stack),
            region: pick(self.region, profile.region),
            table: pick(self.table, profile.table),
            bucket: pick(self.bucket, profile.bucket),
            project: pick(self.project, profile.project),
            registry: pick(self.registry, profile.registry),
            schedule_group: pick(self.schedule_group, profile.schedule_group),
            schedule_target: pick(self.schedule_target, profile.schedule_target),
            scheduler_role: pick(self.scheduler_role, profile.scheduler_role),
            schedule_secret: pick(self.schedule_secret, profile.schedule_secret),
            schedule_dlq: pick(self.schedule_dlq, profile.schedule_dlq),
            log_group: pick(self.log_group, profile.log_group),
            task_role_path: pick(self.task_role_path, profile.task_role_path),
        }
    }

    /// The settings a stack's outputs give; the keys of required outputs
    /// it lacks (or has empty) are returned instead when there are any.
    pub fn from_outputs(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<AwsSettings, Vec<&'static str>> {
        let mut s = AwsSettings::default();
        let mut missing = Vec::new();
        for o in OUTPUTS {
            match get(o.key).filter(|v| !v.trim().is_empty()) {
                Some(v) => *(o.field)(&mut s) = Some(v),
                None if o.required => missing.push(o.key),
                None => {}
            }
        }
        if missing.is_empty() {
            Ok(s)
        } else {
            Err(missing)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_the_profile_and_empty_flags_do_not_count() {
        let profile = AwsSettings {
            table: Some("p-table".into()),
            bucket: Some("p-bucket".into()),
            region: Some("eu-west-1".into()),
            ..Default::default()
        };
        let flags = AwsSettings {
            table: Some("f-table".into()),
            bucket: Some(" ".into()),
            registry: Some("f.example:5000".into()),
            ..Default::default()
        };
        let s = flags.over(profile);
        assert_eq!(s.table.as_deref(), Some("f-table"));
        assert_eq!(s.bucket.as_deref(), Some("p-bucket"));
        assert_eq!(s.region.as_deref(), Some("eu-west-1"));
        assert_eq!(s.registry.as_deref(), Some("f.example:5000"));
        assert_eq!(s.project, None);
    }

    #[test]
    fn outputs_fill_the_settings_and_missing_ones_are_named() {
        let all = |k: &str| Some(format!("v-{k}"));
        let s = AwsSettings::from_outputs(all).unwrap();
        assert_eq!(s.table.as_deref(), Some("v-TableName"));
        assert_eq!(s.schedule_dlq.as_deref(), Some("v-FailedEventsQueueArn"));
        assert_eq!(s.registry.as_deref(), Some("v-RegistryHost"));
        let some = |k: &str| {
            (!matches!(k, "BucketName" | "SchedulerRoleArn" | "RegistryHost"))
                .then(|| format!("v-{k}"))
        };
        assert_eq!(
            AwsSettings::from_outputs(some).unwrap_err(),
            vec!["BucketName", "SchedulerRoleArn"]
        );
        let empty = |k: &str| Some(if k == "TableName" { "" } else { "x" }.to_string());
        assert_eq!(
            AwsSettings::from_outputs(empty).unwrap_err(),
            vec!["TableName"]
        );
    }
}

#[cfg(test)]
mod template_tests {
    /// template.yaml's Outputs give every value a profile is made of.
    #[test]
    fn the_template_has_every_output_a_profile_needs() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
        let text = std::fs::read_to_string(&path).expect("template.yaml");
        let outputs = &text[text.find("\nOutputs:\n").expect("an Outputs section")..];
        for o in super::OUTPUTS {
            assert!(
                outputs.contains(&format!("\n  {}:\n", o.key)),
                "template.yaml has no output {}",
                o.key
            );
        }
    }
}
