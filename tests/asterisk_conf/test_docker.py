"""docker/: the compose file, the images, Puente's config example, Prometheus and Grafana."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from compliance import ComplianceSettings
from db import DatabaseSettings
from dialer.amd import LiveAmdSettings
from ivr import IvrSettings
from pbx.agi import AgiSettings
from pbx.ami import AmiSettings
from pbx.audiosocket import AudioSocketSettings
from puente.settings import NodeSettings, load
from puente.wiring import DialerSettings
from tests.asterisk_conf._conf import ROOT, load_conf, parse_conf
from web._metrics import PuenteMetrics

DOCKER = ROOT / "docker"
SERVICES = {"postgres", "prompts", "puente", "asterisk", "prometheus", "grafana"}
SECTIONS = {
    "node": NodeSettings,
    "database": DatabaseSettings,
    "ami": AmiSettings,
    "agi": AgiSettings,
    "audiosocket": AudioSocketSettings,
    "dialer": DialerSettings,
    "compliance": ComplianceSettings,
    "amd": LiveAmdSettings,
    "ivr": IvrSettings,
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def puente_yaml() -> dict:
    return yaml.safe_load((DOCKER / "puente.yaml").read_text(encoding="utf-8"))


def _default(text: str) -> str:
    """``${VAR:-default}`` -> default (what compose uses when VAR is unset)."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", text)


def _published(service: dict) -> list[str]:
    return [str(p) for p in service.get("ports", [])]


