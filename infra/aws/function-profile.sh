# Release settings of the four Lambda functions, on top of the workspace's
# [profile.release] (opt-level "s", fat LTO, one codegen unit, stripped),
# which also builds `crtask serve` and so keeps `panic = "unwind"`.
# Sourced by infra/aws/build.sh (`sam build` runs `cargo lambda build
# --release` and has no way to name another profile) and by
# infra/bench/lambda.sh, so the benchmark's hello-world baseline is built
# the same way. Sizes per setting: docs/BENCHMARKS.md, "Under 8 MiB, and JSON logs".
# - opt-level "z": smallest code; the functions spend their time waiting on
#   AWS calls, not computing.
# - panic "abort": no unwinding tables or landing pads. A panic (a bug: bad
#   input gets an answer, never a panic) ends the execution environment
#   instead of failing only that invocation; Lambda starts a new one and
#   retries an asynchronous event as it would after an error.
# The executor layer (infra/aws/executor-layer/Makefile) sets its own.
export CARGO_PROFILE_RELEASE_OPT_LEVEL="${CRTASK_FUNCTION_OPT_LEVEL:-z}"
export CARGO_PROFILE_RELEASE_PANIC="${CRTASK_FUNCTION_PANIC:-abort}"
