"""CLI commands of the app: database, partners, admins, demo data.

Every command and option carries help text (tests/api/test_cli.py walks the tree); groups
are ``app.cli_base.Group``, so a DomainError prints as one line (see there).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click
from alembic import command
from flask import Flask, current_app

from app.admins import services as admin_services
from app.admins.models import ROLES
from app.admins.operations import CLI
from app.cli_base import Command, CommandError, Group, warn_under_flask_run
from app.demo import seed as demo
from app.members.demo import count_members, seed_members
from app.migrate import alembic_config, upgrade_database
from app.partners import nonces
from app.partners import services as partner_services
from app.web.deps import container
from app.web.openapi import build_openapi


def register_commands(app: Flask) -> None:
    app.cli.add_command(db_group)
    app.cli.add_command(partners_group)
    app.cli.add_command(admins_group)
    app.cli.add_command(seed_demo)
    app.cli.add_command(openapi_command)
    warn_under_flask_run(app)


@click.group("db", cls=Group)
def db_group() -> None:
    """Schema migrations (Alembic)."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Migrate the database to REVISION (default: head)."""
    upgrade_database(container().engine, revision)
    click.echo(f"database at {revision}")


@db_group.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Migrate the database back to REVISION (e.g. -1: one step)."""
    with container().engine.begin() as connection:
        command.downgrade(alembic_config(connection), revision)


@db_group.command("revision")
@click.option("-m", "--message", required=True, help="What the migration does (its file name).")
def db_revision(message: str) -> None:
    """Autogenerate a migration from the models."""
    with container().engine.begin() as connection:
        command.revision(alembic_config(connection), message=message, autogenerate=True)


@db_group.command("current")
def db_current() -> None:
    """Print the revision the database is at."""
    with container().engine.connect() as connection:
        command.current(alembic_config(connection))


@click.group("partners", cls=Group)
def partners_group() -> None:
    """Store systems that call the open API."""


_PARTNER_REF = "APP_KEY_OR_ID: the partner's app key, or its numeric id."


@partners_group.command("create")
@click.argument("name")
@click.option(
    "--channels",
    default=None,
    help="Comma-separated order channels it may post on (pos,tmall). Default: every channel.",
)
@click.option(
    "--trusted",
    is_flag=True,
    help="Server-side e-commerce: may spend points by card number, phone or unionid "
    "(others need the member's card QR code).",
)
def partners_create(name: str, channels: str | None, trusted: bool) -> None:
    """Create a partner called NAME and print its app key and secret (shown once) as JSON."""
    deps = container()
    credentials = partner_services.create_partner(
        uow=deps.uow(),
        actor=CLI,
        name=name,
        secret_key=deps.config.secret_key,
        channels=None if channels is None else channels.split(","),
        trusted=trusted,
    )
    click.echo(json.dumps({"app_key": credentials.app_key, "app_secret": credentials.app_secret}))


@partners_group.command("list")
def partners_list() -> None:
    """Every partner as a JSON line: id, name, app_key, active, created_at, channels (null:
    every channel), trusted; never a secret."""
    for partner in partner_services.list_partners(uow=container().uow()):
        click.echo(json.dumps(_partner_row(partner), ensure_ascii=False))


@partners_group.command("show", epilog=_PARTNER_REF)
@click.argument("app_key_or_id")
def partners_show(app_key_or_id: str) -> None:
    """One partner as JSON: the fields of `list`, and last_signed_request_at (the X-Timestamp
    of its newest accepted request while its nonces are kept, about 10 minutes; else null).
    Never a secret."""
    deps = container()
    partner = partner_services.show_partner(uow=deps.uow(), app_key_or_id=app_key_or_id)
    newest = nonces.newest_nonce_timestamp(deps.redis, app_key=partner.app_key)
    row = _partner_row(partner) | {
        "last_signed_request_at": (
            None if newest is None else datetime.fromtimestamp(newest, UTC).isoformat()
        )
    }
    click.echo(json.dumps(row, ensure_ascii=False))


def _partner_row(partner: partner_services.PartnerSummary) -> dict[str, object]:
    return {
        "id": partner.id,
        "name": partner.name,
        "app_key": partner.app_key,
        "active": partner.active,
        "created_at": partner.created_at.isoformat(),
        "channels": list(partner.channels) if partner.channels is not None else None,
        "trusted": partner.trusted,
    }


@partners_group.command("disable", epilog=_PARTNER_REF)
@click.argument("app_key_or_id")
def partners_disable(app_key_or_id: str) -> None:
    """Refuse the partner's requests from now on (every worker within a second; audited)."""
    deps = container()
    partner = partner_services.disable_partner(
        uow=deps.uow(), redis=deps.redis, actor=CLI, app_key_or_id=app_key_or_id
    )
    click.echo(json.dumps({"id": partner.id, "app_key": partner.app_key, "active": False}))


