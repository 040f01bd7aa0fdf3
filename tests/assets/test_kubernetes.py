"""deploy/kubernetes/: the PrometheusRule is prometheus/alerts.yaml, and the manifests parse, fit together
and carry the security settings and probes."""

from __future__ import annotations

import copy
import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from .conftest import REPO

K8S = REPO / "deploy" / "kubernetes"
NAME = "azure-standby-pool-exporter"
PORT = 9863
CONFIG_DIR = "/etc/standby-pool-exporter"


def manifests() -> dict[str, list[dict[str, Any]]]:
    return {
        path.name: [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]
        for path in sorted(K8S.glob("*.yaml"))
    }


def by_kind() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, docs in manifests().items():
        for doc in docs:
            if doc["kind"] != "Kustomization":
                assert doc["kind"] not in out, f"two {doc['kind']} objects"
                out[doc["kind"]] = doc
    return out


def test_prometheusrule_holds_exactly_the_alert_rules() -> None:
    rule = by_kind()["PrometheusRule"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    alerts = yaml.safe_load((REPO / "prometheus" / "alerts.yaml").read_text(encoding="utf-8"))
    assert rule["spec"]["groups"] == alerts["groups"], "run python deploy/kubernetes/generate_prometheusrule.py"


def test_prometheusrule_file_is_what_the_generator_writes() -> None:
    spec = importlib.util.spec_from_file_location("generate_prometheusrule", K8S / "generate_prometheusrule.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (K8S / "prometheusrule.yaml").read_text(encoding="utf-8") == module.render()


def test_generator_check_mode_detects_drift(tmp_path: Path) -> None:
    """--check exits 0 on the committed file and 1 once the file differs."""
    script = K8S / "generate_prometheusrule.py"
    ok = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    # A copy of the generator next to a drifted output file must fail its check.
    work = tmp_path / "deploy" / "kubernetes"
    work.mkdir(parents=True)
    (tmp_path / "prometheus").mkdir()
    (tmp_path / "prometheus" / "alerts.yaml").write_text(
        (REPO / "prometheus" / "alerts.yaml").read_text(encoding="utf-8").replace("for: 5m", "for: 6m", 1),
        encoding="utf-8")
    (work / "generate_prometheusrule.py").write_text(script.read_text(encoding="utf-8"), encoding="utf-8")
    (work / "prometheusrule.yaml").write_text((K8S / "prometheusrule.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    drift = subprocess.run([sys.executable, str(work / "generate_prometheusrule.py"), "--check"],
                           capture_output=True, text=True)
    assert drift.returncode == 1


def test_every_manifest_parses_and_kustomization_lists_them() -> None:
    found = manifests()
    kustomization = found.pop("kustomization.yaml")[0]
    assert kustomization["kind"] == "Kustomization"
    assert sorted(kustomization["resources"]) == sorted(found), "kustomization.yaml must list every manifest"
    kinds = set()
    for name, docs in found.items():
        assert len(docs) == 1, name
        doc = docs[0]
        assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"] == NAME, name
        assert doc["metadata"]["labels"]["app.kubernetes.io/name"] == NAME, name
        kinds.add(doc["kind"])
    assert kinds == {"ServiceAccount", "ConfigMap", "Deployment", "Service", "ServiceMonitor", "PrometheusRule",
                     "NetworkPolicy"}


def _container() -> tuple[dict[str, Any], dict[str, Any]]:
    pod = by_kind()["Deployment"]["spec"]["template"]["spec"]
    assert len(pod["containers"]) == 1
    return pod, pod["containers"][0]


def test_deployment_security_settings() -> None:
    pod, container = _container()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["runAsNonRoot"] is True
    assert sc["capabilities"]["drop"] == ["ALL"] and "add" not in sc["capabilities"]
    assert sc.get("privileged", False) is False
    resources = container["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"] and resources["limits"]["memory"]


def test_deployment_probes_ports_and_config() -> None:
    deployment = by_kind()["Deployment"]
    pod, container = _container()
    port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert port_names == {"http-metrics": PORT}

    def probe_port(probe: dict[str, Any]) -> int:
        port = probe["httpGet"]["port"]
        return port_names[port] if isinstance(port, str) else port

    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert probe_port(container[probe]) == PORT, probe

    assert container["image"].startswith("ghcr.io/azure-standby-pool-exporter/azure-standby-pool-exporter:")
    assert f"--config.file={CONFIG_DIR}/config.yaml" in container["args"]
    assert f"--web.listen-address=:{PORT}" in container["args"]
    assert "command" not in container, "the image's entrypoint is standby-pool-exporter"
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts[CONFIG_DIR]["readOnly"] is True and "subPath" not in mounts[CONFIG_DIR]
    volumes = {v["name"]: v for v in pod["volumes"]}
    config_map = by_kind()["ConfigMap"]
    assert volumes[mounts[CONFIG_DIR]["name"]]["configMap"]["name"] == config_map["metadata"]["name"]
    config = yaml.safe_load(config_map["data"]["config.yaml"])
    assert set(config) == {"azure", "polling", "pools"} and config["pools"]

    assert deployment["spec"]["replicas"] == 1
    selector = deployment["spec"]["selector"]["matchLabels"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()


def test_workload_identity_wiring() -> None:
    kinds = by_kind()
    pod, _ = _container()
    account = kinds["ServiceAccount"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    assert "azure.workload.identity/client-id" in account["metadata"]["annotations"]
    labels = kinds["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert labels["azure.workload.identity/use"] == "true"
    readme = (K8S / "README.md").read_text(encoding="utf-8")
    subject = "system:serviceaccount:$NAMESPACE:$SA"
    assert subject in readme and f"SA={account['metadata']['name']}" in readme
    assert "NAMESPACE=" + yaml.safe_load((K8S / "kustomization.yaml").read_text())["namespace"] in readme
    assert "az role definition create --role-definition deploy/azure/role.json" in readme


def test_service_and_servicemonitor_reach_the_pod() -> None:
    kinds = by_kind()
    service = kinds["Service"]
    pod_labels = kinds["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert ports["http-metrics"]["port"] == PORT and ports["http-metrics"]["targetPort"] == "http-metrics"
    monitor = kinds["ServiceMonitor"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["port"] == "http-metrics" and endpoint["path"] == "/metrics"
    # The job label is the Services' app.kubernetes.io/name: the one the docs use, for every Service.
    assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/name"
    assert service["metadata"]["labels"]["app.kubernetes.io/name"] == NAME


RECOMMENDED = ("name", "instance", "version", "component", "part-of", "managed-by")
SHARDED = K8S / "sharded"


def sharded() -> dict[str, dict[str, Any]]:
    docs = [doc for path in sorted(SHARDED.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text(encoding="utf-8"))]
    return {doc["kind"]: doc for doc in docs if doc}


def test_recommended_labels_on_every_object_and_pod_template() -> None:
    objects = [doc for docs in manifests().values() for doc in docs if doc["kind"] != "Kustomization"]
    objects += [doc for kind, doc in sharded().items() if kind != "Kustomization"]
    for doc in objects:
        labels = doc["metadata"]["labels"]
        where = f"{doc['kind']} {doc['metadata']['name']}"
        assert {f"app.kubernetes.io/{key}" for key in RECOMMENDED} <= set(labels), where
        assert labels["app.kubernetes.io/version"] == "0.1.0", where
        template = doc.get("spec", {}).get("template")
        if template:
            assert template["metadata"]["labels"].items() >= {
                k: v for k, v in labels.items() if k.startswith("app.kubernetes.io/")}.items(), where


def test_deployment_selector_unchanged_and_statefulset_selector_disjoint() -> None:
    deployment = by_kind()["Deployment"]
    # Immutable: kubectl apply cannot change it, so it stays what earlier releases shipped.
    assert deployment["spec"]["selector"] == {"matchLabels": {"app.kubernetes.io/name": NAME}}
    statefulset = sharded()["StatefulSet"]
    selector = statefulset["spec"]["selector"]["matchLabels"]
    assert selector.items() <= statefulset["spec"]["template"]["metadata"]["labels"].items()
    deployment_pods = deployment["spec"]["template"]["metadata"]["labels"]
    assert not selector.items() <= deployment_pods.items(), "the StatefulSet would select the Deployment's pods"
    # Each Service reaches only its own workload's pods.
    service, sharded_service = by_kind()["Service"], sharded()["Service"]
    assert service["spec"]["selector"].items() <= deployment_pods.items()
    assert not service["spec"]["selector"].items() <= statefulset["spec"]["template"]["metadata"]["labels"].items()
    assert sharded_service["spec"]["selector"] == selector
    assert statefulset["spec"]["serviceName"] == sharded_service["metadata"]["name"]
    # The base ServiceMonitor scrapes both.
    monitor = by_kind()["ServiceMonitor"]["spec"]["selector"]["matchLabels"]
    assert monitor.items() <= sharded_service["metadata"]["labels"].items()


def test_statefulset_runs_the_deployments_pod_with_shard_flags() -> None:
    statefulset = sharded()["StatefulSet"]
    replicas = statefulset["spec"]["replicas"]
    pod = copy.deepcopy(statefulset["spec"]["template"]["spec"])
    container = pod["containers"][0]
    assert f"--shard.count={replicas}" in container["args"] and "--shard.index=$(SHARD_INDEX)" in container["args"]
    env = {e["name"]: e for e in container["env"]}
    assert env["SHARD_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.labels['apps.kubernetes.io/pod-index']"
    # Apart from the shard flags, the same pod as the Deployment's: security settings, probes, mounts.
    container["args"] = [a for a in container["args"] if not a.startswith("--shard.")]
    container["env"] = [e for e in container["env"] if e["name"] != "SHARD_INDEX"]
    assert pod == by_kind()["Deployment"]["spec"]["template"]["spec"]
    kustomization = sharded()["Kustomization"]
    assert sorted(kustomization["resources"]) == sorted(p.name for p in SHARDED.glob("*.yaml") if p.name != "kustomization.yaml")


def test_networkpolicy_admits_prometheus_and_ama_metrics_and_allows_dns_and_https() -> None:
    policy = by_kind()["NetworkPolicy"]["spec"]
    assert policy["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": NAME}
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    [ingress] = policy["ingress"]
    assert ingress["ports"] == [{"port": "http-metrics", "protocol": "TCP"}]
    sources = [(peer["namespaceSelector"]["matchLabels"], peer["podSelector"]["matchLabels"]) for peer in ingress["from"]]
    assert ({"kubernetes.io/metadata.name": "kube-system"}, {"rsName": "ama-metrics"}) in sources
    assert any(pods.get("app.kubernetes.io/name") == "prometheus" for _, pods in sources)
    ports = {(p["port"], p["protocol"]) for rule in policy["egress"] for p in rule["ports"]}
    assert ports == {(53, "UDP"), (53, "TCP"), (443, "TCP")}
    https = next(rule for rule in policy["egress"] if {"port": 443, "protocol": "TCP"} in rule["ports"])
    assert "to" not in https, "ARM and Entra ID have no fixed addresses: 443 must reach any address"
