"""Typed names for the parts of Flask-Admin we use (Flask-Admin ships no type hints).

At run time these are Flask-Admin's own classes; under mypy they are the small stubs below,
so views can be checked with ``mypy --strict``. Import ``BaseView``, ``AdminIndexView``,
``Admin``, ``expose`` and ``ModelView`` from here instead of from ``flask_admin``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

if TYPE_CHECKING:
    from flask import Flask

    class BaseView:
        """Flask-Admin's ``BaseView``."""

        name: str | None
        category: str | None
        endpoint: str
        url: str | None
        admin: Admin | None
        extra_css: list[str]
        extra_js: list[str]
        _template_args: dict[str, Any]

        def __init__(
            self,
            name: str | None = None,
            category: str | None = None,
            endpoint: str | None = None,
            url: str | None = None,
            static_folder: str | None = None,
            static_url_path: str | None = None,
            menu_class_name: str | None = None,
            menu_icon_type: str | None = None,
            menu_icon_value: str | None = None,
        ) -> None: ...
        def render(self, template: str, **kwargs: Any) -> str: ...
        def get_url(self, endpoint: str, **kwargs: Any) -> str: ...
        def is_accessible(self) -> bool: ...
        def is_visible(self) -> bool: ...
        def inaccessible_callback(self, view_name: Any, **kwargs: Any) -> Any: ...

    class AdminIndexView(BaseView):
        """Flask-Admin's ``AdminIndexView``."""

        def __init__(
            self,
            name: str | None = None,
            category: str | None = None,
            endpoint: str | None = None,
            url: str | None = None,
            template: str = "admin/index.html",
            menu_class_name: str | None = None,
            menu_icon_type: str | None = None,
            menu_icon_value: str | None = None,
        ) -> None: ...

    class Admin:
        """Flask-Admin's ``Admin``."""

        app: Flask | None
        name: str
        url: str
        index_view: BaseView

        def __init__(
            self, app: Flask | None = None, name: str | None = None, **kwargs: Any
        ) -> None: ...
        def add_view(self, view: BaseView) -> None: ...

    class ModelView(BaseView):
        """Flask-Admin's SQLAlchemy ``ModelView``."""

        def __init__(self, model: type[Any], session: Any, **kwargs: Any) -> None: ...
        def get_query(self) -> Any: ...
        def get_count_query(self) -> Any: ...

    def expose(url: str = "/", methods: tuple[str, ...] | list[str] = ("GET",)) -> Callable[[F], F]:
        """Flask-Admin's ``expose``."""
        ...

else:
    from flask_admin import Admin, AdminIndexView, BaseView, expose

    def __getattr__(name: str) -> Any:
        if name == "ModelView":
            return sqla_model_view()
        raise AttributeError(name)


def sqla_model_view() -> Any:
    """Flask-Admin's SQLAlchemy ``ModelView`` class, importable without Flask-SQLAlchemy.

    Flask-Admin 2.2.1's ``contrib.sqla`` imports ``T_SESSION`` from its ``_types`` module,
    which only defines it when Flask-SQLAlchemy is installed; we give it the plain SQLAlchemy
    ``Session`` first. Pass ``registry.web.admin.db.admin_db(app)`` as the session argument.
    """
    import importlib.util
    import sys

    import flask_admin
    from sqlalchemy.orm import Session

    key = "flask_admin.contrib.sqla._types"
    if key not in sys.modules:
        path = Path(flask_admin.__file__).parent / "contrib" / "sqla" / "_types.py"
        spec = importlib.util.spec_from_file_location(key, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if not hasattr(module, "T_SESSION"):
            module.__dict__["T_SESSION"] = Session
        sys.modules[key] = module
    from flask_admin.contrib.sqla import ModelView as model_view

    return model_view


__all__ = ["Admin", "AdminIndexView", "BaseView", "ModelView", "expose", "sqla_model_view"]
