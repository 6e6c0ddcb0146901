"""What pyproject.toml cannot say: ``migrations/`` and ``templates_seed/`` stay at the top of the
repository (the project layout) and ship inside the package as ``registry.migrations`` and
``registry.templates_seed``, where :mod:`registry.resources` finds them with importlib.resources.
"""

from setuptools import find_namespace_packages, setup

#: package name -> folder of the repository it is built from
MAPPED = {
    "registry.migrations": "migrations",
    "registry.migrations.versions": "migrations/versions",
    "registry.templates_seed": "templates_seed",
}

setup(
    packages=[
        *find_namespace_packages(include=["registry", "registry.*"], exclude=["*.__pycache__"]),
        *MAPPED,
    ],
    package_dir=MAPPED,
)
