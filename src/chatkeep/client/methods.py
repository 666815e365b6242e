"""Methods written once, as async code, for a blocking class and an asyncio class alike.

A method's logic is a coroutine function. On an asyncio class (`Awaiting`) it is the method itself.
On a blocking class (`Blocking`) it runs to its end at once, with no event loop: such a class does
its I/O with blocking calls behind `async def` (its httpx client, `time.sleep`), so the coroutine
never suspends, and `run_sync` only has to start it. That is also why a blocking client keeps
working when called from code that runs inside an event loop: it never touches that loop.

`DualMethod` is the descriptor that gives each kind of class its own method from one definition,
and tells the type checker the signature of both: `T` on a blocking class, a coroutine of `T` on an
asyncio one (`operation`), or an iterator and an async iterator (`iteration`)."""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from types import MethodType, TracebackType
from typing import Any, Concatenate, Generic, ParamSpec, Self, TypeVar, overload

P = ParamSpec("P")
T = TypeVar("T")
B = TypeVar("B")
A = TypeVar("A")


class Blocking:
    """A class whose `DualMethod`s answer when done."""


class Awaiting:
    """A class whose `DualMethod`s are awaited."""


def run_sync(awaitable: Awaitable[T]) -> T:
    """What `awaitable` gives, which must not wait on an event loop (see the module's docstring)."""
    steps = awaitable.__await__()
    try:
        steps.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    steps.close()
    raise RuntimeError("a blocking call waited on an event loop")


def iterate_sync(items: AsyncIterator[T]) -> Iterator[T]:
    """The items of an async iterator that never waits on an event loop, one by one."""
    try:
        while True:
            try:
                item = run_sync(items.__anext__())
            except StopAsyncIteration:
                return
            yield item
    finally:
        close = getattr(items, "aclose", None)
        if close is not None:
            run_sync(close())


class DualMethod(Generic[P, B, A]):
    """A method made of two implementations, the first for `Blocking` classes and the second for
    `Awaiting` ones, that both take the instance and then `P`. `public` is the function whose
    signature (less a leading `self`, when it has one) and docstring the method shows."""

    def __init__(
        self,
        blocking: Callable[Concatenate[Any, P], B],
        awaiting: Callable[Concatenate[Any, P], A],
        public: Callable[..., Any],
        *,
        bound: bool,
    ) -> None:
        self.blocking = blocking
        self.awaiting = awaiting
        parameters = list(inspect.signature(public).parameters.values())[1 if bound else 0 :]
        self_parameter = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
        signature = inspect.Signature([self_parameter, *parameters])
        for implementation in (blocking, awaiting):
            _present(implementation, signature, public.__doc__)

    def __set_name__(self, owner: type[Any], name: str) -> None:
        for implementation in (self.blocking, self.awaiting):
            implementation.__name__ = name
            implementation.__qualname__ = f"{owner.__qualname__}.{name}"

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> Any: ...
    @overload
    def __get__(self, instance: Blocking, owner: type[Any] | None = None) -> Callable[P, B]: ...
    @overload
    def __get__(self, instance: Awaiting, owner: type[Any] | None = None) -> Callable[P, A]: ...
    def __get__(self, instance: object, owner: type[Any] | None = None) -> Any:
        if instance is None:  # on the class: the function that takes the instance first
            if owner is not None and issubclass(owner, Blocking):
                return self.blocking
            return self.awaiting if owner is not None and issubclass(owner, Awaiting) else self
        if isinstance(instance, Blocking):
            return MethodType(self.blocking, instance)
        if isinstance(instance, Awaiting):
            return MethodType(self.awaiting, instance)
        raise TypeError(f"{type(instance).__name__} is neither Blocking nor Awaiting")


def _present(function: Any, signature: inspect.Signature, doc: str | None) -> None:
    function.__signature__ = signature
    function.__doc__ = doc


def operation(
    logic: Callable[Concatenate[Any, P], Coroutine[Any, Any, T]],
) -> DualMethod[P, T, Coroutine[Any, Any, T]]:
    """A method that answers `T`: blocking, or awaited."""

    def blocking(instance: Any, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return run_sync(logic(instance, *args, **kwargs))

    async def awaiting(instance: Any, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await logic(instance, *args, **kwargs)

    return DualMethod(blocking, awaiting, logic, bound=True)


def iteration(
    logic: Callable[Concatenate[Any, P], AsyncIterator[T]],
) -> DualMethod[P, Iterator[T], AsyncIterator[T]]:
    """A method that answers an iterator of `T`: `for`, or `async for`."""

    def blocking(instance: Any, /, *args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        return iterate_sync(logic(instance, *args, **kwargs))

    def awaiting(instance: Any, /, *args: P.args, **kwargs: P.kwargs) -> AsyncIterator[T]:
        return logic(instance, *args, **kwargs)

    return DualMethod(blocking, awaiting, logic, bound=True)


class Closing(ABC):
    """`with` closes it."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @abstractmethod
    def close(self) -> None: ...


class AsyncClosing(ABC):
    """`async with` closes it."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    @abstractmethod
    async def aclose(self) -> None: ...
