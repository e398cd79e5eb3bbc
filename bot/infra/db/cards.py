"""Where each deploy's Slack card lives, in the database, shared by the web and worker processes."""

from __future__ import annotations

from bot.infra.db.base import SessionSource
from bot.infra.db.models import ChatCardRow
from bot.notify.slack_cards import CardRef


class StoreCardStore:
    """bot.notify.slack_cards.CardStore on the database, shared by the web and worker processes."""

    def __init__(self, store: SessionSource):
        self.store = store

    def get(self, deploy_id: int) -> CardRef | None:
        with self.store.session() as s:
            row = s.get(ChatCardRow, deploy_id)
            return CardRef(row.channel, row.ts) if row else None

    def put(self, deploy_id: int, ref: CardRef) -> None:
        with self.store.session() as s:
            row = s.get(ChatCardRow, deploy_id)
            if row is None:
                s.add(ChatCardRow(deploy_id=deploy_id, channel=ref.channel, ts=ref.ts))
            else:
                row.channel, row.ts = ref.channel, ref.ts
