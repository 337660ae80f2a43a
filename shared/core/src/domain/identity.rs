//! `--assign-identity ROLE_ARN`: which IAM roles a task's builds may run
//! with. On AWS a task's builds run with its role (CodeBuild's service
//! role override), so a task reaches only what that role allows; the stack
//! lets operators pass only roles under one IAM path (template parameter
//! `TaskRolePath`, which also scopes the dispatcher's `iam:PassRole`).
//! The local platform runs every build as the server itself and refuses
//! the flag rather than ignore it.

use crate::{Error, Result};

/// Where task roles are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolePolicy<'a> {
    /// The local platform: no per-task identity.
    Local,
    /// AWS: roles whose IAM path starts with this path (e.g. `/crtask-tasks/`).
    Under(&'a str),
    /// AWS, but the stack names no path (an older stack): no task role.
    Unconfigured,
}

/// Checks an IAM path as the template takes it: `/`, or `/a/b/` of IAM's
/// path characters.
pub fn validate_path(path: &str) -> Result<()> {
    let ok = path.starts_with('/')
        && path.ends_with('/')
        && path.len() <= 512
        && path[1..path.len().saturating_sub(1).max(1)]
            .split('/')
            .all(|seg| path == "/" || (!seg.is_empty() && seg.chars().all(name_char)));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "task role path '{}' is not an IAM path: write /segment/.../ (letters, digits, +=,.@_-)",
            crate::domain::text::inert(path)
        )))
    }
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "+=,.@_-".contains(c)
}

/// The IAM path of a role ARN (`arn:aws:iam::123456789012:role/a/b/name`
/// -> `/a/b/`), after checking the ARN's form.
pub fn role_path(arn: &str) -> Result<String> {
    let bad = || {
        Error::invalid(format!(
            "'{}' is not an IAM role ARN: write arn:aws:iam::ACCOUNT:role/PATH/NAME",
            crate::domain::text::inert(arn)
        ))
    };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [a, partition, service, region, account, resource] = parts[..] else {
        return Err(bad());
    };
    let partition_ok = partition == "aws" || partition.starts_with("aws-");
    if a != "arn"
        || !partition_ok
        || service != "iam"
        || !region.is_empty()
        || account.len() != 12
        || !account.chars().all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    let rest = resource.strip_prefix("role/").ok_or_else(bad)?;
    let (dir, name) = match rest.rsplit_once('/') {
        Some((d, n)) => (format!("/{d}/"), n),
        None => ("/".to_string(), rest),
    };
    if name.is_empty() || name.len() > 64 || !name.chars().all(name_char) {
        return Err(bad());
    }
    if dir != "/" && validate_path(&dir).is_err() {
        return Err(bad());
    }
    Ok(dir)
}

/// Whether a task may name `role` as its identity under `policy`.
pub fn check(role: Option<&str>, policy: RolePolicy<'_>) -> Result<()> {
    let Some(role) = role else {
        return Ok(());
    };
    match policy {
        RolePolicy::Local => Err(Error::invalid(
            "--assign-identity is for the AWS platform: the local server runs every build with its own identity, so a task role would not apply; remove it",
        )),
        RolePolicy::Unconfigured => Err(Error::invalid(
            "this stack allows no task roles: deploy it with the TaskRolePath parameter (and run `crtask aws configure` again) to use --assign-identity",
        )),
        RolePolicy::Under(allowed) => {
            validate_path(allowed)?;
            let path = role_path(role)?;
            if path.starts_with(allowed) {
                Ok(())
            } else {
                Err(Error::invalid(format!(
                    "role '{}' is outside the path this stack allows for task roles ({allowed}): create the role under {allowed}",
                    crate::domain::text::inert(role)
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = "arn:aws:iam::123456789012:role/crtask-tasks/web-builder";

    #[test]
    fn role_paths() {
        assert_eq!(role_path(OK).unwrap(), "/crtask-tasks/");
        assert_eq!(
            role_path("arn:aws:iam::123456789012:role/a/b/r").unwrap(),
            "/a/b/"
        );
        assert_eq!(
            role_path("arn:aws-cn:iam::123456789012:role/r").unwrap(),
            "/"
        );
        for bad in [
            "",
            "web-builder",
            "arn:aws:iam::123456789012:user/crtask-tasks/u",
            "arn:aws:s3:::bucket",
            "arn:aws:iam::12345:role/r",
            "arn:aws:iam:us-east-1:123456789012:role/r",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam::123456789012:role/a//r",
            "arn:aws:iam::123456789012:role/a b/r",
            "arn:gcp:iam::123456789012:role/r",
        ] {
            assert!(role_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_roles_under_the_path_pass() {
        let p = RolePolicy::Under("/crtask-tasks/");
        assert!(check(Some(OK), p).is_ok());
        assert!(check(None, p).is_ok());
        assert!(check(None, RolePolicy::Local).is_ok());
        let e = check(Some("arn:aws:iam::123456789012:role/admin"), p).unwrap_err();
        assert!(matches!(e, Error::Invalid(_)));
        assert!(e.to_string().contains("outside the path"), "{e}");
        // A sibling path that merely shares the prefix text is outside.
        assert!(check(Some("arn:aws:iam::123456789012:role/crtask-tasks-x/r"), p).is_err());
        let e = check(Some(OK), RolePolicy::Local).unwrap_err();
        assert!(e.to_string().contains("AWS platform"), "{e}");
        assert!(check(Some(OK), RolePolicy::Unconfigured).is_err());
        assert!(check(Some(OK), RolePolicy::Under("crtask")).is_err());
        assert!(validate_path("/").is_ok());
        assert!(validate_path("/a/b/").is_ok());
        assert!(validate_path("/a//").is_err());
    }
}