@partners_group.command("configure", epilog=_PARTNER_REF)
@click.argument("app_key_or_id")
@click.option(
    "--channels",
    default=None,
    help="Comma-separated order channels it may post on (pos,tmall), or * for every channel.",
)
@click.option(
    "--trusted/--untrusted",
    default=None,
    help="Whether it may spend points without the member's card QR code.",
)
def partners_configure(app_key_or_id: str, channels: str | None, trusted: bool | None) -> None:
    """Change an existing partner's channels or trust (every worker within a second;
    audited); prints the partner as JSON."""
    deps = container()
    partner = partner_services.configure_partner(
        uow=deps.uow(),
        redis=deps.redis,
        actor=CLI,
        app_key_or_id=app_key_or_id,
        channels=None if channels is None else channels.split(","),
        trusted=trusted,
    )
    click.echo(json.dumps(_partner_row(partner), ensure_ascii=False))


@partners_group.command("rotate", epilog=_PARTNER_REF)
@click.argument("app_key_or_id")
def partners_rotate(app_key_or_id: str) -> None:
    """Give the partner a new secret, printed once as JSON; the old one stops working
    (every worker within a second; audited)."""
    deps = container()
    credentials = partner_services.rotate_partner_secret(
        uow=deps.uow(),
        redis=deps.redis,
        actor=CLI,
        app_key_or_id=app_key_or_id,
        secret_key=deps.config.secret_key,
    )
    click.echo(json.dumps({"app_key": credentials.app_key, "app_secret": credentials.app_secret}))


@partners_group.command("reencrypt")
def partners_reencrypt() -> None:
    """Re-encrypt every partner secret under SECRET_KEY (from any SECRET_KEY_FALLBACKS key),
    so that the fallback keys can be removed. Safe to run again."""
    deps = container()
    report = partner_services.reencrypt_partner_secrets(
        uow=deps.uow(),
        redis=deps.redis,
        secret_key=deps.config.secret_key,
        fallback_keys=deps.config.secret_key_fallbacks,
    )
    click.echo(
        json.dumps(
            {
                "partners": report.partners,
                "reencrypted": report.reencrypted,
                "unreadable": report.unreadable,
            }
        )
    )
    if report.unreadable:
        raise CommandError(
            "no key of SECRET_KEY and SECRET_KEY_FALLBACKS decrypts the secrets of "
            f"{', '.join(report.unreadable)}: restore the key, or rotate those partners"
        )


@click.group("admins", cls=Group)
def admins_group() -> None:
    """Operator and staff accounts."""


_POLICY_HELP = (
    "At least 12 characters, not containing the username, not a common or guessable one."
    " Prompted for (hidden, twice) when not given."
)


@admins_group.command("create")
@click.option("--username", required=True, help="3-32 of a-z 0-9 . _ - (lowercase).")
@click.option(
    "--password", prompt=True, hide_input=True, confirmation_prompt=True, help=_POLICY_HELP
)
@click.option(
    "--role",
    required=True,
    type=click.Choice(ROLES),
    help="admin: everything; operator: members and points; analyst: read only; "
    "staff: their own customers.",
)
@click.option("--wecom-userid", default=None, help="Staff: their WeCom userid.")
def admins_create(username: str, password: str, role: str, wecom_userid: str | None) -> None:
    """Create an operator or staff account (audited); prints it as JSON."""
    admin = admin_services.create_admin(
        uow=container().uow(),
        actor=CLI,
        username=username,
        password=password,
        role=role,
        wecom_userid=wecom_userid,
    )
    click.echo(json.dumps({"id": admin.id, "username": admin.username, "role": admin.role}))


