#!/usr/bin/env python3
"""Fails unless template.yaml inlines infra/aws/buildspec.yml verbatim.

CloudFormation cannot read a local file into a CodeBuild project, so the
buildspec lives in the template (BuilderProject.Source.BuildSpec) and in
infra/aws/buildspec.yml for reading and local runs; the two must not drift.
Also checks that the buildspec is valid YAML with version 0.2 and phases.
"""
import sys
from pathlib import Path

import yaml


class CfnLoader(yaml.SafeLoader):
    """Safe loader that accepts CloudFormation's short-form tags (!Ref, !Sub, ...)."""


def _any_tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


CfnLoader.add_multi_constructor("!", _any_tag)


def main() -> int:
    root = Path(__file__).resolve().parents[2]
    template = yaml.load((root / "template.yaml").read_text(), Loader=CfnLoader)
    inline = template["Resources"]["BuilderProject"]["Properties"]["Source"]["BuildSpec"]
    on_disk = (root / "infra/aws/buildspec.yml").read_text()
    if inline != on_disk:
        import difflib

        sys.stderr.write("buildspec: template.yaml BuilderProject.Source.BuildSpec differs from infra/aws/buildspec.yml\n")
        sys.stderr.writelines(
            difflib.unified_diff(
                on_disk.splitlines(True), inline.splitlines(True), "infra/aws/buildspec.yml", "template.yaml (inline)"
            )
        )
        return 1
    spec = yaml.safe_load(on_disk)
    if str(spec.get("version")) != "0.2" or not isinstance(spec.get("phases"), dict):
        sys.stderr.write("buildspec: expected version 0.2 with phases\n")
        return 1
    print("buildspec: template.yaml inlines infra/aws/buildspec.yml verbatim")
    return 0


if __name__ == "__main__":
    sys.exit(main())
