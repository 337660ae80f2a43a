//! Ref names as git accepts them: every parsed event's refs pass
//! `git check-ref-format`'s rules or the delivery is refused.
//!
//! A ref name from a payload reaches clone commands, run variables, log
//! lines and the event record; one that git itself would never create (a
//! newline, a control character, `..`, `@{`, a trailing `.lock`, ...) can
//! only be forged, so it is refused (400, recorded with the reason) before
//! anything is decided. The rules come from `gix-validate` (gitoxide's
//! implementation of check-ref-format).

use gix_validate::reference;

use super::GitEvent;
use crate::domain::text::inert;
use crate::error::{Error, Result};

/// Checks every ref name of `events`: a push's full ref, a pull request's
/// source and target branches.
pub(super) fn check(events: &[GitEvent]) -> Result<()> {
    for event in events {
        match event {
            GitEvent::Push(p) => full("ref", &p.git_ref)?,
            GitEvent::PullRequest(pr) => {
                branch("source branch", &pr.head_ref)?;
                branch("target branch", &pr.base_ref)?;
            }
            GitEvent::Ping { .. } | GitEvent::Ignored { .. } => {}
        }
    }
    Ok(())
}

/// A full ref name (`refs/heads/main`, `refs/tags/v1`).
pub(crate) fn full(what: &str, name: &str) -> Result<()> {
    reference::name(name.as_bytes().into())
        .map(|_| ())
        .map_err(|e| refused(what, name, &e.to_string()))
}

/// A branch name, checked as `refs/heads/<name>` (what `git check-ref-format
/// --branch` does for a plain name).
pub(crate) fn branch(what: &str, name: &str) -> Result<()> {
    reference::branch_name(format!("refs/heads/{name}").as_bytes().into())
        .map(|_| ())
        .map_err(|e| refused(what, name, &e.to_string()))
}

fn refused(what: &str, name: &str, why: &str) -> Error {
    Error::invalid(format!(
        "{what} '{}' is not a valid git ref name: {}",
        inert(name),
        inert(why)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_git_accepts_pass() {
        for r in [
            "refs/heads/main",
            "refs/heads/release/1.x",
            "refs/heads/feature-ü",
            "refs/tags/v1.2.3",
            "refs/notes/commits",
            "refs/heads/$(touch${IFS}x);`id`",
            "refs/heads/a@b",
        ] {
            full("ref", r).unwrap_or_else(|e| panic!("{r:?}: {e}"));
        }
        branch("branch", "main").unwrap();
        branch("branch", "fix/a.b").unwrap();
    }

    #[test]
    fn names_git_refuses_are_invalid() {
        for r in [
            "refs/heads/a\nb",
            "refs/heads/main\n[2026] run ca1 Succeeded FORGED",
            "refs/heads/\u{1b}]0;title\u{7}",
            "refs/heads/nul\0",
            "refs/heads/del\u{7f}",
            "refs/heads/a..b",
            "refs/heads/a@{1}",
            "refs/heads/x.lock",
            "refs/heads/x.lock/y",
            "refs/heads/.hidden",
            "refs/heads/trailing.",
            "refs/heads/trailing/",
            "refs/heads//double",
            "refs/heads/sp ace",
            "refs/heads/ti~lde",
            "refs/heads/ca^ret",
            "refs/heads/co:lon",
            "refs/heads/qu?estion",
            "refs/heads/st*ar",
            "refs/heads/br[acket",
            "refs/heads/back\\slash",
            "/refs/heads/x",
            "main",
            "",
        ] {
            let e = full("ref", r).expect_err(r);
            let msg = e.to_string();
            assert!(matches!(e, Error::Invalid(_)), "{r:?}");
            assert!(msg.contains("is not a valid git ref name"), "{msg}");
            assert!(!msg.chars().any(crate::domain::text::is_active), "{msg:?}");
        }
        assert!(branch("branch", "HEAD").is_err());
        assert!(branch("branch", "a\nb").is_err());
        assert!(branch("branch", "x.lock").is_err());
        assert!(branch("branch", "").is_err());
    }
}
