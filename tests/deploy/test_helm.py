"""helm/hubmirror rendered by real Helm (Helm's Go SDK through helm-python-sdk), every manifest validated
against a current Kubernetes schema (kubernetes-validate, strict). The Airflow subchart is not vendored
(no network in tests), so value sets render with airflow.enabled=false, plus one that renders this chart's
own Airflow-facing objects with it on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml

CHART = Path(__file__).resolve().parents[2] / "helm" / "hubmirror"
K8S_VERSION = "1.37"
NO_AIRFLOW: dict[str, Any] = {"airflow": {"enabled": False}}

VALUE_SETS: dict[str, dict[str, Any]] = {
    "default": {},
    "external-s3-redirect": {"s3": {"endpoint": "https://s3.eu-west-1.amazonaws.com", "region": "eu-west-1",
                                    "bucket": "corp-hf-mirror",
                                    "publicEndpoint": "https://s3.eu-west-1.amazonaws.com"},
                             "serve": {"mode": "redirect"}},
    "ingress-tls": {"ingress": {"enabled": True, "className": "nginx", "hosts": ["hf.example.org"],
                                "annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": "0"},
                                "tls": [{"secretName": "hf-tls", "hosts": ["hf.example.org"]}]}},
    "no-ondemand": {"serve": {"ondemand": {"enabled": False}}},
    "ha": {"serve": {"replicas": 3, "autoscaling": {"enabled": False}, "pdb": {"enabled": True}}},
    "monitoring-netpol": {"monitoring": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True},
                                         "grafanaDashboard": {"enabled": True},
                                         "labels": {"release": "kube-prometheus-stack"}},
                          "networkPolicy": {"egress": [{"ports": [{"protocol": "UDP", "port": 53}]}]}},
}

# The Prometheus Operator's kinds are CRDs (not in Kubernetes' schema): the fields the operator requires.
CRD_SCHEMAS = {
    "ServiceMonitor": {"type": "object", "required": ["spec"], "properties": {"spec": {
        "type": "object", "required": ["selector", "endpoints"],
        "properties": {"endpoints": {"type": "array", "minItems": 1,
                                     "items": {"type": "object", "required": ["port"]}}}}}},
    "PrometheusRule": {"type": "object", "required": ["spec"], "properties": {"spec": {
        "type": "object", "required": ["groups"], "properties": {"groups": {"type": "array", "items": {
            "type": "object", "required": ["name", "rules"], "properties": {"rules": {"type": "array", "items": {
                "type": "object", "required": ["alert", "expr"],
                "properties": {"expr": {"type": "string", "minLength": 1}}}}}}}}}}},
}


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


@pytest.fixture(scope="module")
def chart() -> helm.Chart:
    return helm.Chart.load(CHART)


def render(chart: helm.Chart, values: dict[str, Any], release: str = "mirror", *,
           upgrade: bool = False) -> list[dict[str, Any]]:
    """Every manifest the release would apply, hooks included."""
    out = chart.render(values, name=release, namespace="hubmirror", revision=2 if upgrade else 1,
                       is_install=not upgrade, is_upgrade=upgrade)
    docs = [d for text in out.values() for d in yaml.safe_load_all(text) if d]
    assert docs, "the chart rendered nothing"
    return docs


def one(docs: list[dict[str, Any]], kind: str, suffix: str = "") -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(suffix)]
    assert len(found) == 1, (kind, suffix, [d["metadata"]["name"] for d in docs])
    return found[0]


def serve_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return one(docs, "Deployment", "-serve")["spec"]["template"]["spec"]["containers"][0]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_every_manifest_is_valid_kubernetes(chart, name) -> None:
    docs = render(chart, deep_merge(NO_AIRFLOW, VALUE_SETS[name]))
    for doc in docs:
        label = f"{doc['kind']}/{doc['metadata']['name']} ({name})"
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            jsonschema.validate(doc, CRD_SCHEMAS[doc["kind"]])
            continue
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{label} is not valid Kubernetes {K8S_VERSION}: {exc.message} at {exc.path}")
        spec = doc["spec"]["template"]["spec"] if doc["kind"] in ("Deployment", "Job") else None
        if spec is not None:  # non-root, resources for every pod
            assert spec["securityContext"]["runAsNonRoot"] is True, label
            for c in spec["containers"]:
                assert c["resources"].get("requests") and c["resources"].get("limits"), label
                assert c["securityContext"]["allowPrivilegeEscalation"] is False, label


def test_value_sets_do_what_they_say(chart) -> None:
    sets = {name: render(chart, deep_merge(NO_AIRFLOW, v)) for name, v in VALUE_SETS.items()}
    default = env_of(serve_container(sets["default"]))
    assert "HUBMIRROR_SERVE_AIRFLOW_URL" in default and default["HUBMIRROR_SERVE_MODE"] == "proxy"
    assert one(sets["default"], "HorizontalPodAutoscaler")["spec"]["minReplicas"] == 2
    assert serve_container(sets["default"])["securityContext"]["readOnlyRootFilesystem"] is True

    redirect = env_of(serve_container(sets["external-s3-redirect"]))
    assert redirect["HUBMIRROR_SERVE_MODE"] == "redirect"
    assert redirect["HUBMIRROR_S3_PUBLIC_ENDPOINT"] == "https://s3.eu-west-1.amazonaws.com"
    assert redirect["HUBMIRROR_S3_BUCKET"] == "corp-hf-mirror"

    ingress = one(sets["ingress-tls"], "Ingress")
    assert ingress["spec"]["tls"] == [{"hosts": ["hf.example.org"], "secretName": "hf-tls"}]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == one(sets["ingress-tls"], "Service")["metadata"]["name"]

    assert not [k for k in env_of(serve_container(sets["no-ondemand"])) if "AIRFLOW" in k]

    ha = sets["ha"]
    assert one(ha, "Deployment", "-serve")["spec"]["replicas"] == 3
    assert not [d for d in ha if d["kind"] == "HorizontalPodAutoscaler"]
    pdb = one(ha, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= \
        one(ha, "Deployment", "-serve")["spec"]["template"]["metadata"]["labels"].items()

    mon = sets["monitoring-netpol"]
    alerts = {r["alert"] for r in one(mon, "PrometheusRule")["spec"]["groups"][0]["rules"]}
    assert alerts == {"HubmirrorSyncFailed", "HubmirrorRepoStale", "HubmirrorServe5xx", "HubmirrorS3Down"}
    assert "[12h]" in next(r["expr"] for r in one(mon, "PrometheusRule")["spec"]["groups"][0]["rules"]
                           if r["alert"] == "HubmirrorRepoStale")  # 2x the 6 h schedule
    dashboard = json.loads(one(mon, "ConfigMap", "-dashboard")["data"]["hubmirror.json"])
    assert dashboard["panels"] and all(p["targets"][0]["expr"] for p in dashboard["panels"])
    assert one(mon, "NetworkPolicy")["spec"]["policyTypes"] == ["Ingress", "Egress"]


def test_serve_is_least_privileged(chart) -> None:
    """serve reads with the read-only S3 identity and never sees the upstream token (issue 10 item 8)."""
    secrets = chart.values["global"]["hubmirror"]["secrets"]
    for name, values in VALUE_SETS.items():
        container = serve_container(render(chart, deep_merge(NO_AIRFLOW, values)))
        refs = {e["secretRef"]["name"] for e in container["envFrom"]}
        refs |= {e["valueFrom"]["secretKeyRef"]["name"] for e in container.get("env", []) if "valueFrom" in e}
        assert secrets["s3Serve"] in refs and secrets["s3Sync"] not in refs, (name, refs)
        assert secrets["upstream"] not in refs, (name, refs)
        assert not {"HF_TOKEN", "HUBMIRROR_UPSTREAM_TOKEN"} & set(env_of(container)), name
    env = env_of(serve_container(render(chart, NO_AIRFLOW)))
    assert env["HUBMIRROR_SERVE_AIRFLOW_USERNAME"] == "hubmirror-serve"  # the trigger-only user, not admin


def test_names_come_from_the_release(chart) -> None:
    a = {(d["kind"], d["metadata"]["name"]) for d in render(chart, NO_AIRFLOW, "alpha")}
    b = {(d["kind"], d["metadata"]["name"]) for d in render(chart, NO_AIRFLOW, "beta")}
    assert a and not a & b, a & b  # two releases in one namespace never collide
    assert ("Deployment", "hubmirror-serve") in {(d["kind"], d["metadata"]["name"])
                                                 for d in render(chart, NO_AIRFLOW, "hubmirror")}
    env = env_of(serve_container(render(chart, NO_AIRFLOW, "alpha")))
    assert env["HUBMIRROR_SERVE_AIRFLOW_URL"] == "http://alpha-api-server:8080"  # the official chart's Service
    standard = deep_merge(NO_AIRFLOW, {"airflow": {"useStandardNaming": True}})
    env = env_of(serve_container(render(chart, standard, "alpha")))
    assert env["HUBMIRROR_SERVE_AIRFLOW_URL"] == "http://alpha-airflow-api-server:8080"
    env = env_of(serve_container(render(chart, deep_merge(standard, {"serve": {"ondemand": {
        "airflowUrl": "https://airflow.example.org"}}}), "alpha")))
    assert env["HUBMIRROR_SERVE_AIRFLOW_URL"] == "https://airflow.example.org"


def test_one_s3_source_for_serve_and_airflow(chart) -> None:
    values = deep_merge(VALUE_SETS["external-s3-redirect"], {"airflow": {"enabled": True}})
    docs = render(chart, values)
    airflow_env = one(docs, "Secret", "-airflow-env")["stringData"]
    extra = json.loads(airflow_env["AIRFLOW_CONN_HUBMIRROR_S3"])["extra"]
    serve = env_of(serve_container(docs))
    assert extra == {"endpoint_url": serve["HUBMIRROR_S3_ENDPOINT"], "bucket": serve["HUBMIRROR_S3_BUCKET"],
                     "region_name": serve["HUBMIRROR_S3_REGION"],
                     "public_endpoint": serve["HUBMIRROR_S3_PUBLIC_ENDPOINT"]}
    # the subchart's templated extraEnvFrom names exactly this Secret (rendered in the subchart's context)
    assert "'{{ .Release.Name }}-hubmirror-airflow-env'" in chart.values["airflow"]["extraEnvFrom"]
    assert one(docs, "Secret", "-airflow-env")["metadata"]["name"] == "mirror-hubmirror-airflow-env"
    assert yaml.safe_load(airflow_env["AIRFLOW_VAR_HUBMIRROR_CONFIG"]) == chart.values["config"]
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_mirror_config_in_values_is_valid_for_mirror_core(chart, tmp_path) -> None:
    from mirror_core.settings import load_settings

    path = tmp_path / "hubmirror.yaml"
    path.write_text(yaml.safe_dump(chart.values["config"]))
    assert load_settings(path).selection.trending.models.top == 50


@pytest.mark.parametrize(("values", "expected"), [
    ({"serve": {"mode": "redirct"}}, "/serve/mode"),
    ({"serve": {"replica": 3}}, "'replica' not allowed"),
    ({"s3": {"endpoint": "minio:9000"}}, "/s3/endpoint"),
    ({"s3": {"bucket": "Bad_Bucket"}}, "/s3/bucket"),
    ({"serve": {"workers": 0}}, "/serve/workers"),
    ({"ingres": {"enabled": True}}, "'ingres' not allowed"),
    ({"global": {"hubmirror": {"secrets": {"s3Serve": "Not A Name"}}}}, "/global/hubmirror/secrets/s3Serve"),
    ({"serve": {"ondemand": None}}, "missing property 'ondemand'"),  # null deletes the key: not a crash
    ({"s3": None}, "missing property 's3'"),
])
def test_schema_rejects_bad_values_clearly(chart, values, expected) -> None:
    with pytest.raises(helm.HelmValuesError) as err:
        render(chart, deep_merge(NO_AIRFLOW, values))
    assert expected in str(err.value), str(err.value)


@pytest.mark.parametrize(("values", "expected"), [
    ({"serve": {"mode": "redirect"}}, "set s3.publicEndpoint"),
    ({"ingress": {"enabled": True}}, "needs ingress.hosts"),
])
def test_inconsistent_values_fail_with_a_hint(chart, values, expected) -> None:
    with pytest.raises(helm.HelmError) as err:
        render(chart, deep_merge(NO_AIRFLOW, values))
    assert expected in str(err.value), str(err.value)


def hook_phases(doc: dict[str, Any]) -> set[str]:
    annotations = doc["metadata"].get("annotations") or {}
    return {p.strip() for p in annotations.get("helm.sh/hook", "").split(",") if p.strip()}


def referenced_objects(pod_spec: dict[str, Any]) -> set[tuple[str, str]]:
    refs: set[tuple[str, str]] = set()
    for c in pod_spec["containers"]:
        for src in c.get("envFrom", []):
            for kind in ("secretRef", "configMapRef"):
                if kind in src:
                    refs.add(("Secret" if kind == "secretRef" else "ConfigMap", src[kind]["name"]))
        for e in c.get("env", []):
            for kind in ("secretKeyRef", "configMapKeyRef"):
                if kind in e.get("valueFrom", {}):
                    refs.add(("Secret" if kind == "secretKeyRef" else "ConfigMap", e["valueFrom"][kind]["name"]))
    for v in pod_spec.get("volumes", []):
        if "secret" in v:
            refs.add(("Secret", v["secret"]["secretName"]))
        if "configMap" in v:
            refs.add(("ConfigMap", v["configMap"]["name"]))
    return refs


@pytest.mark.parametrize("upgrade", [False, True], ids=["install", "upgrade"])
@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_hooks_cannot_deadlock_helm_install_wait(chart, name, upgrade) -> None:
    """`helm install --wait` creates pre-* hooks, then the release's objects, waits for them to be Ready, and
    only then runs post-* hooks. serve's /readyz needs a formatted bucket, so the format must come from a
    pre-* hook, and no hook may need an object that only exists after it (a chart object, or a later hook)."""
    docs = render(chart, deep_merge(NO_AIRFLOW, VALUE_SETS[name]), upgrade=upgrade)
    phase = "pre-upgrade" if upgrade else "pre-install"
    hooks = [d for d in docs if hook_phases(d)]
    assert all(p.startswith("pre-") for d in hooks for p in hook_phases(d)), \
        [(d["metadata"]["name"], hook_phases(d)) for d in hooks]
    formatters = [d for d in hooks if d["kind"] == "Job" and phase in hook_phases(d)
                  and "ensure_bucket" in " ".join(d["spec"]["template"]["spec"]["containers"][0]["command"])]
    assert len(formatters) == 1, "no pre-install/pre-upgrade Job formats the bucket serve's /readyz needs"

    weight = {(d["kind"], d["metadata"]["name"]): int(d["metadata"].get("annotations", {})
                                                      .get("helm.sh/hook-weight", "0")) for d in hooks}
    normal = {(d["kind"], d["metadata"]["name"]) for d in docs if not hook_phases(d)}
    for job in (d for d in hooks if d["kind"] == "Job"):
        key = ("Job", job["metadata"]["name"])
        for ref in referenced_objects(job["spec"]["template"]["spec"]):
            assert ref not in normal, f"{key} needs {ref}, which is created only after pre-* hooks ran"
            if ref in weight:
                assert weight[ref] < weight[key], f"{key} needs hook {ref}, which does not run before it"
    probe = serve_container(docs)["readinessProbe"]
    assert probe["timeoutSeconds"] > 10, "readyz may take up to 10 s; a shorter probe timeout flaps serve"


def test_airflow_subchart_values_do_not_deadlock_wait(chart) -> None:
    """The official chart's migrate/create-user jobs as post-install hooks would wait behind pods that wait
    for the migrations (its documented `--wait` deadlock): they must run as plain Jobs."""
    airflow = chart.values["airflow"]
    assert airflow["migrateDatabaseJob"]["useHelmHooks"] is False
    assert airflow["createUserJob"]["useHelmHooks"] is False


@pytest.mark.parametrize(("file", "executor"), [("values-kubernetes-executor.yaml", "KubernetesExecutor"),
                                                ("values-celery-executor.yaml", "CeleryExecutor")])
def test_scale_out_values_are_accepted(chart, file, executor) -> None:
    extra = yaml.safe_load((CHART / file).read_text())
    assert extra["airflow"]["executor"] == executor
    merged = chart.merge_values(deep_merge(extra, NO_AIRFLOW))
    chart.validate_schema(merged)
    assert merged["airflow"]["extraEnvFrom"] == chart.values["airflow"]["extraEnvFrom"]  # connections kept
    docs = render(chart, deep_merge(extra, NO_AIRFLOW))
    for doc in docs:
        if not doc["apiVersion"].startswith("monitoring.coreos.com/"):
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_helm_lint_finds_nothing_but_the_unvendored_subchart(name) -> None:
    report = helm.lint(CHART, deep_merge(NO_AIRFLOW, VALUE_SETS[name]), kube_version=f"v{K8S_VERSION}.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2
                and "missing these dependencies: airflow" not in m["error"]]  # fetched by `helm dependency build`
    assert not problems and not report["errors"], problems or report["errors"]
