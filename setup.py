"""Build hook: copy the top-level ``assets/`` (pretrained user models) into the wheel as ``recsim_gym/_assets``.

Everything else is declared in pyproject.toml. Editable installs read ``assets/`` from the checkout directly
(see ``recsim_gym/assets.py``), so the copy only matters for ``pip install .`` and built wheels.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithAssets(build_py):
    """``build_py`` that also places the shipped model bundles inside the package."""

    def run(self):
        super().run()
        src = Path(__file__).parent / "assets"
        if self.editable_mode or not src.is_dir():
            return
        dst = Path(self.build_lib) / "recsim_gym" / "_assets"
        for bundle in sorted(p for p in src.iterdir() if (p / "manifest.json").exists()):
            shutil.copytree(bundle, dst / bundle.name, dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildPyWithAssets})
