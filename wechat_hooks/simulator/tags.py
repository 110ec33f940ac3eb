"""Official-account user tags, with WeChat's limits. One tag namespace for all apps."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from wechat_hooks.simulator.state import WeChatError
from wechat_hooks.simulator.views import authorise, json_body, ok, sim_state, wechat_api

bp = Blueprint("wechat_sim_tags", __name__)

MAX_TAGS = 100
MAX_TAGS_PER_USER = 20
MAX_TAG_NAME_BYTES = 30
MAX_OPENIDS_PER_BATCH = 50
PAGE_SIZE = 10000


@wechat_api(bp, "/cgi-bin/tags/create", method="POST")
def tags_create() -> dict[str, Any]:
    authorise()
    tag = json_body().get("tag")
    name = tag.get("name") if isinstance(tag, dict) else None
    if not name or not isinstance(name, str):
        raise WeChatError(47001, "data format error: tag.name is required")
    if len(name.encode("utf-8")) > MAX_TAG_NAME_BYTES:
        raise WeChatError(45158, "tag name too long")
    state = sim_state()
    if name in state.tags.values():
        raise WeChatError(45157, "invalid tag name, it is used by another tag")
    if len(state.tags) >= MAX_TAGS:
        raise WeChatError(45056, "too many tags")
    tag_id = state.next_tag_id()
    state.tags[tag_id] = name
    return {"tag": {"id": tag_id, "name": name}}


@wechat_api(bp, "/cgi-bin/tags/get")
def tags_get() -> dict[str, Any]:
    authorise()
    state = sim_state()
    return {
        "tags": [
            {"id": tag_id, "name": name, "count": len(_members(tag_id))}
            for tag_id, name in sorted(state.tags.items())
        ]
    }


@wechat_api(bp, "/cgi-bin/tags/members/batchtagging", method="POST")
def batch_tagging() -> dict[str, Any]:
    caller, body = authorise(), json_body()
    tag_id, openids = _batch(body)
    user_tags = sim_state().user_tags
    # All or nothing: one follower over the limit fails the whole batch.
    if any(len(user_tags.get(o, set()) | {tag_id}) > MAX_TAGS_PER_USER for o in openids):
        raise WeChatError(45059, "user tag count exceeds the limit")
    for openid in openids:
        user_tags.setdefault(openid, set()).add(tag_id)
    sim_state().record(request.path, openids, body, caller.owner)
    return ok()


@wechat_api(bp, "/cgi-bin/tags/members/batchuntagging", method="POST")
def batch_untagging() -> dict[str, Any]:
    caller, body = authorise(), json_body()
    tag_id, openids = _batch(body)
    for openid in openids:
        sim_state().user_tags.get(openid, set()).discard(tag_id)
    sim_state().record(request.path, openids, body, caller.owner)
    return ok()


@wechat_api(bp, "/cgi-bin/tags/getidlist", method="POST")
def tags_of_user() -> dict[str, Any]:
    authorise()
    openid = json_body().get("openid")
    if not openid or not isinstance(openid, str):
        raise WeChatError(40003, "invalid openid")
    return {"tagid_list": sorted(sim_state().user_tags.get(openid, set()))}


@wechat_api(bp, "/cgi-bin/user/tag/get", method="POST")
def users_of_tag() -> dict[str, Any]:
    authorise()
    body = json_body()
    tag_id = _known_tag(body.get("tagid"))
    members = _members(tag_id)
    after = body.get("next_openid") or ""
    page = [o for o in members if o > after][:PAGE_SIZE]
    if not page:
        return {"count": 0, "next_openid": ""}
    return {"count": len(page), "data": {"openid": page}, "next_openid": page[-1]}


def _batch(body: dict[str, Any]) -> tuple[int, list[str]]:
    tag_id = _known_tag(body.get("tagid"))
    openids = body.get("openid_list")
    if not isinstance(openids, list) or not 0 < len(openids) <= MAX_OPENIDS_PER_BATCH:
        raise WeChatError(40032, "invalid openid_list size")
    if not all(isinstance(o, str) and o for o in openids):
        raise WeChatError(40003, "invalid openid")
    return tag_id, openids


def _known_tag(raw: Any) -> int:
    try:
        tag_id = int(raw)
    except (TypeError, ValueError):
        raise WeChatError(45159, "invalid tag id") from None
    if tag_id not in sim_state().tags:
        raise WeChatError(45159, "invalid tag id")
    return tag_id


def _members(tag_id: int) -> list[str]:
    return sorted(o for o, tags in sim_state().user_tags.items() if tag_id in tags)
