//! The variables of a run as templates see them (`{{.Run.ID}}`,
//! `{{.Run.Date}}`, `{{.Values.x}}`, ...).
//!
//! The Go `text/template` engine that renders them lives in the
//! `crtask-gotemplate` crate ([`crtask_gotemplate::render`],
//! [`crtask_gotemplate::Template`]); this module only builds its data.

use chrono::{DateTime, Utc};
use crtask_gotemplate::to_go_json;
use serde_json::{Map, Value};

/// The variables of one run, as `{{.Run.X}}` sees them.
#[derive(Debug, Clone)]
pub struct RunVars {
    /// Run id (`ca1`); also `{{.Build.ID}}`.
    pub id: String,
    /// Registry host (`roo.azurecr.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// When the run was created.
    pub date: DateTime<Utc>,
    /// Target operating system (`linux`).
    pub os: String,
    /// Target architecture (`amd64`).
    pub architecture: String,
    /// Source commit, if known.
    pub commit: String,
    /// Source branch, if known.
    pub branch: String,
    /// Name of the task, empty for quick runs.
    pub task_name: String,
    /// Name of the volume shared by the steps of a run.
    pub shared_volume: String,
    /// Source repository, if known.
    pub repository: String,
    /// Git tag that triggered the run, if any.
    pub git_tag: String,
    /// What triggered the run (`manual`, `commit`, ...).
    pub triggered_by: String,
}

impl Default for RunVars {
    /// All strings empty, `date` the Unix epoch.
    fn default() -> Self {
        RunVars {
            id: String::new(),
            registry: String::new(),
            date: DateTime::<Utc>::UNIX_EPOCH,
            os: String::new(),
            architecture: String::new(),
            commit: String::new(),
            branch: String::new(),
            task_name: String::new(),
            shared_volume: String::new(),
            repository: String::new(),
            git_tag: String::new(),
            triggered_by: String::new(),
        }
    }
}

impl RunVars {
    /// `{"Run": {ID, Registry, RegistryName, Date, OS, OSVersion, Architecture, Commit, Branch,
    ///   TaskName, SharedVolume, Repository, GitTag, TriggeredBy}, "Build": {"ID"},
    ///   "Values": values, "RunJSON": .., "ValuesJSON": ..}`
    ///
    /// `RegistryName` is the text before the first `.` of `Registry`; `Date`
    /// is [`run_date`]; `OSVersion` is empty (ACR fills it on Windows only).
    /// `RunJSON` and `ValuesJSON` are `.Run` and `.Values` as JSON, quoted
    /// for a shell when they need it, as ACR renders them ([`to_go_json`],
    /// [`shell_quote`]): `cmd: app {{.ValuesJSON}}` passes the values as one
    /// argument.
    pub fn to_data(&self, values: &crate::domain::model::Values) -> Value {
        let registry_name = self
            .registry
            .split_once('.')
            .map_or(self.registry.as_str(), |(name, _)| name);
        let run = [
            ("ID", self.id.as_str()),
            ("Registry", self.registry.as_str()),
            ("RegistryName", registry_name),
            ("Date", run_date(self.date).as_str()),
            ("OS", self.os.as_str()),
            ("OSVersion", ""),
            ("Architecture", self.architecture.as_str()),
            ("Commit", self.commit.as_str()),
            ("Branch", self.branch.as_str()),
            ("TaskName", self.task_name.as_str()),
            ("SharedVolume", self.shared_volume.as_str()),
            ("Repository", self.repository.as_str()),
            ("GitTag", self.git_tag.as_str()),
            ("TriggeredBy", self.triggered_by.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect::<Map<String, Value>>();
        let mut build = Map::new();
        build.insert("ID".to_string(), Value::String(self.id.clone()));
        let values = values
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Map<String, Value>>();
        let run = Value::Object(run);
        let values = Value::Object(values);
        let mut data = Map::new();
        data.insert(
            "RunJSON".to_string(),
            Value::String(shell_quote(&to_go_json(&run))),
        );
        data.insert(
            "ValuesJSON".to_string(),
            Value::String(shell_quote(&to_go_json(&values))),
        );
        data.insert("Run".to_string(), run);
        data.insert("Build".to_string(), Value::Object(build));
        data.insert("Values".to_string(), values);
        Value::Object(data)
    }
}

/// ACR's shell quoting of `RunJSON` and `ValuesJSON`: the text as it is when
/// it holds only ASCII letters, digits and `_^@=+%,:./-`; `''` when empty;
/// otherwise in single quotes, each `'` written as `'"'"'`.
pub fn shell_quote(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_^@=+%,:./-".contains(c);
    if s.is_empty() {
        "''".to_string()
    } else if s.chars().all(safe) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\"'\"'"))
    }
}

