#!/usr/bin/env python3
"""Build the container image with podman from Debian's packages, and keep its lock file.

    python scripts/image.py build            # base image (cached), then the image: localhost/policyd:VERSION
    python scripts/image.py lock             # regenerate image-requirements.txt (PyPI)
    python scripts/image.py lock --check     # fail when image-requirements.txt is stale (offline)
    python scripts/image.py check-host       # can this machine build and run containers? (exit 0/1)

No container registry is reachable from the development machines or CI, so nothing is
pulled: the base image is made with ``mmdebstrap`` from Debian's archive (python3,
python3-venv, ca-certificates, tzdata), imported into podman as
``localhost/policyd-base:bookworm`` and rebuilt when older than a week. podman runs with
a private ``containers.conf`` and storage under ``~/.cache/policyd-image`` (``runc``,
because crun 1.8 refuses hybrid cgroups; fixed ulimits, because root cannot raise its
own here), so the base and the build's layers survive fresh clones: a warm build only
re-runs the layers whose inputs changed. Package downloads may pass a TLS-intercepting
proxy: the host's CA bundle is mounted into build steps (never copied into a layer).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "image-requirements.txt"
CACHE = Path(os.environ.get("POLICYD_IMAGE_CACHE") or Path.home() / ".cache" / "policyd-image")
BASE = "localhost/policyd-base:bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates", "tzdata")
BASE_MAX_AGE = dt.timedelta(days=7)
DEBIAN_MIRROR = os.environ.get("POLICYD_DEBIAN_MIRROR", "http://deb.debian.org/debian")
REPOSITORY = "localhost/policyd"
HOST_CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")
APT_PACKAGES = ("podman", "buildah", "mmdebstrap", "runc", "uidmap", "slirp4netns", "fuse-overlayfs")
"""What ``.ci/run`` installs (Debian bookworm's packages) for the image build and its smoke test."""

CONTAINERS_CONF = """\
# Written by scripts/image.py: podman's settings for policyd's image build and smoke test.
[containers]
# root cannot raise its own limits on these VMs: podman's default (the host's hard limit) fails.
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
# crun 1.8 (bookworm) refuses hybrid cgroup v1/v2 hosts; runc runs on them.
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""


def version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"])


def image_ref(tag: str | None = None) -> str:
    """The image ``make image`` builds: the chart's default repository at the package version."""
    return f"{REPOSITORY}:{tag or version()}"


# ---------------------------------------------------------------------------- podman


def podman_env() -> dict[str, str]:
    """The environment podman runs with: the private containers.conf and storage under CACHE."""
    CACHE.mkdir(parents=True, exist_ok=True)
    conf = CACHE / "containers.conf"
    if not conf.exists() or conf.read_text() != CONTAINERS_CONF:
        conf.write_text(CONTAINERS_CONF)
    storage = CACHE / "storage.conf"
    runroot = Path(f"/run/policyd-image-{os.getuid()}") if os.geteuid() == 0 else CACHE / "run"
    text = f'[storage]\ndriver = "overlay"\ngraphroot = "{CACHE / "storage"}"\nrunroot = "{runroot}"\n'
    if not storage.exists() or storage.read_text() != text:
        storage.write_text(text)
    return {**os.environ, "CONTAINERS_CONF": str(conf), "CONTAINERS_STORAGE_CONF": str(storage)}


def podman(*args: str, check: bool = True, capture: bool = True, timeout: float | None = 600) -> str:
    """Runs ``podman ARGS`` with the private configuration; returns stdout (raises with stderr on failure)."""
    proc = subprocess.run(
        ["podman", *args],
        env=podman_env(),
        stdin=subprocess.DEVNULL,
        capture_output=capture,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        detail = (proc.stderr or "").strip()[-3000:] if capture else ""
        raise RuntimeError(f"podman {' '.join(args[:3])} ... failed (exit {proc.returncode}): {detail}")
    return proc.stdout or ""


def missing_tools() -> list[str]:
    return [tool for tool in ("podman", "runc", "mmdebstrap") if shutil.which(tool) is None]


def host_problem() -> str | None:
    """Why this machine cannot build and run the image, or None when it can."""
    missing = missing_tools()
    if missing:
        return (
            f"{', '.join(missing)} not found: install Debian's packages "
            f"(apt-get install {' '.join(APT_PACKAGES)}); .ci/run does"
        )
    try:
        podman("info", "--format", "{{.Host.OCIRuntime.Name}}", timeout=60)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        return f"podman cannot start here: {exc}"
    return None


# ---------------------------------------------------------------------------- base image


def base_age() -> dt.timedelta | None:
    """How old the imported base image is; None when there is none."""
    out = podman("image", "inspect", "--format", "{{.Created.Unix}}", BASE, check=False).strip()
    if not out.isdigit():
        return None
    return dt.datetime.now(dt.UTC) - dt.datetime.fromtimestamp(int(out), dt.UTC)


def ensure_base(force: bool = False) -> str:
    """``localhost/policyd-base:bookworm`` from Debian's packages, rebuilt when older than a week."""
    age = base_age()
    if not force and age is not None and age < BASE_MAX_AGE:
        return BASE
    print(f"building the base image {BASE} with mmdebstrap ({', '.join(BASE_PACKAGES)})", file=sys.stderr)
    with tempfile.TemporaryDirectory(dir=CACHE, prefix="base-") as tmp:
        tar = Path(tmp) / "base.tar"
        cmd = [
            "mmdebstrap",
            "--quiet",
            "--variant=minbase",
            f"--include={','.join(BASE_PACKAGES)}",
            # no manuals, translations or docs (the licences stay); mmdebstrap drops apt's lists and caches
            *(f"--dpkgopt=path-exclude=/usr/share/{d}/*" for d in ("man", "info", "locale", "doc")),
            "--dpkgopt=path-include=/usr/share/doc/*/copyright",
            "bookworm",
            str(tar),
            DEBIAN_MIRROR,
        ]
        subprocess.run(cmd, stdin=subprocess.DEVNULL, check=True, timeout=1800)
        podman("import", "--message", "policyd base: Debian bookworm minbase + python3", str(tar), BASE)
    return BASE


# ---------------------------------------------------------------------------- image


def host_ca_bundle() -> str | None:
    return next((p for p in HOST_CA_BUNDLES if Path(p).is_file()), None)


def build(tag: str | None = None) -> str:
    """Builds the image from the repository's Dockerfile on the local base; returns its reference."""
    problem = host_problem()
    if problem:
        raise SystemExit(f"scripts/image.py: cannot build the image: {problem}")
    base = ensure_base()
    ref = image_ref(tag)
    cmd = ["build", "--format", "docker", "--network=host", "--pull=never", "--layers"]
    cmd += ["--build-arg", f"PYTHON_IMAGE={base}"]
    bundle = host_ca_bundle()
    if bundle:  # visible to RUN steps only; the image keeps Debian's own bundle
        cmd += ["-v", f"{bundle}:/etc/ssl/certs/ca-certificates.crt:ro"]
    podman(*cmd, "-t", ref, str(ROOT), capture=False, timeout=1800)
    # Tag the build stage too (every step cached: a second), so that pruning what earlier
    # builds left behind keeps the dependency layer the next build reuses.
    podman(*cmd, "--target", "build", "-t", f"{REPOSITORY}-build:cache", str(ROOT), timeout=600)
    podman("image", "prune", "--force", check=False)
    return ref


def image_size(ref: str) -> int:
    return int(podman("image", "inspect", "--format", "{{.Size}}", ref).strip())


# ---------------------------------------------------------------------------- lock file


def lock_inputs() -> dict[str, object]:
    """What the lock is computed from: the project's dependencies and its build requirements."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return {
        "dependencies": project["project"]["dependencies"],
        "build-requires": project["build-system"]["requires"],
        "requires-python": project["project"]["requires-python"],
    }


def inputs_digest() -> str:
    return hashlib.sha256(json.dumps(lock_inputs(), sort_keys=True).encode()).hexdigest()


def read_lock(text: str) -> tuple[str | None, dict[str, str]]:
    """(inputs digest, {normalized name: version}) of a lock file."""
    digest = None
    pins: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# inputs-sha256:"):
            digest = line.split(":", 1)[1].strip()
        elif line and not line.startswith(("#", " ")):
            name, _, rest = line.partition("==")
            pins[normalize(name)] = rest.split()[0].rstrip("\\").strip()
    return digest, pins


def normalize(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def lock() -> None:
    """Resolves the image's dependencies on PyPI (wheels only, this interpreter's platform) and writes LOCK."""
    here = (sys.implementation.name, sys.version_info[:2], sys.platform, os.uname().machine)
    if here != ("cpython", (3, 11), "linux", "x86_64"):
        raise SystemExit(f"scripts/image.py lock: run it with CPython 3.11 on Linux x86_64 (the image's), not {here}")
    inputs = lock_inputs()
    build_requires = [str(r) for r in inputs["build-requires"]]  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run(
            [
                *(sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--ignore-installed"),
                *("--only-binary=:all:", "--report", str(report), str(ROOT), *build_requires),
            ],
            check=True,
            stdin=subprocess.DEVNULL,
        )
        installs = json.loads(report.read_text())["install"]
    lines = [
        "# The exact dependencies the container image installs (Dockerfile), with their hashes:",
        "# wheels only, resolved for Linux x86_64, CPython 3.11 (Debian bookworm's python3).",
        "# Regenerate with `make image-lock` (python scripts/image.py lock); `make test` fails",
        "# when pyproject.toml's dependencies or build requirements change without it.",
        f"# inputs-sha256: {inputs_digest()}",
    ]
    for item in sorted(installs, key=lambda i: normalize(i["metadata"]["name"])):
        meta, info = item["metadata"], item["download_info"]
        if normalize(meta["name"]) == "policyd":
            continue
        digest = info.get("archive_info", {}).get("hashes", {}).get("sha256")
        if not digest:
            raise SystemExit(f"scripts/image.py: no sha256 for {meta['name']} {meta['version']} ({info['url']})")
        lines.append(f"{normalize(meta['name'])}=={meta['version']} \\\n    --hash=sha256:{digest}")
    LOCK.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {LOCK.relative_to(ROOT)} ({len(lines) - 5} packages)")


def check_lock() -> list[str]:
    """Why LOCK is stale (empty when it is current); offline."""
    from packaging.markers import default_environment
    from packaging.requirements import Requirement

    if not LOCK.exists():
        return [f"{LOCK.name} is missing"]
    digest, pins = read_lock(LOCK.read_text(encoding="utf-8"))
    problems = []
    if digest != inputs_digest():
        problems.append("pyproject.toml's dependencies or build requirements changed since the lock was made")
    inputs = lock_inputs()
    env = {**default_environment(), "sys_platform": "linux", "platform_system": "Linux", "extra": ""}
    for text in [*inputs["dependencies"], *inputs["build-requires"]]:  # type: ignore[misc]
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        pinned = pins.get(normalize(req.name))
        if pinned is None:
            problems.append(f"{req.name} is not in the lock")
        elif not req.specifier.contains(pinned, prereleases=True):
            problems.append(f"{req.name}=={pinned} does not satisfy {text!r}")
    return problems


# ---------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build the image (and the base image when missing or old)")
    b.add_argument("--tag", help=f"image tag (default: the package version, {REPOSITORY}:VERSION)")
    b.add_argument("--rebuild-base", action="store_true", help="rebuild the base image even if it is recent")
    lk = sub.add_parser("lock", help="regenerate the lock file")
    lk.add_argument("--check", action="store_true", help="only check that it is current (offline)")
    sub.add_parser("check-host", help="say whether this machine can build and run containers")
    args = parser.parse_args(argv)
    if args.command == "build":
        if args.rebuild_base and not missing_tools():
            ensure_base(force=True)
        ref = build(args.tag)
        print(f"{ref}: {image_size(ref) / 1e6:.0f} MB")
    elif args.command == "lock" and args.check:
        problems = check_lock()
        for problem in problems:
            print(f"{LOCK.name}: {problem}; run `make image-lock`", file=sys.stderr)
        if problems:
            return 1
        print(f"{LOCK.name}: current")
    elif args.command == "lock":
        lock()
    else:
        problem = host_problem()
        print(problem or "podman runs here")
        return 1 if problem else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
