"""Who is calling and what they may do: Easy Auth principals, pipeline keys, roles."""

from shared.auth.principal import Principal, parse_principal
from shared.auth.roles import ROLE_RANK, Access, effective_role, require

__all__ = ["ROLE_RANK", "Access", "Principal", "effective_role", "parse_principal", "require"]
