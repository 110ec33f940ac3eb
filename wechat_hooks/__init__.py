"""Everything that speaks WeChat: callbacks in, channel adapters out, the local simulator."""
