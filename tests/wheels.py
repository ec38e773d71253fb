"""Wheels built by hand for the plugin tests: a zip with a ``.dist-info`` folder, no build backend needed."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

VERSION = "0.0.1"


def module_of(distribution: str) -> str:
    return distribution.replace("-", "_")


def build_wheel(folder: Path, distribution: str, entry: str, source: str) -> Path:
    """A pure-Python wheel holding one module and a ``longslit`` entry point (PEP 427 layout)."""
    module = module_of(distribution)
    info = f"{module}-{VERSION}.dist-info"
    files = {
        f"{module}/__init__.py": textwrap.dedent(source),
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {VERSION}\n"
        "Summary: A longslit plugin built by longslit's tests.\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: longslit-tests\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
        f"{info}/entry_points.txt": f"[longslit]\n{entry} = {module}\n",
    }
    record = []
    for name, text in files.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    wheel = folder / f"{module}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
        archive.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return wheel


def install(wheels: list[Path], site: Path) -> None:
    """``pip install`` the wheels into ``site`` alone (``--target``), never into the test environment."""
    command = [sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--no-build-isolation"]
    command += ["--disable-pip-version-check", "--quiet", "--target", str(site), *map(str, wheels)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
