"""`/role`, `/profile` and `/models`: presets of prompt and parameters, endpoints, models."""

from __future__ import annotations

from dataclasses import replace

from chatrepl.backends.registry import build_backend, model_rows
from chatrepl.config import switch_profile
from chatrepl.errors import CommandError, ConfigError
from chatrepl.parameters import BY_NAME
from chatrepl.repl.results import Result, Table
from chatrepl.repl.state import ReplState
from chatrepl.roles import Role, all_roles, find_role
from chatrepl.ui.safe_text import one_line


def role_command(state: ReplState, arg: str) -> Result:
    """`/role` lists the roles; `/role NAME` takes one's prompt, model and parameters."""
    if not arg:
        return _roles_table(state)
    try:
        role = find_role(arg, state.settings.roles)
    except ConfigError as error:
        raise CommandError(str(error)) from None
    _apply_role(state, role)
    state.role = role.name
    return Result(f"role {role.name}: {one_line(role.summary())}")


def _apply_role(state: ReplState, role: Role) -> None:
    conversation = state.conversation
    conversation.system = role.system
    if role.values.get("model"):
        conversation.chat_model = role.values["model"]
    if role.values.get("completion_model"):
        conversation.completion_model = role.values["completion_model"]
    params = conversation.params
    for name in BY_NAME:  # the role's parameters; the others back to the defaults
        params = params.with_value(name, role.params.get(name))
    conversation.params = params


def _roles_table(state: ReplState) -> Result:
    roles = all_roles(state.settings.roles)
    rows = [
        (
            ("* " if name == state.role else "") + one_line(name),
            role.source,
            one_line(role.summary()),
        )
        for name, role in sorted(roles.items())
    ]
    return Result(
        "/role NAME takes a role ([roles.NAME] in the config adds one)",
        table=Table(("role", "from", "what it sets"), rows),
    )


def role_names(state: ReplState) -> list[str]:
    """Completions of /role."""
    try:
        return sorted(all_roles(state.settings.roles))
    except ConfigError:
        return []


def profile_command(state: ReplState, arg: str) -> Result:
    """`/profile` lists the endpoint profiles; `/profile NAME` switches to one."""
    if not arg:
        return _profiles_table(state)
    try:
        settings = switch_profile(state.settings, arg)
        backend = build_backend(replace(settings, backend="openai"))
    except ConfigError as error:
        raise CommandError(str(error)) from None
    state.switch_backend(settings, backend)
    model = state.conversation.model
    return Result(f"profile {arg}: {one_line(backend.describe())}, model {one_line(model)}")


def _profiles_table(state: ReplState) -> Result:
    profiles = state.settings.profiles
    if not profiles:
        return Result("no profiles: add [profiles.NAME] tables with base_url, model, api_key_env")
    rows = [
        (
            ("* " if name == state.settings.profile else "") + one_line(name),
            one_line(str(table.get("base_url") or table.get("azure_endpoint") or "(OpenAI)")),
            one_line(str(table.get("model") or "")),
        )
        for name, table in sorted(profiles.items())
    ]
    return Result(table=Table(("profile", "endpoint", "model"), rows))


def profile_names(state: ReplState) -> list[str]:
    """Completions of /profile."""
    return sorted(state.settings.profiles)


def models_command(state: ReplState, arg: str) -> Result:
    """`/models`: the server's models and the embedded model."""
    rows = model_rows(state.backend, state.settings, state.models())
    if not rows:
        return Result("the server lists no models")
    return Result(table=Table(("model", "backend"), [(one_line(m), b) for m, b in rows]))
