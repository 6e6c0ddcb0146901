"""Example prompt files loaded by ``prompt-registry init`` and ``seed``; shipped in the package as
``registry.templates_seed``."""
