//! Whether a registry speaks the distribution API: the engines' answer to
//! [`crtask_core::ports::Engine::probe_registry`].

/// `GET /v2/` on `registry` (plain HTTP when `insecure`): any 2xx or 401
/// means it speaks the distribution API.
pub async fn probe_distribution(
    http: &reqwest::Client,
    registry: &str,
    insecure: bool,
) -> std::result::Result<(), String> {
    let scheme = if insecure { "http" } else { "https" };
    let url = format!("{scheme}://{registry}/v2/");
    match http.get(&url).send().await {
        Ok(r) if r.status().is_success() || r.status().as_u16() == 401 => Ok(()),
        Ok(r) => Err(format!(
            "registry {registry} answered {} at {url}",
            r.status()
        )),
        Err(e) => Err(format!(
            "registry {registry} is unreachable: {}",
            describe_reqwest(&e)
        )),
    }
}

fn describe_reqwest(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg = s.to_string();
        src = s.source();
    }
    msg
}
