use super::*;

struct Null;
impl LogSink for Null {
    fn write(&self, _: &[u8]) {}
}

#[test]
fn tally_counts_reused_and_built_steps_but_not_from() {
    let t = CacheTally::new(&Null);
    t.write(b"STEP 1/4: FROM r/base:1\nSTEP 2/4: RUN sleep 2\n--> Cache pulled from remote r/app/cache:82\n");
    t.write(b"--> Using cache 8805a1\n--> 8805a1a6f65\nSTEP 3/4: COPY . /src\n--> Pushing ca");
    t.write(b"che r/app/cache:f3\nSTEP 4/4: RUN cat /src/a.txt\ntwo\nCOMMIT r/app:2\n");
    assert_eq!(
        t.result(),
        CacheUse {
            reused: 1,
            built: 2
        }
    );
}

#[test]
fn tally_reads_docker_output_and_ignores_lookalikes() {
    let t = CacheTally::new(&Null);
    t.write(b"Step 1/3 : FROM base\nStep 2/3 : RUN x\n ---> Using cache\nStep 3/3 : COPY . .\n");
    t.write(b"STEP x/y: RUN nope\nmy STEP 1/2: RUN\n");
    assert_eq!(
        t.result(),
        CacheUse {
            reused: 1,
            built: 1
        }
    );
}

#[test]
fn plan_defaults_to_a_repository_next_to_the_first_image() {
    let p = plan(
        true,
        &CacheOptions::default(),
        Some("localhost:5000/team/app:v1"),
        true,
    );
    assert_eq!(p.repo.as_deref(), Some("localhost:5000/team/app/cache"));
    assert!(p.write && !p.no_cache && !p.pull);
}

#[test]
fn plan_honours_disabled_configured_and_flags() {
    let opts = CacheOptions {
        repo: Some("r:5000/shared/cache".into()),
        no_cache: true,
        pull: true,
    };
    assert_eq!(plan(false, &opts, Some("r/app:1"), true).repo, None);
    let p = plan(true, &opts, Some("r/app:1"), false);
    assert_eq!(p.repo.as_deref(), Some("r:5000/shared/cache"));
    assert!(p.no_cache && p.pull && !p.write);
    // Nothing to name the cache after.
    assert_eq!(plan(true, &CacheOptions::default(), None, true).repo, None);
    assert!(describe(&plan(false, &opts, None, true)).contains("disabled"));
}

#[test]
fn configured_repositories_are_checked() {
    assert!(validate_repo("localhost:5000/app/cache").is_ok());
    for bad in [
        "app",
        "r/app:cache",
        "r/app@sha256:abc",
        "r/a b",
        "",
        "r/\u{1b}[2J",
    ] {
        let e = validate_repo(bad).unwrap_err().to_string();
        assert!(
            e.contains("not valid") && !e.contains('\u{1b}'),
            "{bad}: {e}"
        );
    }
}
