//! What a builder executes: single-Dockerfile runs ([`quick`]), multi-step
//! `acr-task.yaml` files ([`taskfile`] to read them, [`multistep`] to run
//! them), the Dockerfile base-image scan ([`dockerfile`]) and
//! `.dockerignore` matching ([`dockerignore`]).

pub mod dockerfile;
pub mod dockerignore;
pub mod multistep;
pub mod quick;
pub mod taskfile;
pub mod values;
