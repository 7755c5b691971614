"""A process that writes events and lands them as Parquet as fast as it can, until killed.

It prints the sequence number of every event whose write was acknowledged, so the test
that kills it knows exactly what must survive.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from engine.clock import LiveClock
from engine.events import Event
from storage.eventlog import EventLog
from storage.store import Store
from storage.writes import AppendEvents


async def main(db: Path, events: Path) -> None:
    clock = LiveClock()
    store = Store(db, clock)
    await store.start()
    log = EventLog(events)
    log.cleanup()
    i = 0
    while True:
        batch = [
            AppendEvents(
                (Event("crash_probe", "test", clock.now(), {"i": i + k, "pad": "x" * 200}),)
            )
            for k in range(16)
        ]
        i += 16
        for result in await asyncio.gather(*(store.write(r) for r in batch)):
            print(result.seqs[0], flush=True)
        await store.export_events(log, 7)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2])))
