"""Catalog views: packages (inline editing, order, photos, add-on links), add-ons, segments."""

from __future__ import annotations

from flask import Response, flash, g, render_template, request, url_for
from jinja2_fragments.flask import render_block

from mais import catalog
from mais.errors import DomainError
from mais.extensions import db
from mais.htmx import is_htmx, redirect_to, vary_on_htmx

from . import bp
from .auth import login_required
from .forms import checkbox, errors_of, int_list, money, optional_int, text, upload

PACKAGES = "portal/packages.html"


def _direction() -> int:
    return -1 if request.form.get("direction") == "up" else 1


def _packages_page(errors: dict[str, str] | None = None, status: int = 200) -> tuple[str, int]:
    return render_template(
        PACKAGES,
        packages=catalog.list_packages(g.tenant),
        segments=catalog.list_segments(g.tenant),
        errors=errors or {},
        form=request.form if errors else {},
        editing_id=None,
    ), status


def _package_page(
    package_id: int, errors: dict[str, str] | None = None, status: int = 200
) -> tuple[str, int]:
    return render_template(
        "portal/package.html",
        package=catalog.get_package(g.tenant, package_id),
        segments=catalog.list_segments(g.tenant),
        addons=catalog.list_addons(g.tenant),
        errors=errors or {},
    ), status


def _done(message: str, target: str) -> Response:
    flash(message)
    return redirect_to(target)


@bp.get("/packages")
@login_required
def packages() -> tuple[str, int]:
    return _packages_page()


@bp.post("/packages")
@login_required
def create_package() -> Response | tuple[str, int]:
    try:
        package = catalog.create_package(
            g.tenant,
            text("title"),
            money("price"),
            slug=text("slug") or None,
            description_html=request.form.get("description") or "",
            segment=catalog.get_segment(g.tenant, sid)
            if (sid := optional_int("segment"))
            else None,
            user=g.user,
        )
    except DomainError as error:
        db.session.rollback()
        return _packages_page(errors_of(error), 400)
    return _done(f"“{package.title}” is added.", url_for("portal.package", package_id=package.id))


@bp.get("/packages/<int:package_id>")
@login_required
def package(package_id: int) -> tuple[str, int]:
    return _package_page(package_id)


@bp.get("/packages/<int:package_id>/edit")
@login_required
def edit_package_row(package_id: int) -> Response | tuple[str, int]:
    """The inline editor (HTMX); without JavaScript the package page has the same form."""
    package = catalog.get_package(g.tenant, package_id)
    if not is_htmx():
        return redirect_to(url_for("portal.package", package_id=package.id))
    body = render_block(
        PACKAGES,
        "package_edit",
        package=package,
        segments=catalog.list_segments(g.tenant),
        errors={},
        form={},
    )
    return vary_on_htmx(Response(body))


@bp.get("/packages/<int:package_id>/row")
@login_required
def package_row(package_id: int) -> Response:
    package = catalog.get_package(g.tenant, package_id)
    if not is_htmx():
        return redirect_to(url_for("portal.packages"))
    return vary_on_htmx(Response(render_block(PACKAGES, "package_row", package=package)))


@bp.post("/packages/<int:package_id>")
@login_required
def update_package(package_id: int) -> Response | tuple[str, int]:
    try:
        package = catalog.update_package(
            g.tenant,
            package_id,
            title=text("title"),
            price_cents=money("price"),
            slug=text("slug") or None,
            description_html=request.form.get("description") or "",
            segment_id=optional_int("segment"),
            user=g.user,
        )
    except DomainError as error:
        db.session.rollback()
        if error.status_code == 404:
            raise
        if is_htmx():
            body = render_block(
                PACKAGES,
                "package_edit",
                package=catalog.get_package(g.tenant, package_id),
                segments=catalog.list_segments(g.tenant),
                errors=errors_of(error),
                form=request.form,
            )
            return vary_on_htmx(Response(body))
        return _package_page(package_id, errors_of(error), 400)
    if is_htmx():
        return vary_on_htmx(Response(render_block(PACKAGES, "package_row", package=package)))
    flash(f"“{package.title}” is saved.")
    return redirect_to(url_for("portal.packages"))


@bp.post("/packages/<int:package_id>/move")
@login_required
def move_package(package_id: int) -> Response:
    catalog.move_package(g.tenant, package_id, _direction(), user=g.user)
    return redirect_to(url_for("portal.packages") + f"#package-{package_id}")


@bp.post("/packages/<int:package_id>/active")
@login_required
def set_package_active(package_id: int) -> Response:
    package = catalog.set_package_active(g.tenant, package_id, checkbox("active"), user=g.user)
    state = "offered to couples" if package.is_active else "hidden from couples"
    return _done(f"“{package.title}” is now {state}.", url_for("portal.packages"))