/// Format of `{{.Run.Date}}`: UTC `yyyyMMdd-HHmmss` and a literal `z`,
/// e.g. `20100520-131422z`.
pub fn run_date(t: DateTime<Utc>) -> String {
    t.format("%Y%m%d-%H%M%Sz").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use crtask_gotemplate::render;
    use std::collections::BTreeMap;

    fn run_vars() -> RunVars {
        RunVars {
            id: "ca12".into(),
            registry: "roo.azurecr.io".into(),
            date: Utc
                .with_ymd_and_hms(2010, 5, 20, 13, 14, 22)
                .single()
                .unwrap_or_default(),
            os: "linux".into(),
            architecture: "amd64".into(),
            commit: "0123abc".into(),
            branch: "main".into(),
            task_name: "hello".into(),
            shared_volume: "crtask-ca12".into(),
            repository: "https://example.invalid/app.git".into(),
            git_tag: "v1.0".into(),
            triggered_by: "manual".into(),
        }
    }

    #[test]
    fn run_date_format() {
        assert_eq!(run_date(run_vars().date), "20100520-131422z");
        assert_eq!(run_date(RunVars::default().date), "19700101-000000z");
    }

    #[test]
    fn tags_with_run_vars() {
        let mut values = BTreeMap::new();
        values.insert("env".to_string(), "prod".into());
        let data = run_vars().to_data(&values);
        let cases: &[(&str, &str)] = &[
            ("app:{{.Run.ID}}", "app:ca12"),
            (
                "{{.Run.Registry}}/app:{{.Run.ID}}",
                "roo.azurecr.io/app:ca12",
            ),
            ("{{.Run.RegistryName}}", "roo"),
            ("app:{{.Run.Date}}", "app:20100520-131422z"),
            ("app:{{.Build.ID}}", "app:ca12"),
            ("{{.Run.OS}}/{{.Run.Architecture}}", "linux/amd64"),
            (
                "{{.Run.Commit}} {{.Run.Branch}} {{.Run.TaskName}} {{.Run.SharedVolume}}",
                "0123abc main hello crtask-ca12",
            ),
            (
                "{{.Run.Repository}} {{.Run.GitTag}} {{.Run.TriggeredBy}}",
                "https://example.invalid/app.git v1.0 manual",
            ),
            ("app:{{.Values.env}}-{{.Run.ID}}", "app:prod-ca12"),
            ("app:{{.Values.missing}}", "app:"),
            ("app:{{.Values.tag | default .Run.ID}}", "app:ca12"),
        ];
        for (src, want) in cases {
            assert_eq!(render(src, &data).ok().as_deref(), Some(*want), "{src}");
        }
        let local = RunVars {
            registry: "127.0.0.1:5000".into(),
            ..RunVars::default()
        };
        let data = local.to_data(&BTreeMap::new());
        assert_eq!(
            render("{{.Run.RegistryName}}|{{.Run.Date}}|{{.Values}}", &data)
                .ok()
                .as_deref(),
            Some("127|19700101-000000z|map[]")
        );
        let plain = RunVars {
            registry: "localhost:5000".into(),
            ..RunVars::default()
        };
        assert_eq!(
            render("{{.Run.RegistryName}}", &plain.to_data(&BTreeMap::new()))
                .ok()
                .as_deref(),
            Some("localhost:5000")
        );
    }

    #[test]
    fn run_json_and_values_json_are_go_json_quoted_for_a_shell() {
        let mut values = BTreeMap::new();
        values.insert("k".to_string(), "v".into());
        values.insert("html".to_string(), "<a href='x'>&</a>".into());
        values.insert(
            "app".to_string(),
            serde_json::json!({"port": 80, "b": [1, true]}),
        );
        let data = run_vars().to_data(&values);
        assert_eq!(
            render("{{.ValuesJSON}}", &data).ok().as_deref(),
            Some(
                r#"'{"app":{"b":[1,true],"port":80},"html":"\u003ca href='"'"'x'"'"'\u003e\u0026\u003c/a\u003e","k":"v"}'"#
            )
        );
        let run = render("{{.RunJSON}}", &data).unwrap_or_default();
        assert_eq!(
            run,
            "'{\"Architecture\":\"amd64\",\"Branch\":\"main\",\"Commit\":\"0123abc\",\
             \"Date\":\"20100520-131422z\",\"GitTag\":\"v1.0\",\"ID\":\"ca12\",\"OS\":\"linux\",\
             \"OSVersion\":\"\",\"Registry\":\"roo.azurecr.io\",\"RegistryName\":\"roo\",\
             \"Repository\":\"https://example.invalid/app.git\",\"SharedVolume\":\"crtask-ca12\",\
             \"TaskName\":\"hello\",\"TriggeredBy\":\"manual\"}'"
        );
        assert_eq!(
            render(
                "{{.ValuesJSON}}",
                &RunVars::default().to_data(&BTreeMap::new())
            )
            .ok()
            .as_deref(),
            Some("'{}'")
        );
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a-b_c:1/2.3@x"), "a-b_c:1/2.3@x");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r#"'it'"'"'s'"#);
    }

    /// `acr-samples/mounts-multistep.yaml`, as published.
    const MOUNTS_MULTISTEP: &str =
        "# This template demonstrates mounting custom volumes into a container for multi-step task
volumes:
  - name: secret1
    secret:
      mysecret1: {{.Values.secret1 | b64enc}}
  - name: secret2
    secret:
      mysecret2: {{.Values.secret2 | b64enc}}
            
steps:
  - cmd: bash cat /run/test/mysecret1
    volumeMounts:
      - name: secret1
        mountPath: /run/test
";

    #[test]
    fn renders_acr_sample_with_values() {
        let mut values = BTreeMap::new();
        values.insert("secret1".to_string(), "this is secret 1".into());
        values.insert("secret2".to_string(), "s2".into());
        let data = run_vars().to_data(&values);
        let out = render(MOUNTS_MULTISTEP, &data);
        let want = "# This template demonstrates mounting custom volumes into a container for multi-step task
volumes:
  - name: secret1
    secret:
      mysecret1: dGhpcyBpcyBzZWNyZXQgMQ==
  - name: secret2
    secret:
      mysecret2: czI=
            
steps:
  - cmd: bash cat /run/test/mysecret1
    volumeMounts:
      - name: secret1
        mountPath: /run/test
";
        assert_eq!(out.ok().as_deref(), Some(want));
        // without values the secrets are empty, not an error
        let out = render(MOUNTS_MULTISTEP, &run_vars().to_data(&BTreeMap::new()));
        assert!(out.is_ok_and(|s| s.contains("mysecret1: \n")));
    }

    #[test]
    fn task_file_with_control_flow() {
        let src = "\
version: v1.1.0
steps:
{{- range $i, $t := splitList \",\" .Values.tags }}
  - build: -t {{ $.Run.Registry }}/app:{{ $t | trim }} .
{{- end }}
{{- if eq .Values.push \"true\" }}
  - push: [app]
{{- else }}
  # no push
{{- end }}
";
        let mut values = BTreeMap::new();
        values.insert("tags".to_string(), "v1, latest".into());
        let data = run_vars().to_data(&values);
        let want = "\
version: v1.1.0
steps:
  - build: -t roo.azurecr.io/app:v1 .
  - build: -t roo.azurecr.io/app:latest .
  # no push
";
        assert_eq!(render(src, &data).ok().as_deref(), Some(want));
    }

    #[test]
    fn template_errors_read_the_same_through_core() {
        let e = render("{{end}}", &Value::Null)
            .err()
            .map(crate::Error::from);
        assert!(matches!(e, Some(crate::Error::Template(_))), "{e:?}");
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some("template: 1:1: unexpected {{end}}")
        );
    }
}
