"""Notices to members: the Messenger port, its test and no-op adapters, and the outbox
handlers that send them (the WeChat adapter lives in ``wechat_hooks.messenger``)."""
