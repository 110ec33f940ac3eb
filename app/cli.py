"""CLI commands of the app: database, partners, admins, demo data."""

from __future__ import annotations

import json

import click
from flask import Flask
from flask.cli import AppGroup

from app.admins import services as admin_services
from app.admins.operations import CLI
from app.errors import DomainError
from app.migrate import alembic_config, upgrade_database
from app.partners import services as partner_services
from app.web.deps import container


def register_commands(app: Flask) -> None:
    app.cli.add_command(db_group)
    app.cli.add_command(partners_group)
    app.cli.add_command(admins_group)
    app.cli.add_command(seed_demo)
    app.cli.add_command(openapi_command)


@click.group("db", cls=AppGroup)
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
    from alembic import command

    with container().engine.begin() as connection:
        command.downgrade(alembic_config(connection), revision)


@db_group.command("revision")
@click.option("-m", "--message", required=True)
def db_revision(message: str) -> None:
    """Autogenerate a migration from the models."""
    from alembic import command

    with container().engine.begin() as connection:
        command.revision(alembic_config(connection), message=message, autogenerate=True)


@db_group.command("current")
def db_current() -> None:
    from alembic import command

    with container().engine.connect() as connection:
        command.current(alembic_config(connection))


def _fail(error: DomainError) -> None:
    raise click.ClickException(f"{error.code}: {error.message} {error.details or ''}".strip())


@click.group("partners", cls=AppGroup)
def partners_group() -> None:
    """Store systems that call the open API."""


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
    """Create a partner and print its app key and secret (shown once) as JSON."""
    deps = container()
    allowed = None if channels is None else channels.split(",")
    try:
        credentials = partner_services.create_partner(
            uow=deps.uow(),
            actor=CLI,
            name=name,
            secret_key=deps.config.secret_key,
            channels=allowed,
            trusted=trusted,
        )
    except DomainError as error:
        _fail(error)
        return
    click.echo(json.dumps({"app_key": credentials.app_key, "app_secret": credentials.app_secret}))


@partners_group.command("list")
def partners_list() -> None:
    """Every partner as a JSON line: id, name, app_key, active, created_at, channels (null:
    every channel), trusted; never a secret."""
    for partner in partner_services.list_partners(uow=container().uow()):
        click.echo(json.dumps(_partner_row(partner), ensure_ascii=False))


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


@partners_group.command("disable")
@click.argument("app_key_or_id")
def partners_disable(app_key_or_id: str) -> None:
    """Refuse the partner's requests from now on (every worker within a second; audited)."""
    deps = container()
    try:
        partner = partner_services.disable_partner(
            uow=deps.uow(), redis=deps.redis, actor=CLI, app_key_or_id=app_key_or_id
        )
    except DomainError as error:
        _fail(error)
        return
    click.echo(json.dumps({"id": partner.id, "app_key": partner.app_key, "active": False}))


@partners_group.command("configure")
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
    try:
        partner = partner_services.configure_partner(
            uow=deps.uow(),
            redis=deps.redis,
            actor=CLI,
            app_key_or_id=app_key_or_id,
            channels=None if channels is None else channels.split(","),
            trusted=trusted,
        )
    except DomainError as error:
        _fail(error)
        return
    click.echo(json.dumps(_partner_row(partner), ensure_ascii=False))


@partners_group.command("rotate")
@click.argument("app_key_or_id")
def partners_rotate(app_key_or_id: str) -> None:
    """Give the partner a new secret, printed once as JSON; the old one stops working
    (every worker within a second; audited)."""
    deps = container()
    try:
        credentials = partner_services.rotate_partner_secret(
            uow=deps.uow(),
            redis=deps.redis,
            actor=CLI,
            app_key_or_id=app_key_or_id,
            secret_key=deps.config.secret_key,
        )
    except DomainError as error:
        _fail(error)
        return
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
        raise click.ClickException(
            "no key of SECRET_KEY and SECRET_KEY_FALLBACKS decrypts the secrets of "
            f"{', '.join(report.unreadable)}: restore the key, or rotate those partners"
        )


@click.group("admins", cls=AppGroup)
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
@click.option("--role", required=True, type=click.Choice(["admin", "operator", "analyst", "staff"]))
@click.option("--wecom-userid", default=None, help="Staff: their WeCom userid.")
def admins_create(username: str, password: str, role: str, wecom_userid: str | None) -> None:
    try:
        admin = admin_services.create_admin(
            uow=container().uow(),
            actor=CLI,
            username=username,
            password=password,
            role=role,
            wecom_userid=wecom_userid,
        )
    except DomainError as error:
        _fail(error)
        return
    click.echo(json.dumps({"id": admin.id, "username": admin.username, "role": admin.role}))


@admins_group.command("list")
def admins_list() -> None:
    """Every account as a JSON line: username, role, active, last log-in."""
    for admin in admin_services.list_admins(uow=container().uow()):
        last = admin.last_login_at.isoformat() if admin.last_login_at else None
        click.echo(
            json.dumps(
                {
                    "username": admin.username,
                    "role": admin.role,
                    "active": admin.active,
                    "last_login_at": last,
                }
            )
        )


@admins_group.command("disable")
@click.argument("username")
def admins_disable(username: str) -> None:
    """Refuse the account's log-ins and, from the next request, its tokens."""
    try:
        admin_services.disable_admin(uow=container().uow(), actor=CLI, username=username)
    except DomainError as error:
        _fail(error)
        return
    click.echo(json.dumps({"username": username, "active": False}))


@admins_group.command("reset-password")
@click.argument("username")
@click.option(
    "--password", prompt=True, hide_input=True, confirmation_prompt=True, help=_POLICY_HELP
)
def admins_reset_password(username: str, password: str) -> None:
    """Set a new password (prompted for, hidden, twice)."""
    try:
        admin_services.reset_password(
            uow=container().uow(), actor=CLI, username=username, password=password
        )
    except DomainError as error:
        _fail(error)
        return
    click.echo(json.dumps({"username": username, "password_reset": True}))


@click.command("seed-demo")
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
    from app.demo import seed as demo
    from app.members.demo import count_members, seed_members

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


@click.command("openapi")
@click.option("--output", type=click.Path(dir_okay=False), default=None, help="File to write.")
def openapi_command(output: str | None) -> None:
    """Print (or write) the OpenAPI document generated from the endpoints' schemas."""
    from flask import current_app

    from app.web.openapi import build_openapi

    document = json.dumps(build_openapi(current_app), ensure_ascii=False, indent=2, sort_keys=True)
    if output is None:
        click.echo(document)
        return
    with open(output, "w", encoding="utf-8") as handle:
        handle.write(document + "\n")
