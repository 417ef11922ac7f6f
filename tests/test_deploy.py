"""The deployment files, validated without a container engine.

Every kustomize overlay is rendered with ``kubectl kustomize`` and validated against the
Kubernetes schemas shipped in ``kubernetes-validate``; the compose file is checked with
``docker-compose config``. Then the properties that make the deployment sovereign are
asserted on the rendered output: default-deny, exactly the named egress allowances, an
internal network, telemetry / usage stats / request logging off, pinned images, non-root,
read-only root filesystems, resources, Secrets referenced rather than inlined.

The tools come from ``scripts/install-deploy-tools`` (CI runs it); without them these tests
fail with that hint. ``VRAAGBAAK_SKIP_DEPLOY_TESTS=1`` skips the module on purpose.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import textwrap
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pytest
import yaml

from vraagbaak_core.settings import ConfigError, load_settings

pytestmark = pytest.mark.skipif(
    os.environ.get("VRAAGBAAK_SKIP_DEPLOY_TESTS") == "1", reason="VRAAGBAAK_SKIP_DEPLOY_TESTS=1"
)

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
COMPOSE_DIR = DEPLOY / "compose"
OVERLAYS = ["single-node", "ha"]
K8S_VERSION = "1.30.0"  # schemas ship inside kubernetes-validate: no download
INSTALL_HINT = "run scripts/install-deploy-tools (CI runs it from .ci/run)"

Doc = dict[str, Any]


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: {INSTALL_HINT}")
    return path


def run(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)


# ---------------------------------------------------------------- kubernetes


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Doc]]:
    kubectl = tool("kubectl")
    out: dict[str, list[Doc]] = {}
    for overlay in OVERLAYS:
        proc = run([kubectl, "kustomize", str(DEPLOY / "k8s" / "overlays" / overlay)])
        assert proc.returncode == 0, f"kubectl kustomize {overlay} failed:\n{proc.stderr}"
        out[overlay] = [d for d in yaml.safe_load_all(proc.stdout) if d]
    return out


def one(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_specs(docs: list[Doc]) -> list[tuple[str, Doc]]:
    specs: list[tuple[str, Doc]] = []
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            specs.append((f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]["spec"]))
        elif d["kind"] == "CronJob":
            specs.append(
                (f"CronJob/{d['metadata']['name']}", d["spec"]["jobTemplate"]["spec"]["template"]["spec"])
            )
    return specs


def containers(docs: list[Doc]) -> list[tuple[str, Doc]]:
    return [
        (f"{where}/{c['name']}", c)
        for where, spec in pod_specs(docs)
        for c in spec.get("initContainers", []) + spec["containers"]
    ]


def env_of(container: Doc) -> dict[str, Doc]:
    return {e["name"]: e for e in container.get("env", [])}


def container(docs: list[Doc], kind: str, name: str) -> Doc:
    d = one(docs, kind, name)
    cs: list[Doc] = d["spec"]["template"]["spec"]["containers"]
    assert len(cs) == 1
    return cs[0]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_validates_against_kubernetes_schemas(rendered: dict[str, list[Doc]], overlay: str) -> None:
    try:
        import kubernetes_validate
    except ImportError:
        pytest.fail(f"kubernetes-validate is not installed: {INSTALL_HINT}")
    docs = rendered[overlay]
    for d in docs:
        kubernetes_validate.validate(d, K8S_VERSION, strict=True)
    kinds = {d["kind"] for d in docs}
    assert {
        "Namespace",
        "NetworkPolicy",
        "StatefulSet",
        "Deployment",
        "Service",
        "Secret",
        "ConfigMap",
        "CronJob",
    } <= kinds
    assert one(docs, "StatefulSet", "postgres") and one(docs, "CronJob", "vraagbaak-ingest")
    assert all(d["metadata"].get("namespace") == "vraagbaak" for d in docs if d["kind"] != "Namespace")


def test_validator_rejects_a_broken_manifest(rendered: dict[str, list[Doc]]) -> None:
    import kubernetes_validate

    api = one(rendered["ha"], "Deployment", "vraagbaak-api")
    broken = yaml.safe_load(yaml.safe_dump(api))
    broken["spec"]["replicas"] = "three"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)
    broken = yaml.safe_load(yaml.safe_dump(api))
    broken["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_namespace_enforces_restricted_pod_security(rendered: dict[str, list[Doc]], overlay: str) -> None:
    labels = one(rendered[overlay], "Namespace", "vraagbaak")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_default_deny_for_ingress_and_egress(rendered: dict[str, list[Doc]], overlay: str) -> None:
    deny = [
        d
        for d in rendered[overlay]
        if d["kind"] == "NetworkPolicy"
        and d["spec"]["podSelector"] == {}
        and set(d["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not d["spec"].get("ingress")
        and not d["spec"].get("egress")
    ]
    assert len(deny) == 1


def _peer(p: Doc) -> str:
    if "ipBlock" in p:
        assert not p["ipBlock"].get("except")
        return f"ip:{p['ipBlock']['cidr']}"
    parts = []
    if "namespaceSelector" in p:
        ns = p["namespaceSelector"]["matchLabels"]
        parts.append(f"ns:{ns['kubernetes.io/metadata.name']}")
    if "podSelector" in p:
        labels = p["podSelector"]["matchLabels"]
        parts.append(f"pod:{labels.get('app.kubernetes.io/name') or labels.get('k8s-app')}")
    return "/".join(parts)


def _rules(docs: list[Doc], direction: str) -> set[tuple[str, str, str, int | str]]:
    """(selected pods, peer, protocol, port) for every allowance; 'ANY' where a rule is open."""
    key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    out: set[tuple[str, str, str, int | str]] = set()
    for d in docs:
        if d["kind"] != "NetworkPolicy" or direction not in d["spec"]["policyTypes"]:
            continue
        sel = d["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name", "*")
        for rule in d["spec"].get(key) or []:
            peers = [_peer(p) for p in rule.get(peers_key, [])] or ["ANY"]
            ports = [(p.get("protocol", "TCP"), p["port"]) for p in rule.get("ports", [])] or [("ANY", "ANY")]
            out |= {(sel, peer, proto, port) for peer in peers for proto, port in ports}
    return out


# the GPU embedding server (vLLM pooling runner) of the ha overlay: API and ingest workers only
EMBED_EGRESS = {("vraagbaak-api", "pod:vllm-embed", "TCP", 8000), ("vraagbaak-ingest", "pod:vllm-embed", "TCP", 8000)}
EMBED_INGRESS = {("vllm-embed", "pod:vraagbaak-api", "TCP", 8000), ("vllm-embed", "pod:vraagbaak-ingest", "TCP", 8000)}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_egress_allows_exactly_the_named_destinations(rendered: dict[str, list[Doc]], overlay: str) -> None:
    assert _rules(rendered[overlay], "Egress") == {
        ("*", "ns:kube-system/pod:kube-dns", "UDP", 53),
        ("*", "ns:kube-system/pod:kube-dns", "TCP", 53),
        ("vraagbaak-api", "pod:qdrant", "TCP", 6333),
        ("vraagbaak-api", "pod:vllm", "TCP", 8000),
        ("vraagbaak-api", "pod:postgres", "TCP", 5432),
        ("vraagbaak-api", "ip:192.0.2.10/32", "TCP", 443),  # the OIDC issuer (placeholder)
        ("vraagbaak-ingest", "pod:qdrant", "TCP", 6333),
        ("vraagbaak-ingest", "pod:postgres", "TCP", 5432),
        ("qdrant", "pod:qdrant", "TCP", 6333),
        ("qdrant", "pod:qdrant", "TCP", 6335),
    } | (EMBED_EGRESS if overlay == "ha" else set())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingress_allows_exactly_the_named_sources(rendered: dict[str, list[Doc]], overlay: str) -> None:
    assert _rules(rendered[overlay], "Ingress") == {
        ("vraagbaak-api", "ns:ingress-nginx", "TCP", 8000),
        ("qdrant", "pod:vraagbaak-api", "TCP", 6333),
        ("qdrant", "pod:vraagbaak-ingest", "TCP", 6333),
        ("qdrant", "pod:qdrant", "TCP", 6333),
        ("qdrant", "pod:qdrant", "TCP", 6335),
        ("vllm", "pod:vraagbaak-api", "TCP", 8000),
        ("postgres", "pod:vraagbaak-api", "TCP", 5432),  # PostgreSQL: only the API and the ingest pods
        ("postgres", "pod:vraagbaak-ingest", "TCP", 5432),
    } | (EMBED_INGRESS if overlay == "ha" else set())


def assert_pinned(image: str, where: str) -> None:
    name, _, tag = image.rpartition(":")
    assert name and "/" not in tag and tag, f"{where}: image {image!r} has no tag"
    assert tag != "latest" and not tag.startswith("latest-"), f"{where}: image {image!r} is not pinned"
    assert re.search(r"\d", tag), f"{where}: image {image!r} tag is not a version"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_image_is_pinned(rendered: dict[str, list[Doc]], overlay: str) -> None:
    images = {c["image"] for _, c in containers(rendered[overlay])}
    for where, c in containers(rendered[overlay]):
        assert_pinned(c["image"], where)
    assert "qdrant/qdrant:v1.19.0-unprivileged" in images
    assert "vllm/vllm-openai:v0.30.0" in images
    assert "vraagbaak:0.1.0" in images
    assert "postgres:15.18-bookworm" in images


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_run_restricted(rendered: dict[str, list[Doc]], overlay: str) -> None:
    specs = pod_specs(rendered[overlay])
    # qdrant, vllm, api, postgres, the ingest workers and the prune step (+ the embedding server in ha)
    assert len(specs) == (7 if overlay == "ha" else 6)
    for where, spec in specs:
        psc = spec["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] > 0, where
        assert psc["seccompProfile"]["type"] == "RuntimeDefault", where
        assert spec["automountServiceAccountToken"] is False, where
        assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC"), where
        assert not any("hostPath" in v for v in spec.get("volumes", [])), where
    for where, c in containers(rendered[overlay]):
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False, where
        assert sc["readOnlyRootFilesystem"] is True, where
        assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add"), where
        assert sc["runAsNonRoot"] is True and not sc.get("privileged"), where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_resources_are_requested_and_limited(rendered: dict[str, list[Doc]], overlay: str) -> None:
    for where, c in containers(rendered[overlay]):
        res = c["resources"]
        for key in ("cpu", "memory"):
            assert key in res["requests"] and key in res["limits"], f"{where}: {key}"
    vllm = container(rendered[overlay], "Deployment", "vllm")["resources"]
    assert int(vllm["requests"]["nvidia.com/gpu"]) >= 1
    assert vllm["requests"]["nvidia.com/gpu"] == vllm["limits"]["nvidia.com/gpu"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_are_referenced_not_inlined(rendered: dict[str, list[Doc]], overlay: str) -> None:
    docs = rendered[overlay]
    secrets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}
    refs = 0
    for where, c in containers(docs):
        for name, e in env_of(c).items():
            if any(k in name for k in ("API_KEY", "PASSWORD", "HMAC_KEY")):
                ref = e["valueFrom"]["secretKeyRef"]  # never `value:`
                assert ref["name"] in secrets, f"{where}: {name} names a missing Secret"
                assert ref["key"] in secrets[ref["name"]]["data"], f"{where}: {name}"
                refs += 1
            else:
                assert "changethis" not in str(e.get("value", "")), where
                assert "password=" not in str(e.get("value", "")).replace("password=$(POSTGRES_PASSWORD)", ""), where
    # qdrant 1, vllm 1, postgres 1, api 4 (qdrant, vllm, postgres, audit key), ingest and prune 3 each;
    # ha: + the embedding server's key in vllm-embed, api, ingest and prune
    assert refs == (17 if overlay == "ha" else 13)
    for d in docs:  # no password, DSN or key in any ConfigMap
        if d["kind"] == "ConfigMap":
            cfg = yaml.safe_load(d["data"]["config.yaml"])
            assert not {"dsn", "hmac_key"} & set(cfg["audit"]) and "api_key" not in cfg["store"]
            assert "password=" not in d["data"]["config.yaml"] and "changethis" not in d["data"]["config.yaml"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_telemetry_usage_stats_and_request_logging_off(rendered: dict[str, list[Doc]], overlay: str) -> None:
    docs = rendered[overlay]
    qdrant = env_of(container(docs, "StatefulSet", "qdrant"))
    assert qdrant["QDRANT__TELEMETRY_DISABLED"]["value"] == "true"
    vllm = container(docs, "Deployment", "vllm")
    env = {k: v.get("value") for k, v in env_of(vllm).items()}
    assert env["VLLM_NO_USAGE_STATS"] == "1" and env["DO_NOT_TRACK"] == "1" and env["HF_HUB_OFFLINE"] == "1"
    assert "--no-enable-log-requests" in vllm["args"] and "--enable-log-requests" not in vllm["args"]
    assert "--disable-uvicorn-access-log" in vllm["args"]
    assert vllm["args"][0].startswith("/models/")  # a local directory, never a hub id
    mounts = {m["mountPath"]: m for m in vllm["volumeMounts"]}
    assert mounts["/models"]["readOnly"] is True


def test_single_node_topology(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["single-node"]
    qdrant = one(docs, "StatefulSet", "qdrant")
    assert qdrant["spec"]["replicas"] == 1
    assert env_of(container(docs, "StatefulSet", "qdrant"))["QDRANT__CLUSTER__ENABLED"]["value"] == "false"
    assert not [d for d in docs if d["kind"] in ("HorizontalPodAutoscaler", "PodDisruptionBudget")]


def test_ha_topology(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["ha"]
    qdrant = one(docs, "StatefulSet", "qdrant")
    assert qdrant["spec"]["replicas"] == 3
    q = container(docs, "StatefulSet", "qdrant")
    assert env_of(q)["QDRANT__CLUSTER__ENABLED"]["value"] == "true"
    assert env_of(q)["QDRANT__CLUSTER__P2P__PORT"]["value"] == "6335"
    assert "--bootstrap" in q["args"][0]
    headless = one(docs, "Service", qdrant["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["publishNotReadyAddresses"] is True

    api = env_of(container(docs, "Deployment", "vraagbaak-api"))
    assert int(api["VRAAGBAAK_STORE__REPLICATION_FACTOR"]["value"]) == 2
    assert int(api["VRAAGBAAK_STORE__SHARD_NUMBER"]["value"]) >= qdrant["spec"]["replicas"]

    vllm = one(docs, "Deployment", "vllm")
    assert vllm["spec"]["replicas"] >= 2

    hpa = one(docs, "HorizontalPodAutoscaler", "vraagbaak-api")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "vraagbaak-api",
    }
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    pdbs = {
        d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]: d
        for d in docs
        if d["kind"] == "PodDisruptionBudget"
    }
    assert set(pdbs) == {"vraagbaak-api", "qdrant", "vllm"}
    assert pdbs["vraagbaak-api"]["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]
    assert pdbs["qdrant"]["spec"]["maxUnavailable"] == 1  # = replication factor - 1
    shared = ("vraagbaak-models", "vraagbaak-audit", "vraagbaak-documents", "vraagbaak-originals", "vraagbaak-state")
    for name in shared:
        assert one(docs, "PersistentVolumeClaim", name)["spec"]["accessModes"] == ["ReadWriteMany"]


REAL_SECRETS = {
    "QDRANT_API_KEY": "q-Zk3v9LrT",
    "VLLM_API_KEY": "v-8hYt2PqW",
    "POSTGRES_PASSWORD": "p-4nRt7YwQ",
    "AUDIT_HMAC_KEY": "a-Jq2Xv8Lm0Tr5Wz",
}


def pod_env(docs: list[Doc], c: Doc, real: Collection[str] = ()) -> dict[str, str]:
    """The container's environment as the kubelet builds it: Secret values (``real``: keys replaced
    by real values), fieldRefs for the pod name, and ``$(VAR)`` references expanded in order."""
    secrets = {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "Secret"}
    env: dict[str, str] = {}
    for e in c.get("env", []):
        if "valueFrom" in e and "secretKeyRef" in e["valueFrom"]:
            ref = e["valueFrom"]["secretKeyRef"]
            value = base64.b64decode(secrets[ref["name"]][ref["key"]]).decode()
            value = REAL_SECRETS[ref["key"]] if ref["key"] in real else value
        elif "valueFrom" in e:
            assert e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
            value = "vraagbaak-api-0"
        else:
            value = re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], e["value"])
        env[e["name"]] = value
    return env


def pod_settings(
    docs: list[Doc], kind: str, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    real: Collection[str] = (),
) -> Any:
    """The real settings of a pod, built from its ConfigMap and its env (Secrets included)."""
    d = one(docs, kind, name)
    spec = d["spec"]["jobTemplate"]["spec"]["template"]["spec"] if kind == "CronJob" else d["spec"]["template"]["spec"]
    c = spec["containers"][0]
    cm_name = next(v["configMap"]["name"] for v in spec["volumes"] if "configMap" in v)
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(one(docs, "ConfigMap", cm_name)["data"]["config.yaml"], encoding="utf-8")
    for key in [k for k in os.environ if k.startswith("VRAAGBAAK_")]:
        monkeypatch.delenv(key)
    for key, value in pod_env(docs, c, real).items():
        if key.startswith("VRAAGBAAK_"):
            monkeypatch.setenv(key, value)
    return load_settings(cfg)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_api_settings_load_and_refuse_placeholder_keys(
    rendered: dict[str, list[Doc]], overlay: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API's real settings, built from the ConfigMap and the Deployment's env as in the pod."""
    docs = rendered[overlay]
    api = container(docs, "Deployment", "vraagbaak-api")
    with pytest.raises(ConfigError, match="hmac_key is a placeholder"):  # the Secret as shipped
        pod_settings(docs, "Deployment", "vraagbaak-api", tmp_path, monkeypatch)

    s = pod_settings(docs, "Deployment", "vraagbaak-api", tmp_path, monkeypatch, real={"AUDIT_HMAC_KEY"})

    assert s.profile == "production" and s.store.backend == "qdrant" and s.generator.backend == "openai"
    assert s.store.url == "http://qdrant:6333" and s.generator.base_url == "http://vllm:8000/v1"
    assert s.server.port == 8000 and api["ports"][0]["containerPort"] == 8000
    assert (
        s.generator.context_window == 8192
        and "--max-model-len=8192" in container(docs, "Deployment", "vllm")["args"]
    )
    assert str(s.audit.path) == "/var/lib/vraagbaak/audit/vraagbaak-api-0.jsonl"
    # one audit chain for every replica, in the PostgreSQL of the base, keyed
    assert s.audit.backend == "postgresql" and s.audit.require_hmac
    assert s.audit.dsn.get_secret_value() == (
        "host=postgres port=5432 dbname=vraagbaak user=vraagbaak password=changethis"
    )
    # the catalog (documents, labels, ingest state) in the same database
    assert s.catalog.url.get_secret_value() == "postgresql://vraagbaak:changethis@postgres:5432/vraagbaak"
    replicas = one(docs, "StatefulSet", "qdrant")["spec"]["replicas"]
    assert 1 <= s.store.replication_factor <= replicas
    with pytest.raises(ConfigError, match="placeholder"):
        s.check_serving_safety()
    # with every key real but the database password, that one is still refused
    but_pg = set(REAL_SECRETS) - {"POSTGRES_PASSWORD"}
    s = pod_settings(docs, "Deployment", "vraagbaak-api", tmp_path, monkeypatch, real=but_pg)
    with pytest.raises(ConfigError, match="audit.dsn: the database password is a placeholder"):
        s.check_serving_safety()
    s = pod_settings(docs, "Deployment", "vraagbaak-api", tmp_path, monkeypatch, real=set(REAL_SECRETS))
    s.check_serving_safety()
    assert "password=p-4nRt7YwQ" in s.audit.dsn.get_secret_value()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingest_workers_share_the_apis_store_embedder_and_audit_chain(
    rendered: dict[str, list[Doc]], overlay: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Documents and questions are embedded by one model (the collection records its name), and
    every worker appends to the API's audit chain."""
    docs = rendered[overlay]
    api = pod_settings(docs, "Deployment", "vraagbaak-api", tmp_path, monkeypatch, real=set(REAL_SECRETS))
    for job in ("vraagbaak-ingest", "vraagbaak-prune"):
        s = pod_settings(docs, "CronJob", job, tmp_path, monkeypatch, real=set(REAL_SECRETS))
        assert s.embedder == api.embedder, job
        assert (s.store.url, s.store.collection) == (api.store.url, api.store.collection), job
        assert s.store.api_key == api.store.api_key, job
        assert s.audit.backend == "postgresql" and s.audit.dsn == api.audit.dsn, job
        assert s.audit.hmac_key == api.audit.hmac_key and s.ingest.originals_dir == api.ingest.originals_dir
        assert s.catalog.url == api.catalog.url and s.catalog.url is not None, job  # one shared catalog
    if overlay == "ha":  # the GPU embedding server, behind the same name the API uses
        assert api.embedder.backend == "openai" and api.embedder.base_url == "http://vllm-embed:8000/v1"
        embed = container(docs, "Deployment", "vllm-embed")
        assert "--runner=pooling" in embed["args"] and f"--served-model-name={api.embedder.model}" in embed["args"]
        assert api.embedder.family == "e5" and embed["args"][0] == "/models/multilingual-e5-base"
        assert int(embed["resources"]["limits"]["nvidia.com/gpu"]) == 1
    else:  # one GPU node: the GPU is the generator's; the embedder runs in the pods (CPU)
        assert api.embedder.backend == "sentence-transformers"
        assert not [d for d in docs if d["metadata"]["name"] == "vllm-embed"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_path_a_pod_writes_is_a_writable_volume(
    rendered: dict[str, list[Doc]], overlay: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Root filesystems are read-only: the SQLite files, originals and local audit file the settings
    name must sit on a mounted, writable volume (shared ones where the API and ingest share them)."""
    docs = rendered[overlay]
    pods = (("Deployment", "vraagbaak-api"), ("CronJob", "vraagbaak-ingest"), ("CronJob", "vraagbaak-prune"))
    for kind, name in pods:
        s = pod_settings(docs, kind, name, tmp_path, monkeypatch, real=set(REAL_SECRETS))
        d = one(docs, kind, name)
        spec = (d["spec"]["jobTemplate"]["spec"] if kind == "CronJob" else d["spec"])["template"]["spec"]
        volumes = {v["name"]: v for v in spec["volumes"]}
        mounts = {
            m["mountPath"]: volumes[m["name"]] for m in spec["containers"][0]["volumeMounts"] if not m.get("readOnly")
        }
        written = {
            "catalog's neighbour (quarantine.sqlite)": s.resolve(s.ingest.state_path).parent,
            "feedback": s.feedback_path().parent,
            "originals": s.resolve(s.ingest.originals_dir),
            "local audit file": s.resolve(s.audit.path).parent,
        }
        for what, path in written.items():
            on = [m for m in mounts if path == Path(m) or path.is_relative_to(m)]
            assert on, f"{name}: {what} at {path} is on the read-only root filesystem"
            claim = mounts[on[0]].get("persistentVolumeClaim", {}).get("claimName")
            if what != "local audit file":  # shared with the API: the same volume, not an emptyDir
                assert claim in ("vraagbaak-state", "vraagbaak-originals"), (name, what, on[0])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingest_is_an_indexed_job_of_partitions_then_one_prune(rendered: dict[str, list[Doc]], overlay: str) -> None:
    from ingest.partition import INDEX_ENV, parse_partition

    docs = rendered[overlay]
    cron = one(docs, "CronJob", "vraagbaak-ingest")
    job = cron["spec"]["jobTemplate"]["spec"]
    assert cron["spec"]["suspend"] is True and cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert job["completionMode"] == "Indexed"
    n = job["completions"]
    assert n == job["parallelism"] == (4 if overlay == "ha" else 1)
    assert job["maxFailedIndexes"] == 0 and job["backoffLimitPerIndex"] >= 0  # a failed partition fails the Job
    spec = job["template"]["spec"]
    assert spec["restartPolicy"] == "Never"
    c = spec["containers"][0]
    env = pod_env(docs, c)
    args = [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], a) for a in c["args"]]
    assert args[0] == "ingest" and "--prune" not in args and "--prune-only" not in args
    spec_arg = next(a.split("=", 1)[1] for a in args if a.startswith("--partition="))
    # every index the Job controller gives (0..N-1 in JOB_COMPLETION_INDEX) is a valid partition of N
    parts = [parse_partition(spec_arg, env={INDEX_ENV: str(i)}) for i in range(n)]
    assert [(p.index, p.count) for p in parts] == [(i, n) for i in range(n)]
    with pytest.raises(Exception, match="0-based"):
        parse_partition(spec_arg, env={INDEX_ENV: str(n)})

    prune = one(docs, "CronJob", "vraagbaak-prune")
    pj = prune["spec"]["jobTemplate"]["spec"]
    assert prune["spec"]["suspend"] is True and "completionMode" not in pj and pj.get("completions", 1) == 1
    pc = pj["template"]["spec"]["containers"][0]
    assert "--prune-only" in pc["args"] and not any(a.startswith("--partition") for a in pc["args"])
    folders = [a for a in args[1:] if not a.startswith("-")]
    assert folders == [a for a in pc["args"][1:] if not a.startswith("-")] == ["/documents/inbox"]
    assert pj["template"]["metadata"]["labels"] == job["template"]["metadata"]["labels"]  # same network policy


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_postgres_is_pinned_internal_and_its_password_a_secret(rendered: dict[str, list[Doc]], overlay: str) -> None:
    docs = rendered[overlay]
    sts = one(docs, "StatefulSet", "postgres")
    pg = container(docs, "StatefulSet", "postgres")
    assert_pinned(pg["image"], "postgres")
    assert env_of(pg)["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "POSTGRES_PASSWORD"
    assert "scram-sha-256" in env_of(pg)["POSTGRES_INITDB_ARGS"]["value"]
    assert sts["spec"]["replicas"] == 1
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "postgres-data"
    assert {m["mountPath"] for m in pg["volumeMounts"]} >= {"/var/lib/postgresql/data", "/var/run/postgresql"}
    svc = one(docs, "Service", "postgres")
    assert [p["port"] for p in svc["spec"]["ports"]] == [5432] and svc["spec"].get("type", "ClusterIP") == "ClusterIP"
    policy = one(docs, "NetworkPolicy", "postgres")
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"} and not policy["spec"].get("egress")
    # the pods that may reach it are exactly those that are configured to use it
    users = {
        spec_where.split("/")[1]
        for spec_where, c in containers(docs)
        if {"VRAAGBAAK_AUDIT__DSN", "VRAAGBAAK_CATALOG__URL"} & set(env_of(c))
    }
    assert users == {"vraagbaak-api", "vraagbaak-ingest", "vraagbaak-prune"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingress_admits_the_api_upload_limit(
    rendered: dict[str, list[Doc]], overlay: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ingress-nginx refuses bodies over 1 MB by default: the annotation must admit the API's own
    upload limit (read from the ConfigMap the pod loads), so the API answers oversized ones itself."""
    docs = rendered[overlay]
    ingress = one(docs, "Ingress", "vraagbaak-api")
    size = ingress["metadata"].get("annotations", {}).get("nginx.ingress.kubernetes.io/proxy-body-size")
    assert size is not None, "no proxy-body-size annotation on the ingress"
    units = {"k": 2**10, "m": 2**20, "g": 2**30}
    limit_bytes = int(size[:-1]) * units[size[-1].lower()] if size[-1].isalpha() else int(size)
    s = pod_settings(docs, "Deployment", "vraagbaak-api", tmp_path, monkeypatch, real=set(REAL_SECRETS))
    assert limit_bytes >= s.limits.max_upload_mb * 2**20 + 64 * 2**10  # the file plus multipart framing
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"


# ------------------------------------------------------------------- compose


def compose_env() -> dict[str, str]:
    """The environment without keys or COMPOSE_* settings that would override the env file."""
    return {
        k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.startswith("COMPOSE_")
    }


@pytest.fixture(scope="module")
def compose() -> Doc:
    dc = tool("docker-compose")
    proc = run(
        [
            dc,
            "--project-directory",
            str(COMPOSE_DIR),
            "-f",
            str(COMPOSE_DIR / "compose.yaml"),
            "--env-file",
            str(COMPOSE_DIR / "env.example"),
            "config",
        ],
        env=compose_env(),
    )
    assert proc.returncode == 0, f"docker-compose config failed:\n{proc.stderr}"
    doc: Doc = yaml.safe_load(proc.stdout)
    return doc


def test_compose_refuses_to_render_without_keys(tmp_path: Path) -> None:
    dc = tool("docker-compose")
    empty = tmp_path / "empty.env"
    empty.write_text("", encoding="utf-8")
    proc = run(
        [
            dc,
            "--project-directory",
            str(COMPOSE_DIR),
            "-f",
            str(COMPOSE_DIR / "compose.yaml"),
            "--env-file",
            str(empty),
            "config",
        ],
        env=compose_env(),
    )
    assert proc.returncode != 0
    assert any(f"set {k} in .env" in proc.stderr for k in REAL_SECRETS), proc.stderr


def _ports(svc: Doc) -> list[str]:
    out = []
    for p in svc.get("ports", []):
        if isinstance(p, dict):  # docker compose v2 prints the long form
            out.append(f"{p.get('host_ip', '')}:{p['published']}:{p['target']}")
        else:
            out.append(str(p))
    return out


def test_compose_network_isolation(compose: Doc) -> None:
    svcs = compose["services"]
    assert set(svcs) == {"qdrant", "vllm", "postgres", "api", "ingest", "ops"}
    assert compose["networks"]["backend"]["internal"] is True
    assert not compose["networks"]["edge"].get("internal")
    # the bridge name the host firewall rule in deploy/README.md matches on
    assert compose["networks"]["edge"]["driver_opts"]["com.docker.network.bridge.name"] == "vb-edge"
    assert set(svcs["qdrant"]["networks"]) == {"backend"}
    assert set(svcs["vllm"]["networks"]) == {"backend"}
    assert set(svcs["postgres"]["networks"]) == {"backend"}  # internal only, no published port
    assert set(svcs["ingest"]["networks"]) == {"backend"}
    assert set(svcs["ops"]["networks"]) == {"backend"}
    assert set(svcs["api"]["networks"]) == {"backend", "edge"}
    published = {name: _ports(s) for name, s in svcs.items() if s.get("ports")}
    assert list(published) == ["api"] and len(published["api"]) == 1
    assert published["api"][0].startswith("127.0.0.1:8000:8000")
    assert not any(s.get("network_mode") for s in svcs.values())


def test_compose_services_are_hardened_and_healthy(compose: Doc) -> None:
    svcs = compose["services"]
    for name, s in svcs.items():
        assert_pinned(s["image"], name)
        assert s["read_only"] is True, name
        assert s["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in s["security_opt"], name
    for name in ("qdrant", "vllm", "postgres", "api"):
        assert svcs[name]["healthcheck"]["test"][0] == "CMD", name
    assert svcs["qdrant"]["image"] == "qdrant/qdrant:v1.19.0-unprivileged"
    assert svcs["postgres"]["image"] == "postgres:15.18-bookworm" and svcs["postgres"]["user"] == "999:999"
    assert "scram-sha-256" in svcs["postgres"]["environment"]["POSTGRES_INITDB_ARGS"]
    assert svcs["vllm"]["user"] == "10002:10002"
    assert svcs["api"]["build"]["dockerfile"] == "Containerfile"
    assert Path(svcs["api"]["build"]["context"]).resolve() == ROOT
    assert svcs["ingest"]["profiles"] == ["ingest"] and svcs["ops"]["profiles"] == ["ops"]
    assert svcs["ingest"]["command"][:2] == ["ingest", "/documents"]
    assert any(v.endswith(":/documents:ro") for v in svcs["ingest"]["volumes"])


def test_compose_telemetry_usage_stats_and_request_logging_off(compose: Doc) -> None:
    svcs = compose["services"]
    assert svcs["qdrant"]["environment"]["QDRANT__TELEMETRY_DISABLED"] == "true"
    assert svcs["qdrant"]["environment"]["QDRANT__SERVICE__API_KEY"] == "changethis"  # from env.example
    v = svcs["vllm"]
    for key in ("VLLM_NO_USAGE_STATS", "DO_NOT_TRACK", "HF_HUB_OFFLINE"):
        assert str(v["environment"][key]) == "1", key
    assert v["entrypoint"] == ["vllm", "serve"]
    assert v["command"][0] == "/models/generator"
    assert "--no-enable-log-requests" in v["command"] and "--enable-log-requests" not in v["command"]
    assert any(vol.endswith(":/models:ro") for vol in v["volumes"])
    gpu = v["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia" and gpu["capabilities"] == ["gpu"]


def test_compose_api_settings_load_and_refuse_placeholder_keys(
    compose: Doc, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = compose["services"]["api"]
    for key in [k for k in os.environ if k.startswith("VRAAGBAAK_")]:
        monkeypatch.delenv(key)
    for key, value in api["environment"].items():
        if key.startswith("VRAAGBAAK_"):
            monkeypatch.setenv(key, str(value))
    with pytest.raises(ConfigError, match="hmac_key is a placeholder"):  # env.example as shipped
        load_settings(COMPOSE_DIR / "vraagbaak.example.yaml")
    monkeypatch.setenv("VRAAGBAAK_AUDIT__HMAC_KEY", REAL_SECRETS["AUDIT_HMAC_KEY"])
    s = load_settings(COMPOSE_DIR / "vraagbaak.example.yaml")
    assert s.store.url == "http://qdrant:6333" and s.generator.base_url == "http://vllm:8000/v1"
    assert s.generator.served_model_name == "vraagbaak-llm"
    assert "--served-model-name=vraagbaak-llm" in compose["services"]["vllm"]["command"]
    assert f"--max-model-len={s.generator.context_window}" in compose["services"]["vllm"]["command"]
    # one audit chain in the compose PostgreSQL, keyed; the ingest job writes to the same one
    assert s.audit.backend == "postgresql" and s.audit.require_hmac
    assert s.audit.dsn.get_secret_value().startswith("host=postgres port=5432 dbname=vraagbaak user=vraagbaak ")
    ingest_env = compose["services"]["ingest"]["environment"]
    assert ingest_env["VRAAGBAAK_AUDIT__DSN"] == api["environment"]["VRAAGBAAK_AUDIT__DSN"]
    assert s.catalog.url.get_secret_value() == "postgresql://vraagbaak:changethis@postgres:5432/vraagbaak"
    assert ingest_env["VRAAGBAAK_CATALOG__URL"] == api["environment"]["VRAAGBAAK_CATALOG__URL"]
    with pytest.raises(ConfigError, match="api_keys is empty"):
        s.check_serving_safety()
    hashed = {"key_sha256": "sha256:" + "0" * 64, "user_id": "it"}
    s = load_settings(COMPOSE_DIR / "vraagbaak.example.yaml", auth={"mode": "api-key", "api_keys": [hashed]})
    with pytest.raises(ConfigError, match="placeholder"):
        s.check_serving_safety()


# ---------------------------------------------------------------- Containerfile


def test_containerfile_is_pinned_offline_and_non_root() -> None:
    """The one Containerfile (tests/test_image.py builds and runs it): FROM a build argument,
    the official slim Python image by default; torch's CPU build pinned; non-root; offline."""
    assert not (ROOT / "Dockerfile").exists(), "keep one Containerfile"
    text = (ROOT / "Containerfile").read_text(encoding="utf-8")
    assert re.findall(r"^ARG BASE_IMAGE=(\S+)", text, re.M) == ["docker.io/library/python:3.11.9-slim-bookworm"]
    assert re.findall(r"^FROM\s+(\S+)", text, re.M) == ["${BASE_IMAGE}", "${BASE_IMAGE}"]
    assert "torch==2.13.0" in text and "pip install -q --no-deps ." in text
    for arg in ("DEBIAN_MIRROR", "PIP_INDEX_URL", "NPM_REGISTRY", "EXTRA_CA_CERTS", "TORCH_INDEX_URL"):
        assert re.search(rf"^ARG {arg}=", text, re.M), arg
    for script in ("scripts/install-tesseract", "scripts/install-wdutch", "scripts/install-deduce",
                   "deploy/image/fetch-frontend"):
        assert script in text, script
    assert "vraagbaak models prepare" in text
    assert re.search(r"^USER 10001:10001$", text, re.M)
    assert "HF_HUB_OFFLINE=1" in text
    assert 'ENTRYPOINT ["vraagbaak"]' in text
    assert 'CMD ["serve", "--config", "/etc/vraagbaak/config.yaml"]' in text
    for path in re.findall(r"^COPY\s+(\S+)", text, re.M):
        if path not in ("pyproject.toml", "README.md") and not path.startswith("--from"):
            assert (ROOT / path).exists(), f"Containerfile copies missing {path}"
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".git", ".venv", ".data", ".models", ".env", "frontend/node_modules"} <= set(ignored)


def test_ops_scripts_are_posix_sh_and_mounted(compose: Doc) -> None:
    scripts = sorted((COMPOSE_DIR / "ops").glob("*.sh"))
    assert [p.name for p in scripts] == ["qdrant-restore.sh", "qdrant-snapshot.sh"]
    for p in scripts:
        proc = run(["sh", "-n", str(p)])
        assert proc.returncode == 0, proc.stderr
        assert os.access(p, os.X_OK), f"{p.name} is not executable"
    assert any(v.endswith(":/ops:ro") for v in compose["services"]["ops"]["volumes"])


def _readme_yaml_blocks() -> list[str]:
    text = (DEPLOY / "README.md").read_text(encoding="utf-8")
    return [textwrap.dedent(b) for b in re.findall(r"```yaml\n(.*?)```", text, re.S)]


def test_readme_institution_overlay_renders_with_real_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The own-overlay recipe in deploy/README.md, rendered as written (path to the repo adjusted)."""
    kustomization, idp = (b for b in _readme_yaml_blocks() if "bases:" in b or "kind: NetworkPolicy" in b)
    inst = tmp_path / "institution"
    inst.mkdir()
    overlay = os.path.relpath(DEPLOY / "k8s" / "overlays" / "single-node", inst)
    (inst / "kustomization.yaml").write_text(
        kustomization.replace("../vraagbaak/deploy/k8s/overlays/single-node", overlay), encoding="utf-8"
    )
    (inst / "idp.yaml").write_text(idp, encoding="utf-8")
    (inst / "secrets.env").write_text("".join(f"{k}={v}\n" for k, v in REAL_SECRETS.items()), encoding="utf-8")
    shutil.copy(DEPLOY / "k8s" / "base" / "config.yaml", inst / "config.yaml")

    proc = run([tool("kubectl"), "kustomize", str(inst)])
    assert proc.returncode == 0, proc.stderr
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]

    for _, c in containers(docs):
        assert c["image"].startswith("registry.ziekenhuis.internal/"), c["image"]
        assert_pinned(c["image"], c["name"])
    secrets = [d for d in docs if d["kind"] == "Secret"]
    assert len(secrets) == 1
    assert base64.b64decode(secrets[0]["data"]["QDRANT_API_KEY"]).decode() == "q-Zk3v9LrT"
    egress = _rules(docs, "Egress")
    assert ("vraagbaak-api", "ip:10.20.30.40/32", "TCP", 443) in egress
    assert not any(peer == "ip:192.0.2.10/32" for _, peer, _, _ in egress)
    assert ("vraagbaak-api", "pod:qdrant", "TCP", 6333) in egress
    assert ("vraagbaak-api", "pod:postgres", "TCP", 5432) in egress

    # the API would start: real keys, the settings it reads in the pod (its env from this render)
    s = pod_settings(docs, "Deployment", "vraagbaak-api", tmp_path, monkeypatch)
    s.check_serving_safety()
    assert s.store.api_key == "q-Zk3v9LrT" and "password=p-4nRt7YwQ" in s.audit.dsn.get_secret_value()
