"""Typed names for the parts of Flask-Admin we use (Flask-Admin ships no type hints).

At run time these are Flask-Admin's own classes; under mypy they are the small stubs below,
so views can be checked with ``mypy --strict``. Import ``BaseView``, ``AdminIndexView``,
``Admin`` and ``expose`` from here instead of from ``flask_admin``.
"""

from __future__ import annotations

from collections.abc import Callable
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

    def expose(url: str = "/", methods: tuple[str, ...] | list[str] = ("GET",)) -> Callable[[F], F]:
        """Flask-Admin's ``expose``."""
        ...

else:
    from flask_admin import Admin, AdminIndexView, BaseView, expose


__all__ = ["Admin", "AdminIndexView", "BaseView", "expose"]
