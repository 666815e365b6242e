"""Real-time delivery on this instance: the Hub (who follows what) and the Channels that give each
follower of a conversation its messages once, in order, with no gap."""

from chatkeep.service.realtime.followers import Follower, Source
from chatkeep.service.realtime.hub import MAX_BACKLOG, Hub
from chatkeep.service.realtime.quotas import SocketQuotas

__all__ = ["MAX_BACKLOG", "Follower", "Hub", "SocketQuotas", "Source"]
