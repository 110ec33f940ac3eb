"""WeCom (企业微信): token, external contacts, corp tags and the group-send template.

Paths are the ones wechatpy 1.8.18 uses (``wechatpy.enterprise.client.api.external_contact``),
all under ``/cgi-bin/``; 1.8.18 has a method for each, only the token URL is hard-coded.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from flask import Blueprint, request

from wechat_hooks.simulator.state import Contact, CorpTag, CorpTagGroup, WeChatError
from wechat_hooks.simulator.views import authorise, json_body, ok, sim_state, wechat_api

bp = Blueprint("wechat_sim_wecom", __name__)

MAX_GROUP_SEND_RECIPIENTS = 10000
MAX_CORP_TAG_NAME = 30


@wechat_api(bp, "/cgi-bin/gettoken")
def gettoken() -> dict[str, Any]:
    state = sim_state()
    corp_id = state.check_corp(request.args.get("corpid"), request.args.get("corpsecret"))
    token = state.issue_token("corp", corp_id)
    return ok(access_token=token.value, expires_in=round(token.expires_at - time.time()))


@wechat_api(bp, "/cgi-bin/externalcontact/list")
def contact_list() -> dict[str, Any]:
    authorise("corp")
    userid = request.args.get("userid", "")
    ids = [c.external_userid for c in sim_state().contacts.values() if userid in c.followers]
    if not ids:
        raise WeChatError(84061, "not external contact")
    return ok(external_userid=ids)


@wechat_api(bp, "/cgi-bin/externalcontact/get")
def contact_get() -> dict[str, Any]:
    authorise("corp")
    contact = _contact(request.args.get("external_userid"))
    return ok(external_contact=_contact_view(contact), follow_user=_follow_users(contact))


@wechat_api(bp, "/cgi-bin/externalcontact/get_corp_tag_list", method="POST")
def corp_tag_list() -> dict[str, Any]:
    authorise("corp")
    wanted = json_body().get("tag_id") or []
    groups = [_group_view(g, wanted) for g in sim_state().tag_groups.values()]
    return ok(tag_group=[g for g in groups if g["tag"] or not wanted])


@wechat_api(bp, "/cgi-bin/externalcontact/add_corp_tag", method="POST")
def add_corp_tag() -> dict[str, Any]:
    authorise("corp")
    body = json_body()
    names = _new_tag_names(body.get("tag"))
    group = _group_for(body)
    if any(t.name in names for t in group.tags.values()) or len(set(names)) < len(names):
        raise WeChatError(40071, "UserTag Name Already Exist")
    added = [_add_tag(group, spec) for spec in body["tag"]]
    return ok(tag_group=_group_view(group, [t.tag_id for t in added]))


@wechat_api(bp, "/cgi-bin/externalcontact/mark_tag", method="POST")
def mark_tag() -> dict[str, Any]:
    caller, body = authorise("corp"), json_body()
    contact = _contact(body.get("external_userid"))
    userid = body.get("userid")
    if userid not in contact.followers:
        raise WeChatError(84061, "not external contact")
    add, remove = list(body.get("add_tag") or []), list(body.get("remove_tag") or [])
    known = _all_tag_ids()
    if (not add and not remove) or any(t not in known for t in add + remove):
        raise WeChatError(40068, "invalid tagid")
    contact.tags[userid] = (contact.tags[userid] | set(add)) - set(remove)
    sim_state().record(request.path, contact.external_userid, body, caller.owner)
    return ok()


@wechat_api(bp, "/cgi-bin/externalcontact/add_msg_template", method="POST")
def add_msg_template() -> dict[str, Any]:
    # Nothing reaches a customer until the sender confirms in WeCom; we record the request.
    caller, body = authorise("corp"), json_body()
    targets = body.get("external_userid")
    if not isinstance(targets, list) or len(targets) > MAX_GROUP_SEND_RECIPIENTS:
        raise WeChatError(40058, "invalid external_userid list")
    if not body.get("text") and not body.get("attachments"):
        raise WeChatError(40058, "text or attachments required")
    sender = body.get("sender")
    reachable = [t for t in targets if _follows(t, sender)]
    state = sim_state()
    msgid = f"msg{state.next_id():06d}{secrets.token_hex(6)}"
    state.record(request.path, reachable, body, caller.owner)
    return ok(fail_list=[t for t in targets if t not in reachable], msgid=msgid)


def _follows(external_userid: Any, sender: str | None) -> bool:
    contact = sim_state().contacts.get(str(external_userid))
    return contact is not None and (sender is None or sender in contact.followers)


def _contact(external_userid: Any) -> Contact:
    contact = sim_state().contacts.get(str(external_userid or ""))
    if contact is None:
        raise WeChatError(40096, "invalid external userid")
    return contact


def _contact_view(contact: Contact) -> dict[str, Any]:
    view: dict[str, Any] = {
        "external_userid": contact.external_userid,
        "name": contact.name,
        "type": 1,
        "gender": 0,
    }
    if contact.unionid:
        view["unionid"] = contact.unionid
    return view


def _follow_users(contact: Contact) -> list[dict[str, Any]]:
    tags = {t.tag_id: (g, t) for g in sim_state().tag_groups.values() for t in g.tags.values()}
    return [
        {
            "userid": userid,
            "remark": "",
            "createtime": added_at,
            "tags": [
                {"group_name": tags[t][0].name, "tag_name": tags[t][1].name, "tag_id": t, "type": 1}
                for t in sorted(contact.tags.get(userid, set()))
                if t in tags
            ],
        }
        for userid, added_at in contact.followers.items()
    ]


def _new_tag_names(specs: Any) -> list[str]:
    if not isinstance(specs, list) or not specs:
        raise WeChatError(40058, "tag is required")
    names = [s.get("name") if isinstance(s, dict) else None for s in specs]
    if not all(isinstance(n, str) and 0 < len(n) <= MAX_CORP_TAG_NAME for n in names):
        raise WeChatError(40058, "invalid tag name")
    return [str(n) for n in names]


def _group_for(body: dict[str, Any]) -> CorpTagGroup:
    """The group named by id, else by name, else a new one."""
    groups = sim_state().tag_groups
    if body.get("group_id"):
        if body["group_id"] not in groups:
            raise WeChatError(40068, "invalid tagid")
        return groups[body["group_id"]]
    name = body.get("group_name")
    if not name or not isinstance(name, str):
        raise WeChatError(40058, "group_id or group_name required")
    for group in groups.values():
        if group.name == name:
            return group
    group = CorpTagGroup(_new_tag_id(), name, int(body.get("order") or 0), int(time.time()))
    groups[group.group_id] = group
    return group


def _add_tag(group: CorpTagGroup, spec: dict[str, Any]) -> CorpTag:
    tag = CorpTag(_new_tag_id(), spec["name"], int(spec.get("order") or 0), int(time.time()))
    group.tags[tag.tag_id] = tag
    return tag


def _new_tag_id() -> str:
    return f"et{sim_state().next_id():04d}{secrets.token_hex(8)}"


def _all_tag_ids() -> set[str]:
    return {t for g in sim_state().tag_groups.values() for t in g.tags}


def _group_view(group: CorpTagGroup, only: list[str]) -> dict[str, Any]:
    tags = [t for t in group.tags.values() if not only or t.tag_id in only]
    return {
        "group_id": group.group_id,
        "group_name": group.name,
        "create_time": group.create_time,
        "order": group.order,
        "deleted": False,
        "tag": [
            {"id": t.tag_id, "name": t.name, "create_time": t.create_time, "order": t.order}
            for t in tags
        ],
    }
