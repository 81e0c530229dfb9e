"""Roles and what they allow: reader < operator < admin, per project or global."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg import Connection

from shared.auth.principal import BUILTIN_ROLES, Principal
from shared.errors import Forbidden
from shared.store import roles as role_store

ROLE_RANK = {"reader": 1, "operator": 2, "admin": 3}


@dataclass(frozen=True)
class Access:
    """A principal's roles: global (app roles + global assignments) and per project."""

    principal: Principal
    global_role: str | None
    project_roles: dict[UUID, str]

    def role_on(self, project_id: UUID) -> str | None:
        candidates = [r for r in (self.global_role, self.project_roles.get(project_id)) if r]
        return max(candidates, key=ROLE_RANK.__getitem__) if candidates else None

    def allows(self, project_id: UUID | None, need: str) -> bool:
        role = self.global_role if project_id is None else self.role_on(project_id)
        return role is not None and ROLE_RANK[role] >= ROLE_RANK[need]

    @property
    def readable_projects(self) -> list[UUID] | None:
        """Project ids the caller may read; None means all."""
        return None if self.global_role else list(self.project_roles)


def _max(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return a or b
    return a if ROLE_RANK[a] >= ROLE_RANK[b] else b


def effective_role(conn: Connection[Any], principal: Principal) -> Access:
    """Combine app roles from the principal with role assignments from the database."""
    global_role: str | None = None
    for app_role in principal.roles:
        if app_role in ROLE_RANK:
            global_role = _max(global_role, app_role)
    assignments = role_store.roles_for(
        conn, user_id=principal.id if principal.kind == "user" else "",
        groups=sorted((principal.groups | principal.roles) - BUILTIN_ROLES),
        service=principal.id if principal.kind == "service" else None)
    project_roles: dict[UUID, str] = {}
    for a in assignments:
        if a.project_id is None:
            global_role = _max(global_role, a.role)
        else:
            project_roles[a.project_id] = _max(project_roles.get(a.project_id), a.role) or a.role
    return Access(principal=principal, global_role=global_role, project_roles=project_roles)


def require(access: Access, project_id: UUID | None, need: str, what: str) -> None:
    """Raise Forbidden unless the caller holds ``need`` (or more) where it matters."""
    if not access.allows(project_id, need):
        where = "globally" if project_id is None else "on this project"
        raise Forbidden(f"{what} needs the {need} role {where}; "
                        f"{access.principal.actor} does not have it",
                        actor=access.principal.actor, project_id=project_id)