# -- compose.yaml ---------------------------------------------------------------------------------
def test_services_and_their_dependencies(compose) -> None:
    services = compose["services"]
    assert set(services) == SERVICES
    pg = services["postgres"]
    assert pg["image"].startswith("postgres:16")
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    assert any(str(v).endswith(":/var/lib/postgresql/data") for v in pg["volumes"])
    puente = services["puente"]
    assert puente["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert puente["depends_on"]["prompts"]["condition"] == "service_completed_successfully"
    for name in ("puente", "prompts"):
        build = services[name]["build"]
        assert (build["context"], build["dockerfile"]) == ("..", "docker/Dockerfile")
    assert services["prompts"]["command"][:3] == ["puente", "ivr", "prompts"]


def test_puente_environment_and_secrets(compose) -> None:
    puente = compose["services"]["puente"]
    env = puente["environment"]
    assert env["PUENTE_AMI_HOST"] == "asterisk"
    assert re.fullmatch(
        r"postgresql://puente:\$\{POSTGRES_PASSWORD:\?[^}]+\}@postgres:5432/puente",
        env["PUENTE_DATABASE_URL"],
    )
    assert "PUENTE_AMI_SECRET" not in env  # from the env file, never written in compose.yaml
    # The AMI secret goes to Puente and Asterisk only; compose's own secrets go nowhere else.
    for name in ("puente", "asterisk"):
        assert compose["services"][name]["env_file"] == ["puente.env"]
    for name in ("postgres", "prompts", "prometheus", "grafana"):
        assert "env_file" not in compose["services"][name]
    assert _example("puente.env.example") == {"PUENTE_AMI_SECRET": ""}
    # Every variable compose insists on is in the example .env, empty.
    required = set(re.findall(r"\$\{([A-Z_]+):\?", (DOCKER / "compose.yaml").read_text()))
    example = _example("env.example")
    assert required <= set(example)
    assert all(not example[k] for k in required)
    assert "PUENTE_AMI_SECRET" not in example


def _example(name: str) -> dict[str, str]:
    return dict(
        ln.split("=", 1)
        for ln in (DOCKER / name).read_text().splitlines()
        if ln and not ln.startswith("#")
    )


def test_ports_publish_only_what_must_be_reached(compose) -> None:
    services = compose["services"]
    assert _published(services["puente"]) == ["127.0.0.1:8080:8080"]
    assert "5060:5060/udp" in _published(services["asterisk"])
    for name in ("prometheus", "grafana"):
        assert all(p.startswith("127.0.0.1:") for p in _published(services[name])), name
    for name, service in services.items():
        for p in _published(service):
            # AMI, FastAGI, AudioSocket and PostgreSQL stay on the compose network.
            assert not re.search(r"\b(5038|4573|9092|5432)\b", p), (name, p)
    assert not _published(services["postgres"])
    # RTP: the published range is rtp.conf's.
    rtp = load_rtp()
    assert f"{rtp[0]}-{rtp[1]}:{rtp[0]}-{rtp[1]}/udp" in _published(services["asterisk"])


def load_rtp() -> tuple[int, int]:
    conf = parse_conf((DOCKER / "asterisk" / "rtp.conf").read_text(), "rtp.conf")
    g = conf.section("general")
    return int(g.get("rtpstart")), int(g.get("rtpend"))


def test_asterisk_gets_the_contract_and_finds_puente(compose) -> None:
    services = compose["services"]
    asterisk = services["asterisk"]
    assert "../asterisk_conf:/etc/puente-asterisk:ro" in asterisk["volumes"]
    assert asterisk["build"]["context"] == "./asterisk"
    puente_ip = _default(services["puente"]["networks"]["puente"]["ipv4_address"])
    assert _default(asterisk["environment"]["PUENTE_HOST"]) == puente_ip
    subnet = _default(compose["networks"]["puente"]["ipam"]["config"][0]["subnet"])
    assert puente_ip.rsplit(".", 1)[0] == subnet.split("/")[0].rsplit(".", 1)[0]
    # The prompts job writes where Asterisk plays them from (puente/<lang>/<id>).
    prompts = services["prompts"]
    assert "sounds:/srv/sounds/puente" in prompts["volumes"]
    assert prompts["command"][-1] == "/srv/sounds"
    assert "sounds:/var/lib/asterisk/sounds/puente:ro" in asterisk["volumes"]


# -- Puente's image -------------------------------------------------------------------------------
def _instructions(path: Path) -> list[tuple[str, str]]:
    text = path.read_text(encoding="utf-8").replace("\\\n", " ")
    out = []
    for ln in text.splitlines():
        ln = ln.strip()
        if ln and not ln.startswith("#"):
            word, _, rest = ln.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_puente_dockerfile_runs_unprivileged_with_a_healthcheck() -> None:
    ins = _instructions(DOCKER / "Dockerfile")
    assert ins[0] == ("FROM", "python:3.11-slim-bookworm")
    users = [rest for word, rest in ins if word == "USER"]
    assert users
    assert users[-1] not in ("root", "0", "0:0")
    health = [rest for word, rest in ins if word == "HEALTHCHECK"]
    assert health
    assert "http://127.0.0.1:8080/healthz" in health[0]
    assert json.loads(next(rest for word, rest in ins if word == "CMD")) == [
        "puente", "run", "--config", "/etc/puente/puente.yaml",
    ]  # fmt: skip
    runs = " ".join(rest for word, rest in ins if word == "RUN")
    assert "pip install -r requirements/lock.txt" in runs
    assert "espeak-ng" in runs
    assert "sox" in runs
    copies = [rest.split() for word, rest in ins if word == "COPY"]
    sources = {c[0].rstrip("/") for c in copies if len(c) == 2}
    for src in sources:
        assert (ROOT / src).exists(), src
    assert ["docker/puente.yaml", "/etc/puente/puente.yaml"] in copies
    # Every package pyproject installs is in the image.
    pyproject = (ROOT / "pyproject.toml").read_text()
    packages = re.findall(r'"(\w+)\*"', re.search(r"include = \[(.*?)\]", pyproject).group(1))
    assert set(packages) <= sources, set(packages) - sources


def test_asterisk_image_configs_parse_and_are_copied() -> None:
    text = (DOCKER / "asterisk" / "Dockerfile").read_text()
    for path in sorted((DOCKER / "asterisk").glob("*.conf")):
        assert parse_conf(path.read_text(), path.name).sections, path.name
        assert path.name in text, f"{path.name} is not copied into the image"
    modules = parse_conf((DOCKER / "asterisk" / "modules.conf").read_text()).section("modules")
    assert modules.get("autoload") == "yes"
    needed = {"res_pjsip.so", "chan_pjsip.so", "pbx_config.so", "res_audiosocket.so",
              "app_audiosocket.so", "res_agi.so", "app_queue.so", "app_userevent.so",
              "app_playback.so", "res_musiconhold.so"}  # fmt: skip
    assert not needed & set(modules.all("noload"))
    moh = parse_conf((DOCKER / "asterisk" / "musiconhold.conf").read_text())
    assert moh.has(load_conf("queues.conf").section("collections").get("musicclass"))


def test_asterisk_image_drops_root_and_has_a_healthcheck() -> None:
    ins = _instructions(DOCKER / "asterisk" / "Dockerfile")
    assert any(w == "HEALTHCHECK" for w, _ in ins)
    cmd = json.loads(next(rest for word, rest in reversed(ins) if word == "CMD"))
    assert cmd[:2] == ["asterisk", "-f"]
    assert cmd[cmd.index("-U") + 1] == "asterisk"
    froms = [rest for w, rest in ins if w == "FROM"]
    assert all("bookworm" in f or "DEBIAN_IMAGE" in f for f in froms)
    text = (DOCKER / "asterisk" / "Dockerfile").read_text()
    assert "downloads.asterisk.org" in text
    assert "ASTERISK_SHA256" in text
    for module in ("app_audiosocket", "res_audiosocket", "app_queue", "res_agi"):
        assert f"--enable {module}" in text


# -- the Asterisk entrypoint ----------------------------------------------------------------------
def _render(tmp_path: Path, secret: str, local: dict[str, str] | None = None):
    dst, local_dir = tmp_path / "etc", tmp_path / "local"
    dst.mkdir(exist_ok=True)
    local_dir.mkdir(exist_ok=True)
    for name, text in (local or {}).items():
        (local_dir / name).write_text(text)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PUENTE_ASTERISK_SRC": str(ROOT / "asterisk_conf"),
        "PUENTE_ASTERISK_LOCAL": str(local_dir),
        "PUENTE_ASTERISK_DST": str(dst),
        "PUENTE_HOST": "172.28.0.10",
        "PUENTE_AMI_SECRET": secret,
    }
    proc = subprocess.run(
        ["sh", str(DOCKER / "asterisk" / "entrypoint.sh"), "true"],
        env=env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    return proc, dst


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
def test_entrypoint_renders_ami_and_globals_for_the_container_network(tmp_path: Path) -> None:
    secret = "s3cret.Value+/=_-~0123456789"
    proc, dst = _render(tmp_path, secret)
    assert proc.returncode == 0, proc.stderr
    manager = parse_conf((dst / "manager.conf").read_text(), "manager.conf")
    assert manager.section("general").get("bindaddr") == "0.0.0.0"
    user = manager.section("puente")
    assert user.get("secret") == secret
    assert user.all("permit") == ["172.28.0.10/255.255.255.255"]
    assert user.all("deny") == ["0.0.0.0/0.0.0.0"]
    shipped = load_conf("manager.conf").section("puente")
    assert user.get("read") == shipped.get("read")
    assert user.get("write") == shipped.get("write")
    g = parse_conf((dst / "extensions.conf").read_text()).section("globals")
    assert g.get("PUENTE_AGI") == "172.28.0.10:4573"
    assert g.get("PUENTE_AUDIOSOCKET") == "172.28.0.10:9092"
    # The repository's files are untouched.
    assert load_conf("manager.conf").section("general").get("bindaddr") == "127.0.0.1"


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
@pytest.mark.parametrize("secret", ["", "CHANGE_ME_puente_ami_secret", "short", "has;semicolon123"])
def test_entrypoint_refuses_placeholder_short_or_unsafe_secrets(
    tmp_path: Path, secret: str
) -> None:
    proc, _ = _render(tmp_path, secret)
    assert proc.returncode != 0
    assert "PUENTE_AMI_SECRET" in proc.stderr
    assert not secret or secret not in proc.stderr  # never echoed


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
def test_entrypoint_takes_site_files_over_the_shipped_ones(tmp_path: Path) -> None:
    site = "[trunk]\ntype = endpoint\ncontext = puente-inbound\n"
    proc, dst = _render(tmp_path, "a" * 24, {"pjsip.conf": site})
    assert proc.returncode == 0, proc.stderr
    assert (dst / "pjsip.conf").read_text() == site


# -- docker/puente.yaml ---------------------------------------------------------------------------
def test_config_example_has_every_section_and_loads(puente_yaml) -> None:
    assert set(puente_yaml) == set(SECTIONS) | {"web"}
    env = {"PUENTE_AMI_SECRET": "x" * 24}
    for section, cls in SECTIONS.items():
        load(cls, section, environ=env, file_values=puente_yaml[section])  # raises if bad
    for section in puente_yaml.values():
        assert not {"secret", "url", "password"} & set(section), "secrets come from the env"
    assert puente_yaml["agi"]["host"] == puente_yaml["audiosocket"]["host"] == "0.0.0.0"
    assert puente_yaml["ami"]["host"] == "asterisk"
    assert puente_yaml["web"]["host"] == "0.0.0.0"
    assert puente_yaml["web"]["port"] == 8080
    try:
        from web._settings import WebSettings
    except ImportError:  # the web package's settings, when present
        return
    load(WebSettings, "web", environ={}, file_values=puente_yaml["web"])


# -- Prometheus and Grafana -----------------------------------------------------------------------
def test_prometheus_scrapes_puentes_metrics(compose, puente_yaml) -> None:
    prom = yaml.safe_load((DOCKER / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    job = jobs["puente"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    assert targets == [f"puente:{puente_yaml['web']['port']}"]
    assert (
        "./prometheus.yml:/etc/prometheus/prometheus.yml:ro"
        in (compose["services"]["prometheus"]["volumes"])
    )


def _dashboard() -> dict:
    return json.loads((DOCKER / "grafana" / "dashboards" / "puente.json").read_text())


def _exprs(panels: list[dict]) -> list[str]:
    out = []
    for p in panels:
        out += [t["expr"] for t in p.get("targets", []) if "expr" in t]
        out += _exprs(p.get("panels", []))
    return out


def test_dashboard_queries_only_metrics_puente_defines() -> None:
    dash = _dashboard()
    exprs = _exprs(dash["panels"])
    exprs += [v["query"]["query"] for v in dash["templating"]["list"] if v["type"] == "query"]
    used = {n for e in exprs for n in re.findall(r"\bpuente_[a-z0-9_]+", e)}
    defined = PuenteMetrics().names()
    assert used <= defined, used - defined
    # ...and shows every metric Puente defines.
    families = {f.name for f in PuenteMetrics().registry.collect()}
    for family in families:
        assert any(u == family or u.startswith(family + "_") for u in used), family


def test_grafana_provisioning_matches_the_dashboard(compose) -> None:
    ds = yaml.safe_load(
        (DOCKER / "grafana" / "provisioning" / "datasources" / "prometheus.yaml").read_text()
    )
    (source,) = ds["datasources"]
    assert source["url"] == "http://prometheus:9090"
    assert source["type"] == "prometheus"
    uids = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("datasource"), dict):
                uids.add(node["datasource"]["uid"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(_dashboard())
    assert uids == {source["uid"]}
    providers = yaml.safe_load(
        (DOCKER / "grafana" / "provisioning" / "dashboards" / "puente.yaml").read_text()
    )["providers"]
    path = providers[0]["options"]["path"]
    assert f"./grafana/dashboards:{path}:ro" in compose["services"]["grafana"]["volumes"]
    assert (
        "./grafana/provisioning:/etc/grafana/provisioning:ro"
        in (compose["services"]["grafana"]["volumes"])
    )
    kinds = {p["type"] for p in _dashboard()["panels"]}
    assert {"heatmap", "timeseries", "row"} <= kinds