@admins_group.command("list")
def admins_list() -> None:
    """Every account as a JSON line: username, role, active, last log-in."""
    for admin in admin_services.list_admins(uow=container().uow()):
        click.echo(
            json.dumps(
                {
                    "username": admin.username,
                    "role": admin.role,
                    "active": admin.active,
                    "last_login_at": _iso(admin.last_login_at),
                }
            )
        )


@admins_group.command("show")
@click.argument("username")
def admins_show(username: str) -> None:
    """The account USERNAME as JSON: username, role, active, created_at, last_login_at,
    wecom_userid; never its password hash."""
    admin = admin_services.show_admin(uow=container().uow(), username=username)
    row = {
        "username": admin.username,
        "role": admin.role,
        "active": admin.active,
        "created_at": _iso(admin.created_at),
        "last_login_at": _iso(admin.last_login_at),
        "wecom_userid": admin.wecom_userid,
    }
    click.echo(json.dumps(row, ensure_ascii=False))


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


@admins_group.command("disable")
@click.argument("username")
def admins_disable(username: str) -> None:
    """Refuse the account USERNAME's log-ins and, from the next request, its tokens."""
    admin_services.disable_admin(uow=container().uow(), actor=CLI, username=username)
    click.echo(json.dumps({"username": username, "active": False}))


@admins_group.command("reset-password")
@click.argument("username")
@click.option(
    "--password", prompt=True, hide_input=True, confirmation_prompt=True, help=_POLICY_HELP
)
def admins_reset_password(username: str, password: str) -> None:
    """Set a new password for USERNAME (prompted for, hidden, twice); its sessions end."""
    admin_services.reset_password(
        uow=container().uow(), actor=CLI, username=username, password=password
    )
    click.echo(json.dumps({"username": username, "password_reset": True}))


@click.command("seed-demo", cls=Command)
@click.option(
    "--members",
    "count",
    default=1000,
    show_default=True,
    type=click.IntRange(0, 10_000_000),
    help="Extra members without history, inserted in batches (for volume).",
)
@click.option(
    "--story-members",
    default=24,
    show_default=True,
    type=click.IntRange(0, 10_000),
    help="Members with identities, orders, points, check-ins and tier history.",
)
@click.option("--if-empty", is_flag=True, help="Only when there are no members yet.")
@click.option("--seed", default=None, type=int, help="Random seed, for repeatable data.")
def seed_demo(count: int, story_members: int, if_empty: bool, seed: int | None) -> None:
    """Seed demo data: the tier ladder and points rules (where unset), members with a
    history written through the real use cases (safe to rerun), then extra members."""
    deps = container()
    if if_empty and count_members(deps.engine) > 0:
        click.echo("members exist; demo data not seeded")
        return
    programme = demo.seed_programme(uow=deps.uow(), actor=CLI)
    click.echo(f"programme: {programme.tiers} tiers, {programme.settings} settings documents")
    if story_members:
        done = demo.seed_members(
            uow=deps.uow(),
            redis=deps.redis,
            actor=CLI,
            secret_key=deps.config.secret_key,
            appid=deps.config.wechat_mp_appid,
            count=story_members,
            seed=7 if seed is None else seed,
        )
        click.echo(
            "members with history: {members} new, {orders} orders, {refunds} refunds, "
            "{till_spends} till spends, {checkins} check-ins".format_map(
                {
                    key: done[key]
                    for key in ("members", "orders", "refunds", "till_spends", "checkins")
                }
            )
        )
    with click.progressbar(length=count, label="seeding members") as bar:
        seed_members(deps.engine, count=count, seed=seed, progress=bar.update)
    click.echo(f"seeded {count} members")


@click.command("openapi", cls=Command)
@click.option(
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="File to write (default: print it).",
)
def openapi_command(output: str | None) -> None:
    """Print (or write) the OpenAPI document generated from the endpoints' schemas."""
    document = json.dumps(build_openapi(current_app), ensure_ascii=False, indent=2, sort_keys=True)
    if output is None:
        click.echo(document)
        return
    with open(output, "w", encoding="utf-8") as handle:
        handle.write(document + "\n")
