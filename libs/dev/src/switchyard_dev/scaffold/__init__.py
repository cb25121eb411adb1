"""`make new-service NAME=<name>` and `make remove-service NAME=<name>`.

`new` writes a working service from the template tree beside this module
(`template/`: every path segment `__name__` and every `{{name}}`, `{{Name}}`,
`{{NAME}}`, `{{port}}`, `{{metrics_port}}`, `{{date}}` in a `*.tmpl` file is
replaced; the suffix goes), then registers it:

- one `[[service]]` entry appended to protos/switchyard/services.toml (ports:
  the next free gRPC port after the others, the first free metrics port from
  9151), which the launcher, the gateway, the Makefile and the image check
  read, and from which `make registry` rewrites skaffold.yaml and the k8s lists;
- its import-linter package and two contracts in the root pyproject.toml;
- its dev and prod components in the overlays' kustomizations (one line each,
  in the region marked for `make new-service`).

`remove` takes exactly that out again: the folders, the registry entry, the
lines and contracts. The Makefile targets then run `uv lock`, `make registry`
and `make protos`. Nothing here is installed in an image (dev package only).
"""

from __future__ import annotations

import datetime
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[5]
TEMPLATE = Path(__file__).resolve().parent / "template"
REGISTRY = Path("protos/switchyard/services.toml")
PYPROJECT = Path("pyproject.toml")
OVERLAYS = (
    Path("k8s/overlays/dev/kustomization.yaml"),
    Path("k8s/overlays/prod/kustomization.yaml"),
)
COMPONENTS_BEGIN = "# BEGIN added by `make new-service`"
COMPONENTS_END = "# END added by `make new-service`"
# Every folder a service owns, relative to the root (`{name}` substituted).
OWNED = (
    "services/{name}",
    "protos/switchyard/{name}",
    "k8s/base/{name}",
    "k8s/overlays/dev/{name}",
    "k8s/overlays/prod/{name}",
)
NAME = re.compile(r"^[a-z][a-z0-9]{1,19}$")
# Names whose folders, images or /v1/<name> routes are taken by the platform itself;
# the first four are the platform's own services (auth calls profile, /v1/me reads
# three of them), which `remove` refuses to take out.
CORE_SERVICES = frozenset({"auth", "profile", "payment", "recommendation"})
RESERVED = CORE_SERVICES | {
    "api", "events", "gateway", "kit", "dev", "protos", "services", "me", "wallet",
    "payments", "profiles", "recommendations", "healthz", "readyz", "metrics", "docs",
    "openapi", "redis", "database", "pgbouncer", "switchyard", "monitoring",
}  # fmt: skip
FIRST_METRICS_PORT = 9151
# Not in the registry but taken: the gateway's HTTP and metrics ports.
PLATFORM_PORTS = frozenset({8080, 9150})


class ScaffoldError(Exception):
    """The service cannot be added or removed; the message says why."""


@dataclass(frozen=True)
class NewService:
    name: str
    port: int
    metrics_port: int

    @property
    def substitutions(self) -> dict[str, str]:
        return {
            "{{name}}": self.name,
            "{{Name}}": self.name.capitalize(),
            "{{NAME}}": self.name.upper(),
            "{{port}}": str(self.port),
            "{{metrics_port}}": str(self.metrics_port),
            "{{date}}": datetime.date.today().isoformat(),
        }


def _registered(root: Path) -> list[dict[str, object]]:
    services: list[dict[str, object]] = tomllib.loads((root / REGISTRY).read_text())["service"]
    return services


def _used_ports(root: Path) -> set[int]:
    used = set(PLATFORM_PORTS)
    for service in _registered(root):
        used |= {int(str(service["port"])), int(str(service["metrics_port"]))}
        for process in service.get("process", []):  # type: ignore[attr-defined]
            used |= {int(process["liveness_port"]), int(process.get("metrics_port", 0))}
    return used


