"""Build hook: copy the example projects into the wheel as ``framework/examples/<name>/``.

Everything else is declared in pyproject.toml. The examples' sources stay where the
repository keeps them (the NBA example is the repository root, the IoT example is
``pipelines/iot_sensors/``); which files belong to an example is listed once, in
``framework/scaffold/examples.py``, loaded here by path (pipectl's dependencies are not
installed while a wheel builds). Editable installs skip the copy: pipectl then finds the
examples in the checkout (``framework.scaffold.example_source``).
"""
from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def _examples_module():
    spec = importlib.util.spec_from_file_location("_pipectl_examples", HERE / "framework" / "scaffold" / "examples.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up while the class is built
    spec.loader.exec_module(module)
    return module


class BuildPyWithExamples(build_py):
    """``build_py`` plus the example projects as package data."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        examples = _examples_module()
        for example in examples.EXAMPLES.values():
            source = HERE / example.source
            files = list(examples.example_files(source, example))
            if not any(rel == "processors.yaml" for _, rel in files):
                raise SystemExit(f"example '{example.name}': no processors.yaml under {source}; "
                                 "build the wheel from a full checkout (or its sdist)")
            target = Path(self.build_lib) / "framework" / examples.PACKAGE_FOLDER / example.name
            shutil.rmtree(target, ignore_errors=True)  # a file deleted from the example must not linger from an older build
            for path, rel in files:
                self.mkpath(str((target / rel).parent))
                self.copy_file(str(path), str(target / rel))


setup(cmdclass={"build_py": BuildPyWithExamples})
