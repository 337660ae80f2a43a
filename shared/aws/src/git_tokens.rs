//! Tasks' git access tokens on AWS (`--git-access-token`). The token is
//! written to Secrets Manager as `<stack>/git/<task>` with the caller's
//! credentials, and the task keeps only a reference to it
//! (`secretsmanager:<name>`). A build of the task gets the secret's name in
//! `CRTASK_GIT_TOKEN_SECRET`; the buildspec reads the value with the
//! builder's role (which may read `<stack>/git/*` only) into a file of its
//! own for `crtask exec`. The token never travels as a CodeBuild
//! environment value and never appears in the task, the run or a log.

/// How a task refers to its stored token.
pub const REF_PREFIX: &str = "secretsmanager:";

/// The secret holding `task`'s token in `stack`.
pub fn secret_name(stack: &str, task: &str) -> String {
    format!("{stack}/git/{task}")
}

/// The task's token field for a token stored as `name`.
pub fn reference(name: &str) -> String {
    format!("{REF_PREFIX}{name}")
}

/// The secret a token field refers to; `None` for a plain token.
pub fn secret_of(field: &str) -> Option<&str> {
    field.strip_prefix(REF_PREFIX).filter(|n| !n.is_empty())
}

/// Stores `token` for `task` and returns the reference the task keeps.
pub async fn put(
    client: &aws_sdk_secretsmanager::Client,
    stack: &str,
    task: &str,
    token: &str,
) -> crate::Result<String> {
    let name = secret_name(stack, task);
    crate::secrets::put_named(
        client,
        &name,
        &format!("crtask: git access token of task {task}"),
        token,
    )
    .await?;
    Ok(reference(&name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_round_trip_and_plain_tokens_are_not_references() {
        let r = reference(&secret_name("crtask", "web"));
        assert_eq!(r, "secretsmanager:crtask/git/web");
        assert_eq!(secret_of(&r), Some("crtask/git/web"));
        assert_eq!(secret_of("ghp_plaintoken"), None);
        assert_eq!(secret_of("secretsmanager:"), None);
    }
}
