#!/usr/bin/env python3
"""Writes deploy/kubernetes/prometheusrule.yaml from prometheus/alerts.yaml, the one source of the rules.

    python deploy/kubernetes/generate_prometheusrule.py          # rewrite prometheusrule.yaml
    python deploy/kubernetes/generate_prometheusrule.py --check  # exit 1 if it is out of date
    python deploy/kubernetes/generate_prometheusrule.py --job my-job --output - > rule.yaml
                                   # the rules for a scrape job not named azure-standby-pool-exporter

tests/assets/test_kubernetes.py fails when the committed file differs from what this script writes.
Needs PyYAML (a dependency of the exporter).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parents[1] / "prometheus" / "alerts.yaml"
OUTPUT = HERE / "prometheusrule.yaml"
JOB = "azure-standby-pool-exporter"
JOB_MATCHER = 'job="{}"'

HEADER = """\
# GENERATED from prometheus/alerts.yaml by deploy/kubernetes/generate_prometheusrule.py: do not edit,
# edit prometheus/alerts.yaml and re-run the script.
#
# prometheus-operator must select this PrometheusRule: kube-prometheus-stack by default only selects
# objects labelled with its Helm release (add `release: <release name>` to the labels), or set
# ruleSelectorNilUsesHelmValues=false.
"""


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def prometheus_rule(groups: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "azure-standby-pool-exporter",
            "labels": {
                "app.kubernetes.io/name": "azure-standby-pool-exporter",
                "app.kubernetes.io/component": "exporter",
            },
        },
        "spec": {"groups": groups},
    }


def render(job: str = JOB) -> str:
    """The PrometheusRule; ``job`` replaces the job matcher every selector of the rules carries."""
    text = SOURCE.read_text(encoding="utf-8")
    if job != JOB:
        if not job or '"' in job or "\\" in job:
            raise ValueError(f"not a job name: {job!r}")
        text = text.replace(JOB_MATCHER.format(JOB), JOB_MATCHER.format(job))
    groups = yaml.safe_load(text)["groups"]
    body = yaml.dump(prometheus_rule(groups), Dumper=_Dumper, sort_keys=False, width=4096, allow_unicode=True)
    return HEADER + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if prometheusrule.yaml is out of date")
    parser.add_argument("--job", default=JOB, help=f"the exporter's scrape job name (default {JOB})")
    parser.add_argument("--output", default=str(OUTPUT), help="file to write, - for standard output")
    args = parser.parse_args(argv)
    text = render(args.job)
    if args.output == "-":
        sys.stdout.write(text)
        return 0
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text(encoding="utf-8") != text:
            print(f"{OUTPUT} is out of date: run python {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    Path(args.output).write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
