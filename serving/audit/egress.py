"""The egress proof (``vraagbaak audit egress``, the ``/beheer`` egress section's source): every outbound
endpoint the settings name and where it resolves, the offline and telemetry settings of this process and of the
workloads in ``deploy/`` (compose and Kubernetes), and a live self-test that the guard refuses a public address
before any packet leaves and audits the refusal."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from vraagbaak_core.egress import OFFLINE_ENV, Allowlist, configured_endpoints, guard_active
from vraagbaak_core.settings import DEFAULT_CONFIG, PROJECT_ROOT, Settings

Status = Literal["ok", "violation", "warning"]


def check_egress(settings: Settings, config: Path | None, deploy_dir: Path, self_test: bool = True) -> EgressReport:
    """The whole proof: endpoints, this process, ``deploy_dir``'s compose and k8s files, and (with
    ``self_test``) the live guard test in a fresh process started with ``config``."""
    report = EgressReport()
    _check_endpoints(settings, report)
    _check_process(settings, report)
    _check_compose(deploy_dir, report)
    _check_k8s(deploy_dir, report)
    if self_test:
        _run_self_test(config, report)
    return report


@dataclass
class Finding:
    area: str
    subject: str
    status: Status
    detail: str


@dataclass
class EgressReport:
    findings: list[Finding] = field(default_factory=list)
    endpoints: list[dict[str, Any]] = field(default_factory=list)
    allowlist: str = ""
    self_test: dict[str, Any] | None = None

    def add(self, area: str, subject: str, status: Status, detail: str) -> None:
        self.findings.append(Finding(area, subject, status, detail))

    @property
    def ok(self) -> bool:
        return not any(f.status == "violation" for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "violations": [asdict(f) for f in self.findings if f.status == "violation"],
            "warnings": [asdict(f) for f in self.findings if f.status == "warning"],
            "findings": [asdict(f) for f in self.findings],
            "endpoints": self.endpoints,
            "allowlist": self.allowlist,
            "self_test": self.self_test,
        }


def _resolve(host: str, port: int, timeout_s: float = 5.0) -> list[str] | None:
    try:
        ipaddress.ip_address(host)
        return [host]
    except ValueError:
        pass
    with ThreadPoolExecutor(max_workers=1) as pool:
        fut = pool.submit(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
        try:
            infos = fut.result(timeout=timeout_s)
        except (OSError, FutureTimeout):
            return None
    return sorted({str(i[4][0]) for i in infos})


def _address_class(ips: list[str]) -> str:
    addrs = [ipaddress.ip_address(i.split("%", 1)[0]) for i in ips]
    if all(a.is_loopback for a in addrs):
        return "loopback"
    if any(a.is_global for a in addrs):
        return "public"
    return "private"


def _check_endpoints(settings: Settings, report: EgressReport) -> None:
    allow = Allowlist.from_settings(settings)
    report.allowlist = allow.describe()
    for cidr in allow.cidrs:
        if cidr.prefixlen == 0:
            report.add("allow-list", str(cidr), "violation", "egress.allow_cidrs allows every address")
        elif cidr.is_global:
            report.add("allow-list", str(cidr), "warning", "egress.allow_cidrs names a public range")
    for ep in configured_endpoints(settings):
        on_list = allow.host_allowed(ep.host, ep.port) or allow.check_connect(ep.host, ep.port) is None
        ips = _resolve(ep.host, ep.port)
        entry: dict[str, Any] = {
            "setting": ep.name,
            "url": ep.url,
            "address": ep.address,
            "on_allowlist": on_list,
            "resolves_to": ips,
        }
        if ips is None:
            entry["class"] = "unresolved"
            report.add(
                "endpoint", ep.name, "warning", f"{ep.address} does not resolve here; cannot classify it"
            )
        else:
            cls = _address_class(ips)
            entry["class"] = cls
            in_cidr = all(
                any(
                    ipaddress.ip_address(i) in net
                    for net in allow.cidrs
                    if net.version == ipaddress.ip_address(i).version
                )
                for i in ips
            )
            if cls == "public" and not in_cidr:
                report.add(
                    "endpoint", ep.name, "violation", f"{ep.address} resolves to public {', '.join(ips)}"
                )
            elif cls == "public":
                report.add("endpoint", ep.name, "warning", f"{ep.address} is public but named in allow_cidrs")
            else:
                report.add("endpoint", ep.name, "ok", f"{ep.address} -> {', '.join(ips)} ({cls})")
        report.endpoints.append(entry)
    if not report.endpoints:
        report.add(
            "endpoint", "-", "ok", "no outbound endpoints configured (embedded: everything in-process)"
        )


def _check_process(settings: Settings, report: EgressReport) -> None:
    for key, want in OFFLINE_ENV.items():
        got = os.environ.get(key)
        if got is not None and got.strip().lower() in (want, "true", "yes"):
            report.add("process", key, "ok", f"{key}={got}")
        else:
            report.add("process", key, "violation", f"{key} is {got!r}; must be {want}")
    if not settings.egress.guard:
        report.add("process", "egress.guard", "violation", "egress.guard is off in the settings")
    if guard_active():
        report.add("process", "runtime guard", "ok", "the egress guard is armed in this process")
    else:
        report.add("process", "runtime guard", "warning", "not armed in this process (see the self-test)")


# --- deploy/ ---


def _env_map(env: Any) -> dict[str, str]:
    if isinstance(env, dict):
        return {str(k): "" if v is None else str(v) for k, v in env.items()}
    out: dict[str, str] = {}
    if isinstance(env, list):
        for item in env:
            if isinstance(item, str):
                k, _, v = item.partition("=")
                out[k] = v
            elif isinstance(item, dict) and "name" in item:
                out[str(item["name"])] = str(item.get("value", ""))
    return out


def _args_text(*parts: Any) -> str:
    words: list[str] = []
    for p in parts:
        if isinstance(p, str):
            words.append(p)
        elif isinstance(p, list):
            words.extend(str(x) for x in p)
    return " ".join(words)


def _has_flag(args: str, flag: str) -> bool:
    """Whether ``flag`` is set (``--flag`` or ``--flag=true``) among the words of a command line."""
    for word in args.split():
        name, eq, value = word.partition("=")
        if name == flag and (not eq or _truthy(value)):
            return True
    return False


def _truthy(v: str | None) -> bool:
    return v is not None and v.strip().strip("'\"").lower() in ("1", "true", "yes", "on")


def _image_version(image: str) -> tuple[int, ...] | None:
    tag = image.rsplit(":", 1)[-1] if ":" in image.rsplit("/", 1)[-1] else ""
    nums = tag.lstrip("v").split("-")[0].split(".")
    try:
        return tuple(int(n) for n in nums[:2]) if tag else None
    except ValueError:
        return None


def _check_workload(
    report: EgressReport, where: str, image: str, env: dict[str, str], args: str, extra_text: str
) -> bool:
    """Check one Qdrant or vLLM container; returns whether it was one."""
    name = image.lower()
    if "qdrant" in name:
        off = _truthy(env.get("QDRANT__TELEMETRY_DISABLED")) or _has_flag(args, "--disable-telemetry")
        off = off or "telemetry_disabled: true" in extra_text
        report.add(
            "deploy",
            f"{where} qdrant telemetry",
            "ok" if off else "violation",
            "telemetry disabled"
            if off
            else "QDRANT__TELEMETRY_DISABLED=true (or --disable-telemetry) missing",
        )
        return True
    if "vllm" in name:
        stats_off = _truthy(env.get("VLLM_NO_USAGE_STATS")) or _truthy(env.get("DO_NOT_TRACK"))
        report.add(
            "deploy",
            f"{where} vllm usage stats",
            "ok" if stats_off else "violation",
            "usage stats off" if stats_off else "VLLM_NO_USAGE_STATS=1 / DO_NOT_TRACK=1 missing",
        )
        version = _image_version(image)
        if _has_flag(args, "--enable-log-requests"):
            report.add("deploy", f"{where} vllm request logging", "violation", "--enable-log-requests is set")
        elif (
            _has_flag(args, "--disable-log-requests")
            or _has_flag(args, "--no-enable-log-requests")
            or (version is not None and version >= (0, 10))
        ):
            report.add("deploy", f"{where} vllm request logging", "ok", "request logging off")
        else:
            report.add(
                "deploy",
                f"{where} vllm request logging",
                "violation",
                "image older than 0.10 (or unpinned) without --disable-log-requests",
            )
        hub_off = _truthy(env.get("HF_HUB_OFFLINE"))
        report.add(
            "deploy",
            f"{where} vllm hub access",
            "ok" if hub_off else "violation",
            "HF_HUB_OFFLINE=1" if hub_off else "HF_HUB_OFFLINE=1 missing: vLLM may try the model hub",
        )
        return True
    return False


def _read_env_file(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, _, v = line.partition("=")
                out[k.strip()] = v.strip()
    return out


def _check_compose(deploy_dir: Path, report: EgressReport) -> None:
    names = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
    files = [deploy_dir / "compose" / n for n in names if (deploy_dir / "compose" / n).is_file()]
    if not files:
        report.add("deploy", "compose", "warning", f"not found: {deploy_dir / 'compose' / 'compose.yaml'}")
        return
    for f in files:
        try:
            doc = yaml.safe_load(f.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as err:
            report.add("deploy", str(f), "violation", f"unreadable YAML: {err}")
            continue
        found = False
        services = doc.get("services") or {}
        for sname, svc in services.items() if isinstance(services, dict) else []:
            if not isinstance(svc, dict):
                continue
            env: dict[str, str] = {}
            env_files = svc.get("env_file") or []
            for ef in [env_files] if isinstance(env_files, str | dict) else env_files:
                ef_path = ef.get("path") if isinstance(ef, dict) else ef
                if isinstance(ef_path, str):
                    env.update(_read_env_file(f.parent / ef_path))
            env.update(_env_map(svc.get("environment")))
            args = _args_text(svc.get("entrypoint"), svc.get("command"))
            image = str(svc.get("image") or "")
            found |= _check_workload(report, f"compose:{sname}", image, env, args, "")
        if not found:
            report.add("deploy", str(f), "warning", "no Qdrant or vLLM service found")


def _k8s_docs(deploy_dir: Path, report: EgressReport) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    k8s = deploy_dir / "k8s"
    kdirs = sorted({p.parent for p in k8s.rglob("kustomization.y*ml")})
    kubectl = shutil.which("kubectl")
    if kdirs and kubectl:
        referenced: set[Path] = set()
        for d in kdirs:
            kfile = next(d.glob("kustomization.y*ml"))
            kdoc = yaml.safe_load(kfile.read_text(encoding="utf-8")) or {}
            for key in ("resources", "bases", "components"):
                for ref in kdoc.get(key) or []:
                    referenced.add((d / str(ref)).resolve())
        for d in kdirs:
            if d.resolve() in referenced:
                continue
            proc = subprocess.run(
                [kubectl, "kustomize", str(d)], capture_output=True, text=True, timeout=60, check=False
            )
            rel = str(d.relative_to(deploy_dir))
            if proc.returncode != 0:
                report.add(
                    "deploy", rel, "violation", f"kubectl kustomize failed: {proc.stderr.strip()[:300]}"
                )
                continue
            yield rel, [x for x in yaml.safe_load_all(proc.stdout) if isinstance(x, dict)]
        return
    if kdirs:
        report.add(
            "deploy", "k8s", "warning", "kubectl not found; checked the raw manifests without kustomize"
        )
    docs: list[dict[str, Any]] = []
    for f in sorted([*k8s.rglob("*.yaml"), *k8s.rglob("*.yml")]):
        if f.name.startswith("kustomization."):
            continue
        try:
            docs += [x for x in yaml.safe_load_all(f.read_text(encoding="utf-8")) if isinstance(x, dict)]
        except yaml.YAMLError as err:
            report.add("deploy", str(f.relative_to(deploy_dir)), "violation", f"unreadable YAML: {err}")
    yield "k8s", docs  # one group, so ConfigMaps in other files resolve


def _pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    spec = doc.get("spec") or {}
    if doc.get("kind") == "Pod":
        return spec if isinstance(spec, dict) else None
    if doc.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    tmpl = (spec.get("template") or {}).get("spec")
    return tmpl if isinstance(tmpl, dict) else None


def _check_k8s(deploy_dir: Path, report: EgressReport) -> None:
    if not (deploy_dir / "k8s").is_dir():
        report.add("deploy", "k8s", "warning", f"not found: {deploy_dir / 'k8s'}")
        return
    for where, docs in _k8s_docs(deploy_dir, report):
        configmaps: dict[str, dict[str, str]] = {}
        for d in docs:
            if d.get("kind") == "ConfigMap":
                name = str((d.get("metadata") or {}).get("name", ""))
                configmaps[name] = {str(k): str(v) for k, v in (d.get("data") or {}).items()}
        found = False
        for d in docs:
            pod = _pod_spec(d)
            if pod is None:
                continue
            wname = f"k8s:{where}:{d.get('kind')}/{(d.get('metadata') or {}).get('name')}"
            volume_cms = [
                str((v.get("configMap") or {}).get("name"))
                for v in pod.get("volumes") or []
                if v.get("configMap")
            ]
            for c in [*(pod.get("containers") or []), *(pod.get("initContainers") or [])]:
                env: dict[str, str] = {}
                for ef in c.get("envFrom") or []:
                    ref = (ef.get("configMapRef") or {}).get("name")
                    env.update(configmaps.get(str(ref), {}))
                env.update(_env_map(c.get("env")))
                extra = "\n".join(v for n in volume_cms for v in configmaps.get(n, {}).values())
                args = _args_text(c.get("command"), c.get("args"))
                found |= _check_workload(
                    report, f"{wname}/{c.get('name')}", str(c.get("image", "")), env, args, extra
                )
        if not found:
            report.add("deploy", f"k8s:{where}", "warning", "no Qdrant or vLLM workload found")


def _run_self_test(config: Path | None, report: EgressReport) -> None:
    cfg = (config or DEFAULT_CONFIG).resolve()
    cmd = [sys.executable, "-m", "vraagbaak_core.egress", "self-test", str(cfg)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT, check=False)
    except subprocess.TimeoutExpired:
        report.add("self-test", "guard", "violation", "the self-test did not finish in 120 s")
        return
    try:
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        report.add(
            "self-test", "guard", "violation", f"self-test failed to run: {proc.stderr.strip()[-500:]}"
        )
        return
    report.self_test = result
    for check in result.get("checks", []):
        report.add("self-test", check["check"], "ok" if check["ok"] else "violation", check["detail"])
    refused = sum(1 for c in result.get("checks", []) if c["ok"] and "refused" in c["check"])
    audited = int(result.get("audited_refusals", 0))
    report.add(
        "self-test",
        "refusals audited",
        "ok" if audited >= refused > 0 else "violation",
        f"{audited} egress.refused records written for {refused} refused probes",
    )
