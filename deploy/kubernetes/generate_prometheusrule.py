#!/usr/bin/env python3
"""Writes deploy/kubernetes/prometheusrule.yaml from prometheus/alerts.yaml, the one source of the rules.

    python deploy/kubernetes/generate_prometheusrule.py          # rewrite prometheusrule.yaml
    python deploy/kubernetes/generate_prometheusrule.py --check  # exit 1 if it is out of date

tests/assets/test_kubernetes.py fails when the committed file differs from what this script writes.
Needs PyYAML (a dependency of the exporter).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parents[1] / "prometheus" / "alerts.yaml"
OUTPUT = HERE / "prometheusrule.yaml"

HEADER = """\
# GENERATED from prometheus/alerts.yaml by deploy/kubernetes/generate_prometheusrule.py: do not edit,
# edit prometheus/alerts.yaml and re-run the script.
#
# prometheus-operator must select this PrometheusRule: kube-prometheus-stack by default only selects
# objects labelled with its Helm release (add `release: <release name>` to the labels), or set
# ruleSelectorNilUsesHelmValues=false.
"""


LABELS = {
    "app.kubernetes.io/name": "azure-standby-pool-exporter",
    "app.kubernetes.io/instance": "azure-standby-pool-exporter",
    "app.kubernetes.io/version": "0.1.0",
    "app.kubernetes.io/component": "exporter",
    "app.kubernetes.io/part-of": "azure-standby-pool-exporter",
    "app.kubernetes.io/managed-by": "kustomize",
}


def _groups_text(source: str) -> str:
    """The ``groups:`` block of alerts.yaml as written (folded text, comments, blank lines), indented
    under ``spec:``: the rule file's formatting survives, so the output is as readable and lint-clean."""
    lines = source.splitlines()
    try:
        first = lines.index("groups:")
    except ValueError:
        raise SystemExit(f"{SOURCE}: no top-level 'groups:' line") from None
    return "".join(f"  {line}\n" if line.strip() else "\n" for line in lines[first:]).rstrip("\n") + "\n"


def render() -> str:
    source = SOURCE.read_text(encoding="utf-8")
    parsed = yaml.safe_load(source)
    if set(parsed) != {"groups"}:
        raise SystemExit(f"{SOURCE}: only a top-level 'groups' key can be carried into a PrometheusRule")
    metadata = yaml.safe_dump({"name": "azure-standby-pool-exporter", "labels": LABELS}, sort_keys=False)
    text = (HEADER + "---\napiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n"
            + "".join(f"  {line}\n" for line in metadata.splitlines()) + "spec:\n" + _groups_text(source))
    if yaml.safe_load(text)["spec"]["groups"] != parsed["groups"]:
        raise SystemExit(f"{SOURCE}: its groups block did not survive being moved under spec:")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if prometheusrule.yaml is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text(encoding="utf-8") != text:
            print(f"{OUTPUT} is out of date: run python {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
