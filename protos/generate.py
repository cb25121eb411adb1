"""Generate Python code and type stubs from every .proto under protos/switchyard.

Run by `make protos`. Output lands beside the .proto files (ignored by git), so
the folder path is the import path: switchyard/auth/v1/auth.proto becomes
`switchyard.auth.v1.auth_pb2`. googleapis protos (google/api/annotations.proto,
field_behavior.proto) come from the installed googleapis-common-protos wheel,
well-known types from grpcio-tools. buf/validate/validate.proto is vendored
here at the protovalidate release that the pinned `protovalidate` package
bundles (see libs/pyproject.toml), and generated like ours into `buf.validate`:
the generated switchyard modules import it, and readers of the annotations
(the gateway's OpenAPI document) get the options as typed messages.
Beside them, switchyard/descriptors.binpb: a FileDescriptorSet of every file
with its source info (the proto comments, which generated modules drop), read
by the gateway for its OpenAPI document.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import grpc_tools
from google.api import annotations_pb2
from grpc_tools import protoc

PROTOS_ROOT = Path(__file__).resolve().parent
PACKAGE_ROOT = PROTOS_ROOT / "switchyard"
DESCRIPTOR_SET = "descriptors.binpb"
# Third-party protos vendored beside ours (not ours to lint): generated the same way.
VENDORED_ROOT = PROTOS_ROOT / "buf"
GENERATED_ROOTS = (PACKAGE_ROOT, VENDORED_ROOT)


def _plugin(name: str) -> str:
    """Path of a protoc plugin installed beside this interpreter."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} not found: install the dev dependencies (uv sync)")
    return found


def _swap_in(staging: Path) -> None:
    fresh = {path.relative_to(staging) for path in staging.rglob("*_pb2*.py*")}
    fresh.add(Path("switchyard") / DESCRIPTOR_SET)
    for path in fresh:
        target = PROTOS_ROOT / path
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / path, target)
    for root in GENERATED_ROOTS:
        for stale in root.rglob("*_pb2*.py*"):
            if stale.relative_to(PROTOS_ROOT) not in fresh:
                stale.unlink()


def main() -> int:
    proto_files = sorted(
        str(p.relative_to(PROTOS_ROOT)) for root in GENERATED_ROOTS for p in root.rglob("*.proto")
    )
    googleapis_root = Path(annotations_pb2.__file__).resolve().parents[2]
    # Generated into a staging folder, then moved in file by file (os.replace is
    # atomic), so processes that import the code meanwhile never see it missing.
    staging = Path(tempfile.mkdtemp(prefix="protos-", dir=PROTOS_ROOT))
    well_known_root = Path(grpc_tools.__file__).resolve().parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"--proto_path={PROTOS_ROOT}",
        f"--proto_path={googleapis_root}",
        f"--proto_path={well_known_root}",
        f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
        f"--python_out={staging}",
        f"--grpc_python_out={staging}",
        f"--mypy_out=quiet:{staging}",
        f"--mypy_grpc_out=quiet:{staging}",
        "--include_source_info",
        "--include_imports",
        f"--descriptor_set_out={staging / 'switchyard' / DESCRIPTOR_SET}",
        *proto_files,
    ]
    (staging / "switchyard").mkdir()
    try:
        if protoc.main(args) != 0:
            return 1
        _swap_in(staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for root in GENERATED_ROOTS:
        for folder in [root, *(p for p in root.rglob("*") if p.is_dir())]:
            if folder.name != "__pycache__":
                (folder / "__init__.py").touch()
        (root / "py.typed").touch()
    print(f"generated {len(proto_files)} proto files into {PROTOS_ROOT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
