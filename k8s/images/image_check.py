"""`make image-check`: build every image with podman and run it the way Kubernetes will.

For each artifact of skaffold.yaml (the services' come from the registry,
protos/switchyard/services.toml, and build services/Dockerfile with
`--build-arg SERVICE=<name>`): `podman build` with the local base image
(k8s/images/build-base.sh: no registry is reachable here), then run it
read-only (a tmpfs on /tmp, as in the pods), as its numeric non-root user,
with every capability dropped and no new privileges, on the host network
bound to 127.0.0.1 only. Each gRPC service runs `migrate` then `serve` on a
SQLite file in a volume and must answer SERVING on grpc.health.v1 (readiness,
"") and on "liveness"; the gateway must answer /healthz and /readyz and carry
a signup through auth and profile; each worker must answer its loop's
heartbeat (/livez) and stay up; no image holds the `make run` launcher
(switchyard_dev); every container must exit 0 on SIGTERM (it drains and
stops). Run with the workspace venv (it has grpcio): `.venv/bin/python k8s/images/image_check.py`.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc
from switchyard.services import load_services

ROOT = Path(__file__).resolve().parents[2]
# podman in this sandbox: runc, and limits the default runtime's would exceed.
RUNTIME = ["--runtime", "runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
HARDENING = [
    "--read-only",
    "--tmpfs",
    "/tmp:rw,nosuid,nodev,size=64m",  # noqa: S108 - a tmpfs inside the container, as in the pods
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
    "--network",
    "host",
]
# The services, in start order (a service after those it calls), and their
# workers (the subcommands that must start and stay up): the registry,
# protos/switchyard/services.toml.
REGISTRY = load_services()
WORKERS = {s.name: [p.command for p in s.processes] for s in REGISTRY}
NEEDS_REDIS = {(p.service, p.command) for s in REGISTRY for p in s.processes if p.needs_redis}
# Event workers that consume Redis Streams; with no Redis on 127.0.0.1 they are
# reported as skipped. A database of its own keeps the check's streams apart.
REDIS_URL = os.environ.get("IMAGE_CHECK_REDIS_URL", "redis://127.0.0.1:6379/13")
ORDER = [*(s.name for s in REGISTRY), "gateway"]
TAG = "check"
RUN_ID = uuid.uuid4().hex[:8]


@dataclass
class Image:
    name: str  # gateway, auth, ...
    reference: str  # localhost/switchyard/auth:check
    dockerfile: Path
    context: Path
    user: str = ""
    containers: list[str] = field(default_factory=list)
    build_args: dict[str, str] = field(default_factory=dict)


def podman(
    *args: str, check: bool = True, capture: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(  # noqa: S603 - podman with arguments built here
        ["podman", *args],  # noqa: S607 - podman from PATH (installed by this script)
        check=False,
        text=True,
        capture_output=capture,
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def ensure_tools() -> None:
    missing = [
        pkg
        for tool, pkg in (("podman", "podman"), ("runc", "runc"), ("debootstrap", "debootstrap"))
        if not shutil.which(tool)
    ]
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SystemExit(f"image-check: install {' '.join(missing)} (Debian packages)")
    print(f"image-check: installing {' '.join(missing)}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)  # noqa: S607
    subprocess.run(  # noqa: S603
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],  # noqa: S607
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def images() -> list[Image]:
    config = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    found = []
    for artifact in config["build"]["artifacts"]:
        name = artifact["image"].split("/")[-1]
        context = ROOT / artifact.get("context", ".")
        found.append(
            Image(
                name=name,
                reference=f"localhost/switchyard/{name}:{TAG}",
                dockerfile=context / artifact["docker"]["dockerfile"],
                context=context,
                build_args={k: str(v) for k, v in artifact["docker"].get("buildArgs", {}).items()},
            )
        )
    return sorted(found, key=lambda i: ORDER.index(i.name) if i.name in ORDER else len(ORDER))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build(image: Image, base: str) -> float:
    started = time.monotonic()
    args = [
        "build",
        "--network",
        "host",
        "--build-arg",
        f"BASE_IMAGE={base}",
        # services/Dockerfile: SERVICE=<name>, as skaffold.yaml passes it.
        *(a for key, value in image.build_args.items() for a in ("--build-arg", f"{key}={value}")),
        "-f",
        str(image.dockerfile),
        "-t",
        image.reference,
        str(image.context),
    ]
    result = podman(*args, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
        raise RuntimeError(f"building {image.name} failed:\n{tail}")
    image.user = podman(
        "image", "inspect", "--format", "{{.Config.User}}", image.reference
    ).stdout.strip()
    uid = image.user.split(":")[0]
    if not uid.isdigit() or int(uid) == 0:
        raise RuntimeError(f"{image.name}: USER {image.user!r} is not a numeric non-root uid")
    entrypoint = json.loads(
        podman(
            "image", "inspect", "--format", "{{json .Config.Entrypoint}}", image.reference
        ).stdout
    )
    if not isinstance(entrypoint, list) or entrypoint[:2] != ["/opt/venv/bin/python", "-m"]:
        raise RuntimeError(f"{image.name}: unexpected entrypoint {entrypoint}")
    return time.monotonic() - started


def run(image: Image, role: str, env: dict[str, str], args: list[str], volume: str | None) -> str:
    name = f"sy-check-{RUN_ID}-{image.name}-{role}"
    argv = ["run", "-d", "--name", name, *RUNTIME, *HARDENING, "--user", image.user]
    if volume:
        argv += ["-v", f"{volume}:/data:U"]
    for key, value in env.items():
        argv += ["-e", f"{key}={value}"]
    podman(*argv, image.reference, *args)
    image.containers.append(name)
    return name


def wait_exit(container: str) -> int:
    result = podman("wait", "--condition", "exited", container, check=False)
    return int(result.stdout.strip() or "1") if result.returncode == 0 else 1


def logs(container: str) -> str:
    result = podman("logs", "--tail", "30", container, check=False)
    return result.stdout + result.stderr


def grpc_status(target: str, service: str) -> str:
    with grpc.insecure_channel(target) as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=1
            )
        except grpc.RpcError as exc:
            return exc.code().name
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))


def wait_for(what: str, probe: object, container: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()  # type: ignore[operator]
        if last is True:
            return
        state = podman("inspect", "--format", "{{.State.Status}}", container).stdout.strip()
        if state != "running":
            raise RuntimeError(f"{what}: container {state}\n{logs(container)}")
        time.sleep(0.3)
    raise RuntimeError(f"{what}: not ready after {timeout:.0f}s (last: {last})\n{logs(container)}")


def stop_gracefully(container: str) -> None:
    podman("stop", "--time", "30", container)
    code = podman("inspect", "--format", "{{.State.ExitCode}}", container).stdout.strip()
    if code != "0":
        raise RuntimeError(f"{container} exited {code} on SIGTERM\n{logs(container)}")


def http_get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback URL built here
            return int(response.status)
    except OSError:
        return 0


def redis_reachable() -> bool:
    host_port = REDIS_URL.split("//", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
    host, _, port = host_port.partition(":")
    try:
        with socket.create_connection((host, int(port or 6379)), timeout=1):
            return True
    except OSError:
        return False


def check_no_dev_tooling(image: Image) -> str:
    """The launcher is development tooling: not importable in the image."""
    probe = (
        "import importlib.util, sys; "
        "sys.exit(importlib.util.find_spec('switchyard_dev') is not None)"
    )
    result = podman(
        "run",
        "--rm",
        *RUNTIME,
        *HARDENING,
        "--entrypoint",
        "/opt/venv/bin/python",
        image.reference,
        "-c",
        probe,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{image.name}: switchyard_dev is installed\n{result.stdout}{result.stderr}"
        )
    return f"{image.name}: no switchyard_dev (the launcher) in the image"


def check_service(image: Image, ports: dict[str, int]) -> list[str]:
    prefix = image.name.upper()
    volume = f"sy-check-{RUN_ID}-{image.name}"
    podman("volume", "create", volume)
    env = {
        f"{prefix}_HOST": "127.0.0.1",
        f"{prefix}_PORT": str(ports[image.name]),
        f"{prefix}_DATABASE_URL": f"sqlite:////data/{image.name}.db",
        f"{prefix}_SHUTDOWN_DELAY_SECONDS": "0.5",
        f"{prefix}_GRACE_SECONDS": "5",
        **{f"{n.upper()}_TARGET": f"127.0.0.1:{p}" for n, p in ports.items() if n != "gateway"},
    }
    if redis_reachable():
        env["REDIS_URL"] = REDIS_URL
    migrate = run(image, "migrate", env, ["migrate"], volume)
    code = wait_exit(migrate)
    if code != 0:
        raise RuntimeError(f"{image.name} migrate exited {code}\n{logs(migrate)}")
    server = run(image, "serve", env, ["serve"], volume)
    target = f"127.0.0.1:{ports[image.name]}"
    wait_for(f"{image.name} readiness", lambda: grpc_status(target, "") == "SERVING", server)
    if grpc_status(target, "liveness") != "SERVING":
        raise RuntimeError(f"{image.name}: liveness is not SERVING")
    done = [f"{image.name}: migrate ok, SERVING on '' and 'liveness' at {target}"]
    for command in WORKERS.get(image.name, []):
        if (image.name, command) in NEEDS_REDIS and "REDIS_URL" not in env:
            done.append(f"{image.name} {command}: skipped (no Redis at {REDIS_URL})")
            continue
        liveness = free_port()
        worker_env = {**env, f"{prefix}_LIVENESS_PORT": str(liveness)}
        worker = run(image, command, worker_env, [command], volume)
        wait_for(
            f"{image.name} {command} heartbeat",
            lambda port=liveness: http_get(f"http://127.0.0.1:{port}/livez") == 200,
            worker,
        )
        state = podman("inspect", "--format", "{{.State.Status}}", worker).stdout.strip()
        if state != "running":
            raise RuntimeError(f"{image.name} {command}: {state}\n{logs(worker)}")
        done.append(f"{image.name} {command}: running, /livez 200")
    return done


def check_gateway(image: Image, ports: dict[str, int]) -> list[str]:
    env = {
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(ports["gateway"]),
        "GATEWAY_GRACEFUL_TIMEOUT_SECONDS": "5",
        **{f"{n.upper()}_TARGET": f"127.0.0.1:{p}" for n, p in ports.items() if n != "gateway"},
    }
    gateway = run(image, "serve", env, [], None)
    base = f"http://127.0.0.1:{ports['gateway']}"
    wait_for("gateway /healthz", lambda: http_get(f"{base}/healthz") == 200, gateway)
    if http_get(f"{base}/readyz") != 200:
        raise RuntimeError("gateway /readyz is not 200")
    done = [f"gateway: /healthz and /readyz 200 at {base}"]
    if "auth" in ports and "profile" in ports:
        body = json.dumps(
            {
                "email": f"image-check-{RUN_ID}@example.com",
                "password": f"image check {RUN_ID} passphrase",
                "display_name": "Image Check",
            }
        ).encode()
        request = urllib.request.Request(  # noqa: S310 - loopback URL built here
            f"{base}/v1/auth/signup", data=body, headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            status = response.status
        if status != 201:
            raise RuntimeError(f"signup through the gateway answered {status}")
        done.append("gateway -> auth -> profile: signup 201")
    return done


def main() -> int:
    ensure_tools()
    started = time.monotonic()
    base = (
        os.environ.get("BASE_IMAGE")
        or subprocess.run(  # noqa: S603
            [str(ROOT / "k8s" / "images" / "build-base.sh")],
            check=True,
            text=True,
            capture_output=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    print(f"image-check: base image {base} ({time.monotonic() - started:.1f}s)", flush=True)
    todo = images()
    ports = {i.name: free_port() for i in todo}
    results: list[str] = []
    try:
        for image in todo:
            seconds = build(image, base)
            size = podman(
                "image", "inspect", "--format", "{{.Size}}", image.reference
            ).stdout.strip()
            print(
                f"image-check: built {image.reference} in {seconds:.1f}s "
                f"({int(size) / 1e6:.0f} MB, user {image.user})",
                flush=True,
            )
        for image in todo:
            results.append(check_no_dev_tooling(image))
            print(f"image-check: {results[-1]}", flush=True)
            checked = (
                check_gateway(image, ports)
                if image.name == "gateway"
                else check_service(image, ports)
            )
            for line in checked:
                print(f"image-check: {line}", flush=True)
            results += checked
        for image in reversed(todo):
            for container in reversed(image.containers):
                state = podman("inspect", "--format", "{{.State.Status}}", container).stdout.strip()
                if state == "running":
                    stop_gracefully(container)
        print("image-check: every container exited 0 on SIGTERM")
    finally:
        for image in todo:
            for container in image.containers:
                podman("rm", "-f", container, check=False)
            podman("volume", "rm", "-f", f"sy-check-{RUN_ID}-{image.name}", check=False)
    print(f"image-check: {len(todo)} images passed in {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except RuntimeError as exc:
        print(f"image-check: FAILED: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
