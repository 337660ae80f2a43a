//! The builder's CodeBuild project on moto, as template.yaml defines it.

/// Creates a builder project (named `<prefix>-<unique>`) on moto; its name.
pub async fn project(client: &aws_sdk_codebuild::Client, prefix: &str) -> String {
    use aws_sdk_codebuild::types::{
        ArtifactsType, ComputeType, EnvironmentType, ProjectArtifacts, ProjectEnvironment,
        ProjectSource, SourceType,
    };
    let name = super::unique(prefix);
    client
        .create_project()
        .name(&name)
        .source(
            ProjectSource::builder()
                // The template's NO_SOURCE; moto insists on a location even
                // there, and CodeBuild does not read it.
                .r#type(SourceType::NoSource)
                .location("none")
                .buildspec("version: 0.2\nphases:\n  build:\n    commands:\n      - crtask exec\n")
                .build()
                .expect("source"),
        )
        .artifacts(
            ProjectArtifacts::builder()
                .r#type(ArtifactsType::NoArtifacts)
                .build()
                .expect("artifacts"),
        )
        .environment(
            ProjectEnvironment::builder()
                .r#type(EnvironmentType::LinuxContainer)
                .image("aws/codebuild/amazonlinux2-x86_64-standard:5.0")
                .compute_type(ComputeType::BuildGeneral1Small)
                .privileged_mode(true)
                .build()
                .expect("environment"),
        )
        .service_role("arn:aws:iam::123456789012:role/crtask-builder")
        .send()
        .await
        .expect("create the builder project on moto");
    name
}
