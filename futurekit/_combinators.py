"""PLACEHOLDER - being written. Combinators over FutureLike inputs."""
from __future__ import annotations
from typing import Any
def _todo(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError
as_completed = cancelled = chain = completed = failed = first_success = gather = gather_all = race = recover = then = timeout = _todo
