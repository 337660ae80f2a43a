//! The functions a template may call: Go's builtins and Sprig v2.22's
//! `TxtFuncMap` (what ACR's renderer registers), one group per module.
//! Where Sprig and Go's builtins share a name (`slice`), Sprig's wins as in
//! ACR; `slice` also takes strings, as Go's builtin does.

mod args;
mod builtins;
pub(crate) mod dates;
mod defaults;
mod dicts;
mod encoding;
mod golayout;
mod lists;
mod math;
mod paths;
mod regex;
mod semver;
mod strings;

use serde_json::Value;

use args::FnResult;
pub use defaults::to_go_json;
pub(crate) use dicts::MUTATING;
pub use paths::clean as path_clean;

struct Group {
    names: &'static [&'static str],
    call: fn(&str, Vec<Value>) -> FnResult,
}

const GROUPS: &[Group] = &[
    Group {
        names: builtins::NAMES,
        call: builtins::call,
    },
    Group {
        names: strings::NAMES,
        call: strings::call,
    },
    Group {
        names: lists::NAMES,
        call: lists::call,
    },
    Group {
        names: dicts::NAMES,
        call: dicts::call,
    },
    Group {
        names: math::NAMES,
        call: math::call,
    },
    Group {
        names: defaults::NAMES,
        call: defaults::call,
    },
    Group {
        names: encoding::NAMES,
        call: encoding::call,
    },
    Group {
        names: dates::NAMES,
        call: dates::call,
    },
    Group {
        names: semver::NAMES,
        call: semver::call,
    },
    Group {
        names: regex::NAMES,
        call: regex::call,
    },
    Group {
        names: paths::NAMES,
        call: paths::call,
    },
];

/// Whether a template may name `name` as a function.
pub(crate) fn exists(name: &str) -> bool {
    GROUPS.iter().any(|g| g.names.contains(&name))
}

pub(crate) fn call_func(name: &str, vals: Vec<Value>) -> FnResult {
    match GROUPS.iter().find(|g| g.names.contains(&name)) {
        Some(g) => (g.call)(name, vals),
        None => Err(format!("function \"{name}\" not defined")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_belongs_to_one_group() {
        let mut names: Vec<&str> = GROUPS
            .iter()
            .flat_map(|g| g.names.iter().copied())
            .collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "a function is listed twice");
        // every group answers for its own names (never "not defined")
        for name in names {
            if let Err(e) = call_func(name, Vec::new()) {
                assert!(!e.contains("not defined"), "{name}: {e}");
            }
        }
    }
}