def plan(name: str, root: Path = ROOT) -> NewService:
    """The new service's name checked and its ports chosen; ScaffoldError if it cannot be."""
    if not NAME.match(name):
        raise ScaffoldError(
            f"NAME must be 2 to 20 lower-case letters and digits, starting with a letter: {name!r}"
        )
    if name in RESERVED:
        raise ScaffoldError(f"{name!r} is taken by the platform; choose another name")
    if any(service["name"] == name for service in _registered(root)):
        raise ScaffoldError(f"{name!r} is already in {REGISTRY}")
    for folder in OWNED:
        if (root / folder.format(name=name)).exists():
            raise ScaffoldError(f"{folder.format(name=name)} exists already")
    used = _used_ports(root)
    port = max(int(str(s["port"])) for s in _registered(root)) + 1
    while port in used:
        port += 1
    metrics_port = FIRST_METRICS_PORT
    while metrics_port in used:
        metrics_port += 1
    return NewService(name, port, metrics_port)


def render(service: NewService, root: Path = ROOT) -> list[Path]:
    """Write the template tree for `service` under `root`; the files written."""
    written = []
    for source in sorted(TEMPLATE.rglob("*.tmpl")):
        relative = str(source.relative_to(TEMPLATE)).replace("__name__", service.name)
        target = root / relative.removesuffix(".tmpl")
        text = source.read_text()
        for placeholder, value in service.substitutions.items():
            text = text.replace(placeholder, value)
        if "{{" in text:
            left = text[text.index("{{") :][:30]
            raise ScaffoldError(f"{source}: an unknown placeholder is left: {left!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        written.append(target)
    return written


def registry_entry(service: NewService) -> str:
    return (
        "[[service]]\n"
        f'name = "{service.name}"\n'
        f'grpc_service = "switchyard.{service.name}.v1.{service.name.capitalize()}Service"\n'
        f'proto_module = "switchyard.{service.name}.v1.{service.name}_pb2"\n'
        f"port = {service.port}\n"
        f"metrics_port = {service.metrics_port}\n"
    )


def _registry_chunks(text: str) -> list[str]:
    """The registry split before each `[[service]]` line (the first chunk: the header)."""
    return re.split(r"(?m)^(?=\[\[service\]\]\s*$)", text)


def add_to_registry(service: NewService, root: Path = ROOT) -> None:
    path = root / REGISTRY
    path.write_text(path.read_text().rstrip("\n") + "\n\n" + registry_entry(service))


def remove_from_registry(name: str, root: Path = ROOT) -> None:
    """Take out the `[[service]]` table of `name` with its `[[service.process]]` tables."""
    path = root / REGISTRY
    chunks = _registry_chunks(path.read_text())
    kept = [c for c in chunks if not re.search(rf'(?m)^name\s*=\s*"{name}"\s*$', c)]
    if len(kept) == len(chunks):
        raise ScaffoldError(f"{name!r} is not in {REGISTRY}")
    path.write_text("".join(kept).rstrip("\n") + "\n")


def import_contracts(name: str) -> str:
    """The two import-linter contracts every service has (see the root pyproject.toml)."""
    return f"""
[[tool.importlinter.contracts]]
id = "{name}-inner-layers"
name = "{name}: domain and service layer import no grpc, SQLAlchemy, redis, alembic, OpenTelemetry"
type = "forbidden"
source_modules = ["{name}_service.domain", "{name}_service.service_layer"]
forbidden_modules = ["grpc", "sqlalchemy", "redis", "alembic", "opentelemetry"]

[[tool.importlinter.contracts]]
id = "{name}-layers"
name = "{name}: imports point inward (entrypoints -> adapters -> service layer -> domain)"
type = "layers"
containers = ["{name}_service"]
layers = ["entrypoints", "adapters", "service_layer", "domain"]
"""


_ROOT_PACKAGES = re.compile(r"(?ms)^(root_packages = \[\n.*?)(^\])")


def add_to_pyproject(name: str, root: Path = ROOT) -> None:
    path = root / PYPROJECT
    text, count = _ROOT_PACKAGES.subn(rf'\g<1>    "{name}_service",\n\g<2>', path.read_text(), 1)
    if not count:
        raise ScaffoldError(f"{PYPROJECT}: no [tool.importlinter] root_packages list")
    path.write_text(text.rstrip("\n") + "\n" + import_contracts(name))


def remove_from_pyproject(name: str, root: Path = ROOT) -> None:
    path = root / PYPROJECT
    text = path.read_text()
    for piece in (import_contracts(name), f'    "{name}_service",\n'):
        if piece not in text:
            raise ScaffoldError(f"{PYPROJECT}: the {name} import contracts are not as added")
        text = text.replace(piece, "", 1)
    path.write_text(text)


def _components_region(text: str, where: Path) -> tuple[int, int]:
    begin, end = text.find(COMPONENTS_BEGIN), text.find(COMPONENTS_END)
    if begin < 0 or end < begin:
        raise ScaffoldError(f"{where}: no region marked {COMPONENTS_BEGIN!r}")
    return text.index("\n", begin) + 1, text.rindex("\n", 0, end) + 1


def add_components(name: str, root: Path = ROOT) -> None:
    for overlay in OVERLAYS:
        path = root / overlay
        text = path.read_text()
        _, end = _components_region(text, overlay)
        indent = text[end : text.index(COMPONENTS_END)]
        path.write_text(f"{text[:end]}{indent}- {name}\n{text[end:]}")


def remove_components(name: str, root: Path = ROOT) -> None:
    for overlay in OVERLAYS:
        path = root / overlay
        text = path.read_text()
        start, end = _components_region(text, overlay)
        region = re.sub(rf"(?m)^[ \t]*- {name}\n", "", text[start:end])
        path.write_text(text[:start] + region + text[end:])


def _tidy(files: Sequence[Path]) -> None:
    """Sort imports and format the generated Python as `make lint` wants it
    (a name's length changes line breaks and import order)."""
    python = [str(f) for f in files if f.suffix == ".py"]
    ruff = str(Path(sys.executable).with_name("ruff"))
    # The venv's own ruff on the files just written (S603: no untrusted input).
    fix_imports = [ruff, "check", "--quiet", "--fix", "--select", "I", *python]
    subprocess.run(fix_imports, check=True)  # noqa: S603
    subprocess.run([ruff, "format", "--quiet", *python], check=True)  # noqa: S603


def new_service(name: str, root: Path = ROOT) -> NewService:
    """Write and register the service; the caller then runs uv lock, make registry, make protos."""
    service = plan(name, root)
    files = render(service, root)
    _tidy(files)
    add_to_registry(service, root)
    add_to_pyproject(name, root)
    add_components(name, root)
    return service


def remove_service(name: str, root: Path = ROOT) -> list[str]:
    """Take out everything `new_service` added; the folders removed."""
    if name in CORE_SERVICES:
        raise ScaffoldError(f"{name!r} is one of the platform's own services; it stays")
    remove_from_registry(name, root)
    remove_from_pyproject(name, root)
    remove_components(name, root)
    removed = []
    for folder in OWNED:
        path = root / folder.format(name=name)
        if path.exists():
            shutil.rmtree(path)
            removed.append(folder.format(name=name))
    return removed


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] not in {"new", "remove"}:
        print("usage: python -m switchyard_dev.scaffold new|remove NAME", file=sys.stderr)
        return 2
    what, name = args
    try:
        if what == "new":
            service = new_service(name)
            print(
                f"scaffold: services/{name} (gRPC port {service.port}, metrics "
                f"{service.metrics_port}), its proto, k8s base and overlay components; "
                f"registered in {REGISTRY} and {PYPROJECT}"
            )
        else:
            for folder in remove_service(name):
                print(f"scaffold: removed {folder}")
    except ScaffoldError as exc:
        print(f"scaffold: {exc}", file=sys.stderr)
        return 1
    return 0
