"""What the web process does around serving: its start-up objects go out of the cyclic collector's reach (a full
collection walked them all in the middle of requests: ~100 ms pauses in the search benchmark), and the in-app job
loop starts once the AI models are read."""

from __future__ import annotations

import gc

from ticketing_app.lifespan import freeze_startup_objects


def test_start_up_objects_are_frozen_and_later_garbage_is_still_collected():
    try:
        freeze_startup_objects()
        assert gc.get_freeze_count() > 1000

        class Cycle:
            pass

        a, b = Cycle(), Cycle()
        a.other, b.other = b, a
        del a, b
        assert gc.collect() >= 2  # objects made after start-up are collected as before
    finally:
        gc.unfreeze()


def test_the_in_app_job_loop_starts_after_the_models_are_read_and_stops_after_it_started(monkeypatch):
    """With WORKER_IN_APP the web process reads the AI models beside serving and starts claiming jobs only then (the
    first ticket does not pay the load); a failed read still starts the loop, and a stop waits for the start."""
    import asyncio
    import threading
    from types import SimpleNamespace

    from ticketing_app import lifespan, migrations, worker_main
    from ticketing_app.ai import select

    calls: list[str] = []
    reading = threading.Event()

    class FakeWorker:
        def start(self) -> None:
            calls.append("start")

        def stop(self, wait: bool) -> None:
            calls.append("stop")

    def slow_failing_warm_up() -> None:
        reading.wait(5)
        calls.append("warm_up")
        raise RuntimeError("model file unreadable")

    monkeypatch.setattr(migrations, "upgrade_database", lambda: None)
    monkeypatch.setattr(lifespan, "freeze_startup_objects", lambda: None)
    monkeypatch.setattr(lifespan, "get_settings", lambda: SimpleNamespace(worker_in_app=True))
    monkeypatch.setattr(worker_main, "build_worker", FakeWorker)
    monkeypatch.setattr(worker_main, "start_smtp_listener", lambda: None)
    monkeypatch.setattr(select, "warm_up", slow_failing_warm_up)

    async def serve_then_stop() -> None:
        async with lifespan.app_lifespan():
            await asyncio.sleep(0.05)
            assert calls == []  # serving while the models load; no job claimed yet
            threading.Timer(0.2, reading.set).start()  # the load ends (failing) after the stop began

    asyncio.run(serve_then_stop())
    assert calls == ["warm_up", "start", "stop"]