@bp.post("/packages/<int:package_id>/delete")
@login_required
def delete_package(package_id: int) -> Response | tuple[str, int]:
    try:
        catalog.delete_package(g.tenant, package_id, user=g.user)
    except DomainError as error:
        db.session.rollback()
        if error.status_code == 404:
            raise
        return _packages_page({"package": error.message}, 409)
    return _done("The package is deleted.", url_for("portal.packages"))


@bp.post("/packages/<int:package_id>/addons")
@login_required
def set_package_addons(package_id: int) -> Response | tuple[str, int]:
    try:
        catalog.set_package_addons(g.tenant, package_id, int_list("addons"), user=g.user)
    except DomainError as error:
        db.session.rollback()
        if error.status_code == 404:
            raise
        return _package_page(package_id, errors_of(error), 400)
    return _done("The add-ons are saved.", url_for("portal.package", package_id=package_id))


@bp.post("/packages/<int:package_id>/photos")
@login_required
def upload_photo(package_id: int) -> Response | tuple[str, int]:
    catalog.get_package(g.tenant, package_id)  # 404 before reading the upload
    try:
        catalog.add_package_photo(
            g.tenant, package_id, upload("photo") or b"", alt_text=text("alt_text"), user=g.user
        )
    except DomainError as error:
        db.session.rollback()
        if error.status_code == 404:
            raise
        return _package_page(package_id, errors_of(error), 400)
    return _done("The photo is added.", url_for("portal.package", package_id=package_id))


@bp.post("/photos/<int:photo_id>/delete")
@login_required
def delete_photo(photo_id: int) -> Response:
    package_id = catalog.delete_package_photo(g.tenant, photo_id, user=g.user)
    return _done("The photo is removed.", url_for("portal.package", package_id=package_id))


# Add-ons


def _addons_page(errors: dict[str, str] | None = None, status: int = 200) -> tuple[str, int]:
    return render_template(
        "portal/addons.html",
        addons=catalog.list_addons(g.tenant),
        errors=errors or {},
        form=request.form if errors else {},
    ), status


@bp.get("/addons")
@login_required
def addons() -> tuple[str, int]:
    return _addons_page()


@bp.post("/addons")
@login_required
def create_addon() -> Response | tuple[str, int]:
    try:
        addon = catalog.create_addon(g.tenant, text("title"), money("price"), user=g.user)
    except DomainError as error:
        db.session.rollback()
        return _addons_page(errors_of(error), 400)
    return _done(f"“{addon.title}” is added.", url_for("portal.addons"))


@bp.post("/addons/<int:addon_id>")
@login_required
def update_addon(addon_id: int) -> Response | tuple[str, int]:
    try:
        addon = catalog.update_addon(
            g.tenant,
            addon_id,
            title=text("title"),
            price_cents=money("price"),
            is_active=checkbox("active"),
            user=g.user,
        )
    except DomainError as error:
        db.session.rollback()
        if error.status_code == 404:
            raise
        errors = {f"{error.field}-{addon_id}": error.message}
        return _addons_page(errors, 400)
    return _done(f"“{addon.title}” is saved.", url_for("portal.addons"))


@bp.post("/addons/<int:addon_id>/delete")
@login_required
def delete_addon(addon_id: int) -> Response:
    catalog.delete_addon(g.tenant, addon_id, user=g.user)
    return _done("The add-on is deleted.", url_for("portal.addons"))


# Segments


def _segments_page(errors: dict[str, str] | None = None, status: int = 200) -> tuple[str, int]:
    return render_template(
        "portal/segments.html",
        segments=catalog.list_segments(g.tenant),
        errors=errors or {},
        form=request.form if errors else {},
    ), status


@bp.get("/segments")
@login_required
def segments() -> tuple[str, int]:
    return _segments_page()


@bp.post("/segments")
@login_required
def create_segment() -> Response | tuple[str, int]:
    try:
        segment = catalog.create_segment(g.tenant, text("title"), user=g.user)
    except DomainError as error:
        db.session.rollback()
        return _segments_page(errors_of(error), 400)
    return _done(f"“{segment.title}” is added.", url_for("portal.segments"))


@bp.post("/segments/<int:segment_id>")
@login_required
def update_segment(segment_id: int) -> Response | tuple[str, int]:
    try:
        segment = catalog.update_segment(g.tenant, segment_id, title=text("title"), user=g.user)
    except DomainError as error:
        db.session.rollback()
        if error.status_code == 404:
            raise
        return _segments_page({f"title-{segment_id}": error.message}, 400)
    return _done(f"“{segment.title}” is saved.", url_for("portal.segments"))


@bp.post("/segments/<int:segment_id>/move")
@login_required
def move_segment(segment_id: int) -> Response:
    catalog.move_segment(g.tenant, segment_id, _direction(), user=g.user)
    return redirect_to(url_for("portal.segments"))


@bp.post("/segments/<int:segment_id>/delete")
@login_required
def delete_segment(segment_id: int) -> Response:
    catalog.delete_segment(g.tenant, segment_id, user=g.user)
    return _done(
        "The segment is deleted; its packages are now unsegmented.", url_for("portal.segments")
    )
