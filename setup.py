"""Packaging beyond setup.cfg: the examples ship inside the wheel as ``wafer_py.examples``.

``wafer-py demo`` serves them, so an installed wheel needs them; a top-level ``examples``
package would collide with any other in site-packages. The checkout keeps them in
``examples/``, where the README and the tests point.
"""

from setuptools import find_packages, setup

EXAMPLES = ["wafer_py." + name for name in find_packages(include=["examples", "examples.*"])]

setup(
    packages=find_packages(include=["wafer_py", "wafer_py.*"]) + EXAMPLES,
    package_dir={"wafer_py.examples": "examples"},
)
