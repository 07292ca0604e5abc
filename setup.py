"""Build hook: copy the top-level ``assets/`` (pretrained user models) into the wheel as ``recsim_gym/_assets``, and
the agents' hyperparameter files ``agents/*.yml`` as ``recsim_gym/_agents``.

Everything else is declared in pyproject.toml. Editable installs read ``assets/`` and ``agents/`` from the checkout
directly (see ``recsim_gym/assets.py`` and ``recsim_gym/agents/cascading_dqn/commands.py``), so the copies only
matter for ``pip install .`` and built wheels; the top-level folders stay the source of truth.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithAssets(build_py):
    """``build_py`` that also places the shipped model bundles and hyperparameter files inside the package."""

    def run(self):
        super().run()
        if self.editable_mode:
            return
        root = Path(__file__).parent
        package = Path(self.build_lib) / "recsim_gym"
        src = root / "assets"
        if src.is_dir():
            for bundle in sorted(p for p in src.iterdir() if (p / "manifest.json").exists()):
                shutil.copytree(bundle, package / "_assets" / bundle.name, dirs_exist_ok=True)
        ymls = sorted((root / "agents").glob("*.yml"))
        if not ymls:  # the learners would silently lose their tuned values: refuse to build such a wheel
            raise RuntimeError(f"no hyperparameter files in {root / 'agents'}")
        (package / "_agents").mkdir(parents=True, exist_ok=True)
        for yml in ymls:
            shutil.copy2(yml, package / "_agents" / yml.name)


setup(cmdclass={"build_py": BuildPyWithAssets})
