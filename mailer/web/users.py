"""Admin page: the accounts of the web app (create, change role or password, remove)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException

from mailer.people import accounts, removals
from mailer.people.accounts import User
from mailer.web import csrf
from mailer.web.auth import require_admin
from mailer.web.confirm import ask, confirmed
from mailer.web.context import web
from mailer.web.forms import DB, INVALID, Errors, back
from mailer.web.pages import flash

router = APIRouter(dependencies=[Depends(require_admin), Depends(csrf.verify)])

Admin = Annotated[User, Depends(require_admin)]


def _users_view(
    request: Request,
    session: Session,
    *,
    form: dict[str, str] | None = None,
    errors: Errors | None = None,
    row: int | None = None,
) -> Response:
    """`errors` belong to the add form, or with `row` to that user's row."""
    return web(request).pages.render(
        request,
        "users.html",
        INVALID if errors else 200,
        users=accounts.list_users(session),
        roles=[r.value for r in accounts.Role],
        form=form or {"email": "", "name": "", "role": "editor"},
        errors=(errors or {}) if row is None else {},
        row=row,
        row_errors=(errors or {}) if row is not None else {},
    )


@router.get("/users")
def users_page(request: Request, session: DB) -> Response:
    return _users_view(request, session)


def _check(field: str, check: Any, value: str) -> None:
    try:
        check(value)
    except accounts.AccountError as exc:
        raise _FieldError(field, str(exc)) from None


class _FieldError(Exception):
    """An account field refused before the account is created, with the field's name."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@router.post("/users")
def create_user(
    request: Request,
    session: DB,
    email: Annotated[str, Form()],
    password: Annotated[str, Form()],
    role: Annotated[str, Form()] = "editor",
    name: Annotated[str, Form()] = "",
) -> Response:
    typed = {"email": email, "name": name, "role": role}
    try:
        _check("email", accounts.normalise_email, email)
        _check("name", accounts.check_name, name)
        _check("password", accounts.check_password, password)
        _check("role", accounts.parse_role, role)
        try:
            user = web(request).accounts.create_user(session, email, password, role=role, name=name)
            session.commit()
        except accounts.AccountError as exc:
            session.rollback()
            raise _FieldError("email", str(exc)) from None
    except _FieldError as exc:
        return _users_view(request, session, form=typed, errors={exc.field: str(exc)})
    flash(request, f"Created {user.role} {user.email}.")
    return back("/users")


@router.post("/users/{user_id:int}")
def change_user(
    request: Request,
    session: DB,
    me: Admin,
    user_id: int,
    role: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
) -> Response:
    user = accounts.get_user_by_id(session, user_id)
    if user is None:
        raise HTTPException(404, "Not found.")
    try:
        if role:
            _check("role", accounts.parse_role, role)
        if password:
            _check("password", accounts.check_password, password)
        try:
            if role:
                accounts.set_role(session, user.email, role)
            if password:
                web(request).accounts.set_password(session, user.email, password)
            session.commit()
        except accounts.AccountError as exc:
            session.rollback()
            raise _FieldError("role", str(exc)) from None
    except _FieldError as exc:
        return _users_view(request, session, errors={exc.field: str(exc)}, row=user_id)
    flash(request, f"Saved {user.email}.")
    return back("/users")


@router.get("/users/{user_id:int}/delete")
@router.post("/users/{user_id:int}/delete")
def delete_user(
    request: Request,
    session: DB,
    me: Admin,
    user_id: int,
    confirm: Annotated[str, Form()] = "",
) -> Response:
    user = accounts.get_user_by_id(session, user_id)
    if user is None:
        raise HTTPException(404, "Not found.")
    if user.id == me.id:
        flash(request, "You cannot remove yourself here; another admin can.", "error")
        return back("/users")
    if request.method != "POST" or not confirmed(confirm):
        return ask(
            request,
            title=f"Remove user {user.email}?",
            consequences=removals.user_consequences(session, user),
            action=f"/users/{user_id}/delete",
            button="Remove user",
            back="/users",
        )
    try:
        accounts.remove_user(session, user.email)
        session.commit()
        flash(request, f"Removed {user.email}.")
    except accounts.AccountError as exc:
        session.rollback()
        flash(request, str(exc), "error")
    return back("/users")
