//! What a builder executes: single-Dockerfile runs ([`quick`]), multi-step
//! `acr-task.yaml` files ([`taskfile`] to read them, [`multistep`] to run
//! them), the Dockerfile base-image scan ([`dockerfile`]) and
//! `.dockerignore` matching ([`dockerignore`]), what a `cmd` step's container
//! gets ([`container`]) and where task-file secrets come from ([`secrets`]).

pub mod cache;
pub mod container;
pub mod dockerfile;
pub mod dockerignore;
pub mod fanout;
pub mod multistep;
pub mod quick;
pub mod secrets;
pub mod taskfile;
pub mod values;
mod yaml11;
