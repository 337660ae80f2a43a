//! The top level's resources of a task file: `secrets`, `volumes` and
//! `networks` (each checked, errors collected on the parser).

use super::*;

pub(super) fn parse_secrets(p: &mut P, v: &Node) -> Vec<Secret> {
    let mut out: Vec<Secret> = Vec::new();
    let mut lines: HashMap<String, usize> = HashMap::new();
    for item in p.seq(v, "secrets") {
        let Some(pairs) = p.pairs(item, "a secret", None) else {
            if item.is_null() {
                p.err(
                    item.line,
                    None,
                    "a secret must be a mapping with 'id' and 'keyvault'",
                );
            }
            continue;
        };
        let mut s = Secret {
            id: String::new(),
            keyvault: String::new(),
            client_id: None,
        };
        for (k, val, line) in pairs {
            match k {
                "id" => s.id = p.string(val, "secret id", None).unwrap_or_default(),
                "keyvault" => {
                    s.keyvault = p
                        .string(val, "secret keyvault", None)
                        .unwrap_or_default()
                        .trim()
                        .to_string()
                }
                "clientID" => s.client_id = p.string(val, "secret clientID", None),
                other => p.warn(
                    line,
                    None,
                    format!("unknown secret key '{other}' is ignored"),
                ),
            }
        }
        if s.id.trim().is_empty() {
            p.err(item.line, None, "a secret has no 'id'");
            continue;
        }
        if s.id.chars().any(|c| c.is_whitespace() || c.is_control()) {
            p.err(
                item.line,
                None,
                "a secret id cannot contain spaces or control characters",
            );
            continue;
        }
        if s.keyvault.is_empty() {
            p.err(
                item.line,
                None,
                format!(
                    "secret '{}' has no 'keyvault': say where its value is (file:///path, crtask://NAME or a Secrets Manager ARN)",
                    s.id
                ),
            );
            continue;
        }
        if let Some(first) = lines.get(&s.id) {
            let first = p.orig(*first);
            p.err(
                item.line,
                None,
                format!("duplicate secret id '{}' (first on line {first})", s.id),
            );
            continue;
        }
        lines.insert(s.id.clone(), item.line);
        out.push(s);
    }
    out
}

pub(super) fn parse_volumes(p: &mut P, v: &Node) -> Vec<Volume> {
    let mut out: Vec<Volume> = Vec::new();
    let mut lines: HashMap<String, usize> = HashMap::new();
    for item in p.seq(v, "volumes") {
        let Some(pairs) = p.pairs(item, "a volume", None) else {
            if item.is_null() {
                p.err(
                    item.line,
                    None,
                    "a volume must be a mapping with 'name' and 'secret'",
                );
            }
            continue;
        };
        let mut name = String::new();
        let mut secret = None;
        for (k, val, line) in pairs {
            match k {
                "name" => name = p.string(val, "volume name", None).unwrap_or_default(),
                "secret" => secret = Some(val),
                other => p.warn(
                    line,
                    None,
                    format!("unknown volume key '{other}' is ignored"),
                ),
            }
        }
        if name.trim().is_empty() {
            p.err(item.line, None, "a volume has no 'name'");
            continue;
        }
        if name.chars().any(char::is_whitespace) {
            p.err(
                item.line,
                None,
                format!("volume name '{name}' must not contain spaces"),
            );
        }
        let mut files = BTreeMap::new();
        match secret {
            None => p.err(
                item.line,
                None,
                format!("volume '{name}' has no 'secret' files"),
            ),
            Some(sv) => {
                let what = format!("volume '{name}' secret");
                if let Some(pairs) = p.pairs(sv, &what, None) {
                    for (file, content, line) in pairs {
                        if file.is_empty()
                            || file == "."
                            || file == ".."
                            || file.contains('/')
                            || file.contains('\\')
                        {
                            p.err(
                                line,
                                None,
                                format!("volume '{name}': invalid secret file name '{file}'"),
                            );
                            continue;
                        }
                        let value = if content.is_null() {
                            String::new()
                        } else {
                            p.string(content, &format!("volume '{name}' secret '{file}'"), None)
                                .unwrap_or_default()
                        };
                        let trimmed = value.trim();
                        let b64 = base64::engine::general_purpose::STANDARD;
                        let b64_nopad = base64::engine::general_purpose::STANDARD_NO_PAD;
                        if b64.decode(trimmed).is_err() && b64_nopad.decode(trimmed).is_err() {
                            p.err(
                                content.line,
                                None,
                                format!("volume '{name}' secret '{file}' is not base64 (use {{{{ ... | b64enc }}}})"),
                            );
                            continue;
                        }
                        files.insert(file.to_string(), trimmed.to_string());
                    }
                } else if sv.is_null() {
                    p.err(
                        sv.line,
                        None,
                        format!("volume '{name}' has no 'secret' files"),
                    );
                }
            }
        }
        if let Some(first) = lines.get(&name) {
            let first = p.orig(*first);
            p.err(
                item.line,
                None,
                format!("duplicate volume name '{name}' (first on line {first})"),
            );
            continue;
        }
        lines.insert(name.clone(), item.line);
        out.push(Volume {
            name,
            secret: files,
        });
    }
    out
}

pub(super) fn parse_networks(p: &mut P, v: &Node) -> Vec<Network> {
    let mut out: Vec<Network> = Vec::new();
    let mut lines: HashMap<String, usize> = HashMap::new();
    for item in p.seq(v, "networks") {
        let Some(pairs) = p.pairs(item, "a network", None) else {
            if item.is_null() {
                p.err(item.line, None, "a network must be a mapping with 'name'");
            }
            continue;
        };
        let mut n = Network {
            name: String::new(),
            driver: None,
            ipv6: false,
            skip_creation: false,
            is_default: false,
        };
        for (k, val, line) in pairs {
            match k {
                "name" => n.name = p.string(val, "network name", None).unwrap_or_default(),
                "driver" => n.driver = p.string(val, "network driver", None),
                "ipv6" => n.ipv6 = p.boolean(val, "network ipv6", None).unwrap_or(false),
                "skipCreation" => {
                    n.skip_creation = p
                        .boolean(val, "network skipCreation", None)
                        .unwrap_or(false)
                }
                "isDefault" => {
                    n.is_default = p.boolean(val, "network isDefault", None).unwrap_or(false)
                }
                other => p.warn(
                    line,
                    None,
                    format!("unknown network key '{other}' is ignored"),
                ),
            }
        }
        if n.name.trim().is_empty() {
            p.err(item.line, None, "a network has no 'name'");
            continue;
        }
        if let Some(first) = lines.get(&n.name) {
            let first = p.orig(*first);
            p.err(
                item.line,
                None,
                format!(
                    "duplicate network name '{}' (first on line {first})",
                    n.name
                ),
            );
            continue;
        }
        lines.insert(n.name.clone(), item.line);
        out.push(n);
    }
    out
}
