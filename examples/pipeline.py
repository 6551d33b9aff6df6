"""Compose work on a thread pool without writing a callback: gather, then, chain, race, timeout.

Run:  python examples/pipeline.py
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future

import futurekit as fk


def fetch(page: int) -> str:
    """Pretend to download a page (slower for higher page numbers)."""
    time.sleep(0.01 * page)
    return f"<page {page}> " + "word " * page


def count_words(html: str) -> int:
    return len(html.split()) - 2


def main() -> None:
    with fk.threads(max_workers=4) as io_pool, fk.threads(max_workers=2) as cpu_pool:
        # gather: a typed tuple of two results; fails fast and cancels the rest.
        first, second = fk.gather(io_pool.submit(fetch, 1), io_pool.submit(fetch, 2)).result(timeout=10)
        print("gather   ->", first[:8], "|", second[:8])

        # then: a plain function of the result. executor= keeps the work off
        # the thread that completed the download.
        words = fk.then(io_pool.submit(fetch, 3), count_words, executor=cpu_pool)
        print("then     ->", words.result(timeout=10), "words")

        # chain: the function itself returns a future; the result is flattened.
        next_page = fk.chain(words, lambda n: io_pool.submit(fetch, n + 1))
        print("chain    ->", next_page.result(timeout=10)[:8])

        # gather_all over many futures, and recover to turn an error into a value.
        pages = fk.gather_all(io_pool.submit(fetch, n) for n in range(1, 6))
        totals = fk.then(pages, lambda ps: sum(map(count_words, ps)))
        print("gather_all + then ->", totals.result(timeout=10), "words in 5 pages")
        safe = fk.recover(io_pool.submit(int, "not a number"), lambda exc: -1, ValueError)
        print("recover  ->", safe.result(timeout=10))

        # race: first to settle wins, the loser is cancelled if it has not started.
        winner = fk.race(io_pool.submit(fetch, 5), io_pool.submit(fetch, 1))
        print("race     ->", winner.result(timeout=10)[:8])

        # timeout: a future that never settles fails with TimeoutError, and is cancelled.
        never: Future[str] = Future()
        late = fk.timeout(never, 0.05)
        print("timeout  ->", type(late.exception(timeout=10)).__name__, "| input cancelled:", never.cancelled())

        # 200,000 hops: no RecursionError, no stall (the chain is driven by a trampoline).
        root: Future[int] = Future()
        end: Future[int] = root
        for _ in range(200_000):
            end = fk.then(end, lambda v: v + 1)
        completer = threading.Thread(target=root.set_result, args=(0,))
        completer.start()
        print("200k hops ->", end.result(timeout=60))
        completer.join(timeout=60)


if __name__ == "__main__":
    main()
