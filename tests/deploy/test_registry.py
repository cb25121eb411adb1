"""The registry of services (protos/switchyard/services.toml): what it holds
is checked when it is read, and it agrees with the folders under services/."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from switchyard.services import RegistryError, load_services, parse_services
from switchyard_dev.registry import FILES, generated_files, stale

from deploy.conftest import ROOT

ENTRY = """
[[service]]
name = "{name}"
grpc_service = "switchyard.{name}.v1.Service"
proto_module = "switchyard.{name}.v1.{name}_pb2"
port = {port}
metrics_port = {metrics}
"""


def entry(name: str = "inventory", port: int = 50055, metrics: int = 9157) -> str:
    return ENTRY.format(name=name, port=port, metrics=metrics)


def test_every_service_folder_is_registered_and_every_entry_has_a_folder() -> None:
    folders = {p.name for p in (ROOT / "services").iterdir() if (p / "pyproject.toml").is_file()}
    assert {s.name for s in load_services()} == folders


def test_each_entry_names_its_package_and_its_grpc_service() -> None:
    for service in load_services():
        assert (ROOT / "services" / service.name / "src" / service.package).is_dir()
        pyproject = (ROOT / "services" / service.name / "pyproject.toml").read_text()
        assert f'name = "{service.distribution}"' in pyproject
        proto = ROOT / "protos" / service.proto_module.replace(".", "/").removesuffix("_pb2")
        assert proto.with_suffix(".proto").is_file(), service.proto_module
        assert f"service {service.grpc_service_name} " in proto.with_suffix(".proto").read_text()


def test_one_appended_entry_is_a_valid_registry() -> None:
    services = parse_services(entry("one", 50061, 9171) + entry("two", 50062, 9172))
    assert [s.name for s in services] == ["one", "two"]
    assert services[1].package == "two_service"
    assert services[1].processes == ()


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        (entry("Bad"), "`name` must match"),
        (entry("in-ventory"), "`name` must match"),
        (entry() + entry(port=50056, metrics=9158), "listed twice"),
        (entry("one") + entry("two", metrics=9158), "port 50055 is both"),
        (entry(metrics=50055), "port 50055 is both"),
        (entry() + "event_sinks = ['nobody']\n", "unknown event sink"),
        (entry() + "colour = 'blue'\n", "unknown key(s) colour"),
        (entry().replace("port = 50055", "port = '50055'"), "must be a port number"),
        (entry() + "[[service.process]]\ncommand = 'worker'\n", "`liveness_port` is missing"),
        ("", "no [[service]] table"),
    ],
)
def test_a_malformed_registry_is_refused_naming_the_problem(text: str, complaint: str) -> None:
    with pytest.raises(RegistryError, match=re.escape(complaint)):
        parse_services(text)


def test_the_generated_lists_are_up_to_date_with_the_registry() -> None:
    out_of_date = stale()
    assert not out_of_date, f"out of date with the registry: {out_of_date}: run `make registry`"


def test_a_hand_edit_of_a_generated_list_is_caught(tmp_path: Path) -> None:
    for name in generated_files(load_services()):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    assert stale(tmp_path) == []
    resources = tmp_path / "k8s/base/kustomization.yaml"
    resources.write_text(resources.read_text().replace("  - payment\n", ""))
    assert stale(tmp_path) == ["k8s/base/kustomization.yaml"]
    # One more entry in the registry: every generated list has to change.
    services = (*load_services(), *parse_services(entry()))
    assert len(stale(tmp_path, services)) == len(FILES)


def test_every_service_image_is_built_from_the_one_template() -> None:
    config = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    built = {a["image"]: a["docker"] for a in config["build"]["artifacts"]}
    for service in load_services():
        assert built[f"switchyard/{service.name}"] == {
            "dockerfile": "services/Dockerfile",
            "buildArgs": {"SERVICE": service.name},
        }
    assert not list((ROOT / "services").glob("*/Dockerfile")), "one template: services/Dockerfile"
