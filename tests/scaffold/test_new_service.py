"""`make new-service` writes a working service and `make remove-service` takes it out.

In a copy of the repository's tracked files (a git repository of its own, with
its own virtualenv; the tool folder .tools is shared with this checkout), the
test scaffolds a service with a fresh name, then runs what a team would:
`make lint` (the new service included: mypy, import contracts, duplicate
code, buf lint), the service's own tests (SQLite and PostgreSQL),
`make k8s-check`, and requests through the gateway of a platform started by
the copy's own launcher (tests/e2e/harness.py, free ports, SQLite, no Redis).
Finally `make remove-service` must leave the copy exactly as it was.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.scaffold, pytest.mark.postgres, pytest.mark.timeout(900)]

# Run by the copy's interpreter: the platform with the new service, and its routes.
E2E = """
import sys, uuid
from pathlib import Path

sys.path.insert(0, "tests")
from e2e.harness import AuthActions, start_platform

name, tmp = sys.argv[1], Path(sys.argv[2])
tmp.mkdir(parents=True)
running = start_platform("embedded", tmp, None, None)
try:
    with running.client() as api:
        auth = AuthActions(api)
        owner, other = auth.signup(), auth.signup()
        created = api.post(f"/v1/{name}/items", json={"title": " shelf "}, headers=owner.headers)
        assert created.status_code == 201, created.text
        item = created.json()
        assert item["title"] == "shelf" and uuid.UUID(item["item_id"]), item
        read = api.get(f"/v1/{name}/items/{item['item_id']}", headers=owner.headers)
        assert read.status_code == 200 and read.json() == item, read.text
        bad = api.post(f"/v1/{name}/items", json={"title": "   "}, headers=owner.headers)
        assert bad.status_code == 400, bad.text
        assert bad.headers["content-type"].startswith("application/problem+json")
        assert [e["field"] for e in bad.json()["errors"]] == ["title"], bad.text
        bad_id = api.get(f"/v1/{name}/items/not-a-uuid", headers=owner.headers)
        assert bad_id.status_code == 400, bad_id.text
        theirs = api.get(f"/v1/{name}/items/{item['item_id']}", headers=other.headers)
        assert theirs.status_code == 404, theirs.text
        anonymous = api.get(f"/v1/{name}/items/{item['item_id']}")
        assert anonymous.status_code == 401, anonymous.text
        spec = api.get("/openapi.json").json()
        assert f"/v1/{name}/items" in spec["paths"], sorted(spec["paths"])
finally:
    running.stop()
print("e2e ok")
"""


def run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    result = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(argv)} failed:\n{output[-8000:]}"
    return output


def git(copy: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return run(["git", *args], copy, env)


def copy_of_the_repository(target: Path) -> Path:
    """The tracked files (as they are now, modification times kept), committed in a new repo."""
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    for relative in filter(None, files.split("\0")):
        source = ROOT / relative
        if source.is_file():
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / relative)
    git(target, "init", "--quiet")
    # The pinned tools (uv, buf, the k8s checkers) are shared, not installed again.
    (ROOT / ".tools").mkdir(exist_ok=True)
    (target / ".tools").symlink_to(ROOT / ".tools")
    (target / ".git" / "info" / "exclude").write_text(".tools\n")
    git(target, "add", "--all")
    git(target, "commit", "--quiet", "--message", "the repository as tracked")
    return target


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_new_service_works_end_to_end_and_remove_service_undoes_it(tmp_path: Path) -> None:
    copy = copy_of_the_repository(tmp_path / "repo")
    name = f"inv{uuid.uuid4().hex[:6]}"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST_", "VIRTUAL_ENV", "MAKE", "MFLAGS"))
    }
    make = ["make", "--no-print-directory"]

    run([*make, "new-service", f"NAME={name}"], copy, env)
    added = git(copy, "status", "--porcelain", "--untracked-files=all")
    for path in (
        f"services/{name}/src/{name}_service/entrypoints/app.py",
        f"protos/switchyard/{name}/v1/{name}.proto",
        f"k8s/base/{name}/deployment.yaml",
        f"k8s/overlays/dev/{name}/database.yaml",
        f"k8s/overlays/prod/{name}/pgbouncer.yaml",
    ):
        assert f"?? {path}" in added, added
    for path in ("protos/switchyard/services.toml", "pyproject.toml", "uv.lock", "skaffold.yaml"):
        assert f" M {path}" in added, added

    run([*make, "lint"], copy, env)
    python = str(copy / ".venv" / "bin" / "python")
    run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"services/{name}"], copy, env)
    run([*make, "k8s-check"], copy, env)
    output = run([python, "-c", E2E, name, str(tmp_path / "platform")], copy, env, timeout=300)
    assert "e2e ok" in output

    run([*make, "remove-service", f"NAME={name}"], copy, env)
    assert git(copy, "status", "--porcelain", "--untracked-files=all").strip() == ""
